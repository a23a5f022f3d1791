/* Next-token sampling: argmax, or OneLLM's softmax / top-p draw, on a xoshiro256** stream. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
  float x;        /* the logit, NaN read as -inf */
  gint32 id;
  double w;       /* weight, then the renormalised probability of a kept token (0 if dropped) */
} Candidate;

struct _OlSampler {
  OlSamplerParams params;
  guint64 state[4];
  Candidate *cand;
  gsize cap;
};

static guint64
splitmix64 (guint64 *x)
{
  guint64 z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static guint64
rotl (guint64 x, int k)
{
  return (x << k) | (x >> (64 - k));
}

/* xoshiro256** 1.0 (Blackman and Vigna). */
static guint64
next_u64 (OlSampler *s)
{
  guint64 *st = s->state;
  guint64 result = rotl (st[1] * 5, 7) * 9;
  guint64 t = st[1] << 17;
  st[2] ^= st[0];
  st[3] ^= st[1];
  st[1] ^= st[2];
  st[0] ^= st[3];
  st[2] ^= t;
  st[3] = rotl (st[3], 45);
  return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double
next_double (OlSampler *s)
{
  return (double) (next_u64 (s) >> 11) * 0x1.0p-53;
}

OlSampler *
ol_sampler_new (const OlSamplerParams *params, GError **error)
{
  g_return_val_if_fail (params != NULL, NULL);
  if (!isfinite (params->temperature)) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "the temperature %g is not a finite number",
                 params->temperature);
    return NULL;
  }
  if (isnan (params->top_p) || params->top_p < 0) {
    g_set_error (error, OL_ERROR, OL_ERROR_INVALID_ARGUMENT, "top-p %g is not a number >= 0", params->top_p);
    return NULL;
  }
  OlSampler *s = g_new0 (OlSampler, 1);
  s->params = *params;
  guint64 x = params->seed;
  for (int i = 0; i < 4; i++)
    s->state[i] = splitmix64 (&x);
  return s;
}

void
ol_sampler_free (OlSampler *s)
{
  if (s == NULL)
    return;
  g_free (s->cand);
  g_free (s);
}

static float
logit_key (float x)
{
  return isnan (x) ? -INFINITY : x;
}

/* Descending logit, ties to the lower id: torch sorts the probabilities, which follow the logits. */
static int
candidate_cmp (const void *a, const void *b)
{
  const Candidate *p = a, *q = b;
  if (p->x != q->x)
    return p->x > q->x ? -1 : 1;
  return (p->id > q->id) - (p->id < q->id);
}

static gint32
argmax (const float *logits, gsize n)
{
  gsize best = 0;
  float bx = logit_key (logits[0]);
  for (gsize i = 1; i < n; i++) {
    if (logit_key (logits[i]) > bx) {
      bx = logit_key (logits[i]);
      best = i;
    }
  }
  return (gint32) best;
}

/* Moves the candidates of weight >= t to the front; returns how many there are and their weight. */
static gsize
partition (Candidate *c, gsize n, double t, double *mass)
{
  gsize k = 0;
  *mass = 0;
  for (gsize i = 0; i < n; i++) {
    if (c[i].w >= t) {
      Candidate tmp = c[k];
      c[k] = c[i];
      c[i] = tmp;
      *mass += c[k].w;
      k++;
    }
  }
  return k;
}

gint32
ol_sampler_sample (OlSampler *s, const float *logits, gsize n_vocab)
{
  g_return_val_if_fail (s != NULL && logits != NULL && n_vocab > 0 && n_vocab <= G_MAXINT32, -1);
  const OlSamplerParams *p = &s->params;
  if (p->temperature <= 0)
    return argmax (logits, n_vocab);

  if (s->cap < n_vocab) {
    g_free (s->cand);
    s->cand = g_new (Candidate, n_vocab);
    s->cap = n_vocab;
  }
  Candidate *c = s->cand;
  for (gsize i = 0; i < n_vocab; i++) {
    c[i].x = logit_key (logits[i]);
    c[i].id = (gint32) i;
  }
  gsize n = n_vocab;
  gboolean sorted = FALSE;
  if (p->top_k > 0 && p->top_k < n_vocab) {
    qsort (c, n_vocab, sizeof (Candidate), candidate_cmp);
    n = p->top_k;
    sorted = TRUE;
  }

  float m = c[0].x;
  for (gsize i = 1; i < n; i++)
    m = MAX (m, c[i].x);
  double total = 0;
  for (gsize i = 0; i < n; i++) {
    /* the limits of softmax where the maximum is infinite */
    if (m == INFINITY)
      c[i].w = c[i].x == INFINITY;
    else if (m == -INFINITY)
      c[i].w = 1;
    else
      c[i].w = exp (((double) c[i].x - m) / p->temperature);
    total += c[i].w;
  }

  if (!sorted) {
    /* Sorting 32000 candidates per token is the slow part. Tokens whose weight is below a threshold
     * sort after all others, so once the ones above it hold clearly more than top_p of the mass, the
     * rest are dropped whatever their order and need no sorting. */
    if (p->top_p + 1e-3 < 1) {
      for (double t = 1.0 / 16; t > 1e-30; t /= 16) {
        double mass;
        gsize k = partition (c, n, t, &mass);
        if (mass / total > p->top_p + 1e-3) {
          n = k;
          break;
        }
      }
    }
    qsort (c, n, sizeof (Candidate), candidate_cmp);
  }

  /* OneLLM: mask = cumsum - p > top_p on float32 probabilities; the cumsum is accumulated in double
   * and rounded, as torch does on the CPU. */
  double cum = 0, kept = 0;
  for (gsize i = 0; i < n; i++) {
    float prob = (float) (c[i].w / total);
    cum += prob;
    gboolean drop = (float) cum - prob > p->top_p;
    c[i].w = drop ? 0 : prob;
    kept += c[i].w;
  }

  double target = next_double (s) * kept, acc = 0;
  gsize last = 0;
  for (gsize i = 0; i < n; i++) {
    if (c[i].w == 0)
      continue;
    acc += c[i].w;
    last = i;
    if (target < acc)
      break;
  }
  return c[last].id;
}
