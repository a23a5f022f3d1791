/* Video: the frames the clip sampling or a live window takes; pytorchvideo's scale, normalisation, crops. */
#include "preprocess-private.h"

#include <math.h>
#include <string.h>

/* The double nearest to p / n (ties to even), for p exact in long double and 1 <= n < 2^11: Python's
 * float(Fraction) of the clip start. Computed as a candidate and its neighbours compared by exact
 * remainders. */
static double
div_nearest (long double p, int n)
{
  double q = (double) (p / n);
  double cand[3] = { nextafter (q, -INFINITY), q, nextafter (q, INFINITY) };
  double best = q;
  long double best_err = -1;
  for (int i = 0; i < 3; i++) {
    long double err = fabsl (p - (long double) cand[i] * n);
    if (best_err < 0 || err < best_err) {
      best = cand[i];
      best_err = err;
    } else if (err == best_err) {
      /* a tie: the candidate whose significand is even */
      int e;
      double m = frexp (cand[i], &e);
      if (fmod (ldexp (m, 53), 2.0) == 0)
        best = cand[i];
    }
  }
  return best;
}

gboolean
ol_video_clip_frames (gint64 n_frames, double fps, int n_clips, gint64 *indices, GError **error)
{
  g_return_val_if_fail (indices != NULL, FALSE);
  if (n_frames < 1 || !(fps > 0) || !isfinite (fps)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "video: %" G_GINT64_FORMAT " frames at %g fps: need "
                 "at least one frame and a positive frame rate", n_frames, fps);
    return FALSE;
  }
  if (n_clips < 1 || n_clips > 1024) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "video: %d clips is outside 1..1024", n_clips);
    return FALSE;
  }
  double duration = (double) n_frames / fps;
  double span = duration - 1.0 > 0 ? duration - 1.0 : 0.0;
  for (int i = 0; i < n_clips; i++) {
    double start = div_nearest ((long double) span * i, n_clips);
    double idx = ceil (fps * start);
    /* a guard: start <= (D - 1) * 4/5 keeps fps * start below n_frames */
    indices[i] = idx >= (double) n_frames ? n_frames - 1 : (gint64) idx;
  }
  return TRUE;
}

gboolean
ol_video_window_frames (gint64 n_frames, int n_samples, gint64 *indices, GError **error)
{
  g_return_val_if_fail (indices != NULL, FALSE);
  if (n_frames < 1 || n_samples < 1 || n_frames > (1 << 24)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "video: cannot take %d samples from a window of %"
                 G_GINT64_FORMAT " frames", n_samples, n_frames);
    return FALSE;
  }
  /* torch.linspace in float32: the first half counts up from the start, the second half down from the end */
  float start = 0.0f, end = (float) (n_frames - 1);
  float step = n_samples > 1 ? (end - start) / (float) (n_samples - 1) : 0.0f;
  int halfway = n_samples / 2;
  for (int i = 0; i < n_samples; i++) {
    float v = n_samples == 1 ? start : i < halfway ? start + step * (float) i
                                                   : end - step * (float) (n_samples - i - 1);
    v = v < 0 ? 0 : v > end ? end : v;
    indices[i] = (gint64) v;
  }
  return TRUE;
}

/* torch's source index and weights of linear interpolation, align_corners=False: the scale in float32, the
 * position in double (the CPU kernel's accumulate type), the weights stored as float32. */
typedef struct {
  int i0, i1;
  float l0, l1;
} Lerp;

static Lerp *
lerp_table (int in_size, int out_size)
{
  Lerp *t = g_new (Lerp, out_size);
  double scale = (float) in_size / (float) out_size;
  for (int o = 0; o < out_size; o++) {
    if (in_size == out_size) {
      t[o] = (Lerp) { o, o, 1.0f, 0.0f };
      continue;
    }
    double real = scale * (o + 0.5) - 0.5;
    if (real < 0)
      real = 0;
    int i0 = (int) real;
    int i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
    double l1 = real - i0;
    l1 = l1 < 0 ? 0 : l1 > 1 ? 1 : l1;
    t[o] = (Lerp) { i0, i1, (float) (1.0 - l1), (float) l1 };
  }
  return t;
}

gboolean
ol_preprocess_video_frame (const OlImage *frame, int size, int n_crops, float *out, GError **error)
{
  g_return_val_if_fail (out != NULL, FALSE);
  if (!ol_image_check (frame, size, "video", error))
    return FALSE;
  if (n_crops != 1 && n_crops != 3) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "video: %d spatial crops (1 or 3 supported)", n_crops);
    return FALSE;
  }
  int w = frame->width, h = frame->height;
  /* pytorchvideo's short_side_scale: the long side is floor(long / short * size), division first */
  int new_w = size, new_h = size;
  if (w < h)
    new_h = (int) floor ((double) h / w * size);
  else
    new_w = (int) floor ((double) w / h * size);

  guint8 *rgb = g_new (guint8, (gsize) w * h * 3);
  ol_image_unpack_rgb (frame, rgb);
  float *src = g_new (float, (gsize) w * h * 3);
  for (gsize i = 0; i < (gsize) w * h; i++)
    for (int c = 0; c < 3; c++)
      src[c * (gsize) w * h + i] = (float) rgb[i * 3 + c] / 255.0f;
  g_free (rgb);

  Lerp *ty = lerp_table (h, new_h), *tx = lerp_table (w, new_w);
  float *scaled = g_new (float, (gsize) new_w * new_h * 3);
  for (int c = 0; c < 3; c++) {
    const float *plane = src + c * (gsize) w * h;
    float *o = scaled + c * (gsize) new_w * new_h;
    for (int y = 0; y < new_h; y++) {
      const float *r0 = plane + (gsize) ty[y].i0 * w, *r1 = plane + (gsize) ty[y].i1 * w;
      for (int x = 0; x < new_w; x++) {
        float t0 = r0[tx[x].i0] * tx[x].l0 + r0[tx[x].i1] * tx[x].l1;
        float t1 = r1[tx[x].i0] * tx[x].l0 + r1[tx[x].i1] * tx[x].l1;
        float v = t0 * ty[y].l0 + t1 * ty[y].l1;
        o[(gsize) y * new_w + x] = (v - ol_clip_mean[c]) / ol_clip_std[c];
      }
    }
  }
  g_free (tx);
  g_free (ty);
  g_free (src);

  for (int k = 0; k < n_crops; k++) {
    int spatial = n_crops == 1 ? 1 : k;
    int yo = (int) ceil ((new_h - size) / 2.0), xo = (int) ceil ((new_w - size) / 2.0);
    if (new_h > new_w) {
      if (spatial == 0)
        yo = 0;
      else if (spatial == 2)
        yo = new_h - size;
    } else {
      if (spatial == 0)
        xo = 0;
      else if (spatial == 2)
        xo = new_w - size;
    }
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < size; y++)
        memcpy (out + (((gsize) k * 3 + c) * size + y) * size,
                scaled + ((gsize) c * new_h + yo + y) * new_w + xo, (gsize) size * sizeof (float));
  }
  g_free (scaled);
  return TRUE;
}
