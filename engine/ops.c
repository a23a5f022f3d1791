/* Op implementations: argument checks, bindings, push constants and dispatch sizes for each shader. */
#include "ops.h"
#include "device-private.h"

#include <string.h>

#define MAX_GROUPS_X 65535u

static gboolean
check (OlGraph *g, gboolean ok, const char *op, const char *what, const OlTensor *t)
{
  if (!ok && ol_graph_ok (g)) {
    g_autofree char *d = t ? ol_tensor_describe (t) : g_strdup ("");
    ol_graph_failf (g, OL_ERROR_INVALID_ARGUMENT, "%s: %s %s", op, what, d);
  }
  return ok;
}

static gboolean
is_f32 (OlGraph *g, const char *op, const OlTensor *t)
{
  return check (g, t->type == OL_TYPE_F32, op, "needs an f32 tensor, got", t);
}

/* Spreads n workgroups over x and y so that x stays within every device's minimum limit;
 * shaders rebuild the linear index as gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x. */
static void
split_groups (guint64 n, guint32 *gx, guint32 *gy)
{
  *gx = (guint32) MIN (n, MAX_GROUPS_X);
  *gy = (guint32) ((n + *gx - 1) / MAX (*gx, 1));
}

static gboolean
elementwise_count (OlGraph *g, const char *op, const OlTensor *y, const OlTensor *x, guint32 *n)
{
  if (!is_f32 (g, op, x) || !is_f32 (g, op, y) ||
      !check (g, ol_tensor_n_elements (y) == ol_tensor_n_elements (x), op, "output size differs from input", y) ||
      !check (g, ol_tensor_n_elements (x) <= G_MAXUINT32, op, "too many elements in", x))
    return FALSE;
  *n = (guint32) ol_tensor_n_elements (x);
  return TRUE;
}

static gboolean
binary (OlGraph *g, const char *shader, const OlTensor *y, const OlTensor *a, const OlTensor *b)
{
  guint32 n;
  if (!ol_graph_ok (g) || !elementwise_count (g, shader, y, a, &n) || !is_f32 (g, shader, b) ||
      !check (g, n % ol_tensor_n_elements (b) == 0, shader, "second operand does not tile the first:", b))
    return FALSE;
  struct { guint32 n, nb, oa, ob, oy; } pc = { n, (guint32) ol_tensor_n_elements (b) };
  OlBinding bind[3];
  if (!ol_graph_bind_tensor (g, a, FALSE, &bind[0], &pc.oa) || !ol_graph_bind_tensor (g, b, FALSE, &bind[1], &pc.ob) ||
      !ol_graph_bind_tensor (g, y, TRUE, &bind[2], &pc.oy))
    return FALSE;
  guint32 gx, gy;
  split_groups ((n + 255) / 256, &gx, &gy);
  return ol_graph_dispatch (g, shader, shader, NULL, 0, bind, 3, &pc, sizeof (pc), gx, gy, 1);
}

gboolean
ol_op_add (OlGraph *g, const OlTensor *y, const OlTensor *a, const OlTensor *b)
{
  return binary (g, "add", y, a, b);
}

gboolean
ol_op_mul (OlGraph *g, const OlTensor *y, const OlTensor *a, const OlTensor *b)
{
  return binary (g, "mul", y, a, b);
}

gboolean
ol_op_swiglu (OlGraph *g, const OlTensor *y, const OlTensor *a, const OlTensor *b)
{
  if (!check (g, ol_tensor_n_elements (a) == ol_tensor_n_elements (b), "swiglu", "gate and up differ:", b))
    return FALSE;
  return binary (g, "swiglu", y, a, b);
}

static gboolean
unary (OlGraph *g, const char *shader, const OlTensor *y, const OlTensor *x, float s)
{
  guint32 n;
  if (!ol_graph_ok (g) || !elementwise_count (g, shader, y, x, &n))
    return FALSE;
  struct { guint32 n, ox, oy; float s; } pc = { n, 0, 0, s };
  OlBinding bind[2];
  if (!ol_graph_bind_tensor (g, x, FALSE, &bind[0], &pc.ox) || !ol_graph_bind_tensor (g, y, TRUE, &bind[1], &pc.oy))
    return FALSE;
  guint32 gx, gy;
  split_groups ((n + 255) / 256, &gx, &gy);
  return ol_graph_dispatch (g, shader, shader, NULL, 0, bind, 2, &pc, sizeof (pc), gx, gy, 1);
}

gboolean
ol_op_scale (OlGraph *g, const OlTensor *y, const OlTensor *x, float s)
{
  return unary (g, "scale", y, x, s);
}

gboolean
ol_op_gelu (OlGraph *g, const OlTensor *y, const OlTensor *x)
{
  return unary (g, "gelu", y, x, 0.0f);
}

gboolean
ol_op_quick_gelu (OlGraph *g, const OlTensor *y, const OlTensor *x)
{
  return unary (g, "quick_gelu", y, x, 0.0f);
}

gboolean
ol_op_silu (OlGraph *g, const OlTensor *y, const OlTensor *x)
{
  return unary (g, "silu", y, x, 0.0f);
}

typedef struct {
  guint32 M, N, K, ox, w_addr, oy, ob, flags, row_stride, ldy;
} MatmulParams;

static const char *
matmul_type_name (OlType t)
{
  switch (t) {
    case OL_TYPE_F32: return "f32";
    case OL_TYPE_F16: return "f16";
    case OL_TYPE_BF16: return "bf16";
    case OL_TYPE_Q8_0: return "q8_0";
    case OL_TYPE_Q4_0: return "q4_0";
    default: return NULL;
  }
}

