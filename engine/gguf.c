/* GGUF v3: a reader that validates every field of a mapped file before exposing it, and a writer. */
#include "gguf.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
/* Smallest encodings, used to bound counts by the bytes left before anything is allocated:
 * a key-value pair is a length, a key of at least one byte, a type id and a one-byte value;
 * a tensor info is a length, a name byte, n_dims, type and offset. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_INFO_BYTES (8 + 1 + 4 + 4 + 8)
/* Highest GGML type id known when this was written; ids up to it that types.c does not know are
 * real tensor types this library does not read, anything above is garbage. */
#define GGML_TYPE_ID_MAX 39

static const char *const type_names[] = {
  "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *
ol_gguf_type_name (OlGgufType type)
{
  return (guint) type < G_N_ELEMENTS (type_names) ? type_names[type] : "unknown";
}

/* Bytes of one value of a fixed-size type, 0 for string and array, -1 for an unknown id. */
static int
fixed_size (guint32 type)
{
  switch (type) {
    case OL_GGUF_TYPE_UINT8: case OL_GGUF_TYPE_INT8: case OL_GGUF_TYPE_BOOL:
      return 1;
    case OL_GGUF_TYPE_UINT16: case OL_GGUF_TYPE_INT16:
      return 2;
    case OL_GGUF_TYPE_UINT32: case OL_GGUF_TYPE_INT32: case OL_GGUF_TYPE_FLOAT32:
      return 4;
    case OL_GGUF_TYPE_UINT64: case OL_GGUF_TYPE_INT64: case OL_GGUF_TYPE_FLOAT64:
      return 8;
    case OL_GGUF_TYPE_STRING: case OL_GGUF_TYPE_ARRAY:
      return 0;
    default:
      return -1;
  }
}

static guint32
rd_u32 (const guint8 *p)
{
  guint32 v;
  memcpy (&v, p, 4);
  return GUINT32_FROM_LE (v);
}

static guint64
rd_u64 (const guint8 *p)
{
  guint64 v;
  memcpy (&v, p, 8);
  return GUINT64_FROM_LE (v);
}

/* Parses the value of the given type at p (avail bytes left), checking every length against avail.
 * On success fills v and *consumed; on failure returns a description of the problem. */
static char *
parse_value (const guint8 *p, guint64 avail, guint32 type, guint depth, OlGgufValue *v, guint64 *consumed)
{
  int fs = fixed_size (type);
  if (fs < 0)
    return g_strdup_printf ("unknown value type %u", type);
  memset (v, 0, sizeof *v);
  v->type = type;
  if (fs > 0) {
    if (avail < (guint64) fs)
      return g_strdup_printf ("%s value truncated by the end of the file", ol_gguf_type_name (type));
    if (type == OL_GGUF_TYPE_BOOL && p[0] > 1)
      return g_strdup_printf ("bool value %u is neither 0 nor 1", p[0]);
    v->data = p;
    v->size = fs;
    *consumed = fs;
    return NULL;
  }
  if (type == OL_GGUF_TYPE_STRING) {
    if (avail < 8)
      return g_strdup ("string length truncated by the end of the file");
    guint64 len = rd_u64 (p);
    if (len > avail - 8)
      return g_strdup_printf ("string of %" G_GUINT64_FORMAT " bytes runs past the end of the file", len);
    v->n = len;
    v->data = p + 8;
    v->size = len;
    *consumed = 8 + len;
    return NULL;
  }

  if (avail < 12)
    return g_strdup ("array header truncated by the end of the file");
  guint32 elem = rd_u32 (p);
  guint64 n = rd_u64 (p + 4);
  guint64 left = avail - 12;
  int es = fixed_size (elem);
  if (es < 0)
    return g_strdup_printf ("array of unknown element type %u", elem);
  v->elem_type = elem;
  v->n = n;
  v->data = p + 12;
  if (es > 0) {
    if (n > left / es)
      return g_strdup_printf ("array of %" G_GUINT64_FORMAT " %s runs past the end of the file", n,
                              ol_gguf_type_name (elem));
    if (elem == OL_GGUF_TYPE_BOOL) {
      for (guint64 i = 0; i < n; i++)
        if (p[12 + i] > 1)
          return g_strdup_printf ("bool %" G_GUINT64_FORMAT " of the array is %u, neither 0 nor 1", i, p[12 + i]);
    }
    v->size = n * es;
    *consumed = 12 + v->size;
    return NULL;
  }
  if (elem == OL_GGUF_TYPE_ARRAY && depth + 1 >= OL_GGUF_MAX_ARRAY_DEPTH)
    return g_strdup_printf ("arrays nested deeper than %d", OL_GGUF_MAX_ARRAY_DEPTH);
  /* every element costs at least its 8-byte length (strings) or 12-byte header (arrays) */
  if (n > left / (elem == OL_GGUF_TYPE_STRING ? 8 : 12))
    return g_strdup_printf ("array of %" G_GUINT64_FORMAT " %s runs past the end of the file", n,
                            ol_gguf_type_name (elem));
  guint64 off = 0;
  for (guint64 i = 0; i < n; i++) {
    OlGgufValue item;
    guint64 used;
    char *problem = parse_value (p + 12 + off, left - off, elem, depth + 1, &item, &used);
    if (problem != NULL) {
      char *msg = g_strdup_printf ("element %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT ": %s", i, n, problem);
      g_free (problem);
      return msg;
    }
    off += used;
  }
  v->size = off;
  *consumed = 12 + off;
  return NULL;
}

gboolean
ol_gguf_value_array_item (const OlGgufValue *array, guint64 i, OlGgufValue *item)
{
  g_return_val_if_fail (array != NULL && item != NULL, FALSE);
  if (array->type != OL_GGUF_TYPE_ARRAY || i >= array->n)
    return FALSE;
  int es = fixed_size (array->elem_type);
  if (es < 0)
    return FALSE;
  if (es > 0) {
    if (i >= array->size / es)
      return FALSE;
    memset (item, 0, sizeof *item);
    item->type = array->elem_type;
    item->data = array->data + i * es;
    item->size = es;
    return TRUE;
  }
  guint64 off = 0;
  for (guint64 j = 0;; j++) {
    guint64 used;
    char *problem = parse_value (array->data + off, array->size - off, array->elem_type, 1, item, &used);
    if (problem != NULL) {
      g_free (problem);
      return FALSE;
    }
    if (j == i)
      return TRUE;
    off += used;
  }
}

gint64
ol_gguf_tensor_n_elements (const OlGgufTensor *t)
{
  /* the reader checked that the product fits unless a dimension is zero */
  for (guint i = 0; i < OL_GGUF_MAX_DIMS; i++)
    if (t->ne[i] == 0)
      return 0;
  gint64 n = 1;
  for (guint i = 0; i < OL_GGUF_MAX_DIMS; i++)
    n *= t->ne[i];
  return n;
}

typedef struct {
  const char *key;
  OlGgufValue value;
  const char *str;          /* strings: NUL-terminated copy */
  const char **strv;        /* arrays of strings: copies of the elements */
} Kv;

struct _OlGguf {
  char *name;               /* for messages */
  GMappedFile *map;
  GBytes *bytes;
  const guint8 *base;
  guint64 size;
  guint32 version;
  guint32 alignment;
  guint64 data_offset;
  GStringChunk *strings;
  GArray *kvs;              /* Kv */
  GHashTable *kv_index;     /* key -> index + 1 */
  OlGgufTensor *tensors;
  gsize n_tensors;
  GHashTable *tensor_index; /* name -> index + 1 */
};

/* Cursor over the file during parsing. */
typedef struct {
  OlGguf *g;
  guint64 pos;
  GError **error;
} Parser;

static void G_GNUC_PRINTF (3, 4)
fail (Parser *ps, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (ps->error, OL_ERROR, code, "%s: %s", ps->g->name, msg);
}

/* Both evaluate to FALSE, so that parsers can `return corrupt (...)`. */
#define corrupt(ps, ...) (fail ((ps), OL_ERROR_CORRUPT_FILE, __VA_ARGS__), FALSE)
#define unsupported(ps, ...) (fail ((ps), OL_ERROR_UNSUPPORTED, __VA_ARGS__), FALSE)

static guint64
left (const Parser *ps)
{
  return ps->g->size - ps->pos;
}

static gboolean
read_u32 (Parser *ps, const char *what, guint32 *out)
{
  if (left (ps) < 4)
    return corrupt (ps, "file truncated in %s (offset %" G_GUINT64_FORMAT ")", what, ps->pos);
  *out = rd_u32 (ps->g->base + ps->pos);
  ps->pos += 4;
  return TRUE;
}

static gboolean
read_u64 (Parser *ps, const char *what, guint64 *out)
{
  if (left (ps) < 8)
    return corrupt (ps, "file truncated in %s (offset %" G_GUINT64_FORMAT ")", what, ps->pos);
  *out = rd_u64 (ps->g->base + ps->pos);
  ps->pos += 8;
  return TRUE;
}

/* A key or tensor name: non-empty, no NUL (they are used as C strings). */
static gboolean
read_name (Parser *ps, const char *what, const char **out)
{
  guint64 len;
  if (!read_u64 (ps, what, &len))
    return FALSE;
  if (len > left (ps))
    return corrupt (ps, "%s of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
                    " runs past the end of the file", what, len, ps->pos - 8);
  if (len == 0)
    return corrupt (ps, "empty %s at offset %" G_GUINT64_FORMAT, what, ps->pos - 8);
  const char *s = (const char *) ps->g->base + ps->pos;
  if (memchr (s, 0, len) != NULL)
    return corrupt (ps, "%s at offset %" G_GUINT64_FORMAT " contains a NUL byte", what, ps->pos - 8);
  *out = g_string_chunk_insert_len (ps->g->strings, s, len);
  ps->pos += len;
  return TRUE;
}

static gboolean
read_kv (Parser *ps, guint64 index, guint64 count)
{
  OlGguf *g = ps->g;
  Kv kv = { 0 };
  g_autofree char *what = g_strdup_printf ("key %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, index, count);
  if (!read_name (ps, what, &kv.key))
    return FALSE;
  if (g_hash_table_contains (g->kv_index, kv.key))
    return corrupt (ps, "duplicate key '%s'", kv.key);
  guint32 type;
  if (!read_u32 (ps, kv.key, &type))
    return FALSE;
  guint64 used;
  g_autofree char *problem = parse_value (g->base + ps->pos, left (ps), type, 0, &kv.value, &used);
  if (problem != NULL)
    return corrupt (ps, "key '%s': %s", kv.key, problem);
  ps->pos += used;

  if (type == OL_GGUF_TYPE_STRING) {
    kv.str = g_string_chunk_insert_len (g->strings, (const char *) kv.value.data, kv.value.size);
  } else if (type == OL_GGUF_TYPE_ARRAY && kv.value.elem_type == OL_GGUF_TYPE_STRING) {
    /* n is bounded by the file size: each string took at least 8 bytes */
    kv.strv = g_new (const char *, kv.value.n);
    const guint8 *p = kv.value.data;
    for (guint64 i = 0; i < kv.value.n; i++) {
      guint64 len = rd_u64 (p);
      kv.strv[i] = g_string_chunk_insert_len (g->strings, (const char *) p + 8, len);
      p += 8 + len;
    }
  }
  g_array_append_val (g->kvs, kv);
  g_hash_table_insert (g->kv_index, (gpointer) kv.key, GSIZE_TO_POINTER (g->kvs->len));
  return TRUE;
}

static gboolean
read_tensor_info (Parser *ps, gsize i, guint64 count)
{
  OlGguf *g = ps->g;
  OlGgufTensor *t = &g->tensors[i];
  g_autofree char *what = g_strdup_printf ("name of tensor %" G_GSIZE_FORMAT " of %" G_GUINT64_FORMAT, i, count);
  if (!read_name (ps, what, &t->name))
    return FALSE;
  if (g_hash_table_contains (g->tensor_index, t->name))
    return corrupt (ps, "duplicate tensor '%s'", t->name);
  guint32 n_dims;
  if (!read_u32 (ps, t->name, &n_dims))
    return FALSE;
  if (n_dims > OL_GGUF_MAX_DIMS)
    return corrupt (ps, "tensor '%s' has %u dimensions (at most %d)", t->name, n_dims, OL_GGUF_MAX_DIMS);
  t->n_dims = n_dims;
  for (guint d = 0; d < OL_GGUF_MAX_DIMS; d++) {
    guint64 ne = 1;
    if (d < n_dims && !read_u64 (ps, t->name, &ne))
      return FALSE;
    if (ne > G_MAXINT64)
      return corrupt (ps, "tensor '%s': dimension %u of %" G_GUINT64_FORMAT " is negative", t->name, d, ne);
    t->ne[d] = ne;
  }
  guint32 type;
  if (!read_u32 (ps, t->name, &type))
    return FALSE;
  if (!ol_type_is_valid (type)) {
    if (type <= GGML_TYPE_ID_MAX)
      return unsupported (ps, "tensor '%s' has GGML type %u, which libonellm does not read "
                   "(f32, f16, bf16, q8_0 and q4_0 are supported)", t->name, type);
    return corrupt (ps, "tensor '%s' has unknown type %u", t->name, type);
  }
  t->type = type;
  if (!read_u64 (ps, t->name, &t->offset))
    return FALSE;

  /* Sizes: ne[0] must fill whole blocks; the element count must fit in a gint64 and the byte size
   * in a guint64 (tensors with a zero dimension are empty whatever the others say). */
  gboolean empty = FALSE;
  for (guint d = 0; d < OL_GGUF_MAX_DIMS; d++)
    empty = empty || t->ne[d] == 0;
  gint64 elements = 1;
  for (guint d = 0; d < OL_GGUF_MAX_DIMS && !empty; d++) {
    if (elements > G_MAXINT64 / t->ne[d])
      return corrupt (ps, "tensor '%s': element count overflows", t->name);
    elements *= t->ne[d];
  }
  guint64 row_bytes;
  g_autoptr (GError) row_error = NULL;
  if (!ol_type_row_bytes (type, t->ne[0], &row_bytes, &row_error))
    return corrupt (ps, "tensor '%s': %s", t->name, row_error->message);
  guint64 rows = empty ? 0 : (guint64) (elements / MAX (t->ne[0], 1));
  if (row_bytes != 0 && rows > G_MAXUINT64 / row_bytes)
    return corrupt (ps, "tensor '%s': byte size overflows", t->name);
  t->n_bytes = row_bytes * rows;
  g_hash_table_insert (g->tensor_index, (gpointer) t->name, GSIZE_TO_POINTER (i + 1));
  return TRUE;
}

static int
compare_by_offset (const void *a, const void *b)
{
  const OlGgufTensor *x = *(const OlGgufTensor *const *) a, *y = *(const OlGgufTensor *const *) b;
  if (x->offset != y->offset)
    return x->offset < y->offset ? -1 : 1;
  return x->n_bytes < y->n_bytes ? -1 : x->n_bytes > y->n_bytes;
}

static gboolean
check_tensor_data (Parser *ps)
{
  OlGguf *g = ps->g;
  if (g->n_tensors == 0)
    return TRUE;
  if (g->data_offset > g->size)
    return corrupt (ps, "data section at offset %" G_GUINT64_FORMAT " starts past the end of the file (%"
                    G_GUINT64_FORMAT " bytes)", g->data_offset, g->size);
  guint64 data_size = g->size - g->data_offset;
  g_autofree const OlGgufTensor **order = g_new (const OlGgufTensor *, g->n_tensors);
  for (gsize i = 0; i < g->n_tensors; i++) {
    OlGgufTensor *t = &g->tensors[i];
    if (t->offset % g->alignment != 0)
      return corrupt (ps, "tensor '%s' data offset %" G_GUINT64_FORMAT " is not a multiple of the alignment %u",
                      t->name, t->offset, g->alignment);
    if (t->offset > data_size || t->n_bytes > data_size - t->offset)
      return corrupt (ps, "tensor '%s' data (offset %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                      " bytes) runs past the end of the file (%" G_GUINT64_FORMAT " data bytes)",
                      t->name, t->offset, t->n_bytes, data_size);
    t->data = g->base + g->data_offset + t->offset;
    order[i] = t;
  }
  qsort (order, g->n_tensors, sizeof *order, compare_by_offset);
  const OlGgufTensor *reach = order[0];   /* the tensor ending furthest so far */
  for (gsize i = 1; i < g->n_tensors; i++) {
    const OlGgufTensor *t = order[i];
    if (reach->offset + reach->n_bytes > t->offset)
      return corrupt (ps, "tensors '%s' and '%s' overlap", reach->name, t->name);
    if (t->offset + t->n_bytes > reach->offset + reach->n_bytes)
      reach = t;
  }
  return TRUE;
}

static gboolean
parse (OlGguf *g, GError **error)
{
  Parser ps = { g, 0, error };
  if (g->size < 4 || memcmp (g->base, GGUF_MAGIC, 4) != 0)
    return corrupt (&ps, "not a GGUF file (no 'GGUF' magic at the start)");
  ps.pos = 4;
  if (!read_u32 (&ps, "the header", &g->version))
    return FALSE;
  if (g->version != OL_GGUF_VERSION) {
    if (g->version == 1 || g->version == 2)
      return unsupported (&ps, "GGUF version %u is not supported (only version %d)",
                   g->version, OL_GGUF_VERSION);
    if (g->version == GUINT32_SWAP_LE_BE (OL_GGUF_VERSION))
      return unsupported (&ps, "big-endian GGUF files are not supported");
    return corrupt (&ps, "unknown GGUF version %u", g->version);
  }
  guint64 n_tensors, n_kv;
  if (!read_u64 (&ps, "the header", &n_tensors) || !read_u64 (&ps, "the header", &n_kv))
    return FALSE;
  if (n_kv > left (&ps) / MIN_KV_BYTES)
    return corrupt (&ps, "metadata count %" G_GUINT64_FORMAT " is impossible for a file of %" G_GUINT64_FORMAT
                    " bytes", n_kv, g->size);
  if (n_tensors > left (&ps) / MIN_TENSOR_INFO_BYTES)
    return corrupt (&ps, "tensor count %" G_GUINT64_FORMAT " is impossible for a file of %" G_GUINT64_FORMAT
                    " bytes", n_tensors, g->size);

  for (guint64 i = 0; i < n_kv; i++)
    if (!read_kv (&ps, i, n_kv))
      return FALSE;

  g->alignment = OL_GGUF_DEFAULT_ALIGNMENT;
  if (ol_gguf_has_key (g, "general.alignment")) {
    if (!ol_gguf_get_u32 (g, "general.alignment", &g->alignment, error))
      return FALSE;
    if (g->alignment == 0 || (g->alignment & (g->alignment - 1)) != 0)
      return corrupt (&ps, "general.alignment %u is not a power of two", g->alignment);
  }

  g->tensors = g_new0 (OlGgufTensor, n_tensors);
  g->n_tensors = n_tensors;
  for (guint64 i = 0; i < n_tensors; i++)
    if (!read_tensor_info (&ps, i, n_tensors))
      return FALSE;
  g->data_offset = ps.pos + (g->alignment - ps.pos % g->alignment) % g->alignment;
  return check_tensor_data (&ps);
}

static OlGguf *
open_common (OlGguf *g, GError **error)
{
  g->base = g_bytes_get_data (g->bytes, NULL);
  g->size = g_bytes_get_size (g->bytes);
  g->strings = g_string_chunk_new (4096);
  g->kvs = g_array_new (FALSE, TRUE, sizeof (Kv));
  g->kv_index = g_hash_table_new (g_str_hash, g_str_equal);
  g->tensor_index = g_hash_table_new (g_str_hash, g_str_equal);
  if (!parse (g, error)) {
    ol_gguf_free (g);
    return NULL;
  }
  return g;
}

OlGguf *
ol_gguf_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s is a directory, not a model file", path);
    return NULL;
  }
  g_autoptr (GError) map_error = NULL;
  GMappedFile *map = g_mapped_file_new (path, FALSE, &map_error);
  if (map == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "%s", map_error->message);
    return NULL;
  }
  OlGguf *g = g_new0 (OlGguf, 1);
  g->name = g_strdup (path);
  g->map = map;
  g->bytes = g_mapped_file_get_bytes (map);
  return open_common (g, error);
}

