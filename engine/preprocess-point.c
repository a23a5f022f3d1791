/* Point clouds: point count, pc_norm, and the reference's FPS and kNN indices, arithmetic and ties too. */
#include "preprocess-private.h"

#include <math.h>
#include <string.h>

#include "types.h"

/* The fused multiply-adds below must be exact fmaf: on x86 a clone uses the FMA instruction where the CPU has
 * one (chosen at load time), the other calls libm's exact fmaf (same results, about 3.5x slower). */
#if defined(__x86_64__) || defined(__i386__)
#define FMA_CLONES __attribute__ ((target_clones ("fma", "default")))
#else
#define FMA_CLONES
#endif

void
ol_point_params_init (OlPointParams *params)
{
  g_return_if_fail (params != NULL);
  params->n_points = OL_POINT_COUNT;
  params->n_groups = OL_POINT_GROUPS;
  params->group_size = OL_POINT_GROUP_SIZE;
  params->half_input = FALSE;
}

static gboolean
check_params (const OlPointParams *p, GError **error)
{
  if (p->n_points < 1 || p->n_points > (1 << 20) || p->n_groups < 1 || p->n_groups > p->n_points ||
      p->group_size < 1 || p->group_size > p->n_points) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "point: %d points, %d groups of %d is not a valid "
                 "tokenizer configuration", p->n_points, p->n_groups, p->group_size);
    return FALSE;
  }
  return TRUE;
}

/* The CUDA kernel's block size: opt_n_threads(n) = 2^floor(log(n) / log(2)), at most 1024. */
static int
fps_block_size (int n)
{
  int pow2 = (int) (log ((double) n) / log (2.0));
  return MAX (MIN (1 << pow2, 1024), 1);
}

/* The priority of a thread in the kernel's shared-memory max reduction: pairs (t, t + half) for half =
 * block/2 .. 1 keep the left value on ties, so among equal maxima the thread with the smallest
 * bit-reversed index wins. */
static guint
bit_reverse (guint t, int block)
{
  guint r = 0;
  for (int b = 1; b < block; b <<= 1, t >>= 1)
    r = (r << 1) | (t & 1);
  return r;
}

/* nvcc's default contraction (-fmad=true) of dx*dx + dy*dy + dz*dz, formed by LLVM's NVPTX backend:
 * fma(dz, dz, fma(dx, dx, dy * dy)). */
FMA_CLONES
static float
fps_update (const float *p, int n, float x1, float y1, float z1, float *temp)
{
  float best = -1.0f;
  for (int k = 0; k < n; k++) {
    float dx = p[k * 3] - x1, dy = p[k * 3 + 1] - y1, dz = p[k * 3 + 2] - z1;
    float d = fmaf (dz, dz, fmaf (dx, dx, dy * dy));
    float d2 = d < temp[k] ? d : temp[k];
    temp[k] = d2;
    best = d2 > best ? d2 : best;
  }
  return best;
}

static void
fps (const float *p, int n, int m, gint32 *idx)
{
  int block = fps_block_size (n);
  guint *prio = g_new (guint, block);
  for (int t = 0; t < block; t++)
    prio[t] = bit_reverse ((guint) t, block);
  float *temp = g_new (float, n);
  for (int k = 0; k < n; k++)
    temp[k] = 1e10f;
  int old = 0;
  idx[0] = 0;
  for (int j = 1; j < m; j++) {
    float best = fps_update (p, n, p[old * 3], p[old * 3 + 1], p[old * 3 + 2], temp);
    /* each thread t keeps its first maximum among k = t, t + block, ...; so the winner is the k holding the
     * maximum with the highest-priority thread, then the smallest k */
    int win = -1;
    for (int k = 0; k < n; k++)
      if (temp[k] == best && (win < 0 || prio[k % block] < prio[win % block]))
        win = k;
    old = win;
    idx[j] = old;
  }
  g_free (temp);
  g_free (prio);
}

/* torch.cdist's matrix-product form for these sizes: the rows [-2p, |p|^2, 1] and [c, 1, |c|^2] multiplied by
 * cuBLAS as one fp32 FMA chain in k order; norms as pow(2) then a sum in order. Then clamp at 0 and sqrt. */
FMA_CLONES
static void
cdist_column (const float *p, const float *pnorm, int n, const float *c, float cnorm, float *dist)
{
  for (int i = 0; i < n; i++) {
    float acc = (-2.0f * p[i * 3]) * c[0];
    acc = fmaf (-2.0f * p[i * 3 + 1], c[1], acc);
    acc = fmaf (-2.0f * p[i * 3 + 2], c[2], acc);
    acc = acc + pnorm[i];
    acc = acc + cnorm;
    dist[i] = sqrtf (acc > 0 ? acc : 0);
  }
}

