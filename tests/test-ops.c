/* Elementwise ops and matmul against the C references, at sizes that are no multiple of any tile. */
#include "support/ref.h"

#include <math.h>

static GRand *rng;

static OlTensor *
random_tensor (OlType type, gint64 cols, gint64 rows, float **host)
{
  gint64 ne[2] = { cols, rows };
  float *x = g_new (float, cols * rows);
  ref_fill_uniform (rng, x, cols * rows, -1, 1);
  OlTensor *t = ref_tensor (ref_device (), type, 2, ne, x);
  g_free (x);
  *host = ref_read (t);   /* what the device holds, after quantization */
  return t;
}

static void
run_graph (OlGraph *g)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_graph_end (g, &error));
  g_assert_no_error (error);
  g_assert_true (ol_graph_run (g, &error));
  g_assert_no_error (error);
}

typedef enum { ADD, MUL, SWIGLU } BinOp;

static void
check_binary (BinOp op, gint64 n, gint64 nb)
{
  g_autofree float *a = NULL, *b = NULL;
  OlTensor *ta = random_tensor (OL_TYPE_F32, n, 1, &a);
  OlTensor *tb = random_tensor (OL_TYPE_F32, nb, 1, &b);
  gint64 ne[1] = { n };
  OlTensor *ty = ref_tensor (ref_device (), OL_TYPE_F32, 1, ne, NULL);
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  ol_graph_begin (g);
  if (op == ADD)
    ol_op_add (g, ty, ta, tb);
  else if (op == MUL)
    ol_op_mul (g, ty, ta, tb);
  else
    ol_op_swiglu (g, ty, ta, tb);
  run_graph (g);
  g_autofree float *y = ref_read (ty);
  g_autofree float *want = g_new (float, n);
  for (gint64 i = 0; i < n; i++) {
    float vb = b[i % nb];
    want[i] = op == ADD ? a[i] + vb : op == MUL ? a[i] * vb : ref_silu (a[i]) * vb;
  }
  /* add/mul are exact in f32; swiglu uses the shader's exp, within a few ulp */
  ref_assert_close (op == ADD ? "add" : op == MUL ? "mul" : "swiglu", y, want, n, NULL, op == SWIGLU ? 2e-6f : 0);
  ol_graph_free (g);
  ol_tensor_free (ta);
  ol_tensor_free (tb);
  ol_tensor_free (ty);
}

static void
test_binary (void)
{
  const gint64 sizes[][2] = { { 1, 1 }, { 7, 7 }, { 33, 33 }, { 1031, 1031 }, { 70001, 70001 }, { 1000, 10 },
                              { 257 * 3, 257 }, { 300000, 1 } };
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    check_binary (ADD, sizes[i][0], sizes[i][1]);
    check_binary (MUL, sizes[i][0], sizes[i][1]);
    if (sizes[i][0] == sizes[i][1])
      check_binary (SWIGLU, sizes[i][0], sizes[i][1]);
  }
}

static void
test_unary (void)
{
  const gint64 sizes[] = { 1, 7, 33, 1031, 70001 };
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    gint64 n = sizes[i];
    g_autofree float *x = NULL;
    OlTensor *tx = random_tensor (OL_TYPE_F32, n, 1, &x);
    for (gint64 j = 0; j < n; j++)
      x[j] *= 8;   /* cover the tails of the activations */
    g_autoptr (GError) error = NULL;
    g_assert_true (ol_tensor_write_f32 (tx, x, &error));
    gint64 ne[1] = { n };
    OlTensor *ys[4];
    for (int k = 0; k < 4; k++)
      ys[k] = ref_tensor (ref_device (), OL_TYPE_F32, 1, ne, NULL);
    OlGraph *g = ol_graph_new (ref_device (), &error);
    ol_graph_begin (g);
    ol_op_scale (g, ys[0], tx, -0.37f);
    ol_op_gelu (g, ys[1], tx);
    ol_op_quick_gelu (g, ys[2], tx);
    ol_op_silu (g, ys[3], tx);
    run_graph (g);
    g_autofree float *want = g_new (float, n), *tol = g_new (float, n);
    const char *names[4] = { "scale", "gelu", "quick_gelu", "silu" };
    for (int k = 0; k < 4; k++) {
      for (gint64 j = 0; j < n; j++) {
        float v = x[j];
        want[j] = k == 0 ? v * -0.37f : k == 1 ? ref_gelu (v) : k == 2 ? ref_quick_gelu (v) : ref_silu (v);
        /* scale is exact; the others: the shader's exp (a few ulp) and erf (|err| < 1.2e-7) */
        tol[j] = k == 0 ? 0 : 4e-7f * (1 + fabsf (v));
      }
      g_autofree float *y = ref_read (ys[k]);
      ref_assert_close (names[k], y, want, n, tol, 0);
      ol_tensor_free (ys[k]);
    }
    ol_graph_free (g);
    ol_tensor_free (tx);
  }
}

