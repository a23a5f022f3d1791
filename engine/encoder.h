/* The encoder path: modality tokenizers, CLIP ViT, Universal Projection Module → 32 LLM input rows. */
#pragma once

#include <glib.h>
#include "model.h"

G_BEGIN_DECLS

typedef struct _OlEncoder OlEncoder;

/* An encoder holds the working buffers and recordings for one thread; several encoders may share a
 * model. Buffers are sized for the model's largest modality. */
OL_API OlEncoder *ol_encoder_new (OlModel *model, GError **error);
OL_API void ol_encoder_free (OlEncoder *enc);

/* Elements of the tokens of one window: frames × tokens × clip_dim (no class token). */
OL_API gsize ol_encoder_tokens_size (OlEncoder *enc, OlModality m);
/* Elements of the LLM input block: (2 + n_resample) × dim. */
OL_API gsize ol_encoder_embeddings_size (OlEncoder *enc);

/* Modality tokenizer (spec §2): the model-input tensor of the modality (shape in
 * OlModalityInfo.input_shape, as produced by preprocess.h) → tokens [frames, tokens, clip_dim].
 * Points are the prepared [n_points, 6] of ol_point_prepare; their groups are searched again here
 * (ol_point_group_indices) and gathered on the host. NaN or Inf in the input is an
 * OL_ERROR_INVALID_ARGUMENT naming the element. */
OL_API gboolean ol_encoder_tokenize (OlEncoder *enc, OlModality m, const float *input, float *tokens,
                                     GError **error);

/* CLIP + UPM (spec §3, §4): tokens → the LLM input block [2 + n_resample, dim]: start tag, the
 * projected modality vectors, end tag. */
OL_API gboolean ol_encoder_encode (OlEncoder *enc, OlModality m, const float *tokens, float *embeddings,
                                   GError **error);

/* Model input with its shape (e.g. from a .npy) → the LLM input block: the shape is checked, then the
 * tokenizer, CLIP and the UPM run in one submission. */
OL_API gboolean ol_encoder_run (OlEncoder *enc, OlModality m, const float *input, guint n_dims,
                                const gint64 *shape, float *embeddings, GError **error);
/* OL_ERROR_INVALID_ARGUMENT naming both shapes unless shape is the modality's input_shape (fMRI also
 * accepts the bare [voxels]); OL_ERROR_UNSUPPORTED if the model lacks the modality. */
OL_API gboolean ol_encoder_check_input_shape (OlEncoder *enc, OlModality m, guint n_dims, const gint64 *shape,
                                              GError **error);

/* Intermediate results of the last encode, for checks against the reference: CLIP output after
 * ln_post and the frame mean [tokens + 1, clip_dim], and the routing weights [n_resample, experts]. */
OL_API gboolean ol_encoder_get_clip_output (OlEncoder *enc, float *out, GError **error);
OL_API const float *ol_encoder_get_routing (OlEncoder *enc, OlModality m);

G_END_DECLS
