/* The language path: a LLaMA sequence with its KV cache, prefill of text and modality blocks, decode, generation. */
#pragma once

#include <gio/gio.h>
#include "model.h"

G_BEGIN_DECLS

typedef struct _OlSession OlSession;

/* Where decoding continues after a prefill that contains modality blocks (spec §6.4).
 * OFFICIAL reproduces the released code: 32 rows are inserted per block but decoding continues
 * as if 30 were, so the first generated token overwrites the last two prompt rows; needed for
 * token-exact parity with the official outputs. Every embedding part of a prefill counts as such a
 * block: after the prefill, the session's position goes back by 2 per part. CORRECT continues after
 * the last prompt row. The default is OFFICIAL (docs/language.md says why). */
typedef enum {
  OL_POSITION_OFFICIAL,
  OL_POSITION_CORRECT,
} OlPositionMode;

/* A session is one sequence with its own KV cache and recordings; it is used by one thread at a time,
 * while several sessions may run on one model from different threads. */
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
/* The cache row (= RoPE position) the next token goes to. */
OL_API guint ol_session_get_n_past (OlSession *s);
OL_API guint ol_session_get_n_ctx (OlSession *s);

/* One piece of a prompt: token ids, or rows of input embeddings (e.g. an encoder block). */
typedef struct {
  const gint32 *ids;
  guint n_ids;
  const float *embeddings;      /* n_rows × dim */
  guint n_rows;
} OlPromptPart;

/* Appends the parts to the sequence in one submit; writes the logits of the last position
 * (n_vocab floats) when logits is not NULL. OL_ERROR_CONTEXT_FULL if they do not fit (the session
 * is unchanged then); OL_ERROR_INVALID_ARGUMENT for an id outside the vocabulary or an empty prompt. */
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

/* Called once per generated token with the newly completed text of the answer (possibly ""), and once
 * more with token -1 for text released when generation ends. The pieces are whole UTF-8 characters and
 * concatenate to OlGenerateResult.text: text that may still become the "###" separator or trailing
 * whitespace is held back. Return FALSE to stop generating. */
typedef gboolean (*OlTextCallback) (const char *text, gint32 token, gpointer user_data);

typedef struct {
  char *text;                   /* the answer, cut at "###" and stripped (spec §6.2) */
  GArray *tokens;               /* gint32 ids generated */
  guint n_prompt_tokens;        /* cache rows of the prompt (ol_session_chat), blocks included */
  guint n_prefill_rows;         /* of them, those computed by this turn (the others were cached) */
  double prefill_seconds, decode_seconds;
} OlGenerateResult;

OL_API void ol_generate_result_clear (OlGenerateResult *result);

/* Samples from first_logits (those of the last prefill), then decodes until EOS, the separator,
 * max_tokens, a FALSE from callback, or cancellation (OL_ERROR_CANCELLED). The text callback gets
 * each newly completed UTF-8 piece; callback may be NULL. EOS is not part of result->tokens; the last
 * token is not fed to the cache (a later turn feeds it if it needs it). result must be zero-initialised
 * or cleared; on failure it holds what was generated before. */
OL_API gboolean ol_session_generate (OlSession *s, const float *first_logits, const OlGenerateParams *params,
                                     OlTextCallback callback, gpointer user_data, GCancellable *cancellable,
                                     OlGenerateResult *result, GError **error);

/* One chat turn: the question (with the OneLLM template; earlier turns of this session are kept in
 * its cache) and the encoder blocks ([2 + n_resample, dim] each) of any modalities, spliced after BOS
 * in the given order. Blocks that differ from the conversation's restart it with them (the cache is
 * rebuilt); no blocks keep the earlier ones. Only rows that differ from the cache are prefilled.
 * A model without a prompt template (a plain LLaMA file) continues its text instead: the question
 * is appended as it is. Streams text through callback; cancellable from another thread
 * (OL_ERROR_CANCELLED). */
OL_API gboolean ol_session_chat (OlSession *s, const char *question, const float *const *blocks, guint n_blocks,
                                 const OlGenerateParams *params, OlTextCallback callback, gpointer user_data,
                                 GCancellable *cancellable, OlGenerateResult *result, GError **error);

G_END_DECLS
