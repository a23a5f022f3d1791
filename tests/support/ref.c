/* Plain-C references and test helpers; the shaders are checked against these. */
#include "ref.h"

#include <math.h>

void
ref_fill_uniform (GRand *rng, float *x, gsize n, float lo, float hi)
{
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, lo, hi);
}

static OlDevice *device;

OlDevice *
ref_device (void)
{
  if (device == NULL) {
    g_autoptr (GError) error = NULL;
    device = ol_device_new (NULL, &error);
    g_assert_no_error (error);
  }
  return device;
}

void
ref_device_release (void)
{
  g_clear_pointer (&device, ol_device_free);
}

OlTensor *
ref_tensor (OlDevice *dev, OlType type, guint n_dims, const gint64 *ne, const float *data)
{
  g_autoptr (GError) error = NULL;
  OlTensor *t = ol_tensor_new (dev, type, n_dims, ne, OL_MEMORY_DEVICE, &error);
  g_assert_no_error (error);
  if (data) {
    ol_tensor_write_f32 (t, data, &error);
    g_assert_no_error (error);
  }
  return t;
}

OlTensor *
ref_random_tensor (GRand *rng, OlType type, guint n_dims, const gint64 *ne, float **host)
{
  gint64 n = 1;
  for (guint d = 0; d < n_dims; d++)
    n *= ne[d];
  g_autofree float *x = g_new (float, n);
  ref_fill_uniform (rng, x, n, -1, 1);
  OlTensor *t = ref_tensor (ref_device (), type, n_dims, ne, x);
  if (host)
    *host = ref_read (t);
  return t;
}

OlTensor *
ref_tensor_i32 (OlDevice *dev, guint n_dims, const gint64 *ne, const gint32 *ids)
{
  g_autoptr (GError) error = NULL;
  OlTensor *t = ol_tensor_new (dev, OL_TYPE_I32, n_dims, ne, OL_MEMORY_DEVICE, &error);
  g_assert_no_error (error);
  ol_tensor_write (t, ids, &error);
  g_assert_no_error (error);
  return t;
}

void
ref_run_graph (OlGraph *g)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_graph_end (g, &error));
  g_assert_no_error (error);
  g_assert_true (ol_graph_run (g, &error));
  g_assert_no_error (error);
}

float *
ref_read (const OlTensor *t)
{
  g_autoptr (GError) error = NULL;
  float *out = g_new (float, ol_tensor_n_elements (t));
  ol_tensor_read_f32 (t, out, &error);
  g_assert_no_error (error);
  return out;
}