OlGguf *
ol_gguf_open_bytes (GBytes *bytes, GError **error)
{
  g_return_val_if_fail (bytes != NULL, NULL);
  OlGguf *g = g_new0 (OlGguf, 1);
  g->name = g_strdup ("GGUF data");
  g->bytes = g_bytes_ref (bytes);
  return open_common (g, error);
}

void
ol_gguf_free (OlGguf *g)
{
  if (g == NULL)
    return;
  if (g->kvs != NULL) {
    for (guint i = 0; i < g->kvs->len; i++)
      g_free (g_array_index (g->kvs, Kv, i).strv);
    g_array_unref (g->kvs);
  }
  g_clear_pointer (&g->kv_index, g_hash_table_unref);
  g_clear_pointer (&g->tensor_index, g_hash_table_unref);
  g_clear_pointer (&g->strings, g_string_chunk_free);
  g_free (g->tensors);
  g_clear_pointer (&g->bytes, g_bytes_unref);
  g_clear_pointer (&g->map, g_mapped_file_unref);
  g_free (g->name);
  g_free (g);
}

guint32
ol_gguf_version (const OlGguf *g)
{
  return g->version;
}

guint64
ol_gguf_file_size (const OlGguf *g)
{
  return g->size;
}

guint32
ol_gguf_alignment (const OlGguf *g)
{
  return g->alignment;
}

