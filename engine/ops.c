/* Op implementations: argument checks, bindings, push constants and dispatch sizes for each shader. */
#include "ops.h"
#include "device-private.h"

#include <math.h>
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
  guint32 M, N, K, ox, w_addr, oy, ob, flags, row_stride, ldy, wt_offset, xt_offset;
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

/* Rows per invocation of the LANE_ROWS pass at M = 1 (fewer at larger M: each row needs M sums);
 * measured on lavapipe, 2 and 8 were slower. */
#define MATVEC_LANE_ROWS 4

/* Mat-vec shape of one dispatch: workgroup size, weight rows per workgroup, rows of X, whether chunk
 * loads apply, the alignment of W rows, Q blocks per chunk and whether W's chunks and X's quads come
 * from texel views (the last five set per dispatch). CPU drivers run a workgroup as one SIMD batch per thread and load
 * memory lane by lane, so one subgroup per workgroup (no barrier) and many weight rows per chunk of X
 * (each X load serves them all) win there; GPUs want more invocations and workgroups in flight. */
static void
matvec_config (const OlDeviceCaps *c, guint32 M, guint32 spec[8])
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
  guint32 spec[8] = { 0 };
  if (matvec)
    matvec_config (c, (guint32) M, spec);

  guint64 range = c->max_storage_buffer_range - c->min_storage_buffer_offset_alignment - 8;
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
      OlBinding bind[6];
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
        /* Chunk loads need vec4-aligned X rows, and W rows 16-byte aligned for float types, 4-byte aligned
         * for Q types, whose quants are read in loads as wide as the rows' alignment allows (types.glsl);
         * the 64-bit variant reads X in 16-byte loads from a binding that starts 16-byte aligned. */
        guint32 wa = 32;
        while ((bind[1].offset | pc.w_addr | wrow) % wa != 0)
          wa /= 2;
        spec[3] = pc.ox % 4 == 0 && K % 4 == 0 && wa >= (ol_type_is_quantized (w->type) ? 4 : 16);
        spec[4] = wa;
        /* Two Q blocks per chunk share one load of their scales, but leave lanes idle on short rows: only
         * where every lane gets two chunks or more. */
        spec[5] = ol_type_is_quantized (w->type) && K / 64 >= 2 * spec[0] ? 2 : 1;
        /* CPU drivers load a storage buffer lane by lane in a loop with a branch per lane and
         * component, but fetch texels in straight-line vector code: chunks of W and quads of X come
         * from texel views there (measured on lavapipe: the Q4_0 4096² mat-vec spent half its time in
         * those loads). Otherwise bindings 4 and 5 are one-texel placeholders the shader does not read. */
        spec[6] = spec[3] && wa >= 16 && c->texel_loads;
        spec[7] = spec[3] && xs.offset % 16 == 0 && c->texel_loads;
        if (!ol_graph_bind_texels (g, w->buffer, spec[6] ? w->offset + n0 * wrow : 0, spec[6] ? nc * wrow : 16,
                                   &bind[4], &pc.wt_offset) ||
            !ol_graph_bind_texels (g, xs.buffer, spec[7] ? xs.offset : 0, spec[7] ? mc * K * 4 : 16, &bind[5],
                                   &pc.xt_offset))
          return FALSE;
        /* With both views on a CPU device, Q weights take the LANE_ROWS pass (matmul.comp): each
         * invocation streams whole rows, a 64-byte line of quants per step (4 Q4_0 blocks, 2 Q8_0:
         * with 2 Q4_0 blocks, half a line, the 4096² mat-vec took 1.8 times as long), which the CPU's
         * prefetchers follow. A chunk of X is shuffled round the subgroup, which must divide its quads.
         * Rows 16-byte aligned (spec[6]) hold a multiple of 8 blocks, so 4 blocks divide them. */
        guint32 lr_blocks = w->type == OL_TYPE_Q4_0 ? 4 : 2;
        gboolean lane_rows = spec[6] && spec[7] && ol_type_is_quantized (w->type) && c->subgroup_shuffle &&
                             spec[0] == c->subgroup_size && (8 * lr_blocks) % spec[0] == 0;
        gboolean w64 = !lane_rows && spec[3] && c->int64_arithmetic && bind[0].offset % 16 == 0;
        char variant[40];
        if (lane_rows) {
          spec[1] = spec[0] * MAX (1, MATVEC_LANE_ROWS / M);
          spec[5] = lr_blocks;
          g_snprintf (variant, sizeof (variant), "matvec_%s_lr", tname);
        } else {
          g_snprintf (variant, sizeof (variant), "%s%s", shader, w64 ? "_w64" : "");
        }
        split_groups ((nc + spec[1] - 1) / spec[1], &gx, &gy);
        ok = ol_graph_dispatch (g, op, variant, spec, 8, bind, 6, &pc, sizeof (pc), gx, gy, 1);
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

