/* Tokenizer: sentencepiece goldens, streaming decode, vocabularies, GGUF keys, corrupt files, fuzzing. */
#include "onellm.h"

#include <glib/gstdio.h>
#include <string.h>

#define LLAMA_MODEL OL_SHARED_DATA "/llama2-tokenizer.model"
#define TINY_MODEL OL_TEST_DATA "/tokenizer-tiny.model"

typedef struct {
  guint line;
  char *text;
  gsize len;
  gint32 *ids;
  gsize n;
} Golden;

static OlTokenizer *llama;

static void
golden_free (gpointer p)
{
  Golden *g = p;
  g_free (g->text);
  g_free (g->ids);
  g_free (g);
}

/* The goldens' escapes: \\ \n \t \r \xHH. */
static char *
unescape (const char *s, gsize *len)
{
  GString *out = g_string_new (NULL);
  for (const char *p = s; *p; p++) {
    if (*p != '\\') {
      g_string_append_c (out, *p);
      continue;
    }
    p++;
    switch (*p) {
    case 'n': g_string_append_c (out, '\n'); break;
    case 't': g_string_append_c (out, '\t'); break;
    case 'r': g_string_append_c (out, '\r'); break;
    case '\\': g_string_append_c (out, '\\'); break;
    case 'x': {
      g_assert_true (g_ascii_isxdigit (p[1]) && g_ascii_isxdigit (p[2]));
      g_string_append_c (out, (char) (g_ascii_xdigit_value (p[1]) * 16 + g_ascii_xdigit_value (p[2])));
      p += 2;
      break;
    }
    default:
      g_error ("bad escape \\%c in a golden", *p);
    }
  }
  *len = out->len;
  return g_string_free (out, FALSE);
}

static gint32 *
parse_ids (const char *s, gsize *n)
{
  g_auto (GStrv) parts = g_strsplit (s, " ", -1);
  gint32 *ids = g_new (gint32, g_strv_length (parts) + 1);
  *n = 0;
  for (guint i = 0; parts[i]; i++) {
    if (parts[i][0] == 0)
      continue;
    char *end;
    ids[(*n)++] = (gint32) g_ascii_strtoll (parts[i], &end, 10);
    g_assert_true (*end == 0);
  }
  return ids;
}

/* Lines "TEXT<TAB>IDS" (ids_first FALSE) or "IDS<TAB>TEXT"; a first line whose ids are no numbers is a
 * header. */
static GPtrArray *
load_goldens (const char *path, gboolean ids_first)
{
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  if (!g_file_get_contents (path, &contents, NULL, &error))
    g_error ("%s (the shared data folder is expected beside the source tree)", error->message);
  g_auto (GStrv) lines = g_strsplit (contents, "\n", -1);
  GPtrArray *out = g_ptr_array_new_with_free_func (golden_free);
  for (guint i = 0; lines[i]; i++) {
    if (lines[i][0] == 0 && lines[i + 1] == NULL)
      continue;
    char *tab = strchr (lines[i], '\t');
    g_assert_nonnull (tab);
    *tab = 0;
    if (i == 0 && !g_ascii_isdigit ((ids_first ? lines[i] : tab + 1)[0]))
      continue;
    Golden *g = g_new0 (Golden, 1);
    g->line = i + 1;
    g->text = unescape (ids_first ? tab + 1 : lines[i], &g->len);
    g->ids = parse_ids (ids_first ? lines[i] : tab + 1, &g->n);
    g_ptr_array_add (out, g);
  }
  g_assert_cmpuint (out->len, >, 0);
  return out;
}

static char *
ids_str (const gint32 *ids, gsize n)
{
  GString *s = g_string_new (NULL);
  for (gsize i = 0; i < n; i++)
    g_string_append_printf (s, "%s%d", i ? " " : "", ids[i]);
  return g_string_free (s, FALSE);
}

static OlTokenizer *
load (const char *path)
{
  g_autoptr (GError) error = NULL;
  OlTokenizer *tok = ol_tokenizer_new_from_file (path, &error);
  g_assert_no_error (error);
  return tok;
}

/* Valid UTF-8, NUL bytes allowed. */
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

static void
check_encode_goldens (const OlTokenizer *tok, const char *path)
{
  g_autoptr (GPtrArray) goldens = load_goldens (path, FALSE);
  guint failures = 0;
  for (guint i = 0; i < goldens->len; i++) {
    Golden *g = goldens->pdata[i];
    gsize n;
    g_autofree gint32 *ids = ol_tokenizer_encode (tok, g->text, g->len, TRUE, FALSE, &n);
    if (n != g->n || memcmp (ids, g->ids, n * sizeof (gint32)) != 0) {
      g_autofree char *got = ids_str (ids, n), *want = ids_str (g->ids, g->n);
      g_test_message ("%s:%u: got %s, want %s", path, g->line, got, want);
      failures++;
    }
  }
  g_test_message ("%s: %u lines", path, goldens->len);
  g_assert_cmpuint (failures, ==, 0);
}

/* Pushing ids one at a time gives valid UTF-8 chunks that add up to the whole decode. */
static void
check_stream (OlDetokenizer *det, const OlTokenizer *tok, const gint32 *ids, gsize n)
{
  gsize want_len;
  g_autofree char *want = ol_tokenizer_decode (tok, ids, n, &want_len);
  g_assert_true (valid_utf8 (want, want_len));
  GString *got = g_string_new (NULL);
  for (gsize i = 0; i <= n; i++) {
    gsize len;
    g_autofree char *chunk = i < n ? ol_detokenizer_push (det, ids[i], &len)
                                   : ol_detokenizer_flush (det, &len);
    g_assert_true (valid_utf8 (chunk, len));
    g_string_append_len (got, chunk, len);
  }
  if (got->len != want_len || memcmp (got->str, want, want_len) != 0) {
    g_autofree char *s = ids_str (ids, n);
    g_error ("streaming decode of %s: \"%s\", whole decode: \"%s\"", s, got->str, want);
  }
  g_string_free (got, TRUE);
}

