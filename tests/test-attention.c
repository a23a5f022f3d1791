/* ol_op_attention against the C reference: awkward sequence lengths, head sizes, GQA, masks, F16 caches. */
#include "support/ref.h"

#include <math.h>
#include <string.h>

/* Outputs are convex combinations of values in [-1, 1]; the reference runs in double on the very
 * K/V values the device holds (F16 ones already rounded), so only F32 arithmetic separates the two. */
#define TOL 1e-4f

static GRand *rng;

typedef struct {
  guint d, n_heads, n_kv_heads, tq, tk;   /* tk: rows of the K/V cache */
  gint n_valid;                           /* keys given by an n_kv tensor; -1: no tensor, all tk */
  guint batch;
  gboolean causal;
  OlType kv_type;
  float sharpness;                        /* scale = sharpness / sqrt(d) */
  gboolean timed;                         /* report the run time in the test log */
} Case;

static OlTensor *
random_tensor (OlType type, gint64 cols, gint64 rows, gint64 batch, float **host)
{
  gint64 ne[3] = { cols, rows, batch };
  float *x = g_new (float, cols * rows * batch);
  ref_fill_uniform (rng, x, cols * rows * batch, -1, 1);
  OlTensor *t = ref_tensor (ref_device (), type, 3, ne, x);
  g_free (x);
  *host = ref_read (t);
  return t;
}

static void
run_graph (OlGraph *g)
{
  g_autoptr (GError) error = NULL;
  g_assert_true (ol_graph_run (g, &error));
  g_assert_no_error (error);
}

static void
check_case (const Case *c)
{
  g_autofree float *q = NULL, *k = NULL, *v = NULL, *junk = NULL;
  OlTensor *tq = random_tensor (OL_TYPE_F32, c->n_heads * c->d, c->tq, c->batch, &q);
  OlTensor *tk = random_tensor (c->kv_type, c->n_kv_heads * c->d, c->tk, c->batch, &k);
  OlTensor *tv = random_tensor (c->kv_type, c->n_kv_heads * c->d, c->tk, c->batch, &v);
  OlTensor *to = random_tensor (OL_TYPE_F32, c->n_heads * c->d, c->tq, c->batch, &junk);
  OlTensor *tn = NULL;
  gint64 one = 1;
  if (c->n_valid >= 0) {
    tn = ref_tensor (ref_device (), OL_TYPE_I32, 1, &one, NULL);
    gint32 n = c->n_valid;
    g_autoptr (GError) error = NULL;
    g_assert_true (ol_tensor_write (tn, &n, &error));
  }
  float scale = c->sharpness / sqrtf ((float) c->d);
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  ol_graph_begin (g);
  g_assert_true (ol_op_attention (g, to, tq, tk, tv, c->n_heads, c->n_kv_heads, scale, c->causal, tn));
  g_assert_true (ol_graph_end (g, &error));
  g_assert_no_error (error);
  run_graph (g);
  if (c->timed) {
    const int reps = 2;
    gint64 t0 = g_get_monotonic_time ();
    for (int r = 0; r < reps; r++)
      run_graph (g);
    g_test_message ("attention Tq=%u Tk=%u %u heads x %u, %s K/V: %.2f ms per run", c->tq, c->tk, c->n_heads, c->d,
                    ol_type_name (c->kv_type), (g_get_monotonic_time () - t0) / 1e3 / reps);
  }
  gsize n = (gsize) c->n_heads * c->d * c->tq * c->batch;
  g_autofree float *got = ref_read (to), *want = g_new (float, n);
  ref_attention (q, k, v, want, c->d, c->n_heads, c->n_kv_heads, c->tq, c->tk, c->n_valid < 0 ? c->tk : (gsize) c->n_valid,
                 c->batch, scale, c->causal);
  g_autofree char *what = g_strdup_printf ("attention d=%u heads=%u/%u Tq=%u Tk=%u n_valid=%d B=%u %s %s", c->d,
                                           c->n_heads, c->n_kv_heads, c->tq, c->tk, c->n_valid, c->batch,
                                           c->causal ? "causal" : "bidirectional", ol_type_name (c->kv_type));
  ref_assert_close (what, got, want, n, NULL, TOL);
  ol_graph_free (g);
  ol_tensor_free (tq);
  ol_tensor_free (tk);
  ol_tensor_free (tv);
  ol_tensor_free (to);
  if (tn)
    ol_tensor_free (tn);
}

static void
check_cases (const Case *cases, guint n)
{
  for (guint i = 0; i < n; i++)
    check_case (&cases[i]);
}

