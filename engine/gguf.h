/* GGUF v3 model files: a validating reader over a mapped file, and a writer. */
#pragma once

#include <glib.h>
#include "error.h"
#include "types.h"

G_BEGIN_DECLS

/* Metadata value types, with the ids the GGUF format gives them. */
typedef enum {
  OL_GGUF_TYPE_UINT8 = 0,
  OL_GGUF_TYPE_INT8 = 1,
  OL_GGUF_TYPE_UINT16 = 2,
  OL_GGUF_TYPE_INT16 = 3,
  OL_GGUF_TYPE_UINT32 = 4,
  OL_GGUF_TYPE_INT32 = 5,
  OL_GGUF_TYPE_FLOAT32 = 6,
  OL_GGUF_TYPE_BOOL = 7,
  OL_GGUF_TYPE_STRING = 8,
  OL_GGUF_TYPE_ARRAY = 9,
  OL_GGUF_TYPE_UINT64 = 10,
  OL_GGUF_TYPE_INT64 = 11,
  OL_GGUF_TYPE_FLOAT64 = 12,
} OlGgufType;

#define OL_GGUF_VERSION 3
#define OL_GGUF_DEFAULT_ALIGNMENT 32
#define OL_GGUF_MAX_DIMS 4
/* Arrays of arrays deeper than this are rejected as hostile (the format sets no limit). */
#define OL_GGUF_MAX_ARRAY_DEPTH 8

/* "u32", "string", "array", ... */
OL_API const char *ol_gguf_type_name (OlGgufType type);

/* A metadata value as it lies in the file. data/size span the encoded payload after the type id:
 * the scalar's bytes, a string's bytes (no length prefix, not NUL-terminated), or an array's
 * elements (after its element type and count). Multi-byte values are little-endian and may be
 * unaligned. For arrays, elem_type and n (element count) are set; for strings n is the length. */
typedef struct {
  OlGgufType type;
  OlGgufType elem_type;
  guint64 n;
  const guint8 *data;
  gsize size;
} OlGgufValue;

/* Element i of an array value (walks the array, so O(i) for arrays of strings or arrays). */
OL_API gboolean ol_gguf_value_array_item (const OlGgufValue *array, guint64 i, OlGgufValue *item);

/* A tensor: a view into the file. ne[0] is the innermost dimension (GGML order, the reverse of a
 * torch shape); dims beyond n_dims are 1. offset is relative to the data section. */
typedef struct {
  const char *name;
  OlType type;
  guint n_dims;
  gint64 ne[OL_GGUF_MAX_DIMS];
  guint64 offset;
  const void *data;
  guint64 n_bytes;
} OlGgufTensor;

OL_API gint64 ol_gguf_tensor_n_elements (const OlGgufTensor *t);

typedef struct _OlGguf OlGguf;

/* Maps and validates the whole file. OL_ERROR_IO if it cannot be read, OL_ERROR_CORRUPT_FILE for a
 * malformed, truncated or inconsistent file, OL_ERROR_UNSUPPORTED for a well-formed file with a
 * GGML tensor type libonellm does not read (K-quants, ...). Messages name the file and the problem. */
OL_API OlGguf *ol_gguf_open (const char *path, GError **error);
/* The same over bytes in memory, which must outlive the result (referenced, not copied). */
OL_API OlGguf *ol_gguf_open_bytes (GBytes *bytes, GError **error);
OL_API void ol_gguf_free (OlGguf *gguf);

OL_API guint32 ol_gguf_version (const OlGguf *gguf);
OL_API guint64 ol_gguf_file_size (const OlGguf *gguf);
OL_API guint32 ol_gguf_alignment (const OlGguf *gguf);
OL_API guint64 ol_gguf_data_offset (const OlGguf *gguf);

/* Metadata, in file order. */
OL_API gsize ol_gguf_n_keys (const OlGguf *gguf);
OL_API const char *ol_gguf_key (const OlGguf *gguf, gsize i);
OL_API gboolean ol_gguf_has_key (const OlGguf *gguf, const char *key);
/* A missing key is OL_ERROR_CORRUPT_FILE "FILE: missing key 'K'". */
OL_API gboolean ol_gguf_get_value (const OlGguf *gguf, const char *key, OlGgufValue *value, GError **error);

/* Typed getters: the key must exist with exactly this type, else OL_ERROR_CORRUPT_FILE naming the
 * key and both types. Strings are NUL-terminated copies owned by the OlGguf (bytes after an
 * embedded NUL are not visible through them; ol_gguf_get_value gives the raw bytes). */
OL_API gboolean ol_gguf_get_u32 (const OlGguf *gguf, const char *key, guint32 *out, GError **error);
OL_API gboolean ol_gguf_get_i32 (const OlGguf *gguf, const char *key, gint32 *out, GError **error);
OL_API gboolean ol_gguf_get_u64 (const OlGguf *gguf, const char *key, guint64 *out, GError **error);
OL_API gboolean ol_gguf_get_f32 (const OlGguf *gguf, const char *key, float *out, GError **error);
OL_API gboolean ol_gguf_get_bool (const OlGguf *gguf, const char *key, gboolean *out, GError **error);
OL_API gboolean ol_gguf_get_string (const OlGguf *gguf, const char *key, const char **out, GError **error);
/* Arrays: strings are borrowed (n entries, owned by the OlGguf); numbers are copied into a new
 * array the caller frees with g_free. */