static void
check_decode_goldens (const OlTokenizer *tok, const char *path)
{
  g_autoptr (GPtrArray) goldens = load_goldens (path, TRUE);
  OlDetokenizer *det = ol_detokenizer_new (tok);
  guint failures = 0;
  for (guint i = 0; i < goldens->len; i++) {
    Golden *g = goldens->pdata[i];
    gsize len;
    g_autofree char *text = ol_tokenizer_decode (tok, g->ids, g->n, &len);
    if (len != g->len || memcmp (text, g->text, len) != 0) {
      g_test_message ("%s:%u: got \"%s\", want \"%s\"", path, g->line, text, g->text);
      failures++;
    }
    check_stream (det, tok, g->ids, g->n);
  }
  ol_detokenizer_free (det);
  g_test_message ("%s: %u lines", path, goldens->len);
  g_assert_cmpuint (failures, ==, 0);
}

static void
test_shared_golden (void)
{
  check_encode_goldens (llama, OL_SHARED_DATA "/tokenizer-golden.tsv");
}

static void
test_llama_goldens (void)
{
  check_encode_goldens (llama, OL_TEST_DATA "/tokenizer-llama-encode.tsv");
  check_decode_goldens (llama, OL_TEST_DATA "/tokenizer-llama-decode.tsv");
}

static void
test_tiny_goldens (void)
{
  OlTokenizer *tok = load (TINY_MODEL);
  check_encode_goldens (tok, OL_TEST_DATA "/tokenizer-tiny-encode.tsv");
  check_decode_goldens (tok, OL_TEST_DATA "/tokenizer-tiny-decode.tsv");
  ol_tokenizer_set_normalizer (tok, FALSE, FALSE);
  check_encode_goldens (tok, OL_TEST_DATA "/tokenizer-tiny-raw-encode.tsv");
  check_decode_goldens (tok, OL_TEST_DATA "/tokenizer-tiny-raw-decode.tsv");
  ol_tokenizer_free (tok);
}

/* Decoding the encode goldens: every id sequence a real text produces, streamed too. */
static void
test_roundtrip_goldens (void)
{
  g_autoptr (GPtrArray) goldens = load_goldens (OL_TEST_DATA "/tokenizer-llama-encode.tsv", FALSE);
  OlDetokenizer *det = ol_detokenizer_new (llama);
  for (guint i = 0; i < goldens->len; i++) {
    Golden *g = goldens->pdata[i];
    check_stream (det, llama, g->ids, g->n);
    gsize len;
    g_autofree char *text = ol_tokenizer_decode (llama, g->ids, g->n, &len);
    if (valid_utf8 (g->text, g->len) && strstr (g->text, "\xe2\x96\x81") == NULL) {
      g_assert_cmpmem (text, len, g->text, g->len);
    }
  }
  ol_detokenizer_free (det);
}

