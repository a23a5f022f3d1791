/* Norms, softmax, RoPE, im2col, reductions, copies, gathers and argmax against the C references, at sizes
 * that are no multiple of any workgroup size. */
#include "support/ref.h"

#include <math.h>
#include <string.h>

static GRand *rng;

static OlGraph *
new_graph (void)
{
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  g_assert_no_error (error);
  ol_graph_begin (g);
  return g;
}

static OlTensor *
empty (OlType type, gint64 ne0, gint64 ne1, gint64 ne2)
{
  gint64 ne[3] = { ne0, ne1, ne2 };
  return ref_tensor (ref_device (), type, 3, ne, NULL);
}

static OlTensor *
random2 (OlType type, gint64 cols, gint64 rows, float **host)
{
  gint64 ne[2] = { cols, rows };
  return ref_random_tensor (rng, type, 2, ne, host);
}

/* Row lengths around the 256-wide workgroups, up to a vocabulary-sized row. */
static const gint64 row_sizes[][2] = { { 1, 3 }, { 7, 5 }, { 33, 2 }, { 256, 3 }, { 1000, 4 }, { 4097, 3 },
                                       { 32003, 2 } };

static void
test_norms (void)
{
  for (guint s = 0; s < G_N_ELEMENTS (row_sizes); s++) {
    gint64 cols = row_sizes[s][0], rows = row_sizes[s][1];
    g_autofree float *x = NULL, *w = NULL, *b = NULL;
    OlTensor *tx = random2 (OL_TYPE_F32, cols, rows, &x);
    OlTensor *tw = random2 (OL_TYPE_F32, cols, 1, &w);
    OlTensor *tb = random2 (OL_TYPE_F32, cols, 1, &b);
    for (gint64 i = 0; i < cols * rows; i++)
      x[i] = 3 * x[i] + 2;   /* a mean far from zero: the layer norm's variance must not cancel */
    g_autoptr (GError) error = NULL;
    g_assert_true (ol_tensor_write_f32 (tx, x, &error));
    OlTensor *ys[3];
    for (int k = 0; k < 3; k++)
      ys[k] = empty (OL_TYPE_F32, cols, rows, 1);
    OlGraph *g = new_graph ();
    g_assert_true (ol_op_rms_norm (g, ys[0], tx, tw, 1e-5f));
    g_assert_true (ol_op_layer_norm (g, ys[1], tx, tw, tb, 1e-5f));
    g_assert_true (ol_op_layer_norm (g, ys[2], tx, tw, NULL, 1e-6f));
    ref_run_graph (g);
    g_autofree float *want = g_new (float, cols * rows), *tol = g_new (float, cols * rows);
    for (int k = 0; k < 3; k++) {
      if (k == 0)
        ref_rms_norm (x, w, want, rows, cols, 1e-5f, tol);
      else
        ref_layer_norm (x, w, k == 1 ? b : NULL, want, rows, cols, k == 1 ? 1e-5f : 1e-6f, tol);
      g_autofree float *y = ref_read (ys[k]);
      g_autofree char *what = g_strdup_printf ("%s cols=%" G_GINT64_FORMAT, k == 0 ? "rms_norm" :
                                               k == 1 ? "layer_norm" : "layer_norm (no bias)", cols);
      ref_assert_close (what, y, want, cols * rows, tol, 0);
      ol_tensor_free (ys[k]);
    }
    ol_graph_free (g);
    ol_tensor_free (tx);
    ol_tensor_free (tw);
    ol_tensor_free (tb);
  }
}

static void
test_softmax (void)
{
  for (guint s = 0; s < G_N_ELEMENTS (row_sizes); s++) {
    gint64 cols = row_sizes[s][0], rows = row_sizes[s][1];
    g_autofree float *x = NULL;
    OlTensor *tx = random2 (OL_TYPE_F32, cols, rows, &x);
    for (gint64 i = 0; i < cols * rows; i++)
      x[i] *= 20;   /* a wide range of exponents */
    g_autoptr (GError) error = NULL;
    g_assert_true (ol_tensor_write_f32 (tx, x, &error));
    OlTensor *ty = empty (OL_TYPE_F32, cols, rows, 1);
    OlGraph *g = new_graph ();
    g_assert_true (ol_op_softmax (g, ty, tx, 0.37f));
    ref_run_graph (g);
    g_autofree float *want = g_new (float, cols * rows), *tol = g_new (float, cols * rows);
    ref_softmax (x, want, rows, cols, 0.37f, tol);
    g_autofree float *y = ref_read (ty);
    g_autofree char *what = g_strdup_printf ("softmax cols=%" G_GINT64_FORMAT, cols);
    ref_assert_close (what, y, want, cols * rows, tol, 0);
    ol_graph_free (g);
    ol_tensor_free (tx);
    ol_tensor_free (ty);
  }
}

