/* Tensors: a typed, shaped, contiguous region of a device buffer. */
#pragma once

#include <glib.h>
#include "memory.h"
#include "types.h"

G_BEGIN_DECLS

#define OL_MAX_DIMS 4

/* A tensor is a view: buffer + byte offset + type + shape, contiguous with ne[0] the innermost
 * dimension (ggml's order, as in GGUF files). It is a plain value so that forward passes can make
 * views of rows and reshapes freely; only tensors from ol_tensor_new own their buffer. */
typedef struct {
  OlBuffer *buffer;
  guint64 offset;
  OlType type;
  guint n_dims;
  gint64 ne[OL_MAX_DIMS];
  gboolean owns_buffer;
} OlTensor;

/* Allocates a tensor (dims beyond n_dims are 1). Sizes are checked for overflow and block multiples. */
OL_API OlTensor *ol_tensor_new (OlDevice *dev, OlType type, guint n_dims, const gint64 *ne,
                                OlMemoryKind kind, GError **error);
OL_API void ol_tensor_free (OlTensor *t);

OL_API gint64 ol_tensor_n_elements (const OlTensor *t);
OL_API gint64 ol_tensor_n_rows (const OlTensor *t);      /* ne[1]*ne[2]*ne[3] */
OL_API guint64 ol_tensor_row_bytes (const OlTensor *t);
OL_API guint64 ol_tensor_n_bytes (const OlTensor *t);
OL_API gboolean ol_tensor_same_shape (const OlTensor *a, const OlTensor *b);
/* "f32[1024, 257]" style description, for error messages. */
OL_API char *ol_tensor_describe (const OlTensor *t);

/* Views share the buffer and never own it. A reshape keeps the row length of a tensor whose type has a
 * device layout (Q8_0, Q4_0: per row, types.h). */
OL_API OlTensor ol_tensor_reshape (const OlTensor *t, guint n_dims, const gint64 *ne);
/* Rows [first, first+count) of the tensor seen as a matrix of ol_tensor_n_rows rows. */
OL_API OlTensor ol_tensor_rows (const OlTensor *t, gint64 first, gint64 count);

/* Raw bytes in the tensor's own type, in the file's (llama.cpp's) block layout: Q8_0 and Q4_0 rows are
 * converted to and from their device layout (types.h) on the way. */
OL_API gboolean ol_tensor_write (OlTensor *t, const void *data, GError **error);
OL_API gboolean ol_tensor_read (const OlTensor *t, void *data, GError **error);
/* Converting from/to F32 through the type's reference (de)quantizer. */
OL_API gboolean ol_tensor_write_f32 (OlTensor *t, const float *data, GError **error);
OL_API gboolean ol_tensor_read_f32 (const OlTensor *t, float *data, GError **error);

G_END_DECLS