static void
test_accessors (void)
{
  g_assert_cmpuint (ol_tokenizer_n_vocab (llama), ==, 32000);
  g_assert_cmpint (ol_tokenizer_unk (llama), ==, 0);
  g_assert_cmpint (ol_tokenizer_bos (llama), ==, 1);
  g_assert_cmpint (ol_tokenizer_eos (llama), ==, 2);
  g_assert_cmpstr (ol_tokenizer_piece (llama, 1), ==, "<s>");
  g_assert_cmpstr (ol_tokenizer_piece (llama, 3), ==, "<0x00>");
  g_assert_cmpstr (ol_tokenizer_piece (llama, 29871), ==, "\xe2\x96\x81");
  g_assert_null (ol_tokenizer_piece (llama, -1));
  g_assert_null (ol_tokenizer_piece (llama, 32000));
  g_assert_cmpint (ol_tokenizer_find_piece (llama, "\xe2\x96\x81" "Hello"), ==, 15043);
  g_assert_cmpint (ol_tokenizer_find_piece (llama, "</s>"), ==, 2);
  g_assert_cmpint (ol_tokenizer_find_piece (llama, "no such piece"), ==, -1);
  g_assert_cmpint (ol_tokenizer_piece_type (llama, 0), ==, OL_PIECE_UNKNOWN);
  g_assert_cmpint (ol_tokenizer_piece_type (llama, 2), ==, OL_PIECE_CONTROL);
  g_assert_cmpint (ol_tokenizer_piece_type (llama, 258), ==, OL_PIECE_BYTE);
  g_assert_cmpint (ol_tokenizer_piece_type (llama, 259), ==, OL_PIECE_NORMAL);
  g_assert_cmpint (ol_tokenizer_piece_type (llama, 99999), ==, OL_PIECE_UNKNOWN);
  g_assert_cmpfloat (ol_tokenizer_piece_score (llama, 260), ==, -1.0f);          /* "▁t" */
  g_assert_cmpfloat (ol_tokenizer_piece_score (llama, 15043), ==, -14784.0f);    /* "▁Hello" */
  g_assert_cmpfloat (ol_tokenizer_piece_score (llama, -3), ==, 0);

  /* BOS/EOS flags, and the empty text */
  gsize n;
  g_autofree gint32 *a = ol_tokenizer_encode (llama, "", 0, TRUE, TRUE, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_true (a[0] == 1 && a[1] == 2);
  g_autofree gint32 *b = ol_tokenizer_encode (llama, "", -1, FALSE, FALSE, &n);
  g_assert_nonnull (b);
  g_assert_cmpuint (n, ==, 0);
  g_autofree gint32 *c = ol_tokenizer_encode (llama, "Hello world", -1, FALSE, TRUE, &n);
  g_assert_cmpuint (n, ==, 3);
  g_assert_true (c[0] == 15043 && c[1] == 3186 && c[2] == 2);
}

/* sentencepiece refuses ids outside the vocabulary; here they read as the unknown piece. */
static void
test_out_of_range (void)
{
  const gint32 ids[] = { -1, 15043, 32000, G_MAXINT32, G_MININT32 };
  gsize len;
  g_autofree char *text = ol_tokenizer_decode (llama, ids, G_N_ELEMENTS (ids), &len);
  g_assert_cmpstr (text, ==, " \xe2\x81\x87  Hello \xe2\x81\x87  \xe2\x81\x87  \xe2\x81\x87 ");
  g_autofree char *none = ol_tokenizer_decode (llama, NULL, 0, &len);
  g_assert_cmpstr (none, ==, "");
  OlDetokenizer *det = ol_detokenizer_new (llama);
  check_stream (det, llama, ids, G_N_ELEMENTS (ids));
  ol_detokenizer_free (det);
}

/* A held-back UTF-8 prefix comes out as soon as its character completes, and the flush starts over. */
static void
test_stream_holdback (void)
{
  OlDetokenizer *det = ol_detokenizer_new (llama);
  /* "▁" then 日 as bytes E6 97 A5, then "▁is" */
  const gint32 ids[] = { 29871, 3 + 0xe6, 3 + 0x97, 3 + 0xa5, 338 };
  const char *want[] = { "", "", "", "\xe6\x97\xa5", " is" };
  for (guint i = 0; i < G_N_ELEMENTS (ids); i++) {
    g_autofree char *s = ol_detokenizer_push (det, ids[i], NULL);
    g_assert_cmpstr (s, ==, want[i]);
  }
  g_autofree char *end = ol_detokenizer_flush (det, NULL);
  g_assert_cmpstr (end, ==, "");
  /* an unfinished character at the end becomes U+FFFD per byte; the next sequence drops its dummy prefix */
  g_autofree char *a = ol_detokenizer_push (det, 3 + 0xe6, NULL);
  g_autofree char *b = ol_detokenizer_push (det, 3 + 0x97, NULL);
  g_autofree char *c = ol_detokenizer_flush (det, NULL);
  g_assert_cmpstr (a, ==, "");
  g_assert_cmpstr (b, ==, "");
  g_assert_cmpstr (c, ==, "\xef\xbf\xbd\xef\xbf\xbd");
  g_autofree char *d = ol_detokenizer_push (det, 15043, NULL);
  g_assert_cmpstr (d, ==, "Hello");
  /* a byte that cannot start a character is replaced at once */
  g_autofree char *e = ol_detokenizer_push (det, 3 + 0xe6, NULL);
  g_autofree char *f = ol_detokenizer_push (det, 3 + 0x41, NULL);
  g_assert_cmpstr (e, ==, "");
  g_assert_cmpstr (f, ==, "\xef\xbf\xbd" "A");
  ol_detokenizer_free (det);
}

/* The vocabulary as GGUF stores it gives the same tokenizer as the tokenizer.model file. */
static void
test_from_vocab (void)
{
  gsize n = ol_tokenizer_n_vocab (llama);
  const char **pieces = g_new (const char *, n);
  float *scores = g_new (float, n);
  gint32 *types = g_new (gint32, n);
  for (gsize i = 0; i < n; i++) {
    pieces[i] = ol_tokenizer_piece (llama, (gint32) i);
    scores[i] = ol_tokenizer_piece_score (llama, (gint32) i);
    types[i] = ol_tokenizer_piece_type (llama, (gint32) i);
  }
  g_autoptr (GError) error = NULL;
  OlTokenizer *tok = ol_tokenizer_new_from_vocab (pieces, scores, types, n, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ol_tokenizer_bos (tok), ==, 1);
  g_assert_cmpint (ol_tokenizer_eos (tok), ==, 2);
  check_encode_goldens (tok, OL_SHARED_DATA "/tokenizer-golden.tsv");
  check_encode_goldens (tok, OL_TEST_DATA "/tokenizer-llama-encode.tsv");
  check_decode_goldens (tok, OL_TEST_DATA "/tokenizer-llama-decode.tsv");

  g_assert_true (ol_tokenizer_set_special_ids (tok, 2, -1, &error));
  gsize m;
  g_autofree gint32 *ids = ol_tokenizer_encode (tok, "Hello", -1, TRUE, TRUE, &m);
  g_assert_cmpuint (m, ==, 2);
  g_assert_true (ids[0] == 2 && ids[1] == 15043);
  g_assert_false (ol_tokenizer_set_special_ids (tok, 1, 32000, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE);
  g_assert_cmpint (ol_tokenizer_bos (tok), ==, 2);
  ol_tokenizer_free (tok);
  g_free (pieces);
  g_free (scores);
  g_free (types);
}

static void
expect_vocab_error (const char *const *pieces, const gint32 *types, gsize n, const char *fragment)
{
  float scores[300] = { 0 };
  g_assert_cmpuint (n, <=, G_N_ELEMENTS (scores));
  g_autoptr (GError) error = NULL;
  OlTokenizer *tok = ol_tokenizer_new_from_vocab (pieces, scores, types, n, &error);
  g_assert_null (tok);
  g_assert_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE);
  if (strstr (error->message, fragment) == NULL)
    g_error ("\"%s\" does not mention \"%s\"", error->message, fragment);
}

static void
test_vocab_errors (void)
{
  const char *ok[] = { "<unk>", "<s>", "</s>", "a", "b" };
  const gint32 ok_types[] = { 2, 3, 3, 1, 1 };
  expect_vocab_error (ok, ok_types, 0, "empty");
  const char *empty[] = { "<unk>", "" };
  expect_vocab_error (empty, ok_types, 2, "piece 1 is empty");
  const char *dup[] = { "<unk>", "<s>", "</s>", "a", "a" };
  expect_vocab_error (dup, ok_types, 5, "piece 4 repeats piece 3");
  const gint32 bad_type[] = { 2, 3, 3, 1, 7 };
  expect_vocab_error (ok, bad_type, 5, "invalid type 7");
  const gint32 zero_type[] = { 2, 3, 3, 0, 1 };
  expect_vocab_error (ok, zero_type, 5, "invalid type 0");
  const gint32 no_unk[] = { 1, 3, 3, 1, 1 };
  expect_vocab_error (ok, no_unk, 5, "no unknown piece");
  const gint32 two_unk[] = { 2, 3, 3, 2, 1 };
  expect_vocab_error (ok, two_unk, 5, "both the unknown piece");
  const char *bytes[] = { "<unk>", "<0x41>", "<0xzz>" };
  const gint32 byte_types[] = { 2, 6, 6 };
  expect_vocab_error (bytes, byte_types, 2, "<0x00> is missing");
  expect_vocab_error (bytes, byte_types, 3, "not spelled <0xXX>");

  /* a valid little vocabulary: merges by score, runs of unknown characters become one unknown id
   * (ids and text as sentencepiece 0.1.97 gives them for this vocabulary) */
  const char *v[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "ab", "\xe2\x96\x81" "ab" };
  const gint32 vt[] = { 2, 3, 3, 1, 1, 1, 1, 5 };
  const float vs[] = { 0, 0, 0, -1, -2, -2, -3, -4 };
  g_autoptr (GError) error = NULL;
  OlTokenizer *tok = ol_tokenizer_new_from_vocab (v, vs, vt, G_N_ELEMENTS (v), &error);
  g_assert_no_error (error);
  gsize n;
  /* "▁ab" is UNUSED: merged, then split back into "▁" "ab" */
  g_autofree gint32 *ids = ol_tokenizer_encode (tok, "ab xyc", -1, TRUE, FALSE, &n);
  g_autofree char *s = ids_str (ids, n);
  g_assert_cmpstr (s, ==, "1 3 6 3 0");
  g_autofree char *text = ol_tokenizer_decode (tok, ids, n, NULL);
  g_assert_cmpstr (text, ==, "ab  \xe2\x81\x87 ");
  ol_tokenizer_free (tok);
}

/* ---- vocabularies in GGUF files ---- */

typedef struct {
  const char *key;   /* NULL: the converter's keys as they are */
  OlGgufType type;   /* OL_GGUF_TYPE_ARRAY: the key is left out */
  gint64 value;
  const char *str;
} GgufTweak;

static gboolean
keeps (const GgufTweak *tweak, const char *key)
{
  return tweak->key == NULL || tweak->type != OL_GGUF_TYPE_ARRAY || strcmp (tweak->key, key) != 0;
}

/* A GGUF file holding LLaMA's vocabulary under the keys onellm-convert.py writes, with one key changed
 * or left out, read back by ol_tokenizer_new_from_gguf. */
static OlTokenizer *
tokenizer_from_gguf (const char *dir, const GgufTweak *tweak, GError **error)
{
  gsize n = ol_tokenizer_n_vocab (llama);
  g_autofree const char **pieces = g_new (const char *, n);
  g_autofree float *scores = g_new (float, n);
  g_autofree gint32 *types = g_new (gint32, n);
  for (gsize i = 0; i < n; i++) {
    pieces[i] = ol_tokenizer_piece (llama, (gint32) i);
    scores[i] = ol_tokenizer_piece_score (llama, (gint32) i);
    types[i] = ol_tokenizer_piece_type (llama, (gint32) i);
  }
  const char *u32_keys[] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                             "tokenizer.ggml.unknown_token_id" };
  const guint32 u32_values[] = { 1, 2, 0 };
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  ol_gguf_writer_set_string (w, "tokenizer.ggml.model", "llama");
  if (keeps (tweak, "tokenizer.ggml.tokens"))
    ol_gguf_writer_set_string_array (w, "tokenizer.ggml.tokens", pieces, n);
  ol_gguf_writer_set_array (w, "tokenizer.ggml.scores", OL_GGUF_TYPE_FLOAT32, scores, n);
  ol_gguf_writer_set_array (w, "tokenizer.ggml.token_type", OL_GGUF_TYPE_INT32, types, n);
  for (guint i = 0; i < G_N_ELEMENTS (u32_keys); i++)
    if (keeps (tweak, u32_keys[i]))
      ol_gguf_writer_set_u32 (w, u32_keys[i], u32_values[i]);
  ol_gguf_writer_set_bool (w, "tokenizer.ggml.add_bos_token", TRUE);
  ol_gguf_writer_set_bool (w, "tokenizer.ggml.add_eos_token", FALSE);
  if (keeps (tweak, "tokenizer.ggml.add_space_prefix"))
    ol_gguf_writer_set_bool (w, "tokenizer.ggml.add_space_prefix", TRUE);
  if (tweak->key != NULL) {
    switch (tweak->type) {
    case OL_GGUF_TYPE_UINT32: ol_gguf_writer_set_u32 (w, tweak->key, (guint32) tweak->value); break;
    case OL_GGUF_TYPE_INT32: ol_gguf_writer_set_i32 (w, tweak->key, (gint32) tweak->value); break;
    case OL_GGUF_TYPE_BOOL: ol_gguf_writer_set_bool (w, tweak->key, (gboolean) tweak->value); break;
    case OL_GGUF_TYPE_STRING: ol_gguf_writer_set_string (w, tweak->key, tweak->str); break;
    case OL_GGUF_TYPE_FLOAT32:
      ol_gguf_writer_set_array (w, tweak->key, tweak->type, scores, tweak->value);
      break;
    case OL_GGUF_TYPE_ARRAY: break;
    default: g_assert_not_reached ();
    }
  }
  g_autofree char *path = g_build_filename (dir, "vocab.gguf", NULL);
  g_autoptr (GError) write_error = NULL;
  g_assert_true (ol_gguf_writer_write (w, path, &write_error));
  g_assert_no_error (write_error);
  g_autoptr (OlGguf) gguf = ol_gguf_open (path, &write_error);
  g_assert_no_error (write_error);
  return ol_tokenizer_new_from_gguf (gguf, error);
}

