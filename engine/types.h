/* Tensor element types: the one place on the host that knows their ids, block layouts and conversions. */
#pragma once

#include <glib.h>
#include "error.h"

G_BEGIN_DECLS

/* Ids are GGML's, so GGUF files from llama.cpp's tools interoperate. */
typedef enum {
  OL_TYPE_F32 = 0,
  OL_TYPE_F16 = 1,
  OL_TYPE_Q4_0 = 2,
  OL_TYPE_Q8_0 = 8,
  OL_TYPE_I32 = 26,
  OL_TYPE_BF16 = 30,
} OlType;

/* llama.cpp block layouts: Q8_0 = fp16 scale + 32 int8; Q4_0 = fp16 scale + 16 bytes of nibbles
 * (element j in the low nibble of byte j, element j+16 in the high nibble), value = (q - 8) * d. */
#define OL_QK 32
#define OL_Q8_0_BLOCK_BYTES 34
#define OL_Q4_0_BLOCK_BYTES 18

OL_API gboolean ol_type_is_valid (guint32 type);
OL_API const char *ol_type_name (OlType type);
/* Parses "f32", "f16", "bf16", "q8_0", "q4_0" (case-insensitive); FALSE if unknown. */
OL_API gboolean ol_type_from_name (const char *name, OlType *type);
OL_API guint ol_type_block_size (OlType type);   /* elements per block: 1 or 32 */
OL_API guint ol_type_block_bytes (OlType type);  /* bytes per block */
OL_API gboolean ol_type_is_quantized (OlType type);

/* Bytes for a row of n elements; FALSE (with an error) if n is not a multiple of the block size
 * or the size overflows. */
OL_API gboolean ol_type_row_bytes (OlType type, guint64 n, guint64 *bytes, GError **error);

OL_API float ol_fp16_to_fp32 (guint16 h);
OL_API guint16 ol_fp32_to_fp16 (float f);    /* round to nearest even, like torch and numpy */
OL_API float ol_bf16_to_fp32 (guint16 h);
OL_API guint16 ol_fp32_to_bf16 (float f);    /* round to nearest even, NaN stays NaN */

/* Convert n elements (a multiple of the block size for quantized types) between F32 and a type.
 * Quantization follows llama.cpp's reference quantizers exactly. */
OL_API void ol_type_quantize (OlType type, const float *src, void *dst, gsize n);
OL_API void ol_type_dequantize (OlType type, const void *src, float *dst, gsize n);

/* The device copy of a Q8_0 or Q4_0 row keeps the row's size but not llama.cpp's block order: first the
 * quants of each of its n / 32 blocks (32 or 16 bytes), then their fp16 scales, so that quants come in
 * aligned whole-word loads (docs/kernels.md, "Quantized rows on the device"). Other types are stored as
 * in the file. Tensor uploads and downloads convert; a reshape may not change such a tensor's row length. */
OL_API gboolean ol_type_has_device_layout (OlType type);
/* Convert n_rows rows of n elements between the file's layout and the device's (src and dst differ). */
OL_API void ol_type_to_device (OlType type, const void *src, void *dst, gsize n_rows, gsize n);
OL_API void ol_type_from_device (OlType type, const void *src, void *dst, gsize n_rows, gsize n);

G_END_DECLS
