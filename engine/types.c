/* Tensor element types: names, block layouts, fp16/bf16 conversion, the Q8_0/Q4_0 reference quantizers and
 * the device layout of Q rows. */
#include "types.h"

#include <math.h>
#include <string.h>

typedef struct {
  OlType type;
  const char *name;
  guint block_size;
  guint block_bytes;
} OlTypeTraits;

static const OlTypeTraits traits[] = {
  { OL_TYPE_F32, "f32", 1, 4 },
  { OL_TYPE_F16, "f16", 1, 2 },
  { OL_TYPE_BF16, "bf16", 1, 2 },
  { OL_TYPE_Q8_0, "q8_0", OL_QK, OL_Q8_0_BLOCK_BYTES },
  { OL_TYPE_Q4_0, "q4_0", OL_QK, OL_Q4_0_BLOCK_BYTES },
  { OL_TYPE_I32, "i32", 1, 4 },
};

static const OlTypeTraits *
lookup (guint32 type)
{
  for (gsize i = 0; i < G_N_ELEMENTS (traits); i++)
    if ((guint32) traits[i].type == type)
      return &traits[i];
  return NULL;
}

gboolean
ol_type_is_valid (guint32 type)
{
  return lookup (type) != NULL;
}

const char *
ol_type_name (OlType type)
{
  const OlTypeTraits *t = lookup (type);
  return t ? t->name : "unknown";
}

gboolean
ol_type_from_name (const char *name, OlType *type)
{
  for (gsize i = 0; i < G_N_ELEMENTS (traits); i++) {
    if (g_ascii_strcasecmp (name, traits[i].name) == 0) {
      *type = traits[i].type;
      return TRUE;
    }
  }
  return FALSE;
}

guint
ol_type_block_size (OlType type)
{
  const OlTypeTraits *t = lookup (type);
  g_return_val_if_fail (t != NULL, 1);
  return t->block_size;
}

guint
ol_type_block_bytes (OlType type)
{
  const OlTypeTraits *t = lookup (type);
  g_return_val_if_fail (t != NULL, 4);
  return t->block_bytes;
}

gboolean
ol_type_is_quantized (OlType type)
{
  return ol_type_block_size (type) > 1;
}

gboolean
ol_type_row_bytes (OlType type, guint64 n, guint64 *bytes, GError **error)
{
  const OlTypeTraits *t = lookup (type);
  if (t == NULL) {
    g_set_error (error, OL_ERROR, OL_ERROR_UNSUPPORTED, "unknown tensor type %u", (guint) type);
    return FALSE;
  }
  if (n % t->block_size != 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "%s rows need a multiple of %u elements, got %" G_GUINT64_FORMAT,
                 t->name, t->block_size, n);
    return FALSE;
  }
  guint64 blocks = n / t->block_size;
  if (blocks > G_MAXUINT64 / t->block_bytes) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "row of %" G_GUINT64_FORMAT
                 " %s elements overflows", n, t->name);
    return FALSE;
  }
  *bytes = blocks * t->block_bytes;
  return TRUE;
}

static inline guint32
f32_bits (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return u;
}

static inline float
bits_f32 (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

float
ol_fp16_to_fp32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f;
  guint32 mant = h & 0x3ff;
  if (exp == 0x1f)
    return bits_f32 (sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    /* subnormal: mant * 2^-24 is exact in f32 */
    float v = (float) mant * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_f32 (sign | ((exp + 112) << 23) | (mant << 13));
}

guint16
ol_fp32_to_fp16 (float f)
{
  guint32 x = f32_bits (f);
  guint32 sign = (x >> 16) & 0x8000;
  guint32 absx = x & 0x7fffffff;
  if (absx >= 0x7f800000)        /* inf or nan: keep a quiet nan payload bit */
    return sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0);
  if (absx >= 0x477ff000)        /* rounds to >= 65520: overflow to inf */
    return sign | 0x7c00;
  if (absx < 0x38800000) {       /* result is subnormal or zero */
    if (absx < 0x33000000)       /* below half the smallest subnormal */
      return sign;
    guint32 e = absx >> 23;
    guint32 m = (absx & 0x7fffff) | 0x800000;
    guint32 shift = 126 - e;     /* so that the value becomes m >> (shift) in units of 2^-24 */
    guint32 q = m >> shift;
    guint32 rem = m & ((1u << shift) - 1);
    guint32 half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
      q++;
    return sign | q;
  }
  guint32 r = absx - 0x38000000; /* rebias exponent 127 -> 15, still with 23 mantissa bits */
  guint32 q = r >> 13;
  guint32 rem = r & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (q & 1)))
    q++;
  return sign | q;
}

float
ol_bf16_to_fp32 (guint16 h)
{
  return bits_f32 ((guint32) h << 16);
}

guint16
ol_fp32_to_bf16 (float f)
{
  guint32 x = f32_bits (f);
  if ((x & 0x7fffffff) > 0x7f800000)
    return (x >> 16) | 0x40;
  x += 0x7fff + ((x >> 16) & 1);
  return x >> 16;
}