/* Mat-vec shape of one dispatch: workgroup size, weight rows per workgroup, rows of X, whether chunk
 * loads apply (set per dispatch). CPU drivers run a workgroup as one SIMD batch per thread and load
 * memory lane by lane, so one subgroup per workgroup (no barrier) and many weight rows per chunk of X
 * (each X load serves them all) win there; GPUs want more invocations and workgroups in flight. */
static void
matvec_config (const OlDeviceCaps *c, guint32 M, guint32 spec[4])
{
  guint32 wg, rows;
  if (c->type == OL_DEVICE_TYPE_CPU) {
    wg = c->subgroup_size;
    rows = 32;
  } else {
    wg = MAX (64, c->subgroup_size);
    rows = 2;
  }
  spec[0] = wg;
  spec[1] = MAX (1, rows / M);
  spec[2] = M;
}

gboolean
ol_op_matmul (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *w, const OlTensor *bias,
              gboolean accumulate)
{
  const char *op = "matmul";
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_f32 (g, op, y) || (bias && !is_f32 (g, op, bias)))
    return FALSE;
  gint64 K = x->ne[0], M = ol_tensor_n_rows (x), N = ol_tensor_n_rows (w);
  if (!check (g, w->ne[0] == K, op, "weight row length differs from input row length: weight", w) ||
      !check (g, y->ne[0] == N && ol_tensor_n_rows (y) == M, op, "output shape does not match input × weight:", y) ||
      !check (g, bias == NULL || ol_tensor_n_elements (bias) == N, op, "bias length differs from weight rows:", bias) ||
      !check (g, K <= G_MAXINT32 / 2 && N <= G_MAXINT32 && M <= G_MAXINT32, op, "sizes out of range:", w))
    return FALSE;
  const char *tname = matmul_type_name (w->type);
  if (!check (g, tname != NULL, op, "unsupported weight type:", w))
    return FALSE;
  const OlDeviceCaps *c = &ol_graph_get_device (g)->caps;
  gboolean matvec = M <= 8;
  char shader[32];
  g_snprintf (shader, sizeof (shader), "%s_%s%s", matvec ? "matvec" : "matmul", tname,
              matvec && c->subgroup_arithmetic ? "_sg" : "");
  guint32 spec[4] = { 0 };
  if (matvec)
    matvec_config (c, (guint32) M, spec);

  guint64 range = c->max_storage_buffer_range - c->min_storage_buffer_offset_alignment - 4;
  guint64 wrow = ol_tensor_row_bytes (w);
  /* Rows of X (and Y) per dispatch such that both fit one binding; mat-vec takes all M at once. */
  guint64 m_chunk = MIN ((guint64) M, range / ((guint64) MAX (K, N) * 4));
  guint64 n_chunk = MIN ((guint64) N, range / wrow);
  if (!check (g, m_chunk > 0 && n_chunk > 0, op, "a single row exceeds the device's storage range:", w))
    return FALSE;
  if (matvec)
    m_chunk = M;
  else if (n_chunk < (guint64) N)
    n_chunk = MAX (64, n_chunk / 64 * 64);   /* whole tiles per chunk */

  for (guint64 m0 = 0; m0 < (guint64) M; m0 += m_chunk) {
    guint64 mc = MIN (m_chunk, M - m0);
    OlTensor xs = ol_tensor_rows (x, m0, mc);
    OlTensor ys = ol_tensor_rows (y, m0, mc);
    for (guint64 n0 = 0; n0 < (guint64) N; n0 += n_chunk) {
      guint64 nc = MIN (n_chunk, N - n0);
      MatmulParams pc = {
        .M = mc, .N = nc, .K = K, .row_stride = wrow, .ldy = N,
        .flags = (bias ? 1u : 0u) | (accumulate ? 2u : 0u),
      };
      OlBinding bind[4];
      guint32 yb, bb = 0;
      if (!ol_graph_bind_tensor (g, &xs, FALSE, &bind[0], &pc.ox) ||
          !ol_graph_bind (g, w->buffer, w->offset + n0 * wrow, nc * wrow, FALSE, &bind[1], &pc.w_addr) ||
          !ol_graph_bind (g, ys.buffer, ys.offset + n0 * 4, ((mc - 1) * N + nc) * 4, TRUE, &bind[2], &yb) ||
          !ol_graph_bind (g, bias ? bias->buffer : xs.buffer, bias ? bias->offset + n0 * 4 : xs.offset, bias ? nc * 4 : 4,
                          FALSE, &bind[3], &bb))
        return FALSE;
      pc.oy = yb / 4;
      pc.ob = bb / 4;
      guint32 gx, gy;
      gboolean ok;
      if (matvec) {
        /* Chunk loads need 16-byte aligned W rows (float types) and vec4-aligned X rows. */
        spec[3] = pc.ox % 4 == 0 && K % 4 == 0 &&
            (ol_type_is_quantized (w->type) || (pc.w_addr % 16 == 0 && wrow % 16 == 0));
        split_groups ((nc + spec[1] - 1) / spec[1], &gx, &gy);
        ok = ol_graph_dispatch (g, op, shader, spec, 4, bind, 4, &pc, sizeof (pc), gx, gy, 1);
      } else {
        gx = (guint32) ((nc + 63) / 64);
        gy = (guint32) ((mc + 63) / 64);
        ok = ol_graph_dispatch (g, op, shader, NULL, 0, bind, 4, &pc, sizeof (pc), gx, gy, 1);
      }
      if (!ok)
        return FALSE;
    }
  }
  return TRUE;
}
