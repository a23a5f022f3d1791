/* Sampler: greedy, top-p boundaries, top-k, draw frequencies against the exact distribution, NaN and Inf. */
#include "onellm.h"

#include <math.h>
#include <string.h>

static OlSampler *
sampler (float temperature, float top_p, guint top_k, guint64 seed)
{
  OlSamplerParams p = { temperature, top_p, top_k, seed };
  g_autoptr (GError) error = NULL;
  OlSampler *s = ol_sampler_new (&p, &error);
  g_assert_no_error (error);
  return s;
}

/* Draws n times; counts[i] is how often id i came. */
static guint *
draw (OlSampler *s, const float *logits, gsize n_vocab, guint n)
{
  guint *counts = g_new0 (guint, n_vocab);
  for (guint i = 0; i < n; i++) {
    gint32 id = ol_sampler_sample (s, logits, n_vocab);
    g_assert_true (id >= 0 && (gsize) id < n_vocab);
    counts[id]++;
  }
  return counts;
}

typedef struct {
  float x;
  gint32 id;
} Entry;

static int
entry_cmp (const void *a, const void *b)
{
  const Entry *p = a, *q = b;
  if (p->x != q->x)
    return p->x > q->x ? -1 : 1;
  return p->id - q->id;
}

/* OneLLM's sample_top_p written out plainly for finite logits: the probability each id is drawn with. */
static double *
reference_probs (const float *logits, gsize n, float temperature, float top_p, guint top_k)
{
  Entry *e = g_new (Entry, n);
  for (gsize i = 0; i < n; i++)
    e[i] = (Entry) { logits[i], (gint32) i };
  qsort (e, n, sizeof (Entry), entry_cmp);
  gsize k = top_k > 0 && top_k < n ? top_k : n;
  double total = 0;
  for (gsize i = 0; i < k; i++)
    total += exp (((double) e[i].x - e[0].x) / temperature);
  double *probs = g_new0 (double, n), cum = 0, kept = 0;
  for (gsize i = 0; i < k; i++) {
    float p = (float) (exp (((double) e[i].x - e[0].x) / temperature) / total);
    cum += p;
    if (!((float) cum - p > top_p)) {
      probs[e[i].id] = p;
      kept += p;
    }
  }
  for (gsize i = 0; i < n; i++)
    probs[i] /= kept;
  g_free (e);
  return probs;
}

/* Pearson's chi-square of the counts against probs; dropped tokens (probability 0) must never come.
 * For df degrees of freedom the statistic has mean df and standard deviation sqrt(2 df); the bound
 * df + 10 sqrt(2 df) is exceeded with probability < 1e-6 by a correct sampler, while a 1% error in one
 * token's probability at these draw counts adds hundreds. */
static void
check_frequencies (const guint *counts, const double *probs, gsize n, guint draws)
{
  double chi2 = 0;
  guint df = 0;
  for (gsize i = 0; i < n; i++) {
    if (probs[i] == 0) {
      g_assert_cmpuint (counts[i], ==, 0);
      continue;
    }
    double want = probs[i] * draws;
    chi2 += (counts[i] - want) * (counts[i] - want) / want;
    df++;
  }
  df = df > 0 ? df - 1 : 0;
  double bound = df + 10 * sqrt (2.0 * df);
  g_test_message ("chi-square %.2f with %u degrees of freedom (bound %.1f)", chi2, df, bound);
  g_assert_cmpfloat (chi2, <=, bound);
}

static void
test_greedy (void)
{
  const float logits[] = { 1, 3, -2, 3, 0.5f };
  OlSampler *s = sampler (0, 0.75f, 0, 1);
  g_assert_cmpint (ol_sampler_sample (s, logits, 5), ==, 1);   /* ties go to the lower id */
  ol_sampler_free (s);
  s = sampler (-1, 1, 2, 1);
  g_assert_cmpint (ol_sampler_sample (s, logits, 5), ==, 1);
  const float nan_first[] = { NAN, -1, 2, NAN };
  g_assert_cmpint (ol_sampler_sample (s, nan_first, 4), ==, 2);
  const float inf[] = { 5, INFINITY, 7, INFINITY };
  g_assert_cmpint (ol_sampler_sample (s, inf, 4), ==, 1);
  const float none[] = { -INFINITY, NAN, -INFINITY };
  g_assert_cmpint (ol_sampler_sample (s, none, 3), ==, 0);
  const float one[] = { -5 };
  g_assert_cmpint (ol_sampler_sample (s, one, 1), ==, 0);
  ol_sampler_free (s);
}