OL_API gboolean ol_gguf_get_string_array (const OlGguf *gguf, const char *key, const char *const **out,
                                          gsize *n, GError **error);
OL_API gboolean ol_gguf_get_f32_array (const OlGguf *gguf, const char *key, float **out, gsize *n,
                                       GError **error);
OL_API gboolean ol_gguf_get_i32_array (const OlGguf *gguf, const char *key, gint32 **out, gsize *n,
                                       GError **error);

/* Tensors, in file order. */
OL_API gsize ol_gguf_n_tensors (const OlGguf *gguf);
OL_API const OlGgufTensor *ol_gguf_tensor (const OlGguf *gguf, gsize i);
/* NULL if absent. */
OL_API const OlGgufTensor *ol_gguf_find_tensor (const OlGguf *gguf, const char *name);

/* Lets the kernel drop the pages of the mapped file that hold the tensor (once it has been uploaded
 * or converted), so that resident memory does not grow to the size of the model. The data stays
 * readable: it is read from the file again if touched. Does nothing for ol_gguf_open_bytes. */
OL_API void ol_gguf_drop_pages (const OlGguf *gguf, const OlGgufTensor *tensor);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OlGguf, ol_gguf_free)

/* Writer: collects metadata and tensors, then writes the file in one go to a temporary name beside
 * the target and renames it, so a reader never sees a half-written model. Setting a key that
 * exists replaces its value in place. Tensor data is not copied: it must stay valid until
 * ol_gguf_writer_write returns, or it is produced at write time by a fill function. */
typedef struct _OlGgufWriter OlGgufWriter;

OL_API OlGgufWriter *ol_gguf_writer_new (void);
OL_API void ol_gguf_writer_free (OlGgufWriter *w);

/* A power of two; also recorded as general.alignment. */
OL_API void ol_gguf_writer_set_alignment (OlGgufWriter *w, guint32 alignment);

OL_API void ol_gguf_writer_set_u8 (OlGgufWriter *w, const char *key, guint8 v);
OL_API void ol_gguf_writer_set_i8 (OlGgufWriter *w, const char *key, gint8 v);
OL_API void ol_gguf_writer_set_u16 (OlGgufWriter *w, const char *key, guint16 v);
OL_API void ol_gguf_writer_set_i16 (OlGgufWriter *w, const char *key, gint16 v);
OL_API void ol_gguf_writer_set_u32 (OlGgufWriter *w, const char *key, guint32 v);
OL_API void ol_gguf_writer_set_i32 (OlGgufWriter *w, const char *key, gint32 v);
OL_API void ol_gguf_writer_set_u64 (OlGgufWriter *w, const char *key, guint64 v);
OL_API void ol_gguf_writer_set_i64 (OlGgufWriter *w, const char *key, gint64 v);
OL_API void ol_gguf_writer_set_f32 (OlGgufWriter *w, const char *key, float v);
OL_API void ol_gguf_writer_set_f64 (OlGgufWriter *w, const char *key, double v);
OL_API void ol_gguf_writer_set_bool (OlGgufWriter *w, const char *key, gboolean v);
OL_API void ol_gguf_writer_set_string (OlGgufWriter *w, const char *key, const char *v);
/* n elements of a fixed-size type (not string, not array), in host order. */
OL_API void ol_gguf_writer_set_array (OlGgufWriter *w, const char *key, OlGgufType elem_type,
                                      const void *elems, gsize n);
OL_API void ol_gguf_writer_set_string_array (OlGgufWriter *w, const char *key, const char *const *strs,
                                             gsize n);
/* Any value in its file encoding (as ol_gguf_get_value returns it): copies metadata between files,
 * arrays of arrays included. */
OL_API void ol_gguf_writer_set_value (OlGgufWriter *w, const char *key, const OlGgufValue *value);

/* OL_ERROR_INVALID_ARGUMENT for a duplicate name, a bad shape or a row length the type cannot hold. */
OL_API gboolean ol_gguf_writer_add_tensor (OlGgufWriter *w, const char *name, OlType type, guint n_dims,
                                           const gint64 *ne, const void *data, GError **error);
/* Fills dst (n_bytes, the tensor's size) with the tensor's data when the file is written. */
typedef gboolean (*OlGgufFillFunc) (void *dst, guint64 n_bytes, gpointer user_data, GError **error);
OL_API gboolean ol_gguf_writer_add_tensor_func (OlGgufWriter *w, const char *name, OlType type, guint n_dims,
                                                const gint64 *ne, OlGgufFillFunc fill, gpointer user_data,
                                                GError **error);

/* OL_ERROR_IO if the file cannot be written; errors of fill functions are passed on. */
OL_API gboolean ol_gguf_writer_write (OlGgufWriter *w, const char *path, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (OlGgufWriter, ol_gguf_writer_free)

G_END_DECLS
