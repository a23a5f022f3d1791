/* Tensor types: conversions, llama.cpp block layouts, and upload/download round trips of each type. */
#include "support/ref.h"

#include <math.h>
#include <string.h>

static void
test_fp16 (void)
{
  /* every half value converts to float and back unchanged (NaNs stay NaN) */
  for (guint32 h = 0; h < 65536; h++) {
    float f = ol_fp16_to_fp32 (h);
    if (isnan (f))
      g_assert_true (isnan (ol_fp16_to_fp32 (ol_fp32_to_fp16 (f))));
    else
      g_assert_cmphex (ol_fp32_to_fp16 (f), ==, h);
  }
  g_assert_cmpfloat (ol_fp16_to_fp32 (0x3c00), ==, 1.0f);
  g_assert_cmpfloat (ol_fp16_to_fp32 (0x0001), ==, 5.9604644775390625e-8f);
  g_assert_cmphex (ol_fp32_to_fp16 (65504.0f), ==, 0x7bff);
  g_assert_cmphex (ol_fp32_to_fp16 (65520.0f), ==, 0x7c00);    /* rounds to infinity */
  g_assert_cmphex (ol_fp32_to_fp16 (65519.99f), ==, 0x7bff);
  g_assert_cmphex (ol_fp32_to_fp16 (1.0f + 1.0f / 2048), ==, 0x3c00);   /* tie to even */
  g_assert_cmphex (ol_fp32_to_fp16 (1.0f + 3.0f / 2048), ==, 0x3c02);
  g_assert_cmphex (ol_fp32_to_fp16 (2.9802322e-8f), ==, 0x0000);        /* half of min subnormal: even */
  g_assert_cmphex (ol_fp32_to_fp16 (2.99e-8f), ==, 0x0001);
  g_assert_cmphex (ol_fp32_to_fp16 (-0.0f), ==, 0x8000);
  g_assert_cmphex (ol_fp32_to_fp16 (1e-10f), ==, 0x0000);
}

static void
test_bf16 (void)
{
  for (guint32 h = 0; h < 65536; h++) {
    float f = ol_bf16_to_fp32 (h);
    if (isnan (f))
      g_assert_true (isnan (ol_bf16_to_fp32 (ol_fp32_to_bf16 (f))));
    else
      g_assert_cmphex (ol_fp32_to_bf16 (f), ==, h);
  }
  g_assert_cmphex (ol_fp32_to_bf16 (1.0f + 1.0f / 256), ==, 0x3f80);   /* tie to even */
  g_assert_cmphex (ol_fp32_to_bf16 (1.0f + 3.0f / 256), ==, 0x3f82);
}

