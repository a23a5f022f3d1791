/* Next-token sampling: greedy, or temperature + top-k + top-p as OneLLM's generate, with a seeded RNG. */
#pragma once

#include <glib.h>
#include "error.h"

G_BEGIN_DECLS

typedef struct _OlSampler OlSampler;

/* OneLLM's evaluation scripts and demos use temperature 0.1, top_p 0.75. */
typedef struct {
  float temperature;   /* <= 0: greedy (argmax, ties to the lowest id) */
  float top_p;         /* nucleus mass, >= 0; 1 or more keeps every token */
  guint top_k;         /* keep the k most likely tokens first; 0: off */
  guint64 seed;
} OlSamplerParams;

/* Fails with OL_ERROR_INVALID_ARGUMENT for a NaN or infinite temperature and a NaN or negative top_p. */
OL_API OlSampler *ol_sampler_new (const OlSamplerParams *params, GError **error);
OL_API void ol_sampler_free (OlSampler *s);

/* Draws the next token from n_vocab logits. With temperature > 0, as OneLLM's generate:
 * probs = softmax(logits / T) over the top_k candidates (all when top_k is 0); sorted descending
 * (ties: lower id first); tokens whose preceding mass (cumsum - p_i, in float) exceeds top_p are
 * dropped; the rest is renormalised and one token drawn by inverting their cumulative distribution, in
 * that order, at a uniform number from the sampler's xoshiro256** generator (seeded through splitmix64).
 * The stream of draws is deterministic for a seed but cannot reproduce torch.multinomial's.
 * Non-finite logits: NaN counts as -inf; if some logits are +inf the mass is shared equally among them;
 * if all are -inf (or NaN) every token is equally likely, and greedy returns id 0. */
OL_API gint32 ol_sampler_sample (OlSampler *s, const float *logits, gsize n_vocab);

G_END_DECLS
