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

G_END_DECLS
