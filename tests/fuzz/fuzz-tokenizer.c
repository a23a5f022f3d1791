/* libFuzzer target: the tokenizer on any bytes, read as a tokenizer.model, as text and as token ids. */
#include "tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static OlTokenizer *llama;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *path = getenv ("ONELLM_TOKENIZER");
  GError *error = NULL;
  llama = path != NULL ? ol_tokenizer_new_from_file (path, &error) : NULL;
  if (llama == NULL) {
    fprintf (stderr, "fuzz-tokenizer: set ONELLM_TOKENIZER to LLaMA's tokenizer.model (%s)\n",
             error != NULL ? error->message : "unset");
    exit (2);
  }
  return 0;
}

/* Valid UTF-8 that may hold NUL bytes. */
static gboolean
valid_utf8 (const char *s, gsize len)
{
  for (gsize pos = 0; pos < len;) {
    gsize seg = strnlen (s + pos, len - pos);
    if (!g_utf8_validate_len (s + pos, seg, NULL))
      return FALSE;
    pos += seg + 1;
  }
  return TRUE;
}

/* Decodes ids whole and one at a time; returns the text (len in *len). */
static char *
decode_both (const OlTokenizer *tok, const gint32 *ids, gsize n, gsize *len)
{
  char *whole = ol_tokenizer_decode (tok, ids, n, len);
  if (!valid_utf8 (whole, *len))
    __builtin_trap ();
  OlDetokenizer *det = ol_detokenizer_new (tok);
  GString *streamed = g_string_new (NULL);
  for (gsize i = 0; i <= n; i++) {
    gsize chunk_len;
    char *chunk = i < n ? ol_detokenizer_push (det, ids[i], &chunk_len)
                        : ol_detokenizer_flush (det, &chunk_len);
    if (!valid_utf8 (chunk, chunk_len))
      __builtin_trap ();
    g_string_append_len (streamed, chunk, chunk_len);
    g_free (chunk);
  }
  if (streamed->len != *len || memcmp (streamed->str, whole, *len) != 0)
    __builtin_trap ();
  g_string_free (streamed, TRUE);
  ol_detokenizer_free (det);
  return whole;
}

static gint32 *
encode_checked (const OlTokenizer *tok, const char *text, gsize len, gsize *n)
{
  gint32 *ids = ol_tokenizer_encode (tok, text, len, TRUE, TRUE, n);
  for (gsize i = 0; i < *n; i++)
    if (ids[i] < 0 || (gsize) ids[i] >= ol_tokenizer_n_vocab (tok))
      __builtin_trap ();
  return ids;
}

/* Parsing ends in a tokenizer or a clean error; encode gives ids in range; decode gives valid UTF-8, the same
 * whole and streamed. */
int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  const char *text = (const char *) data;

  GError *error = NULL;
  OlTokenizer *parsed = ol_tokenizer_new_from_data (data, size, "fuzz input", &error);
  if (parsed == NULL) {
    if (error == NULL || error->domain != OL_ERROR ||
        (error->code != OL_ERROR_CORRUPT_FILE && error->code != OL_ERROR_UNSUPPORTED))
      __builtin_trap ();
    g_error_free (error);
  } else {
    static const char sample[] = "Hello  w\xc3\xb6rld \xf0\x9f\x8e\xa5 ###Human: 42\n";
    gsize n, len;
    gint32 *ids = encode_checked (parsed, sample, sizeof sample - 1, &n);
    g_free (decode_both (parsed, ids, n, &len));
    g_free (ids);
    ol_tokenizer_free (parsed);
  }

  /* LLaMA has byte fallback and the identity normaliser: valid text comes back unchanged, except that
   * U+2581 (the piece's space mark) reads as a space */
  gsize n, len;
  gint32 *ids = encode_checked (llama, text, size, &n);
  char *back = decode_both (llama, ids, n, &len);
  if (valid_utf8 (text, size) && memmem (text, size, "\xe2\x96\x81", 3) == NULL &&
      (len != size || memcmp (back, text, size) != 0))
    __builtin_trap ();
  g_free (back);
  g_free (ids);

  /* the bytes as ids, out-of-range ones included */
  gsize n_ids = size / sizeof (gint32);
  gint32 *raw = g_new (gint32, MAX (n_ids, 1));
  memcpy (raw, data, n_ids * sizeof (gint32));
  g_free (decode_both (llama, raw, n_ids, &len));
  g_free (raw);
  return 0;
}