/* Tiny test models: head_dim 4..32, every mask, GQA, batches. */
static void
test_small_heads (void)
{
  const Case cases[] = {
    { 8, 2, 2, 1, 1, -1, 1, TRUE, OL_TYPE_F32, 1 },
    { 4, 3, 1, 7, 31, -1, 2, FALSE, OL_TYPE_F16, 1 },
    { 8, 4, 1, 33, 300, -1, 1, TRUE, OL_TYPE_F32, 4 },
    { 16, 4, 4, 7, 40, 31, 3, TRUE, OL_TYPE_F16, 1 },
    { 16, 8, 2, 33, 31, -1, 1, TRUE, OL_TYPE_F32, 1 },    /* rows 0..1 see no key: zeros */
    { 32, 2, 2, 1, 64, 31, 3, TRUE, OL_TYPE_F32, 1 },
    { 12, 2, 1, 5, 9, 0, 1, FALSE, OL_TYPE_F32, 1 },      /* no valid key at all */
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

/* Bidirectional encoder shapes (CLIP 257, UPM 287) and the encoder benchmark shape. */
static void
test_encoder (void)
{
  const Case cases[] = {
    { 64, 4, 4, 257, 257, -1, 1, FALSE, OL_TYPE_F32, 1 },
    { 64, 2, 2, 33, 300, -1, 3, FALSE, OL_TYPE_F16, 1 },
    { 256, 2, 1, 17, 300, -1, 1, FALSE, OL_TYPE_F16, 1 },
    { 64, 16, 16, 287, 287, -1, 1, FALSE, OL_TYPE_F32, 1, TRUE },
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

/* Single-query decode over caches longer than the valid keys (split-K), and the decode benchmark shape. */
static void
test_decode (void)
{
  const Case cases[] = {
    { 64, 4, 1, 1, 2048, 2000, 1, TRUE, OL_TYPE_F16, 1 },
    { 128, 2, 2, 1, 2048, 2048, 1, TRUE, OL_TYPE_F32, 8 },
    { 128, 4, 4, 1, 400, 300, 3, TRUE, OL_TYPE_F16, 1 },
    { 8, 8, 2, 1, 2048, 1, 1, TRUE, OL_TYPE_F32, 1 },
    { 128, 32, 32, 1, 2048, 2048, 1, TRUE, OL_TYPE_F16, 1, TRUE },
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

/* Prompts continuing a cache: query i sees keys up to n_valid - Tq + i. */
static void
test_prompt (void)
{
  const Case cases[] = {
    { 128, 2, 2, 257, 2048, 300, 1, TRUE, OL_TYPE_F16, 1 },
    { 64, 8, 2, 33, 64, 40, 1, TRUE, OL_TYPE_F32, 1 },
    { 128, 4, 1, 7, 31, -1, 3, TRUE, OL_TYPE_F16, 2 },
    { 32, 2, 1, 40, 600, 550, 1, TRUE, OL_TYPE_F32, 1 },   /* few row tiles: keys split */
  };
  check_cases (cases, G_N_ELEMENTS (cases));
}

/* The tiled main pass where CPU devices run the ROWS pass by default (ONELLM_ATTN_TILED is read when the
 * op is recorded), so that both stay tested on lavapipe; on other devices this repeats the tiled pass. */
static void
test_tiled (void)
{
  const Case cases[] = {
    { 8, 2, 2, 1, 1, -1, 1, TRUE, OL_TYPE_F32, 1 },
    { 4, 3, 1, 7, 31, -1, 2, FALSE, OL_TYPE_F16, 1 },
    { 16, 8, 2, 33, 31, -1, 1, TRUE, OL_TYPE_F32, 1 },
    { 12, 2, 1, 5, 9, 0, 1, FALSE, OL_TYPE_F32, 1 },
    { 64, 2, 2, 33, 300, -1, 3, FALSE, OL_TYPE_F16, 1 },
    { 256, 2, 1, 7, 300, -1, 1, FALSE, OL_TYPE_F16, 1 },
    { 64, 4, 1, 1, 2048, 2000, 1, TRUE, OL_TYPE_F16, 1 },
    { 128, 4, 4, 1, 400, 300, 3, TRUE, OL_TYPE_F16, 1 },
    { 64, 8, 2, 33, 64, 40, 1, TRUE, OL_TYPE_F32, 1 },
  };
  g_setenv ("ONELLM_ATTN_TILED", "1", TRUE);
  check_cases (cases, G_N_ELEMENTS (cases));
  g_unsetenv ("ONELLM_ATTN_TILED");
}

/* One recording, re-run as the number of valid keys grows (a decode graph), with GQA (2 query rows per
 * KV head) and without (one row: on CPU devices the keys are dealt round the invocations). */
static void
check_rerun (guint kv_heads)
{
  const guint d = 64, heads = 4, cap = 600;
  g_autofree float *q = NULL, *k = NULL, *v = NULL, *junk = NULL;
  OlTensor *tq = random_tensor (OL_TYPE_F32, heads * d, 1, 1, &q);
  OlTensor *tk = random_tensor (OL_TYPE_F16, kv_heads * d, cap, 1, &k);
  OlTensor *tv = random_tensor (OL_TYPE_F16, kv_heads * d, cap, 1, &v);
  OlTensor *to = random_tensor (OL_TYPE_F32, heads * d, 1, 1, &junk);
  gint64 one = 1;
  OlTensor *tn = ref_tensor (ref_device (), OL_TYPE_I32, 1, &one, NULL);
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  ol_graph_begin (g);
  g_assert_true (ol_op_attention (g, to, tq, tk, tv, heads, kv_heads, 0.125f, TRUE, tn));
  g_assert_true (ol_graph_end (g, &error));
  const gint32 steps[] = { 1, 129, 130, 599, 600, 5000 };   /* beyond the cache clamps to it */
  float want[heads * d];
  for (guint s = 0; s < G_N_ELEMENTS (steps); s++) {
    g_assert_true (ol_tensor_write (tn, &steps[s], &error));
    run_graph (g);
    g_autofree float *got = ref_read (to);
    ref_attention (q, k, v, want, d, heads, kv_heads, 1, cap, MIN (steps[s], (gint32) cap), 1, 0.125f, TRUE);
    ref_assert_close ("attention rerun", got, want, heads * d, NULL, TOL);
  }
  ol_graph_free (g);
  ol_tensor_free (tq);
  ol_tensor_free (tk);
  ol_tensor_free (tv);
  ol_tensor_free (to);
  ol_tensor_free (tn);
}

static void
test_rerun (void)
{
  check_rerun (2);
  check_rerun (4);
}

static void
expect_error (const OlTensor *out, const OlTensor *q, const OlTensor *k, const OlTensor *v, guint heads,
              guint kv_heads, const OlTensor *n_kv, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  OlGraph *g = ol_graph_new (ref_device (), &error);
  ol_graph_begin (g);
  g_assert_false (ol_op_attention (g, out, q, k, v, heads, kv_heads, 1.0f, TRUE, n_kv));
  g_assert_false (ol_graph_end (g, &error));
  g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  if (strstr (error->message, "attention") == NULL || strstr (error->message, fragment) == NULL)
    g_error ("unexpected message \"%s\" (wanted \"%s\")", error->message, fragment);
  ol_graph_free (g);
}

static void
test_errors (void)
{
  g_autofree float *a = NULL, *b = NULL, *c = NULL, *e = NULL, *f = NULL, *h = NULL, *i = NULL;
  OlTensor *q = random_tensor (OL_TYPE_F32, 64, 5, 1, &a);       /* 4 heads × 16 */
  OlTensor *out = random_tensor (OL_TYPE_F32, 64, 5, 1, &b);
  OlTensor *k = random_tensor (OL_TYPE_F16, 32, 9, 1, &c);       /* 2 kv heads × 16 */
  OlTensor *v = random_tensor (OL_TYPE_F16, 32, 9, 1, &e);
  OlTensor *v32 = random_tensor (OL_TYPE_F32, 32, 9, 1, &f);
  OlTensor *q6 = random_tensor (OL_TYPE_F32, 12, 5, 1, &h);      /* 2 heads × 6 */
  OlTensor *q512 = random_tensor (OL_TYPE_F32, 520, 1, 1, &i);   /* 2 heads × 260 */
  gint64 one = 1;
  OlTensor *nf = ref_tensor (ref_device (), OL_TYPE_F32, 1, &one, NULL);
  OlTensor qv = ol_tensor_rows (q, 0, 5), k_as_q = ol_tensor_rows (k, 0, 1);
  expect_error (out, q, k, v, 3, 1, NULL, "multiple");
  expect_error (out, q, k, v, 4, 3, NULL, "multiple");
  expect_error (out, q6, k, v, 2, 1, NULL, "head_dim");
  expect_error (out, q512, k, v, 2, 1, NULL, "head_dim");
  expect_error (out, q, k, v32, 4, 2, NULL, "v differs");
  expect_error (out, q, k, v, 4, 1, NULL, "f16[32, 9, 1]");
  expect_error (q6, q, k, v, 4, 2, NULL, "out");
  expect_error (out, q, k, v, 4, 2, nf, "i32");
  expect_error (&qv, q, k, v, 4, 2, NULL, "overlaps");
  expect_error (out, &k_as_q, k, v, 2, 1, NULL, "f32");
  ol_tensor_free (q);
  ol_tensor_free (out);
  ol_tensor_free (k);
  ol_tensor_free (v);
  ol_tensor_free (v32);
  ol_tensor_free (q6);
  ol_tensor_free (q512);
  ol_tensor_free (nf);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (4321);
  g_test_add_func ("/attention/small-heads", test_small_heads);
  g_test_add_func ("/attention/encoder", test_encoder);
  g_test_add_func ("/attention/decode", test_decode);
  g_test_add_func ("/attention/prompt", test_prompt);
  g_test_add_func ("/attention/rerun", test_rerun);
  g_test_add_func ("/attention/tiled", test_tiled);
  g_test_add_func ("/attention/errors", test_errors);
  int r = g_test_run ();
  g_rand_free (rng);
  ref_device_release ();
  return r;
}
