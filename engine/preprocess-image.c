/* Image, depth and normal maps: Pillow's bicubic resize bit for bit, centre crop, CLIP normalisation. */
#include "preprocess-private.h"

#include <math.h>
#include <string.h>

/* Pillow keeps 8-bit results with 22 fraction bits: 32 - 8 - 2 spare bits for the filter's negative lobes. */
#define PRECISION_BITS 22

/* Pillow's bicubic kernel, a = -0.5 */
static double
bicubic (double x)
{
  const double a = -0.5;
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0)
    return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/* The taps of output samples first .. first + n - 1 of a resize from in_size to out_size: for each, the first
 * input index and the fixed-point weights (ksize slots each). The double arithmetic is Pillow's
 * precompute_coeffs() step for step, then rounded half away from zero to PRECISION_BITS. */
typedef struct {
  int ksize;
  int *start, *count;
  gint32 *k;
} Taps;

static void
taps_init (Taps *t, int in_size, int out_size, int first, int n)
{
  double scale = (double) ((float) in_size - 0.0f) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 2.0 * filterscale;
  t->ksize = (int) ceil (support) * 2 + 1;
  t->start = g_new (int, n);
  t->count = g_new (int, n);
  t->k = g_new0 (gint32, (gsize) n * t->ksize);
  double *w = g_new (double, t->ksize);
  for (int i = 0; i < n; i++) {
    int xx = first + i;
    double center = 0.0 + (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int) (center - support + 0.5);
    if (xmin < 0)
      xmin = 0;
    int xmax = (int) (center + support + 0.5);
    if (xmax > in_size)
      xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      w[x] = bicubic ((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; x++) {
      double v = ww != 0.0 ? w[x] / ww : w[x];
      t->k[(gsize) i * t->ksize + x] = v < 0 ? (gint32) (-0.5 + v * (1 << PRECISION_BITS))
                                             : (gint32) (0.5 + v * (1 << PRECISION_BITS));
    }
    t->start[i] = xmin;
    t->count[i] = xmax;
  }
  g_free (w);
}

static void
taps_clear (Taps *t)
{
  g_free (t->start);
  g_free (t->count);
  g_free (t->k);
}

static inline guint8
clip8 (gint32 v)
{
  v >>= PRECISION_BITS;
  return (guint8) (v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Resamples packed RGB src (w x h) to the window [x0, x0 + cw) x [y0, y0 + ch) of an out_w x out_h resize,
 * as Pillow's ImagingResample (BICUBIC) computes it: horizontal pass first (only the input rows the
 * vertical pass reads), results rounded to uint8, then the vertical pass; a pass whose size does not
 * change is skipped. */
static void
pil_resize_window (const guint8 *src, int w, int h, int out_w, int out_h, int x0, int y0, int cw, int ch,
                   guint8 *dst)
{
  gboolean need_h = out_w != w, need_v = out_h != h;
  Taps tv = { 0 }, th = { 0 };
  int row_first = y0, row_last = y0 + ch;
  if (need_v) {
    taps_init (&tv, h, out_h, y0, ch);
    row_first = tv.start[0];
    row_last = tv.start[ch - 1] + tv.count[ch - 1];
  }
  /* rows row_first .. row_last - 1 of the input, horizontally resampled to the window's columns */
  int rows = row_last - row_first;
  guint8 *tmp = g_new (guint8, (gsize) rows * cw * 3);
  if (need_h) {
    taps_init (&th, w, out_w, x0, cw);
    for (int y = 0; y < rows; y++) {
      const guint8 *in = src + (gsize) (row_first + y) * w * 3;
      guint8 *o = tmp + (gsize) y * cw * 3;
      for (int x = 0; x < cw; x++) {
        const gint32 *k = th.k + (gsize) x * th.ksize;
        const guint8 *p = in + (gsize) th.start[x] * 3;
        gint32 s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int j = 0; j < th.count[x]; j++, p += 3) {
          s0 += p[0] * k[j];
          s1 += p[1] * k[j];
          s2 += p[2] * k[j];
        }
        o[x * 3 + 0] = clip8 (s0);
        o[x * 3 + 1] = clip8 (s1);
        o[x * 3 + 2] = clip8 (s2);
      }
    }
    taps_clear (&th);
  } else {
    for (int y = 0; y < rows; y++)
      memcpy (tmp + (gsize) y * cw * 3, src + ((gsize) (row_first + y) * w + x0) * 3, (gsize) cw * 3);
  }
  if (need_v) {
    for (int y = 0; y < ch; y++) {
      const gint32 *k = tv.k + (gsize) y * tv.ksize;
      const guint8 *base = tmp + (gsize) (tv.start[y] - row_first) * cw * 3;
      guint8 *o = dst + (gsize) y * cw * 3;
      for (int x = 0; x < cw * 3; x++) {
        gint32 s = 1 << (PRECISION_BITS - 1);
        const guint8 *p = base + x;
        for (int j = 0; j < tv.count[y]; j++, p += (gsize) cw * 3)
          s += *p * k[j];
        o[x] = clip8 (s);
      }
    }
    taps_clear (&tv);
  } else {
    memcpy (dst, tmp, (gsize) ch * cw * 3);
  }
  g_free (tmp);
}

/* Python's round() of d / 2 for d >= 0: halves go to the even neighbour. */
static int
round_half_even_half (int d)
{
  int q = d / 2;
  return (d % 2 == 0 || q % 2 == 0) ? q : q + 1;
}

/* The evaluation transform on packed RGB pixels. */
static void
eval_transform (const guint8 *rgb, int w, int h, int size, float *out)
{
  int short_side = MIN (w, h), long_side = MAX (w, h);
  int new_long = (int) ((double) ((gint64) size * long_side) / short_side);
  int new_w = w <= h ? size : new_long;
  int new_h = w <= h ? new_long : size;
  int top = round_half_even_half (new_h - size);
  int left = round_half_even_half (new_w - size);

  guint8 *crop = g_new (guint8, (gsize) size * size * 3);
  pil_resize_window (rgb, w, h, new_w, new_h, left, top, size, size, crop);
  gsize plane = (gsize) size * size;
  for (gsize i = 0; i < plane; i++)
    for (int c = 0; c < 3; c++)
      out[c * plane + i] = ((float) crop[i * 3 + c] / 255.0f - ol_clip_mean[c]) / ol_clip_std[c];
  g_free (crop);
}

gboolean
ol_preprocess_image (const OlImage *image, int size, float *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (!ol_image_check (image, size, "image", error))
    return FALSE;
  guint8 *rgb = g_new (guint8, (gsize) image->width * image->height * 3);
  ol_image_unpack_rgb (image, rgb);
  eval_transform (rgb, image->width, image->height, size, out);
  g_free (rgb);
  return TRUE;
}

gboolean
ol_preprocess_image_pair (const OlImage *rgb, const OlImage *map, int size, float *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if ((rgb && !ol_image_check (rgb, size, "depth/normal: RGB image", error)) ||
      !ol_image_check (map, size, "depth/normal: map", error))
    return FALSE;
  gsize plane3 = (gsize) 3 * size * size;
  guint8 *m = g_new (guint8, (gsize) map->width * map->height * 3);
  ol_image_unpack_rgb (map, m);
  if (!rgb) {
    eval_transform (m, map->width, map->height, size, out);
    memcpy (out + plane3, out, plane3 * sizeof (float));
    g_free (m);
    return TRUE;
  }
  guint8 *p = g_new (guint8, (gsize) rgb->width * rgb->height * 3);
  ol_image_unpack_rgb (rgb, p);
  eval_transform (p, rgb->width, rgb->height, size, out);
  guint8 *resized = g_new (guint8, (gsize) rgb->width * rgb->height * 3);
  pil_resize_window (m, map->width, map->height, rgb->width, rgb->height, 0, 0, rgb->width, rgb->height,
                     resized);
  eval_transform (resized, rgb->width, rgb->height, size, out + plane3);
  g_free (resized);
  g_free (p);
  g_free (m);
  return TRUE;
}