guint64
ol_gguf_data_offset (const OlGguf *g)
{
  return g->data_offset;
}

gsize
ol_gguf_n_keys (const OlGguf *g)
{
  return g->kvs->len;
}

const char *
ol_gguf_key (const OlGguf *g, gsize i)
{
  g_return_val_if_fail (i < g->kvs->len, NULL);
  return g_array_index (g->kvs, Kv, i).key;
}

static const Kv *
lookup_kv (const OlGguf *g, const char *key)
{
  gsize i = GPOINTER_TO_SIZE (g_hash_table_lookup (g->kv_index, key));
  return i == 0 ? NULL : &g_array_index (g->kvs, Kv, i - 1);
}

gboolean
ol_gguf_has_key (const OlGguf *g, const char *key)
{
  g_return_val_if_fail (g != NULL && key != NULL, FALSE);
  return lookup_kv (g, key) != NULL;
}

/* The key with the wanted type (and element type for arrays), or an error naming both. */
static const Kv *
typed_kv (const OlGguf *g, const char *key, OlGgufType type, OlGgufType elem_type, GError **error)
{
  const Kv *kv = lookup_kv (g, key);
  if (kv == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: missing key '%s'", g->name, key);
    return NULL;
  }
  if (kv->value.type != type || (type == OL_GGUF_TYPE_ARRAY && kv->value.elem_type != elem_type)) {
    g_autofree char *want = type == OL_GGUF_TYPE_ARRAY
      ? g_strdup_printf ("array of %s", ol_gguf_type_name (elem_type)) : g_strdup (ol_gguf_type_name (type));
    g_autofree char *have = kv->value.type == OL_GGUF_TYPE_ARRAY
      ? g_strdup_printf ("array of %s", ol_gguf_type_name (kv->value.elem_type))
      : g_strdup (ol_gguf_type_name (kv->value.type));
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: key '%s' is %s, expected %s", g->name, key,
                 have, want);
    return NULL;
  }
  return kv;
}