/* Attention: tile sizes are specialization constants chosen per head_dim so that the shared memory
 * fits the device; few tiles (decode) split the keys across workgroups and a combine pass merges them.
 * CPU devices get the ROWS main pass instead (see attention_rows_shape). */

#define ATTN_WG 128
#define ATTN_COMBINE_WG 64
#define ATTN_MAX_HEAD_DIM 256
#define ATTN_TARGET_GROUPS 256    /* workgroups that keep a large GPU busy */
#define ATTN_MIN_SPLIT_KEYS 128   /* fewer keys per split cost more in the combine than they gain */
#define ATTN_ROWS_MAX_R 4         /* query rows per invocation of the ROWS pass */
#define ATTN_ROWS_GROUPS_PER_CORE 4
#define ATTN_ROWS_MIN_SPLIT_KEYS 256

typedef struct {
  guint32 tq, tk, n_heads, n_kv_heads, group, oq, ok, ov, oo, on, flags;
  float scale;
  guint32 chunk, n_split, oml;
} AttentionParams;

typedef struct {
  guint32 tq, n_heads, n_split, n_rows, opart, oml, oo;
} AttentionCombineParams;

static guint64
attention_shared_bytes (guint64 d, guint64 br, guint64 bc)
{
  return 4 * (br * d + bc * d + br * bc + 3 * br) + 16 * ATTN_WG;
}

static gboolean
disjoint (const OlTensor *a, const OlTensor *b)
{
  return a->buffer != b->buffer || a->offset + ol_tensor_n_bytes (a) <= b->offset ||
         b->offset + ol_tensor_n_bytes (b) <= a->offset;
}

/* CPU drivers run a workgroup's invocations as the SIMD lanes of one thread and load memory lane by lane,
 * so the tiled pass's shared-memory tiles and barriers cost far more there than its arithmetic. The ROWS
 * pass (one subgroup per workgroup, K/V in 64-bit words, rows and keys traded with subgroupShuffle) runs
 * on CPU devices that can run it, unless $ONELLM_ATTN_TILED=1 asks for the tiled pass (so that both can be
 * tested on one device). Its shape: a single row per KV head (decode) deals its keys round the lanes,
 * BC = 4 per lane per block; otherwise each lane owns R ≤ 4 rows and the blocks are one key per lane. */
static gboolean
attention_rows_shape (const OlDeviceCaps *c, guint64 rows, const OlBinding *k, guint32 ok, const OlBinding *v,
                      guint32 ov, guint32 *br, guint32 *bc, guint32 *wg)
{
  if (c->type != OL_DEVICE_TYPE_CPU || !c->subgroup_shuffle || !c->int64_arithmetic || c->subgroup_size < 2 ||
      c->subgroup_size > c->max_workgroup_invocations || k->offset % 8 != 0 || ok % 2 != 0 ||
      v->offset % 8 != 0 || ov % 2 != 0 || g_strcmp0 (g_getenv ("ONELLM_ATTN_TILED"), "1") == 0)
    return FALSE;
  *wg = c->subgroup_size;
  if (rows == 1) {
    *br = 1;
    *bc = 4 * *wg;
  } else {
    guint32 r = 1;
    while (r < ATTN_ROWS_MAX_R && r * *wg < rows)
      r *= 2;
    *br = r * *wg;
    *bc = *wg;
  }
  return TRUE;
}

