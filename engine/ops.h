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

/* Normalisation over each row (ne[0] elements): y = x · rsqrt(mean(x²) + eps) · w (RMSNorm, LLaMA),
 * y = (x − mean) · rsqrt(var + eps) · w + b (LayerNorm, CLIP and projections; b may be NULL).
 * w and b are F32 vectors of ne[0] elements. */
OL_API gboolean ol_op_rms_norm (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *w, float eps);
OL_API gboolean ol_op_layer_norm (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *w,
                                  const OlTensor *b, float eps);

/* Row softmax of scale · x, numerically stable (max subtracted); a row needs one finite element. */
OL_API gboolean ol_op_softmax (OlGraph *g, const OlTensor *y, const OlTensor *x, float scale);

/* RoPE in LLaMA's interleaved-pair layout: x is [n_heads·head_dim, T(, B)]; in every head the pair
 * (2i, 2i+1) of row t turns by pos[t] · theta^(−2i/head_dim), angles computed in F32. pos is an I32
 * tensor of T positions read on the device, so one recording serves every decode step; row t of every
 * batch uses pos[t]. y may be x. Angles stay accurate for |pos| < 2^15 (reduced to [−π, π] on the device). */
OL_API gboolean ol_op_rope (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *pos,
                            guint n_heads, float theta);

/* Fused scaled-dot-product attention with an online softmax (flash-attention style), per head and per
 * batch b: out[:, i, b] = softmax(scale · q_i · K_bᵀ + mask) · V_b.
 * q, out: F32 [n_heads·head_dim, Tq(, B)]; k, v: F32 or F16 [n_kv_heads·head_dim, Tk(, B)] (a KV cache
 * is such a tensor, rows = positions); n_heads a multiple of n_kv_heads (query head h reads KV head
 * h / (n_heads / n_kv_heads)). n_kv: NULL to use all Tk keys, or an I32 tensor whose element 0 is the
 * number of valid keys (≤ Tk), read on the device (decode steps). causal: query i sees keys
 * j ≤ n_valid − Tq + i (a prompt continuing a cache); otherwise every valid key (CLIP, UPM).
 * out must not alias q, k or v. */
OL_API gboolean ol_op_attention (OlGraph *g, const OlTensor *out, const OlTensor *q, const OlTensor *k,
                                 const OlTensor *v, guint n_heads, guint n_kv_heads, float scale,
                                 gboolean causal, const OlTensor *n_kv);

/* Patch extraction for convolutions as matmuls: x is F32 [W, H, C(, F)] (width innermost; a 1-D signal
 * has H = 1; F images/frames); y is F32 [C·kh·kw, OH·OW(, F)] with row p = oy·OW + ox holding the patch in
 * (c, ky, kx) order — the flattening of a PyTorch conv weight [out, C, kh, kw] — so that
 * matmul(y, weight) is the convolution. No padding: OH = (H − kh)/sh + 1, OW = (W − kw)/sw + 1. */
OL_API gboolean ol_op_im2col (OlGraph *g, const OlTensor *y, const OlTensor *x, guint kh, guint kw,
                              guint sh, guint sw);

/* y[d, i] = max over j < group of x[d, i·group + j]: x [D, n·group], y [D, n] (point patch max). */
OL_API gboolean ol_op_group_max (OlGraph *g, const OlTensor *y, const OlTensor *x, guint group);

/* Mean over the outermost dimension: x [.., F] (F = ne[n_dims-1]) → y with the other dims (frame
 * averaging of video, depth and normal). */
OL_API gboolean ol_op_mean_frames (OlGraph *g, const OlTensor *y, const OlTensor *x);

/* Copy with conversion between F32 and F16 (either way, or same type); same element count, any shapes
 * (the data is read and written in order). Concatenation is copies into row views; F16 views may start at
 * any element (neighbouring elements that share a 32-bit word are kept). y must not overlap x. */
OL_API gboolean ol_op_copy (OlGraph *g, const OlTensor *y, const OlTensor *x);

/* 2-D transpose of each matrix: x [A, B(, C)] → y [B, A(, C)], F32. */
OL_API gboolean ol_op_transpose (OlGraph *g, const OlTensor *y, const OlTensor *x);

/* Row gather: y[:, i] = dequant(w[:, ids[i]]) for an I32 tensor of ids (embedding lookup); w in any
 * weight type, y F32. An id outside [0, rows of w) gives a zero row (ids come from device buffers, so
 * they cannot be checked when recording). A table beyond the device's storage range is read in row chunks. */
OL_API gboolean ol_op_get_rows (OlGraph *g, const OlTensor *y, const OlTensor *w, const OlTensor *ids);

/* Row scatter: dst[:, rows[i]] = x[:, i] (F32 x into an F32 or F16 dst — the KV-cache write, rows being
 * the positions tensor); a row index outside dst is skipped, and for a repeated index one of the rows
 * wins. An F16 dst is written in 32-bit words, so it needs an even row length and a 4-byte aligned
 * offset (true of any KV cache). */
OL_API gboolean ol_op_set_rows (OlGraph *g, const OlTensor *dst, const OlTensor *x, const OlTensor *rows);

/* y[i] = index of the largest element of row i of x (the lowest on ties), I32. */
OL_API gboolean ol_op_argmax (OlGraph *g, const OlTensor *y, const OlTensor *x);

G_END_DECLS