gboolean
ol_gguf_get_value (const OlGguf *g, const char *key, OlGgufValue *value, GError **error)
{
  g_return_val_if_fail (g != NULL && key != NULL && value != NULL, FALSE);
  const Kv *kv = lookup_kv (g, key);
  if (kv == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_CORRUPT_FILE, "%s: missing key '%s'", g->name, key);
    return FALSE;
  }
  *value = kv->value;
  return TRUE;
}

gboolean
ol_gguf_get_u32 (const OlGguf *g, const char *key, guint32 *out, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_UINT32, 0, error);
  if (kv != NULL)
    *out = rd_u32 (kv->value.data);
  return kv != NULL;
}

gboolean
ol_gguf_get_i32 (const OlGguf *g, const char *key, gint32 *out, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_INT32, 0, error);
  if (kv != NULL)
    *out = (gint32) rd_u32 (kv->value.data);
  return kv != NULL;
}

gboolean
ol_gguf_get_u64 (const OlGguf *g, const char *key, guint64 *out, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_UINT64, 0, error);
  if (kv != NULL)
    *out = rd_u64 (kv->value.data);
  return kv != NULL;
}

gboolean
ol_gguf_get_f32 (const OlGguf *g, const char *key, float *out, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_FLOAT32, 0, error);
  if (kv != NULL) {
    guint32 bits = rd_u32 (kv->value.data);
    memcpy (out, &bits, 4);
  }
  return kv != NULL;
}