gboolean
ol_op_attention (OlGraph *g, const OlTensor *out, const OlTensor *q, const OlTensor *k, const OlTensor *v,
                 guint n_heads, guint n_kv_heads, float scale, gboolean causal, const OlTensor *n_kv)
{
  const char *op = "attention";
  if (!ol_graph_ok (g) || !is_f32 (g, op, q) || !is_f32 (g, op, out))
    return FALSE;
  gint64 qdim = q->ne[0], tq = q->ne[1], nb = q->ne[2] * q->ne[3], tk = k->ne[1];
  gint64 d = n_heads > 0 ? qdim / n_heads : 0;
  if (!check (g, n_heads > 0 && n_kv_heads > 0 && n_heads % n_kv_heads == 0, op,
              "n_heads must be a positive multiple of n_kv_heads; q", q) ||
      !check (g, d * n_heads == qdim && d % 4 == 0 && d > 0 && d <= ATTN_MAX_HEAD_DIM, op,
              "head_dim must be a multiple of 4 up to 256; q", q) ||
      !check (g, ol_tensor_same_shape (out, q), op, "output shape differs from q: out", out) ||
      !check (g, k->type == OL_TYPE_F32 || k->type == OL_TYPE_F16, op, "k must be f32 or f16, got", k) ||
      !check (g, v->type == k->type && ol_tensor_same_shape (v, k), op, "v differs from k in type or shape: v", v) ||
      !check (g, k->ne[0] == d * n_kv_heads && k->ne[2] * k->ne[3] == nb, op,
              "k does not hold n_kv_heads·head_dim rows for every batch of q: k", k) ||
      !check (g, n_kv == NULL || (n_kv->type == OL_TYPE_I32 && ol_tensor_n_elements (n_kv) >= 1), op,
              "n_kv must be an i32 tensor, got", n_kv) ||
      !check (g, disjoint (out, q) && disjoint (out, k) && disjoint (out, v), op, "out overlaps an input: out", out) ||
      !check (g, ol_tensor_n_elements (q) <= G_MAXUINT32 / 2 && ol_tensor_n_elements (k) <= G_MAXUINT32 / 2, op,
              "too many elements in", ol_tensor_n_elements (q) > G_MAXUINT32 / 2 ? q : k))
    return FALSE;

  AttentionParams pc = {
    .tq = tq, .tk = tk, .n_heads = n_heads, .n_kv_heads = n_kv_heads, .group = n_heads / n_kv_heads,
    .flags = (causal ? 1u : 0u) | (n_kv ? 2u : 0u), .scale = scale,
  };
  OlBinding bind[5];
  if (!ol_graph_bind_tensor (g, q, FALSE, &bind[0], &pc.oq) || !ol_graph_bind_tensor (g, k, FALSE, &bind[1], &pc.ok) ||
      !ol_graph_bind_tensor (g, v, FALSE, &bind[2], &pc.ov) ||
      !ol_graph_bind_tensor (g, n_kv ? n_kv : q, FALSE, &bind[4], &pc.on))
    return FALSE;

  guint64 rows = (guint64) tq * pc.group;
  const OlDeviceCaps *c = &ol_graph_get_device (g)->caps;
  guint32 br = 16, bc = 32, wg = ATTN_WG;
  gboolean by_rows = attention_rows_shape (c, rows, &bind[1], pc.ok, &bind[2], pc.ov, &br, &bc, &wg);
  if (!by_rows) {
    while (br > 1 && br / 2 >= rows)
      br /= 2;
    while (attention_shared_bytes (d, br, bc) > c->max_shared_memory && (bc > 8 || br > 1)) {
      if (bc > 8)
        bc /= 2;
      else
        br /= 2;
    }
  }
  guint64 row_tiles = (rows + br - 1) / br;
  if (!check (g, by_rows || (attention_shared_bytes (d, br, bc) <= c->max_shared_memory &&
                             c->max_workgroup_invocations >= ATTN_WG),
              op, "head_dim too large for the device's shared memory: q", q) ||
      !check (g, row_tiles <= c->max_workgroup_count[1] && n_kv_heads * nb <= c->max_workgroup_count[2], op,
              "too many query rows or heads for the device: q", q))
    return FALSE;

  /* A CPU driver runs a workgroup per thread: a few per core balance them; a GPU wants hundreds. */
  guint64 tiles = row_tiles * n_kv_heads * nb, n_split = 1;
  guint64 target = by_rows ? ATTN_ROWS_GROUPS_PER_CORE * (guint64) g_get_num_processors ()
                            : ATTN_TARGET_GROUPS;
  guint64 min_keys = by_rows ? ATTN_ROWS_MIN_SPLIT_KEYS : ATTN_MIN_SPLIT_KEYS;
  if (tiles < target)
    n_split = MAX (1, MIN ((target + tiles - 1) / tiles, (guint64) tk / min_keys));
  guint64 chunk = ((tk + n_split - 1) / n_split + bc - 1) / bc * bc;
  n_split = (tk + chunk - 1) / chunk;
  /* The ROWS pass's single-row shape leaves a partial result per invocation, merged like splits. */
  guint64 n_parts = by_rows && br == 1 ? n_split * wg : n_split;
  pc.chunk = chunk;
  pc.n_split = n_parts;
  if (n_parts > 1)
    pc.flags |= 4u;

  guint64 n_out_rows = (guint64) nb * n_heads * tq;
  OlBuffer *scratch = NULL;
  if (n_parts > 1) {
    guint64 part_bytes = n_out_rows * n_parts * d * 4, ml_bytes = n_out_rows * n_parts * 2 * 4;
    if (!check (g, (part_bytes + ml_bytes) / 4 <= G_MAXUINT32, op, "too many split partials for q", q) ||
        (scratch = ol_graph_scratch (g, part_bytes + ml_bytes)) == NULL)
      return FALSE;
    guint32 base;
    if (!ol_graph_bind (g, scratch, 0, part_bytes + ml_bytes, TRUE, &bind[3], &base))
      return FALSE;
    pc.oo = base / 4;
    pc.oml = (base + part_bytes) / 4;
  } else if (!ol_graph_bind_tensor (g, out, TRUE, &bind[3], &pc.oo)) {
    return FALSE;
  }
  guint32 spec[4] = { d, br, bc, wg };
  const char *variant = by_rows ? (k->type == OL_TYPE_F16 ? "attention_rows_f16" : "attention_rows_f32")
                                : (k->type == OL_TYPE_F16 ? "attention_f16" : "attention_f32");
  if (!ol_graph_dispatch (g, op, variant, spec, 4, bind, 5, &pc, sizeof (pc), n_split, row_tiles,
                          n_kv_heads * nb))
    return FALSE;
  if (n_parts == 1)
    return TRUE;

  AttentionCombineParams cp = {
    .tq = tq, .n_heads = n_heads, .n_split = n_parts, .n_rows = n_out_rows,
    .opart = pc.oo, .oml = pc.oml,
  };
  OlBinding cbind[2] = { bind[3] };
  cbind[0].write = FALSE;
  if (!ol_graph_bind_tensor (g, out, TRUE, &cbind[1], &cp.oo))
    return FALSE;
  guint32 cspec[4] = { d, 1, 1, ATTN_COMBINE_WG };
  guint32 gx, gy;
  split_groups (n_out_rows, &gx, &gy);
  return ol_graph_dispatch (g, "attention_combine", "attention_combine", cspec, 4, cbind, 2, &cp, sizeof (cp),
                            gx, gy, 1);
}

