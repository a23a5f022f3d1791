/* GGUF reader and writer: round trips of every value and tensor type, and clean errors for corrupt files. */
#include "support/ref.h"

#include <glib/gstdio.h>
#include <string.h>

/* ---- hand-built files, so that each field can be broken on purpose ---- */

static void
put_u32 (GByteArray *b, guint32 v)
{
  v = GUINT32_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 4);
}

static void
put_u64 (GByteArray *b, guint64 v)
{
  v = GUINT64_TO_LE (v);
  g_byte_array_append (b, (const guint8 *) &v, 8);
}

static void
put_str (GByteArray *b, const char *s)
{
  put_u64 (b, strlen (s));
  g_byte_array_append (b, (const guint8 *) s, strlen (s));
}

static void
put_header (GByteArray *b, guint64 n_tensors, guint64 n_kv)
{
  g_byte_array_append (b, (const guint8 *) "GGUF", 4);
  put_u32 (b, 3);
  put_u64 (b, n_tensors);
  put_u64 (b, n_kv);
}

static void
put_kv_u32 (GByteArray *b, const char *key, guint32 v)
{
  put_str (b, key);
  put_u32 (b, OL_GGUF_TYPE_UINT32);
  put_u32 (b, v);
}

static void
put_tensor_info (GByteArray *b, const char *name, guint n_dims, const guint64 *ne, guint32 type, guint64 offset)
{
  put_str (b, name);
  put_u32 (b, n_dims);
  for (guint i = 0; i < n_dims; i++)
    put_u64 (b, ne[i]);
  put_u32 (b, type);
  put_u64 (b, offset);
}

static void
pad (GByteArray *b, guint align)
{
  static const guint8 zero[64];
  g_byte_array_append (b, zero, (align - b->len % align) % align);
}

static void
put_f32_data (GByteArray *b, guint n, float base)
{
  for (guint i = 0; i < n; i++) {
    float f = base + i;
    g_byte_array_append (b, (const guint8 *) &f, 4);
  }
}

/* A valid file: 3 keys (u32, string, array of strings), tensors "a" f32[4,2] and "b" q8_0[32].
 * boundaries receives the offset at which each section ends, in order. */
static GByteArray *
valid_file (GArray *boundaries)
{
  GByteArray *b = g_byte_array_new ();
#define MARK() G_STMT_START { if (boundaries) { guint64 at = b->len; g_array_append_val (boundaries, at); } } G_STMT_END
  put_header (b, 2, 3);
  MARK ();
  put_kv_u32 (b, "test.count", 7);
  MARK ();
  put_str (b, "test.name");
  put_u32 (b, OL_GGUF_TYPE_STRING);
  put_str (b, "tiny");
  MARK ();
  put_str (b, "test.words");
  put_u32 (b, OL_GGUF_TYPE_ARRAY);
  put_u32 (b, OL_GGUF_TYPE_STRING);
  put_u64 (b, 2);
  put_str (b, "one");
  put_str (b, "two");
  MARK ();
  guint64 ne_a[2] = { 4, 2 }, ne_b[1] = { 32 };
  put_tensor_info (b, "a", 2, ne_a, OL_TYPE_F32, 0);
  MARK ();
  put_tensor_info (b, "b", 1, ne_b, OL_TYPE_Q8_0, 32);
  MARK ();
  pad (b, 32);
  MARK ();
  put_f32_data (b, 8, 1.0f);
  MARK ();
  pad (b, 32);
  guint8 q[34] = { 0 };
  for (guint i = 0; i < 34; i++)
    q[i] = i;
  g_byte_array_append (b, q, 34);
  MARK ();
  pad (b, 32);
#undef MARK
  return b;
}

static OlGguf *
open_array (GByteArray *b, GError **error)
{
  g_autoptr (GBytes) bytes = g_bytes_new (b->data, b->len);
  return ol_gguf_open_bytes (bytes, error);
}

/* The bytes must be rejected with this code and a message containing what. */
static void
expect_error (GByteArray *b, int code, const char *what)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) g = open_array (b, &error);
  if (g != NULL)
    g_error ("file accepted, expected an error containing '%s'", what);
  g_assert_error (error, OL_ERROR, code);
  if (strstr (error->message, what) == NULL)
    g_error ("message '%s' does not contain '%s'", error->message, what);
}