gboolean
ol_gguf_get_bool (const OlGguf *g, const char *key, gboolean *out, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_BOOL, 0, error);
  if (kv != NULL)
    *out = kv->value.data[0] != 0;
  return kv != NULL;
}

gboolean
ol_gguf_get_string (const OlGguf *g, const char *key, const char **out, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_STRING, 0, error);
  if (kv != NULL)
    *out = kv->str;
  return kv != NULL;
}

gboolean
ol_gguf_get_string_array (const OlGguf *g, const char *key, const char *const **out, gsize *n, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_ARRAY, OL_GGUF_TYPE_STRING, error);
  if (kv != NULL) {
    *out = kv->strv;
    *n = kv->value.n;
  }
  return kv != NULL;
}

/* 4-byte arrays, copied out of the (possibly unaligned) file bytes. */
static gboolean
get_array32 (const OlGguf *g, const char *key, OlGgufType elem, void **out, gsize *n, GError **error)
{
  const Kv *kv = typed_kv (g, key, OL_GGUF_TYPE_ARRAY, elem, error);
  if (kv == NULL)
    return FALSE;
  guint32 *a = g_new (guint32, MAX (kv->value.n, 1));
  for (guint64 i = 0; i < kv->value.n; i++)
    a[i] = rd_u32 (kv->value.data + 4 * i);
  *out = a;
  *n = kv->value.n;
  return TRUE;
}

gboolean
ol_gguf_get_f32_array (const OlGguf *g, const char *key, float **out, gsize *n, GError **error)
{
  return get_array32 (g, key, OL_GGUF_TYPE_FLOAT32, (void **) out, n, error);
}

gboolean
ol_gguf_get_i32_array (const OlGguf *g, const char *key, gint32 **out, gsize *n, GError **error)
{
  return get_array32 (g, key, OL_GGUF_TYPE_INT32, (void **) out, n, error);
}

