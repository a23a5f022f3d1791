/* The language path: a LLaMA sequence with its KV cache, prefill of text and modality blocks, decode, generation. */
#pragma once

#include <gio/gio.h>
#include "model.h"

G_BEGIN_DECLS

typedef struct _OlSession OlSession;

/* Where decoding continues after a prefill that contains modality blocks (spec §6.4).
 * OFFICIAL reproduces the released code: 32 rows are inserted per block but decoding continues
 * as if 30 were, so the first generated token overwrites the last two prompt rows; needed for
 * token-exact parity with the official outputs. CORRECT continues after the last prompt row. */
typedef enum {
  OL_POSITION_OFFICIAL,
  OL_POSITION_CORRECT,
} OlPositionMode;

typedef struct {
  guint n_ctx;                  /* cache rows; 0 = the model's context length */
  OlType kv_type;               /* OL_TYPE_F32 or OL_TYPE_F16 */
  OlPositionMode position_mode;
} OlSessionParams;

OL_API void ol_session_params_init (OlSessionParams *params);
OL_API OlSession *ol_session_new (OlModel *model, const OlSessionParams *params, GError **error);
OL_API void ol_session_free (OlSession *s);
/* Forgets the cached sequence. */
OL_API void ol_session_reset (OlSession *s);
OL_API guint ol_session_get_n_past (OlSession *s);

/* One piece of a prompt: token ids, or rows of input embeddings (e.g. an encoder block). */
typedef struct {
  const gint32 *ids;
  guint n_ids;
  const float *embeddings;      /* n_rows × dim */
  guint n_rows;
} OlPromptPart;

/* Appends the parts to the sequence in one submit; writes the logits of the last position
 * (n_vocab floats) when logits is not NULL. OL_ERROR_CONTEXT_FULL if they do not fit. */
OL_API gboolean ol_session_prefill (OlSession *s, const OlPromptPart *parts, guint n_parts, float *logits,
                                    GError **error);
/* Appends one token and computes the logits of the new position. */
OL_API gboolean ol_session_decode (OlSession *s, gint32 token, float *logits, GError **error);

typedef struct {
  float temperature;            /* 0 = greedy */
  float top_p;
  guint top_k;                  /* 0 = off */
  guint64 seed;
  guint max_tokens;
  gboolean stop_at_separator;   /* stop at the "###" turn separator (spec §6.3) */
} OlGenerateParams;

/* Official evaluation defaults: temperature 0.1, top-p 0.75, 128 tokens, stop at "###". */
OL_API void ol_generate_params_init (OlGenerateParams *params);

/* Called with each piece of newly completed UTF-8 text; return FALSE to stop generating. */
typedef gboolean (*OlTextCallback) (const char *text, gint32 token, gpointer user_data);

typedef struct {
  char *text;                   /* the answer, cut at "###" and stripped (spec §6.2) */
  GArray *tokens;               /* gint32 ids generated */
  guint n_prompt_tokens;
  double prefill_seconds, decode_seconds;
} OlGenerateResult;

OL_API void ol_generate_result_clear (OlGenerateResult *result);

/* Samples from first_logits (those of the last prefill), then decodes until EOS, the separator,
 * max_tokens, a FALSE from callback, or cancellation (OL_ERROR_CANCELLED). The text callback gets
 * each newly completed UTF-8 piece; callback may be NULL. */
OL_API gboolean ol_session_generate (OlSession *s, const float *first_logits, const OlGenerateParams *params,
                                     OlTextCallback callback, gpointer user_data, GCancellable *cancellable,
                                     OlGenerateResult *result, GError **error);

/* One chat turn: the question (with the OneLLM template; earlier turns of this session are kept in
 * its cache) and the encoder blocks of any modalities, spliced after BOS in the given order.
 * Streams text through callback; cancellable from another thread (OL_ERROR_CANCELLED). */
OL_API gboolean ol_session_chat (OlSession *s, const char *question, const float *const *blocks, guint n_blocks,
                                 const OlGenerateParams *params, OlTextCallback callback, gpointer user_data,
                                 GCancellable *cancellable, OlGenerateResult *result, GError **error);

G_END_DECLS