static void
check_rope (gint64 n_heads, gint64 head_dim, gint64 T, gint64 B, gint32 first_pos)
{
  gint64 dim = n_heads * head_dim;
  gint64 ne[3] = { dim, T, B };
  g_autofree float *x = NULL;
  OlTensor *tx = ref_random_tensor (rng, OL_TYPE_F32, 3, ne, &x);
  g_autofree gint32 *pos = g_new (gint32, T);
  for (gint64 t = 0; t < T; t++)
    pos[t] = first_pos + (gint32) t;
  gint64 ne_pos[1] = { T };
  OlTensor *tpos = ref_tensor_i32 (ref_device (), 1, ne_pos, pos);
  OlTensor *ty = empty (OL_TYPE_F32, dim, T, B);
  g_autoptr (GError) error = NULL;
  OlGraph *g = new_graph ();
  g_assert_true (ol_op_rope (g, ty, tx, tpos, n_heads, 10000.0f));
  ref_run_graph (g);
  gsize n = dim * T * B;
  g_autofree float *want = g_new (float, n), *tol = g_new (float, n);
  g_autofree char *what = g_strdup_printf ("rope heads=%" G_GINT64_FORMAT " head_dim=%" G_GINT64_FORMAT
                                           " T=%" G_GINT64_FORMAT " pos0=%d", n_heads, head_dim, T,
                                           first_pos);
  for (int step = 0; step < 2; step++) {
    g_autofree float *y = ref_read (ty);
    ref_rope (x, pos, want, dim, T, B, n_heads, 10000.0f, tol);
    ref_assert_close (what, y, want, n, tol, 0);
    /* the same recording serves the next step: only the positions change */
    for (gint64 t = 0; t < T; t++)
      pos[t] += 1000;
    g_assert_true (ol_tensor_write (tpos, pos, &error));
    g_assert_true (ol_graph_run (g, &error));
  }
  ol_graph_free (g);
  ol_tensor_free (tx);
  ol_tensor_free (tpos);
  ol_tensor_free (ty);
}

static void
test_rope (void)
{
  check_rope (1, 2, 1, 1, 0);
  check_rope (3, 6, 7, 1, 5);
  check_rope (4, 128, 33, 1, 0);
  check_rope (2, 64, 5, 3, 2040);
  check_rope (32, 128, 1, 1, 4000);
}

static void
check_im2col (gint64 W, gint64 H, gint64 C, gint64 F, guint kh, guint kw, guint sh, guint sw)
{
  gint64 ne[4] = { W, H, C, F };
  g_autofree float *x = NULL;
  OlTensor *tx = ref_random_tensor (rng, OL_TYPE_F32, 4, ne, &x);
  gint64 OW = (W - kw) / sw + 1, OH = (H - kh) / sh + 1, K = C * kh * kw;
  OlTensor *ty = empty (OL_TYPE_F32, K, OH * OW, F);
  OlGraph *g = new_graph ();
  g_assert_true (ol_op_im2col (g, ty, tx, kh, kw, sh, sw));
  ref_run_graph (g);
  g_autofree float *want = g_new (float, K * OH * OW * F);
  ref_im2col (x, want, W, H, C, F, kh, kw, sh, sw);
  g_autofree float *y = ref_read (ty);
  ref_assert_close ("im2col", y, want, K * OH * OW * F, NULL, 0);
  ol_graph_free (g);
  ol_tensor_free (tx);
  ol_tensor_free (ty);
}