static void
test_row_bytes (void)
{
  guint64 b;
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_type_row_bytes (OL_TYPE_Q4_0, 64, &b, &error));
  g_assert_cmpuint (b, ==, 36);
  g_assert_true (ol_type_row_bytes (OL_TYPE_Q8_0, 4096, &b, &error));
  g_assert_cmpuint (b, ==, 4352);
  g_assert_true (ol_type_row_bytes (OL_TYPE_F16, 7, &b, &error));
  g_assert_cmpuint (b, ==, 14);
  g_assert_false (ol_type_row_bytes (OL_TYPE_Q8_0, 33, &b, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  OlType t;
  g_assert_true (ol_type_from_name ("Q4_0", &t) && t == OL_TYPE_Q4_0);
  g_assert_false (ol_type_from_name ("q5_k", &t));
}

/* Bytes laid out exactly as llama.cpp's block_q8_0 / block_q4_0. */
static void
test_block_layouts (void)
{
  float x[32];
  for (int i = 0; i < 32; i++)
    x[i] = (i - 16) * 0.25f;   /* max |x| = 4 at i = 0 */
  guint8 q8[34], q4[18];
  ol_type_quantize (OL_TYPE_Q8_0, x, q8, 32);
  guint16 d;
  memcpy (&d, q8, 2);
  g_assert_cmphex (d, ==, ol_fp32_to_fp16 (4.0f / 127.0f));
  g_assert_cmpint ((gint8) q8[2], ==, -127);
  g_assert_cmpint ((gint8) q8[2 + 16], ==, 0);

  ol_type_quantize (OL_TYPE_Q4_0, x, q4, 32);
  memcpy (&d, q4, 2);
  g_assert_cmphex (d, ==, ol_fp32_to_fp16 (-4.0f / -8.0f));   /* max is -4: d = max / -8 */
  g_assert_cmpuint (q4[2] & 0x0f, ==, 0);      /* x[0] = -4 -> q = -4/0.5 + 8 = 0 */
  g_assert_cmpuint (q4[2] >> 4, ==, 8);        /* x[16] = 0 -> 8 */
  float back[32];
  ol_type_dequantize (OL_TYPE_Q4_0, q4, back, 32);
  for (int i = 0; i < 32; i++)
    g_assert_cmpfloat_with_epsilon (back[i], x[i], 0.25f + 1e-6f);
}

/* Q rows on the device: a row's quants block by block, then its scales (types.h). The buffer holds that
 * layout, and reading the tensor back gives the file's bytes. */
static void
test_device_layout (void)
{
  OlDevice *dev = ref_device ();
  const OlType types[] = { OL_TYPE_Q8_0, OL_TYPE_Q4_0 };
  for (guint ti = 0; ti < G_N_ELEMENTS (types); ti++) {
    OlType type = types[ti];
    const gsize nb = 3, rows = 2, block = ol_type_block_bytes (type), quants = block - 2, row = nb * block;
    guint8 file[2 * 3 * 34], dev_bytes[2 * 3 * 34], back[2 * 3 * 34];
    for (gsize i = 0; i < rows * row; i++)
      file[i] = (guint8) (i * 7 + 3);
    gint64 ne[2] = { (gint64) nb * OL_QK, (gint64) rows };
    g_autoptr (GError) error = NULL;
    OlTensor *t = ol_tensor_new (dev, type, 2, ne, OL_MEMORY_DEVICE, &error);
    g_assert_no_error (error);
    g_assert_true (ol_tensor_write (t, file, &error));
    g_assert_true (ol_buffer_read (t->buffer, t->offset, dev_bytes, rows * row, &error));
    for (gsize r = 0; r < rows; r++) {
      for (gsize b = 0; b < nb; b++) {
        const guint8 *f = file + r * row + b * block, *d = dev_bytes + r * row;
        g_assert_cmpmem (d + b * quants, quants, f + 2, quants);
        g_assert_cmpmem (d + nb * quants + b * 2, 2, f, 2);
      }
    }
    g_assert_true (ol_tensor_read (t, back, &error));
    g_assert_cmpmem (back, rows * row, file, rows * row);
    OlTensor second = ol_tensor_rows (t, 1, 1);
    g_assert_true (ol_tensor_read (&second, back, &error));
    g_assert_cmpmem (back, row, file + row, row);
    ol_tensor_free (t);
  }
}

/* Quantization error per block: half a step for Q8_0 (d = amax/127); for Q4_0 (d = max/-8, levels -8..7)
 * half a step on the side of the block's extreme and up to a whole step on the other side, where the
 * largest level is 7|d|. The fp16 rounding of d adds at most 2^-11 relative on top. */
static void
test_roundtrip_types (void)
{
  OlDevice *dev = ref_device ();
  GRand *rng = g_rand_new_with_seed (11);
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16, OL_TYPE_BF16, OL_TYPE_Q8_0, OL_TYPE_Q4_0 };
  for (guint ti = 0; ti < G_N_ELEMENTS (types); ti++) {
    OlType type = types[ti];
    gint64 ne[2] = { ol_type_is_quantized (type) ? 96 : 37, 13 };
    gsize n = ne[0] * ne[1];
    g_autofree float *x = g_new (float, n);
    ref_fill_uniform (rng, x, n, -3, 3);
    OlTensor *t = ref_tensor (dev, type, 2, ne, x);
    g_autofree float *y = ref_read (t);
    g_autofree float *tol = g_new (float, n);
    for (gsize b = 0; b < n; b += ol_type_block_size (type)) {
      float amax = 0;
      for (guint j = 0; j < ol_type_block_size (type); j++)
        amax = MAX (amax, fabsf (x[b + j]));
      for (guint j = 0; j < ol_type_block_size (type); j++) {
        float v = fabsf (x[b + j]);
        switch (type) {
          case OL_TYPE_F32: tol[b + j] = 0; break;
          case OL_TYPE_F16: tol[b + j] = v * 0x1p-11f; break;
          case OL_TYPE_BF16: tol[b + j] = v * 0x1p-8f; break;
          case OL_TYPE_Q8_0: tol[b + j] = amax / 127 * (0.5f + 0x1p-11f * 127) + 1e-7f; break;
          default: tol[b + j] = amax / 8 * (1.0f + 0x1p-11f * 8) + 1e-7f; break;
        }
      }
    }
    ref_assert_close (ol_type_name (type), y, x, n, tol, 0);

    /* raw bytes come back unchanged */
    g_autoptr (GError) error = NULL;
    gsize bytes = ol_tensor_n_bytes (t);
    g_autofree guint8 *raw = g_malloc (bytes), *raw2 = g_malloc (bytes);
    for (gsize i = 0; i < bytes; i++)
      raw[i] = g_rand_int (rng);
    g_assert_true (ol_tensor_write (t, raw, &error));
    g_assert_true (ol_tensor_read (t, raw2, &error));
    g_assert_cmpmem (raw, bytes, raw2, bytes);
    ol_tensor_free (t);
  }
  g_rand_free (rng);
}