gsize
ol_gguf_n_tensors (const OlGguf *g)
{
  return g->n_tensors;
}

const OlGgufTensor *
ol_gguf_tensor (const OlGguf *g, gsize i)
{
  g_return_val_if_fail (i < g->n_tensors, NULL);
  return &g->tensors[i];
}

const OlGgufTensor *
ol_gguf_find_tensor (const OlGguf *g, const char *name)
{
  g_return_val_if_fail (g != NULL && name != NULL, NULL);
  gsize i = GPOINTER_TO_SIZE (g_hash_table_lookup (g->tensor_index, name));
  return i == 0 ? NULL : &g->tensors[i - 1];
}

void
ol_gguf_drop_pages (const OlGguf *g, const OlGgufTensor *t)
{
  g_return_if_fail (g != NULL && t != NULL);
  if (g->map == NULL || t->n_bytes == 0)
    return;
  /* a private read-only file mapping: dropped pages are read back from the file on access */
  guintptr page = sysconf (_SC_PAGESIZE);
  guintptr start = (guintptr) t->data - (guintptr) t->data % page;
  madvise ((void *) start, (guintptr) t->data + t->n_bytes - start, MADV_DONTNEED);
}

/* ---- writer ---- */

typedef struct {
  char *key;
  OlGgufType type;
  GBytes *payload;          /* the encoding after the type id */
} WriterKv;

typedef struct {
  char *name;
  OlType type;
  guint n_dims;
  gint64 ne[OL_GGUF_MAX_DIMS];
  guint64 n_bytes;
  guint64 offset;
  const void *data;
  OlGgufFillFunc fill;
  gpointer user_data;
} WriterTensor;

struct _OlGgufWriter {
  GArray *kvs;              /* WriterKv */
  GHashTable *kv_index;     /* key -> index + 1 */
  GPtrArray *tensors;       /* WriterTensor */
  GHashTable *tensor_names;
  guint32 alignment;
};

static void
writer_kv_clear (gpointer p)
{
  WriterKv *kv = p;
  g_free (kv->key);
  g_bytes_unref (kv->payload);
}

static void
writer_tensor_free (gpointer p)
{
  WriterTensor *t = p;
  g_free (t->name);
  g_free (t);
}

OlGgufWriter *
ol_gguf_writer_new (void)
{
  OlGgufWriter *w = g_new0 (OlGgufWriter, 1);
  w->kvs = g_array_new (FALSE, TRUE, sizeof (WriterKv));
  g_array_set_clear_func (w->kvs, writer_kv_clear);
  w->kv_index = g_hash_table_new (g_str_hash, g_str_equal);
  w->tensors = g_ptr_array_new_with_free_func (writer_tensor_free);
  w->tensor_names = g_hash_table_new (g_str_hash, g_str_equal);
  w->alignment = OL_GGUF_DEFAULT_ALIGNMENT;
  return w;
}

void
ol_gguf_writer_free (OlGgufWriter *w)
{
  if (w == NULL)
    return;
  g_hash_table_unref (w->kv_index);
  g_array_unref (w->kvs);
  g_hash_table_unref (w->tensor_names);
  g_ptr_array_unref (w->tensors);
  g_free (w);
}

static void
set_payload (OlGgufWriter *w, const char *key, OlGgufType type, GBytes *payload)
{
  g_return_if_fail (w != NULL && key != NULL && *key != '\0');
  gsize i = GPOINTER_TO_SIZE (g_hash_table_lookup (w->kv_index, key));
  if (i != 0) {
    WriterKv *kv = &g_array_index (w->kvs, WriterKv, i - 1);
    g_bytes_unref (kv->payload);
    kv->type = type;
    kv->payload = payload;
    return;
  }
  WriterKv kv = { g_strdup (key), type, payload };
  g_array_append_val (w->kvs, kv);
  g_hash_table_insert (w->kv_index, g_array_index (w->kvs, WriterKv, w->kvs->len - 1).key,
                       GSIZE_TO_POINTER (w->kvs->len));
}

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
put_string (GByteArray *b, const char *s, gsize len)
{
  put_u64 (b, len);
  g_byte_array_append (b, (const guint8 *) s, len);
}

/* Appends n host-order elements of a fixed-size type in little-endian order. */
static void
put_elems (GByteArray *b, OlGgufType type, const void *elems, gsize n)
{
  int size = fixed_size (type);
  const guint8 *p = elems;
  for (gsize i = 0; i < n; i++, p += size) {
    guint8 le[8];
    for (int j = 0; j < size; j++)
      le[j] = G_BYTE_ORDER == G_LITTLE_ENDIAN ? p[j] : p[size - 1 - j];
    g_byte_array_append (b, le, size);
  }
}

static void
set_scalar (OlGgufWriter *w, const char *key, OlGgufType type, const void *v)
{
  GByteArray *b = g_byte_array_new ();
  put_elems (b, type, v, 1);
  set_payload (w, key, type, g_byte_array_free_to_bytes (b));
}

void
ol_gguf_writer_set_u8 (OlGgufWriter *w, const char *key, guint8 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_UINT8, &v);
}

void
ol_gguf_writer_set_i8 (OlGgufWriter *w, const char *key, gint8 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_INT8, &v);
}

void
ol_gguf_writer_set_u16 (OlGgufWriter *w, const char *key, guint16 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_UINT16, &v);
}