/* Four equal logits: p = 1/4 each, exactly, so the mass before id i is exactly i/4. A token is dropped
 * only when the mass before it exceeds top_p: at exactly top_p it stays. */
static void
test_top_p_boundary (void)
{
  const float logits[] = { 2, 2, 2, 2 };
  const struct { float top_p; guint kept; } cases[] = {
    { 0, 1 }, { 0.1f, 1 }, { 0.25f, 2 }, { 0.49f, 2 }, { 0.5f, 3 }, { 0.75f, 4 }, { 1, 4 }, { 5, 4 },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    OlSampler *s = sampler (0.7f, cases[c].top_p, 0, 42 + c);
    g_autofree guint *counts = draw (s, logits, 4, 4000);
    for (guint i = 0; i < 4; i++) {
      if (i < cases[c].kept)
        g_assert_cmpuint (counts[i], >, 4000 / cases[c].kept / 2);   /* uniform over the kept ones */
      else
        g_assert_cmpuint (counts[i], ==, 0);
    }
    ol_sampler_free (s);
  }
  /* two halves: the second token's preceding mass is exactly 0.5 */
  const float two[] = { -1, -1 };
  OlSampler *s = sampler (1, 0.5f, 0, 3);
  g_autofree guint *counts = draw (s, two, 2, 2000);
  g_assert_cmpuint (counts[1], >, 800);
  ol_sampler_free (s);
}

static void
test_distribution (void)
{
  const float logits[] = { 1.5f, -0.3f, 2.2f, 0.7f, 2.2f, -4, 0.9f, 1.1f };
  const gsize n = G_N_ELEMENTS (logits);
  const struct { float t, top_p; guint top_k; } cases[] = {
    { 0.8f, 0.9f, 0 }, { 1, 1, 0 }, { 0.1f, 0.75f, 0 }, { 1.3f, 1, 3 }, { 2, 0.6f, 5 },
  };
  const guint draws = 200000;
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    OlSampler *s = sampler (cases[c].t, cases[c].top_p, cases[c].top_k, 1000 + c);
    g_autofree guint *counts = draw (s, logits, n, draws);
    g_autofree double *probs = reference_probs (logits, n, cases[c].t, cases[c].top_p, cases[c].top_k);
    check_frequencies (counts, probs, n, draws);
    ol_sampler_free (s);
  }
}

/* A LLaMA-sized vocabulary: the shortcut that sorts only the likely tokens keeps exactly the tokens a
 * full sort keeps, and draws them with the right frequencies. */
static void
test_large_vocab (void)
{
  const gsize n = 32000;
  float *logits = g_new (float, n);
  GRand *rng = g_rand_new_with_seed (5);
  const struct { float t, top_p, spread; } cases[] = {
    { 0.1f, 0.75f, 3 }, { 0.8f, 0.95f, 3 }, { 1, 0.5f, 0.2f }, { 1, 0.998f, 1 }, { 0.1f, 0.75f, 0.01f },
  };
  for (guint c = 0; c < G_N_ELEMENTS (cases); c++) {
    for (gsize i = 0; i < n; i++)
      logits[i] = (float) g_rand_double_range (rng, -cases[c].spread, cases[c].spread) * 4;
    logits[17] = logits[4242] = 4 * cases[c].spread + 0.5f;   /* a tie at the top */
    g_autofree double *probs = reference_probs (logits, n, cases[c].t, cases[c].top_p, 0);
    guint kept = 0;
    for (gsize i = 0; i < n; i++)
      kept += probs[i] > 0;
    OlSampler *s = sampler (cases[c].t, cases[c].top_p, 0, 77 + c);
    /* a wide nucleus means sorting most of the vocabulary per draw: fewer draws, membership only */
    const guint draws = kept <= 100 ? 6000 : 200;
    GTimer *timer = g_timer_new ();
    g_autofree guint *counts = draw (s, logits, n, draws);
    double us = g_timer_elapsed (timer, NULL) / draws * 1e6;
    g_timer_destroy (timer);
    g_test_message ("T %.2f top-p %.3f: %u of %" G_GSIZE_FORMAT " tokens kept, %.1f us per draw", cases[c].t,
                    cases[c].top_p, kept, n, us);
    if (kept <= 100) {
      check_frequencies (counts, probs, n, draws);
    } else {
      for (gsize i = 0; i < n; i++)
        g_assert_true (probs[i] > 0 || counts[i] == 0);
    }
    ol_sampler_free (s);
  }
  g_rand_free (rng);
  g_free (logits);
}