static gboolean
is_type (OlGraph *g, const char *op, const OlTensor *t, OlType type)
{
  g_autofree char *what = g_strdup_printf ("needs an %s tensor, got", ol_type_name (type));
  return check (g, t->type == type, op, what, t);
}

/* Elements of a tensor that one shader indexes with 32-bit integers. */
static gboolean
fits_u32 (OlGraph *g, const char *op, const OlTensor *t)
{
  return check (g, ol_tensor_n_elements (t) <= G_MAXUINT32, op, "too many elements in", t);
}

/* Binds an input and an output tensor as bindings 0 and 1. */
static gboolean
bind_xy (OlGraph *g, const OlTensor *x, const OlTensor *y, OlBinding *bind, guint32 *ox, guint32 *oy)
{
  return ol_graph_bind_tensor (g, x, FALSE, &bind[0], ox) && ol_graph_bind_tensor (g, y, TRUE, &bind[1], oy);
}

/* One invocation per unit, 256 per workgroup. */
static gboolean
dispatch_units (OlGraph *g, const char *op, const char *shader, const OlBinding *bind, guint n_bind,
                const void *pc, guint pc_size, guint64 units)
{
  guint32 gx, gy;
  split_groups ((units + 255) / 256, &gx, &gy);
  return ol_graph_dispatch (g, op, shader, NULL, 0, bind, n_bind, pc, pc_size, gx, gy, 1);
}