void
ol_gguf_writer_set_i16 (OlGgufWriter *w, const char *key, gint16 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_INT16, &v);
}

void
ol_gguf_writer_set_u32 (OlGgufWriter *w, const char *key, guint32 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_UINT32, &v);
}

void
ol_gguf_writer_set_i32 (OlGgufWriter *w, const char *key, gint32 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_INT32, &v);
}

void
ol_gguf_writer_set_u64 (OlGgufWriter *w, const char *key, guint64 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_UINT64, &v);
}

void
ol_gguf_writer_set_i64 (OlGgufWriter *w, const char *key, gint64 v)
{
  set_scalar (w, key, OL_GGUF_TYPE_INT64, &v);
}

void
ol_gguf_writer_set_f32 (OlGgufWriter *w, const char *key, float v)
{
  set_scalar (w, key, OL_GGUF_TYPE_FLOAT32, &v);
}

void
ol_gguf_writer_set_f64 (OlGgufWriter *w, const char *key, double v)
{
  set_scalar (w, key, OL_GGUF_TYPE_FLOAT64, &v);
}

void
ol_gguf_writer_set_bool (OlGgufWriter *w, const char *key, gboolean v)
{
  guint8 b = v ? 1 : 0;
  set_scalar (w, key, OL_GGUF_TYPE_BOOL, &b);
}

void
ol_gguf_writer_set_string (OlGgufWriter *w, const char *key, const char *v)
{
  g_return_if_fail (v != NULL);
  GByteArray *b = g_byte_array_new ();
  put_string (b, v, strlen (v));
  set_payload (w, key, OL_GGUF_TYPE_STRING, g_byte_array_free_to_bytes (b));
}

void
ol_gguf_writer_set_array (OlGgufWriter *w, const char *key, OlGgufType elem_type, const void *elems, gsize n)
{
  g_return_if_fail (fixed_size (elem_type) > 0);
  g_return_if_fail (elems != NULL || n == 0);
  GByteArray *b = g_byte_array_new ();
  put_u32 (b, elem_type);
  put_u64 (b, n);
  put_elems (b, elem_type, elems, n);
  set_payload (w, key, OL_GGUF_TYPE_ARRAY, g_byte_array_free_to_bytes (b));
}

void
ol_gguf_writer_set_string_array (OlGgufWriter *w, const char *key, const char *const *strs, gsize n)
{
  g_return_if_fail (strs != NULL || n == 0);
  GByteArray *b = g_byte_array_new ();
  put_u32 (b, OL_GGUF_TYPE_STRING);
  put_u64 (b, n);
  for (gsize i = 0; i < n; i++)
    put_string (b, strs[i], strlen (strs[i]));
  set_payload (w, key, OL_GGUF_TYPE_ARRAY, g_byte_array_free_to_bytes (b));
}

void
ol_gguf_writer_set_value (OlGgufWriter *w, const char *key, const OlGgufValue *value)
{
  g_return_if_fail (value != NULL && fixed_size (value->type) >= 0);
  GByteArray *b = g_byte_array_new ();
  if (value->type == OL_GGUF_TYPE_STRING) {
    put_u64 (b, value->size);
  } else if (value->type == OL_GGUF_TYPE_ARRAY) {
    put_u32 (b, value->elem_type);
    put_u64 (b, value->n);
  }
  g_byte_array_append (b, value->data, value->size);
  set_payload (w, key, value->type, g_byte_array_free_to_bytes (b));
}

void
ol_gguf_writer_set_alignment (OlGgufWriter *w, guint32 alignment)
{
  g_return_if_fail (alignment != 0 && (alignment & (alignment - 1)) == 0);
  w->alignment = alignment;
  ol_gguf_writer_set_u32 (w, "general.alignment", alignment);
}

static WriterTensor *
new_tensor (OlGgufWriter *w, const char *name, OlType type, guint n_dims, const gint64 *ne, GError **error)
{
  g_return_val_if_fail (w != NULL && name != NULL && ne != NULL, NULL);
  if (*name == '\0' || g_hash_table_contains (w->tensor_names, name)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "tensor name '%s' is empty or already used", name);
    return NULL;
  }
  if (!ol_type_is_valid (type) || n_dims == 0 || n_dims > OL_GGUF_MAX_DIMS) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "tensor '%s': type %u with %u dimensions",
                 name, type, n_dims);
    return NULL;
  }
  WriterTensor *t = g_new0 (WriterTensor, 1);
  guint64 rows = 1;
  for (guint d = 0; d < OL_GGUF_MAX_DIMS; d++) {
    t->ne[d] = d < n_dims ? ne[d] : 1;
    if (t->ne[d] < 0 || (d > 0 && t->ne[d] != 0 && rows > G_MAXUINT64 / (guint64) t->ne[d])) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "tensor '%s': dimension %u is out of range",
                   name, d);
      g_free (t);
      return NULL;
    }
    if (d > 0)
      rows *= t->ne[d];
  }
  guint64 row_bytes;
  if (!ol_type_row_bytes (type, t->ne[0], &row_bytes, error)) {
    g_prefix_error (error, "tensor '%s': ", name);
    g_free (t);
    return NULL;
  }
  if (row_bytes != 0 && rows > G_MAXUINT64 / row_bytes) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "tensor '%s': size overflows", name);
    g_free (t);
    return NULL;
  }
  t->name = g_strdup (name);
  t->type = type;
  t->n_dims = n_dims;
  t->n_bytes = row_bytes * rows;
  g_ptr_array_add (w->tensors, t);
  g_hash_table_add (w->tensor_names, t->name);
  return t;
}