static void
test_non_finite (void)
{
  const guint draws = 20000;
  /* +inf logits share the mass */
  const float inf[] = { INFINITY, 1, INFINITY, NAN, 0 };
  const double inf_probs[] = { 0.5, 0, 0.5, 0, 0 };
  OlSampler *s = sampler (0.5f, 1, 0, 9);
  g_autofree guint *a = draw (s, inf, 5, draws);
  check_frequencies (a, inf_probs, 5, draws);
  /* NaN is -inf: never drawn while something is finite */
  const float nan[] = { NAN, 0, NAN, 0 };
  const double nan_probs[] = { 0, 0.5, 0, 0.5 };
  g_autofree guint *b = draw (s, nan, 4, draws);
  check_frequencies (b, nan_probs, 4, draws);
  /* nothing finite: every token equally likely */
  const float none[] = { -INFINITY, NAN, -INFINITY, NAN };
  const double none_probs[] = { 0.25, 0.25, 0.25, 0.25 };
  g_autofree guint *c = draw (s, none, 4, draws);
  check_frequencies (c, none_probs, 4, draws);
  /* huge logits and a tiny temperature overflow nothing */
  const float huge[] = { 3e38f, -3e38f, 2.9e38f };
  OlSampler *cold = sampler (1e-30f, 0.9f, 0, 9);
  g_assert_cmpint (ol_sampler_sample (cold, huge, 3), ==, 0);
  ol_sampler_free (cold);
  ol_sampler_free (s);
}

static void
test_determinism (void)
{
  float logits[64];
  for (int i = 0; i < 64; i++)
    logits[i] = (float) ((i * 37) % 11) * 0.3f;
  gint32 a[200], b[200], c[200];
  OlSampler *s1 = sampler (1, 0.95f, 0, 1234), *s2 = sampler (1, 0.95f, 0, 1234);
  OlSampler *s3 = sampler (1, 0.95f, 0, 1235);
  for (int i = 0; i < 200; i++) {
    a[i] = ol_sampler_sample (s1, logits, 64);
    b[i] = ol_sampler_sample (s2, logits, 64);
    c[i] = ol_sampler_sample (s3, logits, 64);
  }
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
  g_assert_true (memcmp (a, c, sizeof a) != 0);
  ol_sampler_free (s1);
  ol_sampler_free (s2);
  ol_sampler_free (s3);
}

static void
test_invalid_params (void)
{
  const OlSamplerParams bad[] = {
    { NAN, 0.5f, 0, 1 }, { INFINITY, 0.5f, 0, 1 }, { 1, NAN, 0, 1 }, { 1, -0.1f, 0, 1 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (GError) error = NULL;
    g_assert_null (ol_sampler_new (&bad[i], &error));
    g_assert_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sampler/greedy", test_greedy);
  g_test_add_func ("/sampler/top-p-boundary", test_top_p_boundary);
  g_test_add_func ("/sampler/distribution", test_distribution);
  g_test_add_func ("/sampler/large-vocab", test_large_vocab);
  g_test_add_func ("/sampler/non-finite", test_non_finite);
  g_test_add_func ("/sampler/determinism", test_determinism);
  g_test_add_func ("/sampler/invalid-params", test_invalid_params);
  return g_test_run ();
}