/* One workgroup per row. */
static gboolean
dispatch_rows (OlGraph *g, const char *op, const OlBinding *bind, guint n_bind, const void *pc, guint pc_size,
               guint64 rows)
{
  guint32 gx, gy;
  split_groups (rows, &gx, &gy);
  return ol_graph_dispatch (g, op, op, NULL, 0, bind, n_bind, pc, pc_size, gx, gy, 1);
}

static gboolean
norm (OlGraph *g, const char *op, const OlTensor *y, const OlTensor *x, const OlTensor *w, const OlTensor *b,
      float eps)
{
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_f32 (g, op, y) || !is_f32 (g, op, w) ||
      (b && !is_f32 (g, op, b)) || !fits_u32 (g, op, x) ||
      !check (g, ol_tensor_same_shape (x, y), op, "output shape differs from input:", y) ||
      !check (g, ol_tensor_n_elements (w) == x->ne[0], op, "weight length differs from the row length:", w) ||
      !check (g, b == NULL || ol_tensor_n_elements (b) == x->ne[0], op,
              "bias length differs from the row length:", b))
    return FALSE;
  struct { guint32 ncols, nrows, ox, ow, ob, oy, has_b; float eps; } pc = {
    (guint32) x->ne[0], (guint32) ol_tensor_n_rows (x), 0, 0, 0, 0, b != NULL, eps
  };
  OlBinding bind[4];
  if (!ol_graph_bind_tensor (g, x, FALSE, &bind[0], &pc.ox) ||
      !ol_graph_bind_tensor (g, w, FALSE, &bind[1], &pc.ow) ||
      !ol_graph_bind_tensor (g, b ? b : w, FALSE, &bind[2], &pc.ob) ||
      !ol_graph_bind_tensor (g, y, TRUE, &bind[3], &pc.oy))
    return FALSE;
  return dispatch_rows (g, op, bind, 4, &pc, sizeof (pc), pc.nrows);
}

gboolean
ol_op_rms_norm (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *w, float eps)
{
  return norm (g, "rms_norm", y, x, w, NULL, eps);
}

gboolean
ol_op_layer_norm (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *w, const OlTensor *b,
                  float eps)
{
  return norm (g, "layer_norm", y, x, w, b, eps);
}

/* Checks for ops whose output has the input's shape, and binds x and y as the first two bindings. */
static gboolean
same_shape_f32 (OlGraph *g, const char *op, const OlTensor *y, const OlTensor *x, OlBinding *bind,
                guint32 *ox, guint32 *oy)
{
  return ol_graph_ok (g) && is_f32 (g, op, x) && is_f32 (g, op, y) && fits_u32 (g, op, x) &&
         check (g, ol_tensor_same_shape (x, y), op, "output shape differs from input:", y) &&
         bind_xy (g, x, y, bind, ox, oy);
}

gboolean
ol_op_softmax (OlGraph *g, const OlTensor *y, const OlTensor *x, float scale)
{
  struct { guint32 ncols, nrows, ox, oy; float scale; } pc = { 0, 0, 0, 0, scale };
  OlBinding bind[2];
  if (!same_shape_f32 (g, "softmax", y, x, bind, &pc.ox, &pc.oy))
    return FALSE;
  pc.ncols = (guint32) x->ne[0];
  pc.nrows = (guint32) ol_tensor_n_rows (x);
  return dispatch_rows (g, "softmax", bind, 2, &pc, sizeof (pc), pc.nrows);
}