static void
test_im2col (void)
{
  check_im2col (1, 1, 1, 1, 1, 1, 1, 1);
  check_im2col (224, 224, 3, 1, 14, 14, 14, 14);   /* CLIP ViT-L/14 patches */
  check_im2col (33, 17, 5, 2, 3, 4, 2, 3);         /* overlapping, with a ragged edge */
  check_im2col (1001, 1, 2, 3, 1, 16, 1, 10);      /* a 1-D signal */
}

static void
test_group_max_mean (void)
{
  /* D, n, group */
  const gint64 shapes[][3] = { { 1, 1, 1 }, { 7, 3, 5 }, { 384, 33, 32 }, { 1000, 2, 7 } };
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gint64 D = shapes[s][0], n = shapes[s][1], group = shapes[s][2];
    g_autofree float *x = NULL;
    OlTensor *tx = random2 (OL_TYPE_F32, D, n * group, &x);
    OlTensor *tmax = empty (OL_TYPE_F32, D, n, 1);
    /* x seen as [D, n, group frames] for the mean */
    gint64 ne3[3] = { D, n, group };
    OlTensor xv = ol_tensor_reshape (tx, 3, ne3);
    OlTensor *tmean = empty (OL_TYPE_F32, D, n, 1);
    OlGraph *g = new_graph ();
    g_assert_true (ol_op_group_max (g, tmax, tx, group));
    g_assert_true (ol_op_mean_frames (g, tmean, &xv));
    ref_run_graph (g);
    g_autofree float *want = g_new (float, D * n), *tol = g_new (float, D * n);
    for (gint64 i = 0; i < n; i++)
      for (gint64 d = 0; d < D; d++) {
        float m = -INFINITY;
        for (gint64 j = 0; j < group; j++)
          m = fmaxf (m, x[(i * group + j) * D + d]);
        want[i * D + d] = m;
      }
    g_autofree float *ymax = ref_read (tmax);
    ref_assert_close ("group_max", ymax, want, D * n, NULL, 0);
    gint64 N = D * n;
    for (gint64 i = 0; i < N; i++) {
      double acc = 0, mag = 0;
      for (gint64 f = 0; f < group; f++) {
        acc += x[f * N + i];
        mag += fabs (x[f * N + i]);
      }
      want[i] = (float) (acc / group);
      tol[i] = (float) ((group + 1) * mag / group / 16777216.0);   /* F sequential adds and the divide */
    }
    g_autofree float *ymean = ref_read (tmean);
    ref_assert_close ("mean_frames", ymean, want, N, tol, 0);
    ol_graph_free (g);
    ol_tensor_free (tx);
    ol_tensor_free (tmax);
    ol_tensor_free (tmean);
  }
}

/* Copies between every pair of F32/F16, into and out of views that start at odd F16 elements, so partial
 * words at both ends must keep their neighbours. */
static void
test_copy (void)
{
  const OlType types[2] = { OL_TYPE_F32, OL_TYPE_F16 };
  const gint64 sizes[] = { 1, 2, 7, 1000, 70001 };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (int ti = 0; ti < 2; ti++)
      for (int to = 0; to < 2; to++)
        for (gint64 first = 0; first < 2; first++) {
          gint64 n = sizes[s];
          g_autofree float *x = NULL, *y0 = NULL;
          /* n + 2 elements as rows of 1 element, so that a view may start at element 1 */
          OlTensor *tx = random2 (types[ti], 1, n + 2, &x);
          OlTensor *ty = random2 (types[to], 1, n + 2, &y0);
          OlTensor xv = ol_tensor_rows (tx, first, n), yv = ol_tensor_rows (ty, 1 - first, n);
          OlGraph *g = new_graph ();
          g_assert_true (ol_op_copy (g, &yv, &xv));
          ref_run_graph (g);
          g_autofree float *y = ref_read (ty);
          g_autofree float *want = g_memdup2 (y0, (n + 2) * sizeof (float));
          g_autofree float *tol = g_new0 (float, n + 2);
          for (gint64 i = 0; i < n; i++) {
            want[1 - first + i] = x[first + i];
            /* to F16: round to nearest on the host, the device may round either way: one half ulp */
            if (types[to] == OL_TYPE_F16 && types[ti] == OL_TYPE_F32)
              tol[1 - first + i] = fabsf (x[first + i]) / 1024 + 6e-8f;
          }
          g_autofree char *what = g_strdup_printf ("copy %s to %s n=%" G_GINT64_FORMAT " first=%"
                                                   G_GINT64_FORMAT, ol_type_name (types[ti]),
                                                   ol_type_name (types[to]), n, first);
          ref_assert_close (what, y, want, n + 2, tol, 0);
          ol_graph_free (g);
          ol_tensor_free (tx);
          ol_tensor_free (ty);
        }
}