/* The weight is rows first..first+N-1 of a larger tensor: its rows need not start on any boundary. */
static void
check_matmul_rows (OlType wtype, gint64 M, gint64 N, gint64 K, gint64 first, gboolean bias,
                   gboolean accumulate)
{
  g_autofree float *x = NULL, *w = NULL, *b = NULL, *y0 = NULL;
  OlTensor *tx = random_tensor (OL_TYPE_F32, K, M, &x);
  OlTensor *tw = random_tensor (wtype, K, first + N, &w);
  OlTensor wv = ol_tensor_rows (tw, first, N);
  OlTensor *tb = bias ? random_tensor (OL_TYPE_F32, N, 1, &b) : NULL;
  OlTensor *ty = random_tensor (OL_TYPE_F32, N, M, &y0);
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  ol_graph_begin (g);
  ol_op_matmul (g, ty, tx, &wv, tb, accumulate);
  run_graph (g);
  g_autofree float *y = ref_read (ty);
  g_autofree float *tol = g_new (float, M * N);
  ref_matmul (x, w + first * K, b, y0, M, N, K, accumulate, tol);
  g_autofree char *what = g_strdup_printf ("matmul %s M=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " K=%"
                                           G_GINT64_FORMAT " from row %" G_GINT64_FORMAT,
                                           ol_type_name (wtype), M, N, K, first);
  ref_assert_close (what, y, y0, M * N, tol, 0);
  ol_graph_free (g);
  ol_tensor_free (tx);
  ol_tensor_free (tw);
  ol_tensor_free (ty);
  if (tb)
    ol_tensor_free (tb);
}

static void
check_matmul (OlType wtype, gint64 M, gint64 N, gint64 K, gboolean bias, gboolean accumulate)
{
  check_matmul_rows (wtype, M, N, K, 0, bias, accumulate);
}

static void
test_matmul_float (void)
{
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16, OL_TYPE_BF16 };
  const gint64 shapes[][3] = { { 1, 1, 1 }, { 1, 7, 33 }, { 7, 33, 7 }, { 8, 1031, 65 }, { 9, 33, 1031 },
                               { 33, 7, 1 }, { 70, 130, 67 }, { 257, 65, 130 }, { 1031, 70, 45 },
                               { 1, 1031, 520 } };
  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      check_matmul (types[t], shapes[s][0], shapes[s][1], shapes[s][2], s % 2 == 0, s % 3 == 0);
}

static void
test_matmul_quant (void)
{
  const OlType types[] = { OL_TYPE_Q8_0, OL_TYPE_Q4_0 };
  const gint64 shapes[][3] = { { 1, 1, 32 }, { 1, 7, 96 }, { 3, 33, 1056 }, { 8, 1031, 64 }, { 9, 33, 160 },
                               { 70, 130, 96 }, { 257, 65, 64 }, { 1000, 67, 96 }, { 1, 1031, 256 } };
  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      check_matmul (types[t], shapes[s][0], shapes[s][1], shapes[s][2], s % 2 == 1, s % 3 == 1);
}

/* The decode mat-vec (M <= 8): N no multiple of the rows per workgroup; K an odd number of Q blocks,
 * with weights from a row that starts 2, 4 or 6 bytes past an 8-byte boundary (element by element);
 * and Q rows aligned to 4, 8, 16 or 32 bytes (K = 64·odd, 128·odd, 256·odd, a multiple of 512: chunks
 * read in words, 64-bit words, 16- or 32-byte loads), with one block per chunk (K < 1024 on lavapipe)
 * or two, from views that start at row 0 or later, up to the end of the binding. On CPU devices the Q
 * types with 16-byte aligned rows take the LANE_ROWS pass (ops-no-texels: the others), M = 1 to 8. */