static void
test_valid_handmade (void)
{
  g_autoptr (GByteArray) b = valid_file (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) g = open_array (b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ol_gguf_n_keys (g), ==, 3);
  g_assert_cmpuint (ol_gguf_n_tensors (g), ==, 2);
  g_assert_cmpuint (ol_gguf_data_offset (g) % 32, ==, 0);
  const OlGgufTensor *a = ol_gguf_find_tensor (g, "a");
  g_assert_nonnull (a);
  g_assert_cmpint (a->ne[0], ==, 4);
  g_assert_cmpint (a->ne[1], ==, 2);
  g_assert_cmpint (a->ne[2], ==, 1);
  g_assert_cmpuint (a->n_bytes, ==, 32);
  g_assert_cmpfloat (((const float *) a->data)[7], ==, 8.0f);
  const OlGgufTensor *q = ol_gguf_find_tensor (g, "b");
  g_assert_cmpuint (q->n_bytes, ==, 34);
  g_assert_cmpuint (((const guint8 *) q->data)[33], ==, 33);
  g_assert_null (ol_gguf_find_tensor (g, "c"));
  const char *const *words;
  gsize n;
  g_assert_true (ol_gguf_get_string_array (g, "test.words", &words, &n, &error));
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (words[1], ==, "two");
}

/* Every prefix that cuts into a header, the metadata, the tensor infos or a tensor's data fails;
 * only cutting trailing padding after the last tensor leaves a valid file. */
static void
test_truncated_every_byte (void)
{
  g_autoptr (GArray) marks = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr (GByteArray) b = valid_file (marks);
  guint64 data_end = g_array_index (marks, guint64, marks->len - 1);
  for (guint len = 0; len <= b->len; len++) {
    g_autoptr (GBytes) bytes = g_bytes_new (b->data, len);
    g_autoptr (GError) error = NULL;
    g_autoptr (OlGguf) g = ol_gguf_open_bytes (bytes, &error);
    if (len >= data_end) {
      g_assert_no_error (error);
    } else {
      g_assert_null (g);
      g_assert_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE);
    }
  }
}

/* Cutting exactly at each section boundary names what is missing. */
static void
test_truncated_sections (void)
{
  g_autoptr (GArray) marks = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_autoptr (GByteArray) b = valid_file (marks);
  /* cut at: end of header and after key 0 (the key count no longer fits), after key 1, 2, after tensor info a,
   * after tensor info b (before the padding), after the padding, after a's data */
  const char *what[] = {
    "metadata count 3 is impossible", "metadata count 3 is impossible", "truncated in key 2 of 3",
    "truncated in name of tensor 0 of 2", "truncated in name of tensor 1 of 2",
    "data section at offset 224 starts past the end", "tensor 'a' data", "tensor 'b' data",
  };
  g_assert_cmpuint (marks->len, ==, G_N_ELEMENTS (what) + 1);
  for (guint i = 0; i < G_N_ELEMENTS (what); i++) {
    guint64 at = g_array_index (marks, guint64, i);
    g_autoptr (GByteArray) cut = g_byte_array_new ();
    g_byte_array_append (cut, b->data, at);
    expect_error (cut, OL_ERROR_CORRUPT_FILE, what[i]);
  }
  g_autoptr (GByteArray) header = g_byte_array_new ();
  g_byte_array_append (header, b->data, 10);
  expect_error (header, OL_ERROR_CORRUPT_FILE, "truncated in the header");
}

static void
test_bad_header (void)
{
  g_autoptr (GByteArray) b = valid_file (NULL);
  b->data[0] = 'X';
  expect_error (b, OL_ERROR_CORRUPT_FILE, "not a GGUF file");

  g_autoptr (GByteArray) empty = g_byte_array_new ();
  expect_error (empty, OL_ERROR_CORRUPT_FILE, "not a GGUF file");

  g_autoptr (GByteArray) v2 = valid_file (NULL);
  v2->data[4] = 2;
  expect_error (v2, OL_ERROR_UNSUPPORTED, "GGUF version 2");
  g_autoptr (GByteArray) v9 = valid_file (NULL);
  v9->data[4] = 9;
  expect_error (v9, OL_ERROR_CORRUPT_FILE, "unknown GGUF version 9");
  g_autoptr (GByteArray) be = valid_file (NULL);
  be->data[4] = 0;
  be->data[7] = 3;
  expect_error (be, OL_ERROR_UNSUPPORTED, "big-endian");
}

static void
test_huge_counts (void)
{
  g_autoptr (GByteArray) t = g_byte_array_new ();
  put_header (t, G_MAXUINT64 / 2, 0);
  expect_error (t, OL_ERROR_CORRUPT_FILE, "tensor count 9223372036854775807 is impossible");

  g_autoptr (GByteArray) k = g_byte_array_new ();
  put_header (k, 0, G_MAXUINT64);
  expect_error (k, OL_ERROR_CORRUPT_FILE, "metadata count 18446744073709551615 is impossible");

  /* counts that would fit the bound only if the file were larger */
  g_autoptr (GByteArray) k2 = g_byte_array_new ();
  put_header (k2, 0, 2);
  put_kv_u32 (k2, "x", 1);
  expect_error (k2, OL_ERROR_CORRUPT_FILE, "metadata count 2");
}