static void
quantize_q8_0 (const float *src, guint8 *dst, gsize n)
{
  for (gsize b = 0; b < n / OL_QK; b++, src += OL_QK, dst += OL_Q8_0_BLOCK_BYTES) {
    float amax = 0.0f;
    for (int j = 0; j < OL_QK; j++)
      amax = MAX (amax, fabsf (src[j]));
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    guint16 dh = ol_fp32_to_fp16 (d);
    memcpy (dst, &dh, 2);
    for (int j = 0; j < OL_QK; j++)
      ((gint8 *) dst)[2 + j] = (gint8) roundf (src[j] * id);
  }
}

static void
quantize_q4_0 (const float *src, guint8 *dst, gsize n)
{
  for (gsize b = 0; b < n / OL_QK; b++, src += OL_QK, dst += OL_Q4_0_BLOCK_BYTES) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < OL_QK; j++) {
      if (amax < fabsf (src[j])) {
        amax = fabsf (src[j]);
        max = src[j];
      }
    }
    float d = max / -8.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    guint16 dh = ol_fp32_to_fp16 (d);
    memcpy (dst, &dh, 2);
    for (int j = 0; j < OL_QK / 2; j++) {
      guint8 q0 = (guint8) MIN (15, (gint8) (src[j] * id + 8.5f));
      guint8 q1 = (guint8) MIN (15, (gint8) (src[j + OL_QK / 2] * id + 8.5f));
      dst[2 + j] = q0 | (q1 << 4);
    }
  }
}

void
ol_type_quantize (OlType type, const float *src, void *dst, gsize n)
{
  guint16 *h = dst;
  switch (type) {
    case OL_TYPE_F32:
      memcpy (dst, src, n * sizeof (float));
      break;
    case OL_TYPE_F16:
      for (gsize i = 0; i < n; i++)
        h[i] = ol_fp32_to_fp16 (src[i]);
      break;
    case OL_TYPE_BF16:
      for (gsize i = 0; i < n; i++)
        h[i] = ol_fp32_to_bf16 (src[i]);
      break;
    case OL_TYPE_Q8_0:
      quantize_q8_0 (src, dst, n);
      break;
    case OL_TYPE_Q4_0:
      quantize_q4_0 (src, dst, n);
      break;
    default:
      g_return_if_reached ();
  }
}

void
ol_type_dequantize (OlType type, const void *src, float *dst, gsize n)
{
  const guint8 *s = src;
  const guint16 *h = src;
  switch (type) {
    case OL_TYPE_F32:
      memcpy (dst, src, n * sizeof (float));
      break;
    case OL_TYPE_F16:
      for (gsize i = 0; i < n; i++)
        dst[i] = ol_fp16_to_fp32 (h[i]);
      break;
    case OL_TYPE_BF16:
      for (gsize i = 0; i < n; i++)
        dst[i] = ol_bf16_to_fp32 (h[i]);
      break;
    case OL_TYPE_Q8_0:
      for (gsize b = 0; b < n / OL_QK; b++, s += OL_Q8_0_BLOCK_BYTES) {
        guint16 dh;
        memcpy (&dh, s, 2);
        float d = ol_fp16_to_fp32 (dh);
        for (int j = 0; j < OL_QK; j++)
          *dst++ = d * ((const gint8 *) s)[2 + j];
      }
      break;
    case OL_TYPE_Q4_0:
      for (gsize b = 0; b < n / OL_QK; b++, s += OL_Q4_0_BLOCK_BYTES, dst += OL_QK) {
        guint16 dh;
        memcpy (&dh, s, 2);
        float d = ol_fp16_to_fp32 (dh);
        for (int j = 0; j < OL_QK / 2; j++) {
          dst[j] = d * ((int) (s[2 + j] & 0x0f) - 8);
          dst[j + OL_QK / 2] = d * ((int) (s[2 + j] >> 4) - 8);
        }
      }
      break;
    default:
      g_return_if_reached ();
  }
}

gboolean
ol_type_has_device_layout (OlType type)
{
  return type == OL_TYPE_Q8_0 || type == OL_TYPE_Q4_0;
}

/* Block b of a row of nb blocks: in the file at b · block (scale, then quants); on the device its quants
 * at b · (block − 2) and its scale at nb · (block − 2) + b · 2. */
static void
split_rows (OlType type, const guint8 *src, guint8 *dst, gsize n_rows, gsize n, gboolean to_device)
{
  const gsize block = ol_type_block_bytes (type), quants = block - 2, nb = n / OL_QK, row = nb * block;
  for (gsize r = 0; r < n_rows; r++, src += row, dst += row) {
    for (gsize b = 0; b < nb; b++) {
      gsize file = b * block, dev_quants = b * quants, dev_scale = nb * quants + b * 2;
      if (to_device) {
        memcpy (dst + dev_scale, src + file, 2);
        memcpy (dst + dev_quants, src + file + 2, quants);
      } else {
        memcpy (dst + file, src + dev_scale, 2);
        memcpy (dst + file + 2, src + dev_quants, quants);
      }
    }
  }
}

void
ol_type_to_device (OlType type, const void *src, void *dst, gsize n_rows, gsize n)
{
  g_return_if_fail (ol_type_has_device_layout (type));
  split_rows (type, src, dst, n_rows, n, TRUE);
}

void
ol_type_from_device (OlType type, const void *src, void *dst, gsize n_rows, gsize n)
{
  g_return_if_fail (ol_type_has_device_layout (type));
  split_rows (type, src, dst, n_rows, n, FALSE);
}