gboolean
ol_op_rope (OlGraph *g, const OlTensor *y, const OlTensor *x, const OlTensor *pos, guint n_heads, float theta)
{
  const char *op = "rope";
  struct {
    guint32 n_pairs, half_row, half_head, T, ox, oy, opos;
    float head_dim, log2_theta;
  } pc = { 0 };
  OlBinding bind[3];
  if (!same_shape_f32 (g, op, y, x, bind, &pc.ox, &pc.oy) || !is_type (g, op, pos, OL_TYPE_I32) ||
      !check (g, n_heads > 0 && x->ne[0] % n_heads == 0 && (x->ne[0] / n_heads) % 2 == 0, op,
              "rows do not split into heads of an even size:", x) ||
      !check (g, theta > 0, op, "theta must be positive for", x) ||
      !check (g, ol_tensor_n_elements (pos) == x->ne[1], op, "needs one position per row of a batch, got",
              pos) ||
      !ol_graph_bind_tensor (g, pos, FALSE, &bind[2], &pc.opos))
    return FALSE;
  /* the shader's bindings are x, pos, y */
  OlBinding ybind = bind[1];
  bind[1] = bind[2];
  bind[2] = ybind;
  pc.n_pairs = (guint32) (ol_tensor_n_elements (x) / 2);
  pc.half_row = (guint32) (x->ne[0] / 2);
  pc.half_head = (guint32) (x->ne[0] / n_heads / 2);
  pc.T = (guint32) x->ne[1];
  pc.head_dim = (float) (x->ne[0] / n_heads);
  pc.log2_theta = (float) log2 ((double) theta);
  return dispatch_units (g, op, op, bind, 3, &pc, sizeof (pc), pc.n_pairs);
}

gboolean
ol_op_im2col (OlGraph *g, const OlTensor *y, const OlTensor *x, guint kh, guint kw, guint sh, guint sw)
{
  const char *op = "im2col";
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_f32 (g, op, y) || !fits_u32 (g, op, x) ||
      !fits_u32 (g, op, y) ||
      !check (g, kh > 0 && kw > 0 && sh > 0 && sw > 0, op, "kernel and stride must be positive for", x) ||
      !check (g, x->ne[0] >= kw && x->ne[1] >= kh, op, "input smaller than the kernel:", x))
    return FALSE;
  gint64 W = x->ne[0], H = x->ne[1], C = x->ne[2], F = x->ne[3];
  gint64 OW = (W - kw) / sw + 1, OH = (H - kh) / sh + 1, K = C * kh * kw;
  if (!check (g, y->ne[0] == K && y->ne[1] == OH * OW && y->ne[2] * y->ne[3] == F, op,
              "output is not [C·kh·kw, OH·OW, F]:", y))
    return FALSE;
  struct { guint32 n, K, P, OW, W, H, C, kh, kw, sh, sw, ox, oy; } pc = {
    (guint32) ol_tensor_n_elements (y), (guint32) K, (guint32) (OH * OW), (guint32) OW, (guint32) W,
    (guint32) H, (guint32) C, kh, kw, sh, sw, 0, 0
  };
  OlBinding bind[2];
  if (!bind_xy (g, x, y, bind, &pc.ox, &pc.oy))
    return FALSE;
  return dispatch_units (g, op, op, bind, 2, &pc, sizeof (pc), pc.n);
}

gboolean
ol_op_group_max (OlGraph *g, const OlTensor *y, const OlTensor *x, guint group)
{
  const char *op = "group_max";
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_f32 (g, op, y) || !fits_u32 (g, op, x) ||
      !check (g, group > 0 && ol_tensor_n_rows (x) % group == 0, op, "rows do not split into whole groups:",
              x) ||
      !check (g, y->ne[0] == x->ne[0] && ol_tensor_n_rows (y) == ol_tensor_n_rows (x) / group, op,
              "output is not [D, rows / group]:", y))
    return FALSE;
  struct { guint32 n, D, group, ox, oy; } pc = {
    (guint32) ol_tensor_n_elements (y), (guint32) x->ne[0], group
  };
  OlBinding bind[2];
  if (!bind_xy (g, x, y, bind, &pc.ox, &pc.oy))
    return FALSE;
  return dispatch_units (g, op, op, bind, 2, &pc, sizeof (pc), pc.n);
}

gboolean
ol_op_mean_frames (OlGraph *g, const OlTensor *y, const OlTensor *x)
{
  const char *op = "mean_frames";
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_f32 (g, op, y) || !fits_u32 (g, op, x))
    return FALSE;
  gint64 F = x->ne[MAX (x->n_dims, 1) - 1];
  gboolean ok = ol_tensor_n_elements (y) * F == ol_tensor_n_elements (x);
  for (guint d = 0; d + 1 < x->n_dims; d++)
    ok = ok && y->ne[d] == x->ne[d];
  if (!check (g, ok, op, "output is not the input without its outermost dimension:", y))
    return FALSE;
  struct { guint32 n, F, ox, oy; } pc = { (guint32) ol_tensor_n_elements (y), (guint32) F };
  OlBinding bind[2];
  if (!bind_xy (g, x, y, bind, &pc.ox, &pc.oy))
    return FALSE;
  return dispatch_units (g, op, op, bind, 2, &pc, sizeof (pc), pc.n);
}