static void
test_from_gguf (void)
{
  g_autofree char *dir = g_dir_make_tmp ("test-tokenizer-XXXXXX", NULL);
  g_assert_nonnull (dir);
  g_autoptr (GError) error = NULL;

  const GgufTweak as_written = { NULL, 0, 0, NULL };
  OlTokenizer *tok = tokenizer_from_gguf (dir, &as_written, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ol_tokenizer_n_vocab (tok), ==, 32000);
  g_assert_cmpint (ol_tokenizer_bos (tok), ==, 1);
  g_assert_cmpint (ol_tokenizer_eos (tok), ==, 2);
  check_encode_goldens (tok, OL_SHARED_DATA "/tokenizer-golden.tsv");
  check_decode_goldens (tok, OL_TEST_DATA "/tokenizer-llama-decode.tsv");
  ol_tokenizer_free (tok);

  /* optional keys: absent ones take LLaMA's values, present ones are obeyed */
  const GgufTweak no_ids = { "tokenizer.ggml.bos_token_id", OL_GGUF_TYPE_ARRAY, 0, NULL };
  tok = tokenizer_from_gguf (dir, &no_ids, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ol_tokenizer_bos (tok), ==, 1);
  ol_tokenizer_free (tok);
  const GgufTweak eos = { "tokenizer.ggml.eos_token_id", OL_GGUF_TYPE_UINT32, 13, NULL };
  tok = tokenizer_from_gguf (dir, &eos, &error);
  g_assert_no_error (error);
  g_assert_cmpint (ol_tokenizer_eos (tok), ==, 13);
  ol_tokenizer_free (tok);
  const GgufTweak no_prefix = { "tokenizer.ggml.add_space_prefix", OL_GGUF_TYPE_BOOL, FALSE, NULL };
  const GgufTweak collapse = { "tokenizer.ggml.remove_extra_whitespaces", OL_GGUF_TYPE_BOOL, TRUE, NULL };
  const GgufTweak default_prefix = { "tokenizer.ggml.add_space_prefix", OL_GGUF_TYPE_ARRAY, 0, NULL };
  const struct { const GgufTweak *tweak; const char *ids; } normalizers[] = {
    { &as_written, "1 15043 29871 3186" }, { &no_prefix, "1 10994 29871 3186" },
    { &collapse, "1 15043 3186" }, { &default_prefix, "1 15043 29871 3186" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (normalizers); i++) {
    tok = tokenizer_from_gguf (dir, normalizers[i].tweak, &error);
    g_assert_no_error (error);
    gsize n;
    g_autofree gint32 *ids = ol_tokenizer_encode (tok, "Hello  world", -1, TRUE, FALSE, &n);
    g_autofree char *s = ids_str (ids, n);
    g_assert_cmpstr (s, ==, normalizers[i].ids);
    ol_tokenizer_free (tok);
  }

  const struct { GgufTweak tweak; gint code; const char *fragment; } bad[] = {
    { { "tokenizer.ggml.model", OL_GGUF_TYPE_STRING, 0, "gpt2" }, OL_ERROR_UNSUPPORTED, "'gpt2'" },
    { { "tokenizer.ggml.tokens", OL_GGUF_TYPE_ARRAY, 0, NULL }, OL_ERROR_CORRUPT_FILE,
      "missing key 'tokenizer.ggml.tokens'" },
    { { "tokenizer.ggml.scores", OL_GGUF_TYPE_FLOAT32, 31999, NULL }, OL_ERROR_CORRUPT_FILE,
      "differ in length" },
    { { "tokenizer.ggml.bos_token_id", OL_GGUF_TYPE_UINT32, 32000, NULL }, OL_ERROR_CORRUPT_FILE,
      "bos_token_id 32000 is outside" },
    { { "tokenizer.ggml.eos_token_id", OL_GGUF_TYPE_INT32, 2, NULL }, OL_ERROR_CORRUPT_FILE, "eos_token_id" },
    { { "tokenizer.ggml.unknown_token_id", OL_GGUF_TYPE_UINT32, 3, NULL }, OL_ERROR_CORRUPT_FILE,
      "the unknown piece is 0" },
    { { "tokenizer.ggml.add_space_prefix", OL_GGUF_TYPE_UINT32, 1, NULL }, OL_ERROR_CORRUPT_FILE,
      "add_space_prefix" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_clear_error (&error);
    g_assert_null (tokenizer_from_gguf (dir, &bad[i].tweak, &error));
    g_assert_error (error, OL_ERROR, bad[i].code);
    if (strstr (error->message, bad[i].fragment) == NULL)
      g_error ("\"%s\" does not mention \"%s\"", error->message, bad[i].fragment);
  }
  g_autofree char *path = g_build_filename (dir, "vocab.gguf", NULL);
  g_unlink (path);
  g_rmdir (dir);
}

/* ---- corrupt files ---- */

static void
put_varint (GByteArray *b, guint64 v)
{
  do {
    guint8 x = (v & 0x7f) | (v > 0x7f ? 0x80 : 0);
    g_byte_array_append (b, &x, 1);
    v >>= 7;
  } while (v);
}

static void
put_bytes (GByteArray *b, guint field, const void *data, gsize len)
{
  put_varint (b, field << 3 | 2);
  put_varint (b, len);
  g_byte_array_append (b, data, len);
}

static void
put_piece (GByteArray *b, const char *piece, guint type)
{
  g_autoptr (GByteArray) m = g_byte_array_new ();
  put_bytes (m, 1, piece, strlen (piece));
  const guint8 score[] = { 0x15, 0, 0, 0x80, 0xbf };   /* field 2, fixed32 -1.0f */
  g_byte_array_append (m, score, sizeof score);
  put_varint (m, 3 << 3);
  put_varint (m, type);
  put_bytes (b, 1, m->data, m->len);
}

/* A minimal model: 3 special pieces and "a", trainer_spec with the given model type and extra bytes,
 * normalizer_spec with the given bytes. */
static GByteArray *
minimal_model (guint model_type, const guint8 *trainer_extra, gsize trainer_len, const guint8 *norm,
               gsize norm_len)
{
  GByteArray *b = g_byte_array_new ();
  put_piece (b, "<unk>", 2);
  put_piece (b, "<s>", 3);
  put_piece (b, "</s>", 3);
  put_piece (b, "a", 1);
  g_autoptr (GByteArray) t = g_byte_array_new ();
  put_varint (t, 3 << 3);
  put_varint (t, model_type);
  g_byte_array_append (t, trainer_extra, trainer_len);
  put_bytes (b, 2, t->data, t->len);
  put_bytes (b, 3, norm, norm_len);
  return b;
}

static OlTokenizer *
load_bytes (const guint8 *data, gsize len, GError **error)
{
  return ol_tokenizer_new_from_data (data, len, "t.model", error);
}

static void
expect_file_error (const guint8 *data, gsize len, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  OlTokenizer *tok = load_bytes (data, len, &error);
  g_assert_null (tok);
  g_assert_error (error, OL_ERROR, code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("\"%s\" does not mention \"%s\"", error->message, fragment);
}

static void
test_corrupt_files (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (ol_tokenizer_new_from_file (OL_TEST_DATA "/no-such.model", &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_IO);
  g_clear_error (&error);
  g_assert_null (ol_tokenizer_new_from_file (OL_TEST_DATA "/tokenizer-tiny-encode.tsv", &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE);
  g_assert_nonnull (strstr (error->message, "tokenizer-tiny-encode.tsv: not a valid SentencePiece model"));
  g_clear_error (&error);

  const guint8 identity[] = { 0x18, 1, 0x20, 0 };   /* add_dummy_prefix 1, remove_extra_whitespaces 0 */
  g_autoptr (GByteArray) good = minimal_model (2, NULL, 0, identity, sizeof identity);
  OlTokenizer *tok = load_bytes (good->data, good->len, &error);
  g_assert_no_error (error);
  gsize n;
  g_autofree gint32 *ids = ol_tokenizer_encode (tok, "a  b", -1, TRUE, FALSE, &n);
  g_autofree char *s = ids_str (ids, n);
  g_assert_cmpstr (s, ==, "1 0 3 0");   /* ▁ unknown, a, then "▁▁b" one unknown run */
  ol_tokenizer_free (tok);

  g_autoptr (GByteArray) unigram = minimal_model (1, NULL, 0, identity, sizeof identity);
  expect_file_error (unigram->data, unigram->len, OL_ERROR_UNSUPPORTED, "unigram");
  const guint8 rules[] = { 0x12, 2, 'x', 'y' };
  g_autoptr (GByteArray) nfkc = minimal_model (2, NULL, 0, rules, sizeof rules);
  expect_file_error (nfkc->data, nfkc->len, OL_ERROR_UNSUPPORTED, "normalization rules");
  const guint8 no_escape[] = { 0x28, 0 };
  g_autoptr (GByteArray) raw_ws = minimal_model (2, NULL, 0, no_escape, sizeof no_escape);
  expect_file_error (raw_ws->data, raw_ws->len, OL_ERROR_UNSUPPORTED, "whitespace");

  g_autoptr (GByteArray) byte_piece = minimal_model (2, NULL, 0, identity, sizeof identity);
  put_piece (byte_piece, "<0x41>", 6);
  expect_file_error (byte_piece->data, byte_piece->len, OL_ERROR_CORRUPT_FILE, "byte fallback is off");
  const guint8 fallback[] = { 0x98, 0x02, 1 };   /* byte_fallback (35) = 1 */
  g_autoptr (GByteArray) few_bytes = minimal_model (2, fallback, sizeof fallback, identity, sizeof identity);
  put_piece (few_bytes, "<0x41>", 6);
  expect_file_error (few_bytes->data, few_bytes->len, OL_ERROR_CORRUPT_FILE, "<0x00> is missing");

  const guint8 bad_wire[] = { 0x4f };
  expect_file_error (bad_wire, sizeof bad_wire, OL_ERROR_CORRUPT_FILE, "unsupported wire type at byte 1");
  const guint8 wrong_wire[] = { 0x0d, 0, 0, 0, 0 };
  expect_file_error (wrong_wire, sizeof wrong_wire, OL_ERROR_CORRUPT_FILE, "unexpected wire type at byte 1");
  const guint8 long_field[] = { 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0 };
  expect_file_error (long_field, sizeof long_field, OL_ERROR_CORRUPT_FILE, "longer than its message");
  const guint8 long_varint[] = { 0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
  expect_file_error (long_varint, sizeof long_varint, OL_ERROR_CORRUPT_FILE, "varint longer");
  const guint8 truncated[] = { 0x50, 0xff };
  expect_file_error (truncated, sizeof truncated, OL_ERROR_CORRUPT_FILE, "truncated varint");
  const guint8 field0[] = { 0x02, 0 };
  expect_file_error (field0, sizeof field0, OL_ERROR_CORRUPT_FILE, "invalid field number");
  const guint8 score_as_varint[] = { 0x0a, 0x05, 0x0a, 0x01, 'a', 0x10, 0x01 };
  expect_file_error (score_as_varint, sizeof score_as_varint, OL_ERROR_CORRUPT_FILE, "unexpected wire type");
  g_autoptr (GByteArray) bad_type = minimal_model (2, NULL, 0, identity, sizeof identity);
  put_piece (bad_type, "z", 9);
  expect_file_error (bad_type->data, bad_type->len, OL_ERROR_CORRUPT_FILE, "piece 4 has the invalid type 9");
  expect_file_error (NULL, 0, OL_ERROR_CORRUPT_FILE, "no pieces");
  const guint8 gguf[] = { 'G', 'G', 'U', 'F', 3, 0, 0, 0 };
  expect_file_error (gguf, sizeof gguf, OL_ERROR_CORRUPT_FILE, "not a valid SentencePiece model");
}

static void
check_damaged (const guint8 *data, gsize len)
{
  g_autoptr (GError) error = NULL;
  OlTokenizer *tok = load_bytes (data, len, &error);
  if (tok == NULL) {
    g_assert_nonnull (error);
    g_assert_true (error->domain == OL_ERROR &&
                   (error->code == OL_ERROR_CORRUPT_FILE || error->code == OL_ERROR_UNSUPPORTED));
    return;
  }
  /* a damaged file that still parses must give a working tokenizer */
  gsize n;
  g_autofree gint32 *ids = ol_tokenizer_encode (tok, "Hello wörld 🎥!", -1, TRUE, TRUE, &n);
  for (gsize i = 0; i < n; i++)
    g_assert_true (ids[i] >= 0 && (gsize) ids[i] < ol_tokenizer_n_vocab (tok));
  g_free (ol_tokenizer_decode (tok, ids, n, NULL));
  ol_tokenizer_free (tok);
}

/* Every truncation of the small model, and random damage to both models: an error or a tokenizer. */
static void
test_damaged_files (void)
{
  GRand *rng = g_rand_new_with_seed (7);
  const char *paths[] = { TINY_MODEL, LLAMA_MODEL };
  for (guint f = 0; f < G_N_ELEMENTS (paths); f++) {
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (paths[f], &data, &len, NULL));
    if (f == 0) {
      for (gsize cut = 0; cut < len; cut++)
        check_damaged ((const guint8 *) data, cut);
    }
    g_autofree guint8 *copy = g_malloc (len);
    for (int round = 0; round < (f == 0 ? 300 : 40); round++) {
      memcpy (copy, data, len);
      int flips = g_rand_int_range (rng, 1, 8);
      for (int k = 0; k < flips; k++)
        copy[g_rand_int_range (rng, 0, (gint32) len)] ^= (guint8) g_rand_int_range (rng, 1, 256);
      check_damaged (copy, g_rand_boolean (rng) ? len : (gsize) g_rand_int_range (rng, 0, (gint32) len));
    }
  }
  g_rand_free (rng);
}

/* ---- fuzzing ---- */

/* What sentencepiece's normalizer and decoder make of arbitrary bytes: malformed UTF-8 becomes U+FFFD
 * per byte, U+2581 reads as a space. */
static GString *
expected_roundtrip (const char *s, gsize len)
{
  GString *out = g_string_new (NULL);
  for (gsize pos = 0; pos < len;) {
    const char *end;
    gsize rest = len - pos;
    gunichar c = s[pos] == 0 ? 0 : g_utf8_get_char_validated (s + pos, rest);
    if (c == (gunichar) -1 || c == (gunichar) -2) {
      g_string_append (out, "\xef\xbf\xbd");
      pos++;
      continue;
    }
    end = s[pos] == 0 ? s + pos + 1 : g_utf8_next_char (s + pos);
    if (c == 0x2581)
      g_string_append_c (out, ' ');
    else
      g_string_append_len (out, s + pos, end - (s + pos));
    pos = end - s;
  }
  return out;
}

static void
random_text (GRand *rng, GString *s)
{
  static const char *pieces[] = { " ", "  ", "\n", "\t", "a", "the", "ing", "\xe2\x96\x81", "\xc3\xa9",
                                  "\xe6\x97\xa5", "\xf0\x9f\x8e\xa5", "\xef\xbf\xbd", "###", "<s>", "0", "7",
                                  "\xe2\x80\x8d", "\xcc\x81", "\x00" };
  g_string_truncate (s, 0);
  int n = g_rand_int_range (rng, 0, 48);
  for (int i = 0; i < n; i++) {
    int kind = g_rand_int_range (rng, 0, 4);
    if (kind == 0) {
      char b = (char) g_rand_int_range (rng, 0, 256);
      g_string_append_c (s, b);
    } else if (kind == 1) {
      gunichar c = g_rand_int_range (rng, 1, 0x110000);
      if (g_unichar_validate (c))
        g_string_append_unichar (s, c);
    } else {
      const char *p = pieces[g_rand_int_range (rng, 0, G_N_ELEMENTS (pieces))];
      g_string_append_len (s, p, p[0] ? (gssize) strlen (p) : 1);
    }
  }
}

static void
test_fuzz_encode (void)
{
  GRand *rng = g_rand_new_with_seed (11);
  OlTokenizer *tiny = load (TINY_MODEL);
  GString *s = g_string_new (NULL);
  for (int round = 0; round < 4000; round++) {
    random_text (rng, s);
    gsize n;
    g_autofree gint32 *ids = ol_tokenizer_encode (llama, s->str, s->len, FALSE, FALSE, &n);
    for (gsize i = 0; i < n; i++)
      g_assert_true (ids[i] >= 0 && ids[i] < 32000);
    gsize len;
    g_autofree char *text = ol_tokenizer_decode (llama, ids, n, &len);
    g_autoptr (GString) want = expected_roundtrip (s->str, s->len);
    g_assert_cmpmem (text, len, want->str, want->len);

    g_autofree gint32 *tids = ol_tokenizer_encode (tiny, s->str, s->len, TRUE, TRUE, &n);
    for (gsize i = 0; i < n; i++)
      g_assert_true (tids[i] >= 0 && (gsize) tids[i] < ol_tokenizer_n_vocab (tiny));
    g_free (ol_tokenizer_decode (tiny, tids, n, NULL));
  }
  g_string_free (s, TRUE);
  ol_tokenizer_free (tiny);
  g_rand_free (rng);
}

static void
test_fuzz_decode (void)
{
  GRand *rng = g_rand_new_with_seed (13);
  OlDetokenizer *det = ol_detokenizer_new (llama);
  gint32 ids[40];
  for (int round = 0; round < 4000; round++) {
    gsize n = g_rand_int_range (rng, 0, G_N_ELEMENTS (ids));
    for (gsize i = 0; i < n; i++) {
      int kind = g_rand_int_range (rng, 0, 10);
      if (kind < 4)
        ids[i] = 3 + g_rand_int_range (rng, 0, 256);     /* byte pieces */
      else if (kind < 5)
        ids[i] = g_rand_int_range (rng, 0, 3);           /* unk, BOS, EOS */
      else if (kind < 6)
        ids[i] = g_rand_boolean (rng) ? g_rand_int_range (rng, -3, 0) : g_rand_int_range (rng, 32000, 32003);
      else
        ids[i] = g_rand_int_range (rng, 0, 32000);
    }
    check_stream (det, llama, ids, n);
  }
  ol_detokenizer_free (det);
  g_rand_free (rng);
}

/* n log n time: a text of ~2000 tokens, and a 256 KiB one that quadratic work would not finish. */
static void
test_speed (void)
{
  g_autoptr (GPtrArray) goldens = load_goldens (OL_TEST_DATA "/tokenizer-llama-encode.tsv", FALSE);
  GString *text = g_string_new (NULL);
  while (text->len < 8000) {
    Golden *g = goldens->pdata[text->len % goldens->len];
    g_string_append_len (text, g->text, g->len);
  }
  gsize n = 0;
  GTimer *timer = g_timer_new ();
  const int reps = 20;
  for (int i = 0; i < reps; i++)
    g_free (ol_tokenizer_encode (llama, text->str, text->len, TRUE, FALSE, &n));
  double per_100 = g_timer_elapsed (timer, NULL) / reps / n * 100 * 1e6;
  g_test_message ("encode: %" G_GSIZE_FORMAT " bytes -> %" G_GSIZE_FORMAT " tokens, %.1f us per 100 tokens",
                  text->len, n, per_100);

  GString *big = g_string_new (NULL);
  while (big->len < (1 << 18))
    g_string_append (big, "The quick brown fox jumps over the lazy dog 🎥 ");
  g_autofree char *word = g_strnfill (1 << 16, 'a');
  g_string_append (big, word);
  g_timer_start (timer);
  g_autofree gint32 *ids = ol_tokenizer_encode (llama, big->str, big->len, TRUE, FALSE, &n);
  g_test_message ("encode: %" G_GSIZE_FORMAT " bytes -> %" G_GSIZE_FORMAT " tokens in %.3f s", big->len, n,
                  g_timer_elapsed (timer, NULL));
  gsize len;
  g_autofree char *back = ol_tokenizer_decode (llama, ids, n, &len);
  g_assert_cmpmem (back, len, big->str, big->len);
  g_timer_destroy (timer);
  g_string_free (text, TRUE);
  g_string_free (big, TRUE);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  llama = load (LLAMA_MODEL);
  g_test_add_func ("/tokenizer/shared-golden", test_shared_golden);
  g_test_add_func ("/tokenizer/llama-goldens", test_llama_goldens);
  g_test_add_func ("/tokenizer/tiny-goldens", test_tiny_goldens);
  g_test_add_func ("/tokenizer/roundtrip-goldens", test_roundtrip_goldens);
  g_test_add_func ("/tokenizer/accessors", test_accessors);
  g_test_add_func ("/tokenizer/out-of-range", test_out_of_range);
  g_test_add_func ("/tokenizer/stream-holdback", test_stream_holdback);
  g_test_add_func ("/tokenizer/from-vocab", test_from_vocab);
  g_test_add_func ("/tokenizer/vocab-errors", test_vocab_errors);
  g_test_add_func ("/tokenizer/from-gguf", test_from_gguf);
  g_test_add_func ("/tokenizer/corrupt-files", test_corrupt_files);
  g_test_add_func ("/tokenizer/damaged-files", test_damaged_files);
  g_test_add_func ("/tokenizer/fuzz-encode", test_fuzz_encode);
  g_test_add_func ("/tokenizer/fuzz-decode", test_fuzz_decode);
  g_test_add_func ("/tokenizer/speed", test_speed);
  int r = g_test_run ();
  ol_tokenizer_free (llama);
  return r;
}
