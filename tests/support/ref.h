/* Plain-C references of every shader op, and helpers shared by the tests. */
#pragma once

#include <glib.h>
#include "onellm.h"

G_BEGIN_DECLS

/* Deterministic data: uniform in [lo, hi). */
void ref_fill_uniform (GRand *rng, float *x, gsize n, float lo, float hi);

/* Opens the test device once per process (whatever ONELLM_VK_DEVICE selects); fails the test if none. */
OlDevice *ref_device (void);
void ref_device_release (void);

/* Allocates a device tensor holding data (converted to type). */
OlTensor *ref_tensor (OlDevice *dev, OlType type, guint n_dims, const gint64 *ne, const float *data);
/* A tensor of uniform data in [-1, 1) in the given type; *host (if not NULL) gets what the device
 * holds, after quantization. */
OlTensor *ref_random_tensor (GRand *rng, OlType type, guint n_dims, const gint64 *ne, float **host);
/* An I32 tensor holding ids. */
OlTensor *ref_tensor_i32 (OlDevice *dev, guint n_dims, const gint64 *ne, const gint32 *ids);
/* Ends the recording and runs it once; fails the test on any error. */
void ref_run_graph (OlGraph *g);
/* Reads a tensor back as F32 into a new array. */
float *ref_read (const OlTensor *t);

/* Asserts |got - want| <= tol[i] for each element (tol may be NULL for a single bound tol0) and
 * reports the worst element on failure. */
void ref_assert_close (const char *what, const float *got, const float *want, gsize n, const float *tol, float tol0);

/* References. Matrices are row-major; W rows are dequantized exactly as the shaders do. */
void ref_matmul (const float *x, const float *w, const float *bias, float *y, gsize M, gsize N, gsize K,
                 gboolean accumulate, float *tol);
float ref_gelu (float x);
float ref_quick_gelu (float x);
float ref_silu (float x);

/* Attention as ol_op_attention: q, out [B][tq][n_heads·d], k, v [B][tk][n_kv_heads·d] (tk: cache rows,
 * of which the first n_valid are keys), softmax in double. A row that sees no key gives zeros. */
void ref_attention (const float *q, const float *k, const float *v, float *out, gsize d, gsize n_heads,
                    gsize n_kv_heads, gsize tq, gsize tk, gsize n_valid, gsize batch, float scale, gboolean causal);

/* Row ops over rows × cols, row-major. Each writes a per-element tolerance derived from the shader's
 * float operation count (u = 2^-24 per rounding; sums per invocation then over a 256-wide tree). */
void ref_rms_norm (const float *x, const float *w, float *y, gsize rows, gsize cols, float eps, float *tol);
void ref_layer_norm (const float *x, const float *w, const float *b, float *y, gsize rows, gsize cols,
                     float eps, float *tol);
void ref_softmax (const float *x, float *y, gsize rows, gsize cols, float scale, float *tol);
/* LLaMA's recipe: freq = 1 / theta^(2k/head_dim) and angle = pos · freq in float, then exact cos/sin.
 * x is [dim, T, batches]; the tolerance covers a few-ulp pow/exp2 on the device, scaled by the angle. */
void ref_rope (const float *x, const gint32 *pos, float *y, gsize dim, gsize T, gsize batches, guint n_heads,
               float theta, float *tol);
/* x [W, H, C, F] → y [C·kh·kw, OH·OW, F]. */
void ref_im2col (const float *x, float *y, gsize W, gsize H, gsize C, gsize F, guint kh, guint kw, guint sh,
                 guint sw);
/* Index of the maximum of each row, the lowest on ties. */
void ref_argmax (const float *x, gint32 *y, gsize rows, gsize cols);

G_END_DECLS