/* F32 and F16 tensors bound by bytes: F16 tensors may start at any even byte (views of odd rows). */
static gboolean
bind_float (OlGraph *g, const char *op, const OlTensor *t, gboolean write, OlBinding *bind,
            guint32 *byte_offset)
{
  if (!check (g, t->type == OL_TYPE_F32 || t->type == OL_TYPE_F16, op, "needs an f32 or f16 tensor, got",
              t) ||
      !check (g, t->offset % (t->type == OL_TYPE_F32 ? 4 : 2) == 0, op,
              "tensor offset not aligned to its type:", t))
    return FALSE;
  return ol_graph_bind (g, t->buffer, t->offset, ol_tensor_n_bytes (t), write, bind, byte_offset);
}

gboolean
ol_op_copy (OlGraph *g, const OlTensor *y, const OlTensor *x)
{
  const char *op = "copy";
  struct { guint32 n, units, sb, db; } pc = { 0 };
  OlBinding bind[2];
  if (!ol_graph_ok (g) || !fits_u32 (g, op, x) ||
      !check (g, ol_tensor_n_elements (x) == ol_tensor_n_elements (y), op, "output size differs from input:",
              y) ||
      !bind_float (g, op, x, FALSE, &bind[0], &pc.sb) || !bind_float (g, op, y, TRUE, &bind[1], &pc.db))
    return FALSE;
  pc.n = (guint32) ol_tensor_n_elements (x);
  if (y->type == OL_TYPE_F32)
    pc.units = pc.n;
  else if (pc.n > 0)
    pc.units = (pc.db + 2 * pc.n - 1) / 4 - pc.db / 4 + 1;   /* output words, the partial ones included */
  char shader[32];
  g_snprintf (shader, sizeof (shader), "copy_%s_%s", ol_type_name (x->type), ol_type_name (y->type));
  return dispatch_units (g, op, shader, bind, 2, &pc, sizeof (pc), pc.units);
}

gboolean
ol_op_transpose (OlGraph *g, const OlTensor *y, const OlTensor *x)
{
  const char *op = "transpose";
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_f32 (g, op, y) || !fits_u32 (g, op, x) ||
      !check (g, y->ne[0] == x->ne[1] && y->ne[1] == x->ne[0] && y->ne[2] * y->ne[3] == x->ne[2] * x->ne[3],
              op, "output is not the input with its first two dimensions swapped:", y))
    return FALSE;
  struct { guint32 n, A, B, ox, oy; } pc = { (guint32) ol_tensor_n_elements (x), (guint32) x->ne[0],
                                             (guint32) x->ne[1] };
  OlBinding bind[2];
  if (!bind_xy (g, x, y, bind, &pc.ox, &pc.oy))
    return FALSE;
  return dispatch_units (g, op, op, bind, 2, &pc, sizeof (pc), pc.n);
}