static void
test_transpose (void)
{
  const gint64 shapes[][3] = { { 1, 1, 1 }, { 7, 33, 1 }, { 257, 130, 3 }, { 1, 1000, 2 } };
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gint64 A = shapes[s][0], B = shapes[s][1], C = shapes[s][2];
    gint64 ne[3] = { A, B, C };
    g_autofree float *x = NULL;
    OlTensor *tx = ref_random_tensor (rng, OL_TYPE_F32, 3, ne, &x);
    OlTensor *ty = empty (OL_TYPE_F32, B, A, C);
    OlGraph *g = new_graph ();
    g_assert_true (ol_op_transpose (g, ty, tx));
    ref_run_graph (g);
    g_autofree float *want = g_new (float, A * B * C);
    for (gint64 c = 0; c < C; c++)
      for (gint64 b = 0; b < B; b++)
        for (gint64 a = 0; a < A; a++)
          want[(c * A + a) * B + b] = x[(c * B + b) * A + a];
    g_autofree float *y = ref_read (ty);
    ref_assert_close ("transpose", y, want, A * B * C, NULL, 0);
    ol_graph_free (g);
    ol_tensor_free (tx);
    ol_tensor_free (ty);
  }
}

static void
test_get_rows (void)
{
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16, OL_TYPE_BF16, OL_TYPE_Q8_0, OL_TYPE_Q4_0 };
  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    for (int quant_cols = 0; quant_cols < 2; quant_cols++) {
      gint64 K = ol_type_is_quantized (types[t]) ? (quant_cols ? 4096 : 32) : (quant_cols ? 4097 : 7);
      gint64 R = 301;
      g_autofree float *w = NULL;
      OlTensor *tw = random2 (types[t], K, R, &w);
      const gint32 ids[] = { 0, 300, 5, 5, -1, 301, 1 << 30, 150, 299 };
      gint64 n = G_N_ELEMENTS (ids);
      OlTensor *tids = ref_tensor_i32 (ref_device (), 1, &n, ids);
      OlTensor *ty = empty (OL_TYPE_F32, K, n, 1);
      OlGraph *g = new_graph ();
      g_assert_true (ol_op_get_rows (g, ty, tw, tids));
      ref_run_graph (g);
      g_autofree float *want = g_new0 (float, K * n);
      for (gint64 i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < R)
          memcpy (want + i * K, w + ids[i] * K, K * sizeof (float));
      g_autofree float *y = ref_read (ty);
      g_autofree char *what = g_strdup_printf ("get_rows %s K=%" G_GINT64_FORMAT, ol_type_name (types[t]), K);
      ref_assert_close (what, y, want, K * n, NULL, 0);   /* the same dequantization: exact */
      ol_graph_free (g);
      ol_tensor_free (tw);
      ol_tensor_free (tids);
      ol_tensor_free (ty);
    }
}