static void
test_huge_lengths (void)
{
  g_autoptr (GByteArray) key = g_byte_array_new ();
  put_header (key, 0, 1);
  put_u64 (key, G_MAXUINT64);
  put_u32 (key, OL_GGUF_TYPE_UINT8);
  put_u64 (key, 0);   /* enough bytes that the key count is plausible */
  expect_error (key, OL_ERROR_CORRUPT_FILE, "key 0 of 1 of 18446744073709551615 bytes");

  g_autoptr (GByteArray) str = g_byte_array_new ();
  put_header (str, 0, 1);
  put_str (str, "k");
  put_u32 (str, OL_GGUF_TYPE_STRING);
  put_u64 (str, G_MAXUINT64 - 3);
  expect_error (str, OL_ERROR_CORRUPT_FILE, "key 'k': string of 18446744073709551612 bytes runs past");

  const guint32 elems[] = { OL_GGUF_TYPE_UINT8, OL_GGUF_TYPE_FLOAT64, OL_GGUF_TYPE_STRING, OL_GGUF_TYPE_ARRAY };
  for (guint i = 0; i < G_N_ELEMENTS (elems); i++) {
    g_autoptr (GByteArray) arr = g_byte_array_new ();
    put_header (arr, 0, 1);
    put_str (arr, "k");
    put_u32 (arr, OL_GGUF_TYPE_ARRAY);
    put_u32 (arr, elems[i]);
    put_u64 (arr, G_MAXUINT64 / 4);
    put_u64 (arr, 0);
    expect_error (arr, OL_ERROR_CORRUPT_FILE, "key 'k': array of 4611686018427387903");
  }

  /* a string inside an array that runs past the end */
  g_autoptr (GByteArray) inner = g_byte_array_new ();
  put_header (inner, 0, 1);
  put_str (inner, "k");
  put_u32 (inner, OL_GGUF_TYPE_ARRAY);
  put_u32 (inner, OL_GGUF_TYPE_STRING);
  put_u64 (inner, 2);
  put_str (inner, "ok");
  put_u64 (inner, 1000);
  expect_error (inner, OL_ERROR_CORRUPT_FILE, "key 'k': element 1 of 2: string of 1000 bytes runs past");

  g_autoptr (GByteArray) name = g_byte_array_new ();
  put_header (name, 1, 0);
  put_u64 (name, 1u << 30);
  g_byte_array_append (name, (const guint8 *) "abcdefghijklmnopqrstuvwxyz", 26);
  expect_error (name, OL_ERROR_CORRUPT_FILE, "name of tensor 0 of 1 of 1073741824 bytes");
}

static void
test_bad_values (void)
{
  g_autoptr (GByteArray) t = g_byte_array_new ();
  put_header (t, 0, 1);
  put_str (t, "k");
  put_u32 (t, 13);
  put_u32 (t, 0);
  expect_error (t, OL_ERROR_CORRUPT_FILE, "key 'k': unknown value type 13");

  g_autoptr (GByteArray) e = g_byte_array_new ();
  put_header (e, 0, 1);
  put_str (e, "k");
  put_u32 (e, OL_GGUF_TYPE_ARRAY);
  put_u32 (e, 77);
  put_u64 (e, 0);
  expect_error (e, OL_ERROR_CORRUPT_FILE, "key 'k': array of unknown element type 77");

  g_autoptr (GByteArray) bo = g_byte_array_new ();
  put_header (bo, 0, 1);
  put_str (bo, "k");
  put_u32 (bo, OL_GGUF_TYPE_BOOL);
  g_byte_array_append (bo, (const guint8 *) "\x02", 1);
  expect_error (bo, OL_ERROR_CORRUPT_FILE, "bool value 2");

  g_autoptr (GByteArray) deep = g_byte_array_new ();
  put_header (deep, 0, 1);
  put_str (deep, "k");
  put_u32 (deep, OL_GGUF_TYPE_ARRAY);
  for (int i = 0; i < 20; i++) {
    put_u32 (deep, OL_GGUF_TYPE_ARRAY);
    put_u64 (deep, 1);
  }
  expect_error (deep, OL_ERROR_CORRUPT_FILE, "nested deeper than 8");

  g_autoptr (GByteArray) dup = g_byte_array_new ();
  put_header (dup, 0, 2);
  put_kv_u32 (dup, "same", 1);
  put_kv_u32 (dup, "same", 2);
  expect_error (dup, OL_ERROR_CORRUPT_FILE, "duplicate key 'same'");

  g_autoptr (GByteArray) empty = g_byte_array_new ();
  put_header (empty, 0, 1);
  put_kv_u32 (empty, "", 1);
  expect_error (empty, OL_ERROR_CORRUPT_FILE, "empty key 0 of 1");

  g_autoptr (GByteArray) nul = g_byte_array_new ();
  put_header (nul, 0, 1);
  put_u64 (nul, 3);
  g_byte_array_append (nul, (const guint8 *) "a\0b", 3);
  put_u32 (nul, OL_GGUF_TYPE_UINT8);
  g_byte_array_append (nul, (const guint8 *) "0", 1);
  expect_error (nul, OL_ERROR_CORRUPT_FILE, "contains a NUL byte");

  g_autoptr (GByteArray) al = g_byte_array_new ();
  put_header (al, 0, 1);
  put_kv_u32 (al, "general.alignment", 48);
  expect_error (al, OL_ERROR_CORRUPT_FILE, "general.alignment 48 is not a power of two");

  g_autoptr (GByteArray) al2 = g_byte_array_new ();
  put_header (al2, 0, 1);
  put_str (al2, "general.alignment");
  put_u32 (al2, OL_GGUF_TYPE_INT32);
  put_u32 (al2, 32);
  expect_error (al2, OL_ERROR_CORRUPT_FILE, "key 'general.alignment' is i32, expected u32");
}

