/* NumPy .npy files: read any little-endian numeric array as F32, write F32 arrays. */
#pragma once

#include <glib.h>
#include "error.h"

G_BEGIN_DECLS

#define OL_NPY_MAX_DIMS 8

/* Parses a whole .npy file held in memory (format versions 1, 2 and 3). Element types f2, f4, f8, i1, i2,
 * i4, i8, u1, u2, u4, u8 and b1 are converted to F32 (integers beyond 2^24 lose precision);
 * Fortran-ordered arrays are transposed to C order. Returns a new array with as many floats as the shape
 * holds (at least one allocated element even for an empty array), or NULL with OL_ERROR_CORRUPT_FILE for a
 * malformed header or a size mismatch and OL_ERROR_UNSUPPORTED for big-endian, complex, string or object
 * arrays. */
OL_API float *ol_npy_parse (const guint8 *bytes, gsize size, guint *n_dims, gint64 shape[OL_NPY_MAX_DIMS],
                            GError **error);

/* Reads and parses a file (OL_ERROR_IO if it cannot be read). */
OL_API float *ol_npy_read (const char *path, guint *n_dims, gint64 shape[OL_NPY_MAX_DIMS], GError **error);

/* Writes a C-ordered little-endian F32 array ('<f4'), format version 1 (2 if the header needs it). */
OL_API gboolean ol_npy_write (const char *path, const float *data, guint n_dims, const gint64 *shape,
                              GError **error);

G_END_DECLS
