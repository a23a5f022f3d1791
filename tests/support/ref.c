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