gboolean
ol_op_get_rows (OlGraph *g, const OlTensor *y, const OlTensor *w, const OlTensor *ids)
{
  const char *op = "get_rows";
  if (!ol_graph_ok (g) || !is_f32 (g, op, y) || !is_type (g, op, ids, OL_TYPE_I32) || !fits_u32 (g, op, y) ||
      !check (g, w->type != OL_TYPE_I32, op, "needs a weight type, got", w) ||
      !check (g, y->ne[0] == w->ne[0] && ol_tensor_n_rows (y) == ol_tensor_n_elements (ids), op,
              "output is not [row length of the table, number of ids]:", y) ||
      !check (g, ol_tensor_n_rows (w) <= G_MAXINT32, op, "too many rows in", w) ||
      !check (g, w->offset % (w->type == OL_TYPE_F32 ? 4 : 2) == 0, op,
              "table offset not aligned to its type:", w))
    return FALSE;
  guint32 K = (guint32) w->ne[0], upr = ol_type_is_quantized (w->type) ? K / 4 : K;
  guint64 wrow = ol_tensor_row_bytes (w), R = ol_tensor_n_rows (w);
  const OlDeviceCaps *c = &ol_graph_get_device (g)->caps;
  guint64 range = c->max_storage_buffer_range - c->min_storage_buffer_offset_alignment - 4;
  guint64 chunk = MIN (R, range / MAX (wrow, 1));
  if (!check (g, chunk > 0, op, "a single row exceeds the device's storage range:", w))
    return FALSE;
  char shader[32];
  g_snprintf (shader, sizeof (shader), "get_rows_%s", ol_type_name (w->type));
  for (guint64 r0 = 0; r0 < R; r0 += chunk) {
    guint64 nc = MIN (chunk, R - r0);
    struct { guint32 units, upr, K, R, r0, nc, w_addr, row_bytes, oy, oids; } pc = {
      (guint32) (ol_tensor_n_rows (y) * upr), upr, K, (guint32) R, (guint32) r0, (guint32) nc, 0,
      (guint32) wrow
    };
    OlBinding bind[3];
    if (!ol_graph_bind (g, w->buffer, w->offset + r0 * wrow, nc * wrow, FALSE, &bind[0], &pc.w_addr) ||
        !ol_graph_bind_tensor (g, ids, FALSE, &bind[1], &pc.oids) ||
        !ol_graph_bind_tensor (g, y, TRUE, &bind[2], &pc.oy) ||
        !dispatch_units (g, op, shader, bind, 3, &pc, sizeof (pc), pc.units))
      return FALSE;
  }
  return TRUE;
}

gboolean
ol_op_set_rows (OlGraph *g, const OlTensor *dst, const OlTensor *x, const OlTensor *rows)
{
  const char *op = "set_rows";
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_type (g, op, rows, OL_TYPE_I32) ||
      !check (g, dst->type == OL_TYPE_F32 || dst->type == OL_TYPE_F16, op,
              "needs an f32 or f16 destination, got", dst) ||
      !fits_u32 (g, op, dst) || !fits_u32 (g, op, x) ||
      !check (g, dst->ne[0] == x->ne[0] && ol_tensor_n_rows (x) == ol_tensor_n_elements (rows), op,
              "input is not [row length of the destination, number of row indices]:", x) ||
      /* F16 rows are written as whole 32-bit words, so rows must not share one */
      !check (g, dst->type == OL_TYPE_F32 || (dst->ne[0] % 2 == 0 && dst->offset % 4 == 0), op,
              "an f16 destination needs rows of even length starting on a 4-byte boundary:", dst))
    return FALSE;
  gboolean f16 = dst->type == OL_TYPE_F16;
  guint32 upr = (guint32) (f16 ? x->ne[0] / 2 : x->ne[0]);
  struct { guint32 units, upr, R, ox, od, orows; } pc = {
    (guint32) (ol_tensor_n_rows (x) * upr), upr, (guint32) MIN (ol_tensor_n_rows (dst), G_MAXUINT32)
  };
  OlBinding bind[3];
  if (!ol_graph_bind_tensor (g, x, FALSE, &bind[0], &pc.ox) ||
      !ol_graph_bind_tensor (g, rows, FALSE, &bind[1], &pc.orows) ||
      !ol_graph_bind_tensor (g, dst, TRUE, &bind[2], &pc.od))
    return FALSE;
  return dispatch_units (g, op, f16 ? "set_rows_f16" : "set_rows_f32", bind, 3, &pc, sizeof (pc), pc.units);
}

gboolean
ol_op_argmax (OlGraph *g, const OlTensor *y, const OlTensor *x)
{
  const char *op = "argmax";
  if (!ol_graph_ok (g) || !is_f32 (g, op, x) || !is_type (g, op, y, OL_TYPE_I32) || !fits_u32 (g, op, x) ||
      !check (g, ol_tensor_n_elements (y) == ol_tensor_n_rows (x), op, "needs one output per row, got", y))
    return FALSE;
  struct { guint32 ncols, nrows, ox, oy; } pc = { (guint32) x->ne[0], (guint32) ol_tensor_n_rows (x) };
  OlBinding bind[2];
  if (!bind_xy (g, x, y, bind, &pc.ox, &pc.oy))
    return FALSE;
  return dispatch_rows (g, op, bind, 2, &pc, sizeof (pc), pc.nrows);
}