/* One tensor with the given info, then 64 bytes of data (one tensor of up to 64 bytes fits). */
static GByteArray *
one_tensor (const char *name, guint n_dims, const guint64 *ne, guint32 type, guint64 offset)
{
  GByteArray *b = g_byte_array_new ();
  put_header (b, 1, 0);
  put_tensor_info (b, name, n_dims, ne, type, offset);
  pad (b, 32);
  put_f32_data (b, 16, 0.0f);
  return b;
}

static void
test_bad_tensors (void)
{
  guint64 ne4[1] = { 4 };
  g_autoptr (GByteArray) ok = one_tensor ("t", 1, ne4, OL_TYPE_F32, 32);
  g_autoptr (GError) error = NULL;
  g_autoptr (OlGguf) g = open_array (ok, &error);
  g_assert_no_error (error);

  g_autoptr (GByteArray) mis = one_tensor ("t", 1, ne4, OL_TYPE_F32, 4);
  expect_error (mis, OL_ERROR_CORRUPT_FILE, "tensor 't' data offset 4 is not a multiple of the alignment 32");
  g_autoptr (GByteArray) out = one_tensor ("t", 1, ne4, OL_TYPE_F32, 64);
  expect_error (out, OL_ERROR_CORRUPT_FILE, "tensor 't' data (offset 64, 16 bytes) runs past the end");
  g_autoptr (GByteArray) far = one_tensor ("t", 1, ne4, OL_TYPE_F32, G_MAXUINT64 - 31);
  expect_error (far, OL_ERROR_CORRUPT_FILE, "runs past the end");
  guint64 big[1] = { 1u << 20 };
  g_autoptr (GByteArray) large = one_tensor ("t", 1, big, OL_TYPE_F32, 0);
  expect_error (large, OL_ERROR_CORRUPT_FILE, "4194304 bytes) runs past the end");

  guint64 over[2] = { 1ull << 40, 1ull << 40 };
  g_autoptr (GByteArray) ov = one_tensor ("t", 2, over, OL_TYPE_F32, 0);
  expect_error (ov, OL_ERROR_CORRUPT_FILE, "tensor 't': element count overflows");
  guint64 over2[2] = { 1ull << 61, 3 };
  g_autoptr (GByteArray) ov2 = one_tensor ("t", 2, over2, OL_TYPE_F32, 0);
  expect_error (ov2, OL_ERROR_CORRUPT_FILE, "tensor 't': byte size overflows");
  guint64 neg[1] = { G_MAXUINT64 };
  g_autoptr (GByteArray) ng = one_tensor ("t", 1, neg, OL_TYPE_F32, 0);
  expect_error (ng, OL_ERROR_CORRUPT_FILE, "dimension 0 of 18446744073709551615 is negative");
  guint64 ne5[5] = { 1, 1, 1, 1, 1 };
  g_autoptr (GByteArray) d5 = one_tensor ("t", 5, ne5, OL_TYPE_F32, 0);
  expect_error (d5, OL_ERROR_CORRUPT_FILE, "tensor 't' has 5 dimensions");
  guint64 ne33[1] = { 33 };
  g_autoptr (GByteArray) blk = one_tensor ("t", 1, ne33, OL_TYPE_Q8_0, 0);
  expect_error (blk, OL_ERROR_CORRUPT_FILE, "tensor 't': q8_0 rows need a multiple of 32 elements");

  g_autoptr (GByteArray) unk = one_tensor ("t", 1, ne4, 1000, 0);
  expect_error (unk, OL_ERROR_CORRUPT_FILE, "tensor 't' has unknown type 1000");
  g_autoptr (GByteArray) k4 = one_tensor ("t", 1, ne4, 12, 0);   /* GGML's Q4_K */
  expect_error (k4, OL_ERROR_UNSUPPORTED, "tensor 't' has GGML type 12");

  /* two tensors: overlapping, and duplicate names */
  g_autoptr (GByteArray) lap = g_byte_array_new ();
  put_header (lap, 2, 0);
  guint64 ne8[1] = { 8 };
  put_tensor_info (lap, "x", 1, ne8, OL_TYPE_F32, 0);
  put_tensor_info (lap, "y", 1, ne4, OL_TYPE_F32, 0);
  pad (lap, 32);
  put_f32_data (lap, 16, 0.0f);
  expect_error (lap, OL_ERROR_CORRUPT_FILE, "tensors 'y' and 'x' overlap");

  g_autoptr (GByteArray) dup = g_byte_array_new ();
  put_header (dup, 2, 0);
  put_tensor_info (dup, "x", 1, ne4, OL_TYPE_F32, 0);
  put_tensor_info (dup, "x", 1, ne4, OL_TYPE_F32, 32);
  pad (dup, 32);
  put_f32_data (dup, 16, 0.0f);
  expect_error (dup, OL_ERROR_CORRUPT_FILE, "duplicate tensor 'x'");
}