static float
norm2 (const float *v)
{
  float a = v[0] * v[0], b = v[1] * v[1], c = v[2] * v[2];
  return (a + b) + c;
}

/* For each centre the k smallest distances, ascending, equal distances by index (topk(largest=False)). */
static void
knn (const float *p, int n, const gint32 *centres, int m, int k, gint32 *out)
{
  float *pnorm = g_new (float, n), *dist = g_new (float, n), *kd = g_new (float, k);
  for (int i = 0; i < n; i++)
    pnorm[i] = norm2 (p + i * 3);
  for (int j = 0; j < m; j++) {
    const float *c = p + centres[j] * 3;
    cdist_column (p, pnorm, n, c, norm2 (c), dist);
    gint32 *ki = out + (gsize) j * k;
    int filled = 0;
    for (int i = 0; i < n; i++) {
      float d = dist[i];
      if (filled == k && !(d < kd[k - 1]))
        continue;
      int pos = filled < k ? filled++ : k - 1;
      while (pos > 0 && kd[pos - 1] > d) {
        kd[pos] = kd[pos - 1];
        ki[pos] = ki[pos - 1];
        pos--;
      }
      kd[pos] = d;
      ki[pos] = i;
    }
  }
  g_free (kd);
  g_free (dist);
  g_free (pnorm);
}

gboolean
ol_point_group_indices (const float *points, const OlPointParams *params, gint32 *fps_idx, gint32 *knn_idx,
                        GError **error)
{
  g_return_val_if_fail (points != NULL && params != NULL && fps_idx != NULL && knn_idx != NULL, FALSE);
  if (!check_params (params, error) ||
      !ol_check_finite (points, (gsize) params->n_points * 6, "point: coordinate", error))
    return FALSE;
  int n = params->n_points;
  float *rgb = g_new (float, (gsize) n * 3);
  for (int i = 0; i < n; i++)
    memcpy (rgb + i * 3, points + (gsize) i * 6 + 3, 3 * sizeof (float));
  fps (rgb, n, params->n_groups, fps_idx);
  knn (rgb, n, fps_idx, params->n_groups, params->group_size, knn_idx);
  g_free (rgb);
  return TRUE;
}

gboolean
ol_point_prepare (const float *points, gint64 n, const OlPointParams *params, float *out_points,
                  gint32 *fps_idx, gint32 *knn_idx, GError **error)
{
  g_return_val_if_fail (params != NULL && out_points != NULL && fps_idx != NULL && knn_idx != NULL, FALSE);
  if (!check_params (params, error))
    return FALSE;
  int np = params->n_points;
  if (n < params->n_groups || n > ((gint64) 1 << 32)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT,
                 "point: too few points: %" G_GINT64_FORMAT ", at "
                 "least %d (one per group) needed", n, params->n_groups);
    return FALSE;
  }
  g_return_val_if_fail (points != NULL, FALSE);
  if (!ol_check_finite (points, (gsize) n * 6, "point: coordinate", error))
    return FALSE;

  for (int i = 0; i < np; i++) {
    gint64 src = n >= np ? (gint64) i * n / np : i % n;
    memcpy (out_points + (gsize) i * 6, points + src * 6, 6 * sizeof (float));
  }

  /* pc_norm: centroid subtracted in float32, divided by the largest norm */
  double sum[3] = { 0, 0, 0 };
  for (int i = 0; i < np; i++)
    for (int c = 0; c < 3; c++)
      sum[c] += out_points[(gsize) i * 6 + c];
  float centroid[3];
  for (int c = 0; c < 3; c++)
    centroid[c] = (float) (sum[c] / np);
  float radius = 0;
  for (int i = 0; i < np; i++) {
    float *v = out_points + (gsize) i * 6;
    for (int c = 0; c < 3; c++)
      v[c] -= centroid[c];
    float r = sqrtf (norm2 (v));
    radius = r > radius ? r : radius;
  }
  /* all points at one position: centred at 0, nothing to scale */
  if (radius > 0)
    for (int i = 0; i < np; i++)
      for (int c = 0; c < 3; c++)
        out_points[(gsize) i * 6 + c] /= radius;
  if (params->half_input)
    for (gsize i = 0; i < (gsize) np * 6; i++)
      out_points[i] = ol_fp16_to_fp32 (ol_fp32_to_fp16 (out_points[i]));

  return ol_point_group_indices (out_points, params, fps_idx, knn_idx, error);
}
