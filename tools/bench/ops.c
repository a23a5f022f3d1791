/* onellm-bench ops: the op shapes that dominate OneLLM-7B, as rows of the bench table. */
#include "bench.h"

#include <math.h>

/* dims: M, N, K of Y[M,N] = X[M,K] · W[N,K]ᵀ. */
static gboolean
matmul_prepare (BenchInstance *inst, GError **error)
{
  gint64 M = inst->dims[0], N = inst->dims[1], K = inst->dims[2];
  OlTensor *w = bench_tensor (inst, inst->row->type, K, N, error);
  if (w == NULL || !bench_tensor (inst, OL_TYPE_F32, K, M, error) ||
      !bench_tensor (inst, OL_TYPE_F32, N, M, error))
    return FALSE;
  inst->flops = 2.0 * M * N * K;
  inst->bytes = (double) ol_tensor_n_bytes (w) + 4.0 * M * K + 4.0 * M * N;
  return TRUE;
}

static gboolean
matmul_record (OlGraph *g, BenchInstance *inst)
{
  return ol_op_matmul (g, inst->t[2], inst->t[1], inst->t[0], NULL, FALSE);
}

/* dims: n of y = a + b over n floats (a residual connection). */
static gboolean
add_prepare (BenchInstance *inst, GError **error)
{
  gint64 n = inst->dims[0];
  for (int i = 0; i < 3; i++)
    if (!bench_tensor (inst, OL_TYPE_F32, n, 1, error))
      return FALSE;
  inst->flops = (double) n;
  inst->bytes = 12.0 * n;
  return TRUE;
}

static gboolean
add_record (OlGraph *g, BenchInstance *inst)
{
  return ol_op_add (g, inst->t[2], inst->t[0], inst->t[1]);
}

/* dims: Tq, Tk, heads, head_dim of one attention (every head its own K/V head). Tq = Tk is an encoder's
 * bidirectional self-attention; otherwise Tq queries continue a causal cache of Tk keys (decode). */
static gboolean
attention_prepare (BenchInstance *inst, GError **error)
{
  gint64 tq = inst->dims[0], tk = inst->dims[1], width = inst->dims[2] * inst->dims[3];
  if (!bench_tensor (inst, OL_TYPE_F32, width, tq, error) ||
      !bench_tensor (inst, inst->row->type, width, tk, error) ||
      !bench_tensor (inst, inst->row->type, width, tk, error) ||
      !bench_tensor (inst, OL_TYPE_F32, width, tq, error))
    return FALSE;
  inst->flops = 4.0 * tq * tk * width;
  inst->bytes = 8.0 * tq * width + 2.0 * ol_tensor_n_bytes (inst->t[1]);
  return TRUE;
}

static gboolean
attention_record (OlGraph *g, BenchInstance *inst)
{
  gint64 tq = inst->dims[0], tk = inst->dims[1], heads = inst->dims[2], d = inst->dims[3];
  return ol_op_attention (g, inst->t[3], inst->t[0], inst->t[1], inst->t[2], heads, heads,
                          1.0f / sqrtf ((float) d), tq != tk, NULL);
}

#define MATVEC(type, n, k) { "matvec", type, { 1, n, k }, { 1, 70, 96 }, matmul_prepare, matmul_record }
#define MATVEC_TYPES(n, k) MATVEC (OL_TYPE_F16, n, k), MATVEC (OL_TYPE_Q8_0, n, k), MATVEC (OL_TYPE_Q4_0, n, k)
#define MATMUL(type, m, n, k) { "matmul", type, { m, n, k }, { 9, 40, 96 }, matmul_prepare, matmul_record }

/* Each row is one op at one shape; adding an op is a prepare/record pair above and its rows here. */
static const BenchRow rows[] = {
  /* LLM decode, one token: attention projections, w1/w3 and w2 of the FFN */
  MATVEC_TYPES (4096, 4096),
  MATVEC_TYPES (11008, 4096),
  MATVEC_TYPES (4096, 11008),
  /* CLIP ViT-L/14 on one image (257 tokens): attention projections, MLP in and out */
  MATMUL (OL_TYPE_F16, 257, 1024, 1024),
  MATMUL (OL_TYPE_F16, 257, 4096, 1024),
  MATMUL (OL_TYPE_F16, 257, 1024, 4096),
  /* LLM prefill of a 64-token prompt */
  MATMUL (OL_TYPE_F16, 64, 4096, 4096),
  MATMUL (OL_TYPE_Q4_0, 64, 4096, 4096),
  /* Attention: CLIP/UPM encoder at ViT-L/14 width, the default model's audio UPM, LLaMA-7B decode */
  { "attention", OL_TYPE_F32, { 287, 287, 16, 64 }, { 7, 7, 2, 16 }, attention_prepare, attention_record },
  { "attention", OL_TYPE_F32, { 1243, 1243, 2, 32 }, { 7, 7, 2, 16 }, attention_prepare, attention_record },
  { "attention", OL_TYPE_F16, { 1, 512, 32, 128 }, { 1, 40, 2, 16 }, attention_prepare, attention_record },
  { "attention", OL_TYPE_F16, { 1, 2048, 32, 128 }, { 1, 40, 2, 16 }, attention_prepare, attention_record },
  /* LLM residual connection of one token */
  { "add", OL_TYPE_F32, { 4096 }, { 70 }, add_prepare, add_record },
};

const BenchRow *
bench_op_rows (guint *n_rows)
{
  *n_rows = G_N_ELEMENTS (rows);
  return rows;
}