static void
test_io_errors (void)
{
  g_autoptr (GError) error = NULL;
  g_assert_null (ol_gguf_open ("/nonexistent/model.gguf", &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "/nonexistent/model.gguf"));
  g_clear_error (&error);
  g_assert_null (ol_gguf_open ("/", &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "is a directory"));
}

/* ---- writer -> reader ---- */

static char *
tmp_path (const char *name)
{
  static char *dir;
  if (dir == NULL)
    dir = g_dir_make_tmp ("test-gguf-XXXXXX", NULL);
  return g_build_filename (dir, name, NULL);
}

static void
test_round_trip (void)
{
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  ol_gguf_writer_set_alignment (w, 64);
  ol_gguf_writer_set_u8 (w, "v.u8", 200);
  ol_gguf_writer_set_i8 (w, "v.i8", -100);
  ol_gguf_writer_set_u16 (w, "v.u16", 60000);
  ol_gguf_writer_set_i16 (w, "v.i16", -30000);
  ol_gguf_writer_set_u32 (w, "v.u32", 4000000000u);
  ol_gguf_writer_set_i32 (w, "v.i32", -2000000000);
  ol_gguf_writer_set_u64 (w, "v.u64", G_MAXUINT64 - 1);
  ol_gguf_writer_set_i64 (w, "v.i64", G_MININT64 + 1);
  ol_gguf_writer_set_f32 (w, "v.f32", 1.5f);
  ol_gguf_writer_set_f64 (w, "v.f64", -2.25);
  ol_gguf_writer_set_bool (w, "v.bool", TRUE);
  ol_gguf_writer_set_string (w, "v.string", "héllo");
  ol_gguf_writer_set_string (w, "v.empty", "");
  ol_gguf_writer_set_u32 (w, "v.replaced", 1);
  ol_gguf_writer_set_u32 (w, "v.replaced", 2);
  const float f[3] = { 1.0f, -2.0f, 0.5f };
  const gint32 i32[2] = { -7, 9 };
  const guint16 u16[2] = { 1, 65535 };
  const gint64 i64[1] = { -5 };
  const double f64[2] = { 0.25, 1e300 };
  const guint8 bools[3] = { 1, 0, 1 };
  const char *words[] = { "<unk>", "", "▁the" };
  ol_gguf_writer_set_array (w, "a.f32", OL_GGUF_TYPE_FLOAT32, f, 3);
  ol_gguf_writer_set_array (w, "a.i32", OL_GGUF_TYPE_INT32, i32, 2);
  ol_gguf_writer_set_array (w, "a.u16", OL_GGUF_TYPE_UINT16, u16, 2);
  ol_gguf_writer_set_array (w, "a.i64", OL_GGUF_TYPE_INT64, i64, 1);
  ol_gguf_writer_set_array (w, "a.f64", OL_GGUF_TYPE_FLOAT64, f64, 2);
  ol_gguf_writer_set_array (w, "a.bool", OL_GGUF_TYPE_BOOL, bools, 3);
  ol_gguf_writer_set_array (w, "a.empty", OL_GGUF_TYPE_UINT8, NULL, 0);
  ol_gguf_writer_set_string_array (w, "a.string", words, 3);
  /* an array of two u32 arrays: [[5, 6], [7]] */
  GByteArray *nested = g_byte_array_new ();
  put_u32 (nested, OL_GGUF_TYPE_UINT32);
  put_u64 (nested, 2);
  put_u32 (nested, 5);
  put_u32 (nested, 6);
  put_u32 (nested, OL_GGUF_TYPE_UINT32);
  put_u64 (nested, 1);
  put_u32 (nested, 7);
  OlGgufValue nv = { OL_GGUF_TYPE_ARRAY, OL_GGUF_TYPE_ARRAY, 2, nested->data, nested->len };
  ol_gguf_writer_set_value (w, "a.nested", &nv);
  g_byte_array_unref (nested);

  /* tensors of every type, 1 to 4 dimensions */
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16, OL_TYPE_BF16, OL_TYPE_Q8_0, OL_TYPE_Q4_0, OL_TYPE_I32 };
  guint8 *data[G_N_ELEMENTS (types)];
  guint64 sizes[G_N_ELEMENTS (types)];
  g_autoptr (GError) error = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (types); i++) {
    gint64 ne[4] = { 64, 3, 2, 1 };
    guint64 row;
    g_assert_true (ol_type_row_bytes (types[i], 64, &row, &error));
    sizes[i] = row * 6;
    data[i] = g_malloc (sizes[i]);
    for (guint64 j = 0; j < sizes[i]; j++)
      data[i][j] = (guint8) (j * 7 + i);
    if (types[i] == OL_TYPE_Q8_0 || types[i] == OL_TYPE_Q4_0) {
      /* keep block scales finite so nothing about the bytes is special */
      for (guint64 j = 0; j < sizes[i]; j += ol_type_block_bytes (types[i]))
        data[i][j + 1] = 0x3c;
    }
    g_autofree char *name = g_strdup_printf ("t.%s", ol_type_name (types[i]));
    g_assert_true (ol_gguf_writer_add_tensor (w, name, types[i], 1 + i % 4, ne, data[i], &error));
  }
  gint64 bad[1] = { 33 };
  g_assert_false (ol_gguf_writer_add_tensor (w, "bad", OL_TYPE_Q4_0, 1, bad, data[0], &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  gint64 one[1] = { 1 };
  g_assert_false (ol_gguf_writer_add_tensor (w, "t.f32", OL_TYPE_F32, 1, one, data[0], &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_autofree char *path = tmp_path ("round-trip.gguf");
  g_assert_true (ol_gguf_writer_write (w, path, &error));
  g_assert_no_error (error);

  g_autoptr (OlGguf) g = ol_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ol_gguf_version (g), ==, 3);
  g_assert_cmpuint (ol_gguf_alignment (g), ==, 64);
  g_assert_cmpuint (ol_gguf_data_offset (g) % 64, ==, 0);
  g_assert_cmpstr (ol_gguf_key (g, 0), ==, "general.alignment");
  g_assert_cmpuint (ol_gguf_n_keys (g), ==, 24);

  OlGgufValue v;
  g_assert_true (ol_gguf_get_value (g, "v.u8", &v, &error) && v.type == OL_GGUF_TYPE_UINT8 && v.data[0] == 200);
  g_assert_true (ol_gguf_get_value (g, "v.i8", &v, &error) && (gint8) v.data[0] == -100);
  g_assert_true (ol_gguf_get_value (g, "v.u16", &v, &error) && v.type == OL_GGUF_TYPE_UINT16);
  g_assert_cmpuint (v.data[0] | v.data[1] << 8, ==, 60000);
  g_assert_true (ol_gguf_get_value (g, "v.i16", &v, &error) && v.type == OL_GGUF_TYPE_INT16);
  g_assert_cmpint ((gint16) (v.data[0] | v.data[1] << 8), ==, -30000);
  guint32 u32;
  gint32 s32;
  guint64 u64;
  float f32;
  gboolean bv;
  const char *str;
  g_assert_true (ol_gguf_get_u32 (g, "v.u32", &u32, &error));
  g_assert_cmpuint (u32, ==, 4000000000u);
  g_assert_true (ol_gguf_get_i32 (g, "v.i32", &s32, &error));
  g_assert_cmpint (s32, ==, -2000000000);
  g_assert_true (ol_gguf_get_u64 (g, "v.u64", &u64, &error));
  g_assert_cmpuint (u64, ==, G_MAXUINT64 - 1);
  g_assert_true (ol_gguf_get_value (g, "v.i64", &v, &error) && v.type == OL_GGUF_TYPE_INT64 && v.size == 8);
  gint64 s64;
  memcpy (&s64, v.data, 8);
  g_assert_cmpint (GINT64_FROM_LE (s64), ==, G_MININT64 + 1);
  g_assert_true (ol_gguf_get_f32 (g, "v.f32", &f32, &error));
  g_assert_cmpfloat (f32, ==, 1.5f);
  g_assert_true (ol_gguf_get_value (g, "v.f64", &v, &error) && v.type == OL_GGUF_TYPE_FLOAT64);
  double d64;
  memcpy (&d64, v.data, 8);
  g_assert_cmpfloat (d64, ==, -2.25);
  g_assert_true (ol_gguf_get_bool (g, "v.bool", &bv, &error) && bv);
  g_assert_true (ol_gguf_get_string (g, "v.string", &str, &error));
  g_assert_cmpstr (str, ==, "héllo");
  g_assert_true (ol_gguf_get_string (g, "v.empty", &str, &error));
  g_assert_cmpstr (str, ==, "");
  g_assert_true (ol_gguf_get_u32 (g, "v.replaced", &u32, &error));
  g_assert_cmpuint (u32, ==, 2);

  g_autofree float *fa = NULL;
  g_autofree gint32 *ia = NULL;
  gsize n;
  g_assert_true (ol_gguf_get_f32_array (g, "a.f32", &fa, &n, &error));
  g_assert_cmpuint (n, ==, 3);
  g_assert_cmpmem (fa, sizeof f, f, sizeof f);
  g_assert_true (ol_gguf_get_i32_array (g, "a.i32", &ia, &n, &error));
  g_assert_cmpmem (ia, n * 4, i32, sizeof i32);
  g_assert_true (ol_gguf_get_value (g, "a.u16", &v, &error) && v.elem_type == OL_GGUF_TYPE_UINT16 && v.n == 2);
  g_assert_cmpmem (v.data, v.size, u16, sizeof u16);
  g_assert_true (ol_gguf_get_value (g, "a.i64", &v, &error) && v.elem_type == OL_GGUF_TYPE_INT64);
  g_assert_cmpmem (v.data, v.size, i64, sizeof i64);
  g_assert_true (ol_gguf_get_value (g, "a.f64", &v, &error) && v.elem_type == OL_GGUF_TYPE_FLOAT64);
  g_assert_cmpmem (v.data, v.size, f64, sizeof f64);
  g_assert_true (ol_gguf_get_value (g, "a.bool", &v, &error) && v.elem_type == OL_GGUF_TYPE_BOOL);
  g_assert_cmpmem (v.data, v.size, bools, sizeof bools);
  g_assert_true (ol_gguf_get_value (g, "a.empty", &v, &error) && v.n == 0 && v.size == 0);
  const char *const *sa;
  g_assert_true (ol_gguf_get_string_array (g, "a.string", &sa, &n, &error));
  g_assert_cmpuint (n, ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpstr (sa[i], ==, words[i]);
  OlGgufValue item, inner;
  g_assert_true (ol_gguf_get_value (g, "a.string", &v, &error));
  g_assert_true (ol_gguf_value_array_item (&v, 2, &item));
  g_assert_cmpmem (item.data, item.size, words[2], strlen (words[2]));
  g_assert_false (ol_gguf_value_array_item (&v, 3, &item));

  g_assert_true (ol_gguf_get_value (g, "a.nested", &v, &error));
  g_assert_cmpint (v.elem_type, ==, OL_GGUF_TYPE_ARRAY);
  g_assert_true (ol_gguf_value_array_item (&v, 1, &item));
  g_assert_cmpint (item.elem_type, ==, OL_GGUF_TYPE_UINT32);
  g_assert_cmpuint (item.n, ==, 1);
  g_assert_true (ol_gguf_value_array_item (&item, 0, &inner));
  g_assert_cmpuint (inner.data[0], ==, 7);
  g_assert_no_error (error);

  g_assert_cmpuint (ol_gguf_n_tensors (g), ==, G_N_ELEMENTS (types));
  for (guint i = 0; i < G_N_ELEMENTS (types); i++) {
    const OlGgufTensor *t = ol_gguf_tensor (g, i);
    g_assert_cmpint (t->type, ==, types[i]);
    g_assert_cmpuint (t->n_dims, ==, 1 + i % 4);
    g_assert_cmpint (ol_gguf_tensor_n_elements (t), ==, (1 + i % 4) == 1 ? 64 : (1 + i % 4) == 2 ? 192 : 384);
    g_assert_cmpuint (t->offset % 64, ==, 0);
    g_assert_cmpmem (t->data, t->n_bytes, data[i], t->n_bytes);
    /* dropped pages come back from the file */
    ol_gguf_drop_pages (g, t);
    g_assert_cmpmem (t->data, t->n_bytes, data[i], t->n_bytes);
  }

  /* copying every key and tensor through the writer reproduces the file byte for byte */
  g_autoptr (OlGgufWriter) copy = ol_gguf_writer_new ();
  ol_gguf_writer_set_alignment (copy, 64);
  for (gsize i = 0; i < ol_gguf_n_keys (g); i++) {
    g_assert_true (ol_gguf_get_value (g, ol_gguf_key (g, i), &v, &error));
    ol_gguf_writer_set_value (copy, ol_gguf_key (g, i), &v);
  }
  for (gsize i = 0; i < ol_gguf_n_tensors (g); i++) {
    const OlGgufTensor *t = ol_gguf_tensor (g, i);
    g_assert_true (ol_gguf_writer_add_tensor (copy, t->name, t->type, t->n_dims, t->ne, t->data, &error));
  }
  g_autofree char *path2 = tmp_path ("copy.gguf");
  g_assert_true (ol_gguf_writer_write (copy, path2, &error));
  g_autofree char *a = NULL, *b = NULL;
  gsize na, nb;
  g_assert_true (g_file_get_contents (path, &a, &na, NULL));
  g_assert_true (g_file_get_contents (path2, &b, &nb, NULL));
  g_assert_cmpmem (a, na, b, nb);
  g_unlink (path2);

  for (guint i = 0; i < G_N_ELEMENTS (types); i++)
    g_free (data[i]);
  g_unlink (path);
}

static void
test_getter_errors (void)
{
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  ol_gguf_writer_set_string (w, "s", "x");
  const float f[1] = { 1 };
  ol_gguf_writer_set_array (w, "af", OL_GGUF_TYPE_FLOAT32, f, 1);
  g_autofree char *path = tmp_path ("getters.gguf");
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_gguf_writer_write (w, path, &error));
  g_autoptr (OlGguf) g = ol_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (ol_gguf_n_tensors (g), ==, 0);

  guint32 u;
  g_assert_false (ol_gguf_get_u32 (g, "s", &u, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE);
  g_assert_nonnull (strstr (error->message, "key 's' is string, expected u32"));
  g_clear_error (&error);
  g_assert_false (ol_gguf_get_u32 (g, "nope", &u, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE);
  g_assert_nonnull (strstr (error->message, "missing key 'nope'"));
  g_clear_error (&error);
  g_autofree gint32 *ia = NULL;
  gsize n;
  g_assert_false (ol_gguf_get_i32_array (g, "af", &ia, &n, &error));
  g_assert_nonnull (strstr (error->message, "key 'af' is array of f32, expected array of i32"));
  g_clear_error (&error);
  g_assert_false (ol_gguf_has_key (g, "nope"));
  g_assert_true (ol_gguf_has_key (g, "af"));
  g_unlink (path);
}

static gboolean
fill_fails (void *dst, guint64 n_bytes, gpointer user_data, GError **error)
{
  g_set_error (error, OL_ERROR, OL_ERROR_FAILED, "fill failed on purpose");
  return FALSE;
}

static gboolean
fill_ramp (void *dst, guint64 n_bytes, gpointer user_data, GError **error)
{
  for (guint64 i = 0; i < n_bytes; i++)
    ((guint8 *) dst)[i] = (guint8) i;
  return TRUE;
}

/* A failing fill function or an unwritable path leaves no file behind, nor a temporary one. */
static void
test_writer_failures (void)
{
  g_autofree char *path = tmp_path ("fail.gguf");
  g_autoptr (GError) error = NULL;
  gint64 ne[1] = { 100 };
  g_autoptr (OlGgufWriter) w = ol_gguf_writer_new ();
  g_assert_true (ol_gguf_writer_add_tensor_func (w, "ok", OL_TYPE_F32, 1, ne, fill_ramp, NULL, &error));
  g_assert_true (ol_gguf_writer_add_tensor_func (w, "t", OL_TYPE_F32, 1, ne, fill_fails, NULL, &error));
  g_assert_false (ol_gguf_writer_write (w, path, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_FAILED);
  g_clear_error (&error);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *entry;
  while ((entry = g_dir_read_name (d)) != NULL)
    g_assert_false (g_str_has_prefix (entry, "fail.gguf"));

  g_autoptr (OlGgufWriter) w2 = ol_gguf_writer_new ();
  g_assert_true (ol_gguf_writer_add_tensor_func (w2, "ok", OL_TYPE_F32, 1, ne, fill_ramp, NULL, &error));
  g_assert_false (ol_gguf_writer_write (w2, "/nonexistent/dir/x.gguf", &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_IO);
  g_clear_error (&error);

  g_assert_true (ol_gguf_writer_write (w2, path, &error));
  g_autoptr (OlGguf) g = ol_gguf_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (((const guint8 *) ol_gguf_find_tensor (g, "ok")->data)[399], ==, (guint8) 399);
  g_unlink (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/gguf/valid-handmade", test_valid_handmade);
  g_test_add_func ("/gguf/round-trip", test_round_trip);
  g_test_add_func ("/gguf/getter-errors", test_getter_errors);
  g_test_add_func ("/gguf/writer-failures", test_writer_failures);
  g_test_add_func ("/gguf/truncated-every-byte", test_truncated_every_byte);
  g_test_add_func ("/gguf/truncated-sections", test_truncated_sections);
  g_test_add_func ("/gguf/bad-header", test_bad_header);
  g_test_add_func ("/gguf/huge-counts", test_huge_counts);
  g_test_add_func ("/gguf/huge-lengths", test_huge_lengths);
  g_test_add_func ("/gguf/bad-values", test_bad_values);
  g_test_add_func ("/gguf/bad-tensors", test_bad_tensors);
  g_test_add_func ("/gguf/io-errors", test_io_errors);
  int r = g_test_run ();
  g_autofree char *dir = tmp_path ("");
  g_rmdir (dir);
  return r;
}