void
ref_assert_close (const char *what, const float *got, const float *want, gsize n, const float *tol, float tol0)
{
  gsize worst = 0;
  double worst_ratio = -1;
  gsize bad = 0;
  for (gsize i = 0; i < n; i++) {
    double t = tol ? tol[i] : tol0;
    double d = fabs ((double) got[i] - (double) want[i]);
    if (isnan (got[i]) != isnan (want[i]) || d > t || isnan (d)) {
      bad++;
      double ratio = isnan (d) ? INFINITY : d / MAX (t, 1e-38);
      if (ratio > worst_ratio) {
        worst_ratio = ratio;
        worst = i;
      }
    }
  }
  if (bad > 0)
    g_error ("%s: %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " elements off; worst [%" G_GSIZE_FORMAT
             "] got %.9g want %.9g tol %.3g", what, bad, n, worst, got[worst], want[worst],
             tol ? tol[worst] : tol0);
}

void
ref_matmul (const float *x, const float *w, const float *bias, float *y, gsize M, gsize N, gsize K,
            gboolean accumulate, float *tol)
{
  /* Bound for float summation in any order: K·u·Σ|x w| with u = 2^-24, plus the final adds. */
  const double u = 1.0 / 16777216.0;
  for (gsize m = 0; m < M; m++) {
    for (gsize n = 0; n < N; n++) {
      double acc = 0, mag = 0;
      for (gsize k = 0; k < K; k++) {
        double p = (double) x[m * K + k] * w[n * K + k];
        acc += p;
        mag += fabs (p);
      }
      double extra = 0;
      if (bias) {
        acc += bias[n];
        extra += fabs (bias[n]);
      }
      if (accumulate) {
        acc += y[m * N + n];
        extra += fabs (y[m * N + n]);
      }
      y[m * N + n] = (float) acc;
      if (tol)
        tol[m * N + n] = (float) ((K + 2) * u * mag + 3 * u * (extra + fabs (acc)) + 1e-30);
    }
  }
}

float
ref_gelu (float x)
{
  return (float) (0.5 * x * (1.0 + erf (x / sqrt (2.0))));
}

float
ref_quick_gelu (float x)
{
  return (float) (x / (1.0 + exp (-1.702 * (double) x)));
}

float
ref_silu (float x)
{
  return (float) (x / (1.0 + exp (-(double) x)));
}

void
ref_attention (const float *q, const float *k, const float *v, float *out, gsize d, gsize n_heads,
               gsize n_kv_heads, gsize tq, gsize tk, gsize n_valid, gsize batch, float scale, gboolean causal)
{
  gsize group = n_heads / n_kv_heads, qrow = n_heads * d, kvrow = n_kv_heads * d;
  double *s = g_new (double, MAX (n_valid, 1)), *acc = g_new (double, d);
  for (gsize b = 0; b < batch; b++) {
    for (gsize i = 0; i < tq; i++) {
      /* keys j < n_seen: all valid ones, or j <= n_valid - tq + i when causal */
      gint64 n_seen = causal ? MIN ((gint64) n_valid, (gint64) n_valid - (gint64) tq + (gint64) i + 1) : (gint64) n_valid;
      for (gsize h = 0; h < n_heads; h++) {
        const float *qi = q + (b * tq + i) * qrow + h * d;
        float *oi = out + (b * tq + i) * qrow + h * d;
        gsize hk = h / group;
        double m = -INFINITY, l = 0;
        for (gint64 j = 0; j < n_seen; j++) {
          const float *kj = k + (b * tk + j) * kvrow + hk * d;
          double dot = 0;
          for (gsize e = 0; e < d; e++)
            dot += (double) qi[e] * kj[e];
          s[j] = dot * scale;
          m = MAX (m, s[j]);
        }
        for (gsize e = 0; e < d; e++)
          acc[e] = 0;
        for (gint64 j = 0; j < n_seen; j++) {
          double p = exp (s[j] - m);
          l += p;
          const float *vj = v + (b * tk + j) * kvrow + hk * d;
          for (gsize e = 0; e < d; e++)
            acc[e] += p * vj[e];
        }
        for (gsize e = 0; e < d; e++)
          oi[e] = l > 0 ? (float) (acc[e] / l) : 0.0f;
      }
    }
  }
  g_free (s);
  g_free (acc);
}

/* Relative error bound of a float sum of n terms of one sign as the row shaders do it: n/256 sequential
 * adds per invocation, then 8 tree levels. */
static double
row_sum_rel (gsize n)
{
  return (double) (n / 256 + 1 + 8) / 16777216.0;
}

void
ref_rms_norm (const float *x, const float *w, float *y, gsize rows, gsize cols, float eps, float *tol)
{
  const double u = 1.0 / 16777216.0;
  for (gsize r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double ss = 0;
    for (gsize i = 0; i < cols; i++)
      ss += (double) xr[i] * xr[i];
    double s = 1.0 / sqrt (ss / cols + eps);
    for (gsize i = 0; i < cols; i++) {
      double v = xr[i] * s * w[i];
      y[r * cols + i] = (float) v;
      /* the sum's error halves through rsqrt; rsqrt 2 ulp, the divide, add and two products 1 each */
      tol[r * cols + i] = (float) (fabs (v) * (row_sum_rel (cols) / 2 + 8 * u) + 1e-30);
    }
  }
}

void
ref_layer_norm (const float *x, const float *w, const float *b, float *y, gsize rows, gsize cols, float eps,
                float *tol)
{
  const double u = 1.0 / 16777216.0;
  for (gsize r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    double mean = 0, mabs = 0, var = 0;
    for (gsize i = 0; i < cols; i++) {
      mean += xr[i];
      mabs += fabs (xr[i]);
    }
    mean /= cols;
    mabs /= cols;
    for (gsize i = 0; i < cols; i++)
      var += (xr[i] - mean) * (xr[i] - mean);
    double s = 1.0 / sqrt (var / cols + eps);
    /* the mean is off by at most its sum's bound on Σ|x|; that error enters every x − mean */
    double dmean = (row_sum_rel (cols) + 2 * u) * mabs;
    for (gsize i = 0; i < cols; i++) {
      double v = (xr[i] - mean) * s * w[i];
      double bi = b ? b[i] : 0;
      y[r * cols + i] = (float) (v + bi);
      tol[r * cols + i] = (float) (fabs (v) * (row_sum_rel (cols) + 10 * u) + fabs (w[i]) * s * dmean +
                                   u * fabs (v + bi) + 1e-30);
    }
  }
}

void
ref_softmax (const float *x, float *y, gsize rows, gsize cols, float scale, float *tol)
{
  const double u = 1.0 / 16777216.0;
  for (gsize r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float m = -INFINITY;
    for (gsize i = 0; i < cols; i++)
      m = fmaxf (m, scale * xr[i]);
    double sum = 0;
    for (gsize i = 0; i < cols; i++)
      sum += exp ((double) (scale * xr[i]) - m);
    for (gsize i = 0; i < cols; i++) {
      double a = (double) (scale * xr[i]) - m;
      double v = exp (a) / sum;
      y[r * cols + i] = (float) v;
      /* exp: 3 + 2|a| ulp (Vulkan's bound); its argument: a possibly fused product and the subtraction;
       * the sum of terms ≤ 1, then the reciprocal and product */
      double e = (9 + 4 * fabs (a) + 2 * fabs (scale * xr[i])) * u + row_sum_rel (cols);
      tol[r * cols + i] = (float) (v * e + 1e-30);
    }
  }
}

void
ref_rope (const float *x, const gint32 *pos, float *y, gsize dim, gsize T, gsize batches, guint n_heads,
          float theta, float *tol)
{
  const double u = 1.0 / 16777216.0;
  gsize hd = dim / n_heads;
  for (gsize r = 0; r < T * batches; r++) {
    for (gsize j = 0; j < dim / 2; j++) {
      gsize k = j % (hd / 2);
      float freq = 1.0f / powf (theta, (float) (2 * k) / (float) hd);
      float angle = (float) pos[r % T] * freq;
      double c = cos (angle), s = sin (angle);
      double x0 = x[r * dim + 2 * j], x1 = x[r * dim + 2 * j + 1];
      y[r * dim + 2 * j] = (float) (x0 * c - x1 * s);
      y[r * dim + 2 * j + 1] = (float) (x0 * s + x1 * c);
      /* exp2(−e·log2 θ) with |e·log2 θ| ≤ log2 θ: the product's rounding and a few-ulp exp2, times the
       * angle; cos/sin after reduction to [−π, π]: 2^-21 absolute (NVIDIA's bound, the loosest we know) */
      double dangle = fabs (angle) * (log2 (theta) + 6) * u;
      double t = (fabs (x0) + fabs (x1)) * (dangle + 4.8e-7) + 4 * u * (fabs (x0) + fabs (x1));
      tol[r * dim + 2 * j] = tol[r * dim + 2 * j + 1] = (float) t;
    }
  }
}

void
ref_im2col (const float *x, float *y, gsize W, gsize H, gsize C, gsize F, guint kh, guint kw, guint sh,
            guint sw)
{
  gsize OW = (W - kw) / sw + 1, OH = (H - kh) / sh + 1, K = C * kh * kw;
  for (gsize f = 0; f < F; f++)
    for (gsize oy = 0; oy < OH; oy++)
      for (gsize ox = 0; ox < OW; ox++)
        for (gsize c = 0; c < C; c++)
          for (gsize ky = 0; ky < kh; ky++)
            for (gsize kx = 0; kx < kw; kx++)
              y[(f * OH * OW + oy * OW + ox) * K + (c * kh + ky) * kw + kx] =
                x[((f * C + c) * H + oy * sh + ky) * W + ox * sw + kx];
}

void
ref_argmax (const float *x, gint32 *y, gsize rows, gsize cols)
{
  for (gsize r = 0; r < rows; r++) {
    gsize best = 0;
    for (gsize i = 1; i < cols; i++)
      if (x[r * cols + i] > x[r * cols + best])
        best = i;
    y[r] = (gint32) best;
  }
}
