/* The tokenizer of a GGUF model file, from its tokenizer.ggml.* keys (docs/model-format.md). */
#include "tokenizer.h"

#include <string.h>

/* An optional u32 key: -1 when absent. */
static gboolean
optional_id (const OlGguf *gguf, const char *key, gint64 *out, GError **error)
{
  *out = -1;
  if (!ol_gguf_has_key (gguf, key))
    return TRUE;
  guint32 v;
  if (!ol_gguf_get_u32 (gguf, key, &v, error))
    return FALSE;
  *out = v;
  return TRUE;
}

static gboolean
optional_bool (const OlGguf *gguf, const char *key, gboolean fallback, gboolean *out, GError **error)
{
  *out = fallback;
  return !ol_gguf_has_key (gguf, key) || ol_gguf_get_bool (gguf, key, out, error);
}

static gboolean
check_id (const char *key, gint64 id, gsize n, GError **error)
{
  if (id < (gint64) n)
    return TRUE;
  g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s %" G_GINT64_FORMAT
               " is outside the vocabulary of %" G_GSIZE_FORMAT " pieces", key, id, n);
  return FALSE;
}

OlTokenizer *
ol_tokenizer_new_from_gguf (const OlGguf *gguf, GError **error)
{
  g_return_val_if_fail (gguf != NULL, NULL);
  if (ol_gguf_has_key (gguf, "tokenizer.ggml.model")) {
    const char *model;
    if (!ol_gguf_get_string (gguf, "tokenizer.ggml.model", &model, error))
      return NULL;
    if (strcmp (model, "llama") != 0) {
      g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "the tokenizer model is '%s'; only 'llama' "
                   "(SentencePiece BPE) is supported", model);
      return NULL;
    }
  }
  const char *const *pieces;
  gsize n, n_scores, n_types;
  g_autofree float *scores = NULL;
  g_autofree gint32 *types = NULL;
  if (!ol_gguf_get_string_array (gguf, "tokenizer.ggml.tokens", &pieces, &n, error) ||
      !ol_gguf_get_f32_array (gguf, "tokenizer.ggml.scores", &scores, &n_scores, error) ||
      !ol_gguf_get_i32_array (gguf, "tokenizer.ggml.token_type", &types, &n_types, error))
    return NULL;
  if (n_scores != n || n_types != n) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "the tokenizer arrays differ in length (%"
                 G_GSIZE_FORMAT " tokens, %" G_GSIZE_FORMAT " scores, %" G_GSIZE_FORMAT " types)",
                 n, n_scores, n_types);
    return NULL;
  }
  gint64 bos, eos, unk;
  gboolean add_space_prefix, remove_extra_ws;
  if (!optional_id (gguf, "tokenizer.ggml.bos_token_id", &bos, error) ||
      !optional_id (gguf, "tokenizer.ggml.eos_token_id", &eos, error) ||
      !optional_id (gguf, "tokenizer.ggml.unknown_token_id", &unk, error) ||
      !optional_bool (gguf, "tokenizer.ggml.add_space_prefix", TRUE, &add_space_prefix, error) ||
      !optional_bool (gguf, "tokenizer.ggml.remove_extra_whitespaces", FALSE, &remove_extra_ws, error) ||
      !check_id ("tokenizer.ggml.bos_token_id", bos, n, error) ||
      !check_id ("tokenizer.ggml.eos_token_id", eos, n, error) ||
      !check_id ("tokenizer.ggml.unknown_token_id", unk, n, error))
    return NULL;

  OlTokenizer *tok = ol_tokenizer_new_from_vocab (pieces, scores, types, n, error);
  if (tok == NULL)
    return NULL;
  /* The unknown piece is the one of type UNKNOWN; a file naming another would encode differently
   * elsewhere. */
  if (unk >= 0 && unk != ol_tokenizer_unk (tok)) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "tokenizer.ggml.unknown_token_id is %"
                 G_GINT64_FORMAT " but the unknown piece is %d", unk, ol_tokenizer_unk (tok));
    ol_tokenizer_free (tok);
    return NULL;
  }
  if (!ol_tokenizer_set_special_ids (tok, bos >= 0 ? (gint32) bos : ol_tokenizer_bos (tok),
                                     eos >= 0 ? (gint32) eos : ol_tokenizer_eos (tok), error)) {
    ol_tokenizer_free (tok);
    return NULL;
  }
  ol_tokenizer_set_normalizer (tok, add_space_prefix, remove_extra_ws);
  return tok;
}