/* The KV-cache write: rows of x land at the positions, others keep their contents. */
static void
test_set_rows (void)
{
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16 };
  const gint64 widths[] = { 2, 1024, 1030 };
  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    for (guint s = 0; s < G_N_ELEMENTS (widths); s++) {
      gint64 D = widths[s], R = 40;
      g_autofree float *x = NULL, *d0 = NULL;
      const gint32 rows[] = { 3, 4, 5, 39, -1, 40, 0 };
      gint64 n = G_N_ELEMENTS (rows);
      OlTensor *tx = random2 (OL_TYPE_F32, D, n, &x);
      OlTensor *td = random2 (types[t], D, R, &d0);
      OlTensor *trows = ref_tensor_i32 (ref_device (), 1, &n, rows);
      OlGraph *g = new_graph ();
      g_assert_true (ol_op_set_rows (g, td, tx, trows));
      ref_run_graph (g);
      g_autofree float *tol = g_new0 (float, D * R);
      for (gint64 i = 0; i < n; i++)
        if (rows[i] >= 0 && rows[i] < R)
          for (gint64 c = 0; c < D; c++) {
            d0[rows[i] * D + c] = x[i * D + c];
            if (types[t] == OL_TYPE_F16)
              tol[rows[i] * D + c] = fabsf (x[i * D + c]) / 1024 + 6e-8f;   /* one half ulp */
          }
      g_autofree float *y = ref_read (td);
      g_autofree char *what = g_strdup_printf ("set_rows %s D=%" G_GINT64_FORMAT, ol_type_name (types[t]), D);
      ref_assert_close (what, y, d0, D * R, tol, 0);
      ol_graph_free (g);
      ol_tensor_free (tx);
      ol_tensor_free (td);
      ol_tensor_free (trows);
    }
}

static void
test_argmax (void)
{
  for (guint s = 0; s < G_N_ELEMENTS (row_sizes); s++) {
    gint64 cols = row_sizes[s][0], rows = row_sizes[s][1] + 2;
    g_autofree float *x = NULL;
    OlTensor *tx = random2 (OL_TYPE_F32, cols, rows, &x);
    /* ties: in row 0 the maximum appears twice, the later copy in another invocation's share;
     * row 1 is constant */
    x[cols - 1] = x[(cols - 1) / 3] = 2;
    for (gint64 i = 0; i < cols; i++)
      x[cols + i] = -5;
    g_autoptr (GError) error = NULL;
    g_assert_true (ol_tensor_write_f32 (tx, x, &error));
    gint64 ne[1] = { rows };
    OlTensor *ty = ref_tensor (ref_device (), OL_TYPE_I32, 1, ne, NULL);
    OlGraph *g = new_graph ();
    g_assert_true (ol_op_argmax (g, ty, tx));
    ref_run_graph (g);
    g_autofree gint32 *want = g_new (gint32, rows), *got = g_new (gint32, rows);
    ref_argmax (x, want, rows, cols);
    g_assert_true (ol_tensor_read (ty, got, &error));
    for (gint64 r = 0; r < rows; r++)
      g_assert_cmpint (got[r], ==, want[r]);
    ol_graph_free (g);
    ol_tensor_free (tx);
    ol_tensor_free (ty);
  }
}

/* y may be x for the row ops and RoPE (in-place updates in the forward pass). */
static void
test_in_place (void)
{
  gint64 cols = 1000, rows = 3;
  g_autofree float *x = NULL, *w = NULL;
  OlTensor *tx = random2 (OL_TYPE_F32, cols, rows, &x);
  OlTensor *tw = random2 (OL_TYPE_F32, cols, 1, &w);
  gint32 pos[3] = { 7, 8, 9 };
  gint64 n = 3;
  OlTensor *tpos = ref_tensor_i32 (ref_device (), 1, &n, pos);
  OlGraph *g = new_graph ();
  g_assert_true (ol_op_rms_norm (g, tx, tx, tw, 1e-6f));
  g_assert_true (ol_op_rope (g, tx, tx, tpos, 10, 500000.0f));
  g_assert_true (ol_op_softmax (g, tx, tx, 2.0f));
  ref_run_graph (g);
  g_autofree float *a = g_new (float, cols * rows), *b = g_new (float, cols * rows);
  g_autofree float *tol = g_new (float, cols * rows), *tol2 = g_new (float, cols * rows);
  ref_rms_norm (x, w, a, rows, cols, 1e-6f, tol);
  ref_rope (a, pos, b, cols, rows, 1, 10, 500000.0f, tol2);
  ref_softmax (b, a, rows, cols, 2.0f, tol);
  /* the earlier ops' errors pass through the softmax scaled by 2: |Δy| ≤ y · 2 · 2|Δx| */
  for (gint64 i = 0; i < cols * rows; i++)
    tol[i] += a[i] * 4 * (tol2[i] + 1e-5f * fabsf (b[i]));
  g_autofree float *y = ref_read (tx);
  ref_assert_close ("in place", y, a, cols * rows, tol, 0);
  ol_graph_free (g);
  ol_tensor_free (tx);
  ol_tensor_free (tw);
  ol_tensor_free (tpos);
}