gboolean
ol_gguf_writer_add_tensor (OlGgufWriter *w, const char *name, OlType type, guint n_dims, const gint64 *ne,
                           const void *data, GError **error)
{
  WriterTensor *t = new_tensor (w, name, type, n_dims, ne, error);
  if (t != NULL)
    t->data = data;
  return t != NULL;
}

gboolean
ol_gguf_writer_add_tensor_func (OlGgufWriter *w, const char *name, OlType type, guint n_dims, const gint64 *ne,
                                OlGgufFillFunc fill, gpointer user_data, GError **error)
{
  g_return_val_if_fail (fill != NULL, FALSE);
  WriterTensor *t = new_tensor (w, name, type, n_dims, ne, error);
  if (t != NULL) {
    t->fill = fill;
    t->user_data = user_data;
  }
  return t != NULL;
}

static guint64
pad_to (guint64 n, guint32 alignment)
{
  return (alignment - n % alignment) % alignment;
}

static gboolean
write_all (FILE *f, const void *p, gsize n, const char *path, GError **error)
{
  if (n > 0 && fwrite (p, 1, n, f) != n) {
    int e = errno;
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot write %s: %s", path, g_strerror (e));
    return FALSE;
  }
  return TRUE;
}

static gboolean
write_padding (FILE *f, guint64 n, const char *path, GError **error)
{
  static const guint8 zeros[256];
  while (n > 0) {
    gsize k = MIN (n, sizeof zeros);
    if (!write_all (f, zeros, k, path, error))
      return FALSE;
    n -= k;
  }
  return TRUE;
}

static gboolean
write_file (OlGgufWriter *w, FILE *f, const char *path, GError **error)
{
  GByteArray *head = g_byte_array_new ();
  g_byte_array_append (head, (const guint8 *) GGUF_MAGIC, 4);
  put_u32 (head, OL_GGUF_VERSION);
  put_u64 (head, w->tensors->len);
  put_u64 (head, w->kvs->len);
  for (guint i = 0; i < w->kvs->len; i++) {
    const WriterKv *kv = &g_array_index (w->kvs, WriterKv, i);
    put_string (head, kv->key, strlen (kv->key));
    put_u32 (head, kv->type);
    gsize size;
    const guint8 *p = g_bytes_get_data (kv->payload, &size);
    g_byte_array_append (head, p, size);
  }
  guint64 offset = 0;
  for (guint i = 0; i < w->tensors->len; i++) {
    WriterTensor *t = w->tensors->pdata[i];
    put_string (head, t->name, strlen (t->name));
    put_u32 (head, t->n_dims);
    for (guint d = 0; d < t->n_dims; d++)
      put_u64 (head, t->ne[d]);
    put_u32 (head, t->type);
    put_u64 (head, offset);
    t->offset = offset;
    offset += t->n_bytes + pad_to (t->n_bytes, w->alignment);
  }
  gboolean ok = write_all (f, head->data, head->len, path, error)
    && write_padding (f, pad_to (head->len, w->alignment), path, error);
  g_byte_array_unref (head);

  for (guint i = 0; ok && i < w->tensors->len; i++) {
    WriterTensor *t = w->tensors->pdata[i];
    if (t->fill != NULL) {
      void *buf = g_try_malloc (MAX (t->n_bytes, 1));
      if (buf == NULL) {
        g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY, "no memory for the %" G_GUINT64_FORMAT
                     " bytes of tensor '%s'", t->n_bytes, t->name);
        return FALSE;
      }
      ok = t->fill (buf, t->n_bytes, t->user_data, error) && write_all (f, buf, t->n_bytes, path, error);
      g_free (buf);
    } else {
      ok = write_all (f, t->data, t->n_bytes, path, error);
    }
    ok = ok && write_padding (f, pad_to (t->n_bytes, w->alignment), path, error);
  }
  return ok;
}

gboolean
ol_gguf_writer_write (OlGgufWriter *w, const char *path, GError **error)
{
  g_return_val_if_fail (w != NULL && path != NULL, FALSE);
  g_autofree char *tmp = g_strdup_printf ("%s.XXXXXX", path);
  int fd = g_mkstemp (tmp);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot create %s: %s", tmp, g_strerror (e));
    return FALSE;
  }
  /* mkstemp makes the file private; a model is an ordinary readable file */
  fchmod (fd, 0644);
  FILE *f = fdopen (fd, "wb");
  if (f == NULL) {
    int e = errno;
    close (fd);
    g_unlink (tmp);
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot write %s: %s", tmp, g_strerror (e));
    return FALSE;
  }
  gboolean ok = write_file (w, f, tmp, error);
  if (ok && (fflush (f) != 0 || fsync (fileno (f)) != 0)) {
    int e = errno;
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot write %s: %s", tmp, g_strerror (e));
    ok = FALSE;
  }
  if (fclose (f) != 0 && ok) {
    int e = errno;
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot write %s: %s", tmp, g_strerror (e));
    ok = FALSE;
  }
  if (ok && g_rename (tmp, path) != 0) {
    int e = errno;
    g_set_error (error, OL_ERROR, OL_ERROR_IO, "cannot rename %s to %s: %s", tmp, path, g_strerror (e));
    ok = FALSE;
  }
  if (!ok)
    g_unlink (tmp);
  return ok;
}