static void
test_bad_shapes (void)
{
  OlDevice *dev = ref_device ();
  g_autoptr (GError) error = NULL;
  gint64 ne[2] = { 33, 2 };
  g_assert_null (ol_tensor_new (dev, OL_TYPE_Q4_0, 2, ne, OL_MEMORY_DEVICE, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  gint64 huge[4] = { 1 << 30, 1 << 30, 1 << 30, 1 << 30 };
  g_assert_null (ol_tensor_new (dev, OL_TYPE_F32, 4, huge, OL_MEMORY_DEVICE, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  gint64 neg[1] = { -1 };
  g_assert_null (ol_tensor_new (dev, OL_TYPE_F32, 1, neg, OL_MEMORY_DEVICE, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
}

static void
test_views (void)
{
  OlDevice *dev = ref_device ();
  gint64 ne[3] = { 8, 5, 3 };
  float x[120];
  for (int i = 0; i < 120; i++)
    x[i] = i;
  OlTensor *t = ref_tensor (dev, OL_TYPE_F32, 3, ne, x);
  g_assert_cmpint (ol_tensor_n_rows (t), ==, 15);
  OlTensor r = ol_tensor_rows (t, 4, 3);
  g_assert_false (r.owns_buffer);
  float got[24];
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_tensor_read_f32 (&r, got, &error));
  for (int i = 0; i < 24; i++)
    g_assert_cmpfloat (got[i], ==, 32 + i);
  gint64 flat[1] = { 120 };
  OlTensor f = ol_tensor_reshape (t, 1, flat);
  g_assert_cmpint (f.ne[0], ==, 120);
  g_autofree char *d = ol_tensor_describe (t);
  g_assert_cmpstr (d, ==, "f32[8, 5, 3]");
  ol_tensor_free (t);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/types/fp16", test_fp16);
  g_test_add_func ("/types/bf16", test_bf16);
  g_test_add_func ("/types/row-bytes", test_row_bytes);
  g_test_add_func ("/types/block-layouts", test_block_layouts);
  g_test_add_func ("/tensor/roundtrip", test_roundtrip_types);
  g_test_add_func ("/tensor/device-layout", test_device_layout);
  g_test_add_func ("/tensor/bad-shapes", test_bad_shapes);
  g_test_add_func ("/tensor/views", test_views);
  int r = g_test_run ();
  ref_device_release ();
  return r;
}