static void
test_matvec (void)
{
  const OlType types[] = { OL_TYPE_F32, OL_TYPE_F16, OL_TYPE_BF16, OL_TYPE_Q8_0, OL_TYPE_Q4_0 };
  const gint64 shapes[][4] = { { 1, 33, 96, 0 }, { 2, 1, 32, 1 }, { 1, 65, 1184, 1 }, { 8, 31, 160, 3 },
                               { 2, 7, 4128, 0 }, { 1, 97, 224, 2 }, { 3, 37, 768, 1 }, { 1, 70, 512, 3 },
                               { 1, 41, 192, 1 }, { 2, 19, 128, 2 }, { 5, 33, 1024, 0 }, { 1, 9, 1088, 1 },
                               { 2, 17, 1152, 3 }, { 1, 23, 1280, 1 }, { 8, 45, 256, 1 }, { 2, 41, 1536, 2 } };
  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    for (guint s = 0; s < G_N_ELEMENTS (shapes); s++)
      check_matmul_rows (types[t], shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], s % 2 == 0,
                         s % 3 == 2);
}

static void
test_shape_errors (void)
{
  g_autofree float *x = NULL, *w = NULL, *y = NULL;
  OlTensor *tx = random_tensor (OL_TYPE_F32, 10, 2, &x);
  OlTensor *tw = random_tensor (OL_TYPE_F32, 11, 3, &w);
  OlTensor *ty = random_tensor (OL_TYPE_F32, 3, 2, &y);
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  ol_graph_begin (g);
  g_assert_false (ol_op_matmul (g, ty, tx, tw, NULL, FALSE));
  g_assert_false (ol_op_add (g, ty, tx, ty));   /* skipped: the first error is sticky */
  g_assert_false (ol_graph_end (g, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "matmul"));
  g_clear_error (&error);

  ol_graph_begin (g);   /* a new recording starts clean */
  g_assert_false (ol_op_add (g, ty, tx, tw));
  g_assert_false (ol_graph_end (g, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  ol_graph_free (g);
  ol_tensor_free (tx);
  ol_tensor_free (tw);
  ol_tensor_free (ty);

  /* A quantized weight holds whole blocks of 32, so a matmul over any other K cannot be set up. */
  g_clear_error (&error);
  gint64 ne[2] = { 48, 3 };
  g_assert_null (ol_tensor_new (ref_device (), OL_TYPE_Q4_0, 2, ne, OL_MEMORY_DEVICE, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
}

/* One recording run many times gives the same result (decode reuses recorded work). */
static void
test_rerun (void)
{
  g_autofree float *x = NULL, *w = NULL, *y = NULL;
  OlTensor *tx = random_tensor (OL_TYPE_F32, 64, 1, &x);
  OlTensor *tw = random_tensor (OL_TYPE_F16, 64, 100, &w);
  OlTensor *ty = random_tensor (OL_TYPE_F32, 100, 1, &y);
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  ol_graph_begin (g);
  ol_op_matmul (g, ty, tx, tw, NULL, TRUE);
  g_assert_true (ol_graph_end (g, &error));
  for (int i = 0; i < 3; i++)
    g_assert_true (ol_graph_run (g, &error));
  g_autofree float *got = ref_read (ty);
  g_autofree float *tol = g_new (float, 100);
  for (int i = 0; i < 3; i++)
    ref_matmul (x, w, NULL, y, 1, 100, 64, TRUE, tol);
  for (int i = 0; i < 100; i++)
    tol[i] *= 3;
  ref_assert_close ("rerun", got, y, 100, tol, 0);
  ol_graph_free (g);
  ol_tensor_free (tx);
  ol_tensor_free (tw);
  ol_tensor_free (ty);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (1234);
  g_test_add_func ("/ops/binary", test_binary);
  g_test_add_func ("/ops/unary", test_unary);
  g_test_add_func ("/ops/matmul-float", test_matmul_float);
  g_test_add_func ("/ops/matmul-quant", test_matmul_quant);
  g_test_add_func ("/ops/matvec", test_matvec);
  g_test_add_func ("/ops/shape-errors", test_shape_errors);
  g_test_add_func ("/ops/rerun", test_rerun);
  int r = g_test_run ();
  g_rand_free (rng);
  ref_device_release ();
  return r;
}
