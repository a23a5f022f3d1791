/* Tensors: allocation, views and host transfers with conversion. */
#include "tensor.h"

#include <string.h>

static gboolean
shape_bytes (OlType type, guint n_dims, const gint64 *ne, guint64 *bytes, GError **error)
{
  if (n_dims == 0 || n_dims > OL_MAX_DIMS) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "tensors have 1 to %d dimensions, not %u",
                 OL_MAX_DIMS, n_dims);
    return FALSE;
  }
  guint64 rows = 1;
  for (guint i = 0; i < n_dims; i++) {
    if (ne[i] <= 0 || ne[i] > (gint64) G_MAXINT32) {
      g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "dimension %u of size %" G_GINT64_FORMAT
                   " is out of range", i, ne[i]);
      return FALSE;
    }
    if (i > 0) {
      if (rows > G_MAXUINT64 / (guint64) ne[i])
        goto overflow;
      rows *= ne[i];
    }
  }
  guint64 row;
  if (!ol_type_row_bytes (type, ne[0], &row, error))
    return FALSE;
  if (row != 0 && rows > G_MAXUINT64 / row)
    goto overflow;
  *bytes = row * rows;
  return TRUE;

overflow:
  g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "tensor size overflows");
  return FALSE;
}

OlTensor *
ol_tensor_new (OlDevice *dev, OlType type, guint n_dims, const gint64 *ne, OlMemoryKind kind, GError **error)
{
  guint64 bytes;
  if (!shape_bytes (type, n_dims, ne, &bytes, error))
    return NULL;
  OlBuffer *buf = ol_buffer_new (dev, bytes, kind, error);
  if (buf == NULL)
    return NULL;
  OlTensor *t = g_new0 (OlTensor, 1);
  t->buffer = buf;
  t->type = type;
  t->n_dims = n_dims;
  for (guint i = 0; i < OL_MAX_DIMS; i++)
    t->ne[i] = i < n_dims ? ne[i] : 1;
  t->owns_buffer = TRUE;
  return t;
}

void
ol_tensor_free (OlTensor *t)
{
  if (t == NULL)
    return;
  g_return_if_fail (t->owns_buffer);
  ol_buffer_free (t->buffer);
  g_free (t);
}

gint64
ol_tensor_n_rows (const OlTensor *t)
{
  return t->ne[1] * t->ne[2] * t->ne[3];
}

gint64
ol_tensor_n_elements (const OlTensor *t)
{
  return t->ne[0] * ol_tensor_n_rows (t);
}

guint64
ol_tensor_row_bytes (const OlTensor *t)
{
  return (guint64) t->ne[0] / ol_type_block_size (t->type) * ol_type_block_bytes (t->type);
}

guint64
ol_tensor_n_bytes (const OlTensor *t)
{
  return ol_tensor_row_bytes (t) * (guint64) ol_tensor_n_rows (t);
}

gboolean
ol_tensor_same_shape (const OlTensor *a, const OlTensor *b)
{
  for (int i = 0; i < OL_MAX_DIMS; i++)
    if (a->ne[i] != b->ne[i])
      return FALSE;
  return TRUE;
}

char *
ol_tensor_describe (const OlTensor *t)
{
  GString *s = g_string_new (ol_type_name (t->type));
  g_string_append_c (s, '[');
  for (guint i = 0; i < MAX (t->n_dims, 1); i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->ne[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

OlTensor
ol_tensor_reshape (const OlTensor *t, guint n_dims, const gint64 *ne)
{
  OlTensor v = *t;
  v.owns_buffer = FALSE;
  v.n_dims = n_dims;
  gint64 n = 1;
  for (guint i = 0; i < OL_MAX_DIMS; i++) {
    v.ne[i] = i < n_dims ? ne[i] : 1;
    n *= v.ne[i];
  }
  g_return_val_if_fail (n == ol_tensor_n_elements (t) && v.ne[0] % ol_type_block_size (t->type) == 0, *t);
  /* the device layout of such a type is per row */
  g_return_val_if_fail (!ol_type_has_device_layout (t->type) || v.ne[0] == t->ne[0], *t);
  return v;
}

OlTensor
ol_tensor_rows (const OlTensor *t, gint64 first, gint64 count)
{
  g_return_val_if_fail (first >= 0 && count > 0 && first + count <= ol_tensor_n_rows (t), *t);
  OlTensor v = *t;
  v.owns_buffer = FALSE;
  v.offset += (guint64) first * ol_tensor_row_bytes (t);
  v.n_dims = 2;
  v.ne[1] = count;
  v.ne[2] = v.ne[3] = 1;
  return v;
}

/* Host bytes converted to or from a type's device layout (types.h) a batch of rows at a time, so that
 * the copy in between stays small next to the tensor. Writes when src is given, else reads into dst. */
#define CONVERT_BATCH_BYTES (1u << 20)

static gboolean
transfer (const OlTensor *t, const guint8 *src, guint8 *dst, GError **error)
{
  guint64 bytes = ol_tensor_n_bytes (t);
  if (!ol_type_has_device_layout (t->type))
    return src ? ol_buffer_write (t->buffer, t->offset, src, bytes, error)
               : ol_buffer_read (t->buffer, t->offset, dst, bytes, error);
  guint64 row = ol_tensor_row_bytes (t), rows = ol_tensor_n_rows (t);
  guint64 batch = MIN (rows, MAX (1, CONVERT_BATCH_BYTES / row));
  g_autofree guint8 *tmp = g_try_malloc (batch * row);
  if (tmp == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY, "out of host memory");
    return FALSE;
  }
  for (guint64 r = 0; r < rows; r += batch) {
    guint64 n = MIN (batch, rows - r), offset = t->offset + r * row;
    if (src) {
      ol_type_to_device (t->type, src + r * row, tmp, n, t->ne[0]);
      if (!ol_buffer_write (t->buffer, offset, tmp, n * row, error))
        return FALSE;
    } else {
      if (!ol_buffer_read (t->buffer, offset, tmp, n * row, error))
        return FALSE;
      ol_type_from_device (t->type, tmp, dst + r * row, n, t->ne[0]);
    }
  }
  return TRUE;
}

gboolean
ol_tensor_write (OlTensor *t, const void *data, GError **error)
{
  return transfer (t, data, NULL, error);
}

gboolean
ol_tensor_read (const OlTensor *t, void *data, GError **error)
{
  return transfer (t, NULL, data, error);
}

gboolean
ol_tensor_write_f32 (OlTensor *t, const float *data, GError **error)
{
  if (t->type == OL_TYPE_F32)
    return ol_tensor_write (t, data, error);
  g_autofree void *tmp = g_try_malloc (ol_tensor_n_bytes (t));
  if (tmp == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY, "out of host memory");
    return FALSE;
  }
  ol_type_quantize (t->type, data, tmp, ol_tensor_n_elements (t));
  return ol_tensor_write (t, tmp, error);
}

gboolean
ol_tensor_read_f32 (const OlTensor *t, float *data, GError **error)
{
  if (t->type == OL_TYPE_F32)
    return ol_tensor_read (t, data, error);
  g_autofree void *tmp = g_try_malloc (ol_tensor_n_bytes (t));
  if (tmp == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_OUT_OF_MEMORY, "out of host memory");
    return FALSE;
  }
  if (!ol_tensor_read (t, tmp, error))
    return FALSE;
  ol_type_dequantize (t->type, tmp, data, ol_tensor_n_elements (t));
  return TRUE;
}
