/* A loaded model: OneLLM (encoder + LLM) or a plain LLaMA GGUF, its hyperparameters and device weights. */
#pragma once

#include <glib.h>
#include "device.h"
#include "tensor.h"
#include "tokenizer.h"

G_BEGIN_DECLS

typedef struct _OlModel OlModel;

/* The eight modalities, in the order of the official code (spec §1). Depth and normal maps are the
 * checkpoint's "rgbd" and "rgbn". */
typedef enum {
  OL_MODALITY_IMAGE,
  OL_MODALITY_VIDEO,
  OL_MODALITY_AUDIO,
  OL_MODALITY_POINT,
  OL_MODALITY_DEPTH,
  OL_MODALITY_NORMAL,
  OL_MODALITY_FMRI,
  OL_MODALITY_IMU,
  OL_N_MODALITIES
} OlModality;

/* "image", "video", "audio", "point", "depth", "normal", "fmri", "imu". */
OL_API const char *ol_modality_name (OlModality m);
/* Accepts the names above and the official code's "rgbd"/"rgbn". */
OL_API gboolean ol_modality_from_name (const char *name, OlModality *m);

/* What one modality looks like to the encoder. */
typedef struct {
  gboolean present;
  guint frames;           /* T: frames averaged after CLIP (15 video, 2 depth/normal, else 1) */
  guint tokens;           /* L: tokens per frame from the modality tokenizer, without the class token */
  guint n_input_dims;     /* shape of the model-input tensor of spec §2.1, outermost first */
  guint input_shape[4];   /* e.g. {3, 224, 224} image, {15, 3, 224, 224} video, {1, 128, 1024} audio */
  char *default_prompt;   /* the official evaluation prompt for the modality */
  guint kernel[2], stride; /* audio and IMU convolutions: (kh, kw) and stride */
  guint group_size;       /* point: neighbours per group */
  float norm_mean, norm_std; /* audio: fbank normalisation */
} OlModalityInfo;

typedef struct {
  char *architecture;     /* "onellm" or "llama" */
  char *name;             /* general.name, or the file name */
  /* LLM */
  guint n_vocab, dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, context_length;
  float norm_eps, rope_theta;
  /* encoder: absent for a plain LLaMA file */
  gboolean has_encoder;
  guint clip_dim, clip_layers, clip_heads, clip_ffn_dim, patch_size, image_size;
  float clip_eps;
  guint upm_experts, upm_layers, upm_dim, upm_heads, upm_ffn_dim, n_resample;
  float upm_eps;
  OlModalityInfo modality[OL_N_MODALITIES];
  char *prompt_template;  /* with "{question}" where the question goes */
} OlModelInfo;

/* Loads a GGUF model onto the device. Tensors are checked against the hyperparameters; anything
 * missing, mis-shaped or of an unsupported type is an OL_ERROR_CORRUPT_FILE naming the tensor. */
OL_API OlModel *ol_model_new (OlDevice *dev, const char *path, GError **error);
OL_API void ol_model_free (OlModel *model);

OL_API const OlModelInfo *ol_model_get_info (const OlModel *model);
OL_API OlDevice *ol_model_get_device (const OlModel *model);
OL_API OlTokenizer *ol_model_get_tokenizer (const OlModel *model);
OL_API const char *ol_model_get_path (const OlModel *model);
/* The model file used when none is named (the elements' unset "model", onellm-cli without --model):
 * $ONELLM_MODEL if set, else models/onellm-default.gguf of the build tree if it exists (uninstalled
 * programs), else the installed DATADIR/onellm/models/onellm-default.gguf. Free with g_free. */
OL_API char *ol_model_default_path (void);
OL_API gboolean ol_model_has_modality (const OlModel *model, OlModality m);
/* A weight by its GGUF name, NULL if absent (for the forward passes and tools). */
OL_API const OlTensor *ol_model_get_tensor (const OlModel *model, const char *name);

G_END_DECLS
