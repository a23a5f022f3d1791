/* The op vocabulary of the OneLLM forward pass; each records one or more shader dispatches into a graph. */
#pragma once

#include <glib.h>
#include "graph.h"

G_BEGIN_DECLS

/* Every op validates types and shapes; a mismatch is a sticky OL_ERROR_INVALID_ARGUMENT on the graph
 * and the op returns FALSE. Activations are F32; y may be the same tensor as an input unless noted. */

/* y = a + b, y = a * b, y = silu(a) * b; b repeats over a (element i uses b[i % n(b)]), so a bias
 * row or a positional embedding broadcasts over rows and frames. n(a) must be a multiple of n(b). */
OL_API gboolean ol_op_add (OlGraph *g, const OlTensor *y, const OlTensor *a, const OlTensor *b);
OL_API gboolean ol_op_mul (OlGraph *g, const OlTensor *y, const OlTensor *a, const OlTensor *b);
OL_API gboolean ol_op_swiglu (OlGraph *g, const OlTensor *y, const OlTensor *a, const OlTensor *b);

/* y = x * s; y = gelu(x) (exact, erf); y = x * sigmoid(1.702 x); y = x * sigmoid(x). */
OL_API gboolean ol_op_scale (OlGraph *g, const OlTensor *y, const OlTensor *x, float s);
OL_API gboolean ol_op_gelu (OlGraph *g, const OlTensor *y, const OlTensor *x);
OL_API gboolean ol_op_quick_gelu (OlGraph *g, const OlTensor *y, const OlTensor *x);
OL_API gboolean ol_op_silu (OlGraph *g, const OlTensor *y, const OlTensor *x);

/* Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias[N]) (+ Y if accumulate). W in F32, F16, BF16, Q8_0 or Q4_0; X, Y,
 * bias F32; M = rows of X. M <= 8 takes the mat-vec path that reads W once. W larger than the
 * device's storage range is processed in row chunks. y must not alias x. */
OL_API gboolean ol_op_matmul (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *w,
                              const OlTensor *bias, gboolean accumulate);

G_END_DECLS