/* Calls op number i with a wrong shape or type; names[i] is the op the error must name. */
static const char *const bad_names[] = {
  "rms_norm", "layer_norm", "softmax", "rope", "rope", "im2col", "group_max", "mean_frames", "copy", "copy",
  "transpose", "get_rows", "set_rows", "set_rows", "argmax"
};

static gboolean
bad_call (guint i, OlGraph *g, OlTensor **t)
{
  switch (i) {
    case 0: return ol_op_rms_norm (g, t[0], t[1], t[1], 1e-5f);            /* shapes differ */
    case 1: return ol_op_layer_norm (g, t[0], t[0], t[0], t[2], 1e-5f);    /* bias length */
    case 2: return ol_op_softmax (g, t[0], t[1], 1);
    case 3: return ol_op_rope (g, t[0], t[0], t[3], 3, 1e4f);              /* 4 is no multiple of 3 heads */
    case 4: return ol_op_rope (g, t[0], t[0], t[0], 2, 1e4f);              /* f32 positions */
    case 5: return ol_op_im2col (g, t[0], t[0], 2, 2, 1, 1);
    case 6: return ol_op_group_max (g, t[1], t[0], 3);
    case 7: return ol_op_mean_frames (g, t[1], t[0]);
    case 8: return ol_op_copy (g, t[1], t[0]);                             /* sizes differ */
    case 9: return ol_op_copy (g, t[4], t[4]);                             /* q8_0 */
    case 10: return ol_op_transpose (g, t[0], t[0]);
    case 11: return ol_op_get_rows (g, t[0], t[0], t[0]);                  /* f32 ids */
    case 12: return ol_op_set_rows (g, t[4], t[0], t[3]);                  /* q8_0 destination */
    case 13: return ol_op_set_rows (g, t[5], t[2], t[3]);                  /* f16 rows of odd length */
    default: return ol_op_argmax (g, t[0], t[0]);                          /* f32 output */
  }
}

/* Every op rejects bad shapes and types with an error naming it. */
static void
test_errors (void)
{
  OlTensor *t[6] = {
    empty (OL_TYPE_F32, 4, 6, 1),
    empty (OL_TYPE_F32, 5, 6, 1),
    empty (OL_TYPE_F32, 3, 6, 1),
    NULL,                                /* 6 ids */
    empty (OL_TYPE_Q8_0, 32, 2, 1),
    empty (OL_TYPE_F16, 3, 4, 1),
  };
  gint32 ids[6] = { 0 };
  gint64 n = 6;
  t[3] = ref_tensor_i32 (ref_device (), 1, &n, ids);
  for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++) {
    OlGraph *g = new_graph ();
    g_assert_false (bad_call (i, g, t));
    g_autoptr (GError) error = NULL;
    g_assert_false (ol_graph_end (g, &error));
    g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
    if (!g_str_has_prefix (error->message, bad_names[i]))
      g_error ("case %u: \"%s\" does not name %s", i, error->message, bad_names[i]);
    ol_graph_free (g);
  }
  for (int i = 0; i < 6; i++)
    ol_tensor_free (t[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (4321);
  g_test_add_func ("/kernels/norms", test_norms);
  g_test_add_func ("/kernels/softmax", test_softmax);
  g_test_add_func ("/kernels/rope", test_rope);
  g_test_add_func ("/kernels/im2col", test_im2col);
  g_test_add_func ("/kernels/group-max-mean", test_group_max_mean);
  g_test_add_func ("/kernels/copy", test_copy);
  g_test_add_func ("/kernels/transpose", test_transpose);
  g_test_add_func ("/kernels/get-rows", test_get_rows);
  g_test_add_func ("/kernels/set-rows", test_set_rows);
  g_test_add_func ("/kernels/argmax", test_argmax);
  g_test_add_func ("/kernels/in-place", test_in_place);
  g_test_add_func ("/kernels/errors", test_errors);
  int r = g_test_run ();
  g_rand_free (rng);
  ref_device_release ();
  return r;
}
