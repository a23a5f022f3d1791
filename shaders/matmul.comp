// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias[N]) (+ Y when accumulating), X/Y/bias F32, W in any weight type.
// MATVEC: for M <= 8 (decode), each workgroup streams ROWS weight rows once for all rows of X
// (LANE_ROWS: each invocation its own rows; otherwise the invocations split K).
// Otherwise: 64×64 output tiles through shared memory, 8×8 outputs per invocation.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#if defined(SUBGROUP)
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#if defined(LANE_ROWS)
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#if defined(W64)
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#endif

layout(push_constant) uniform Params {
    uint M, N, K;
    uint ox;        // word offset of X in its binding
    uint w_addr;    // byte offset of W in its binding
    uint oy, ob;
    uint flags;     // 1: add bias, 2: accumulate into Y
    uint row_stride;// bytes per W row
    uint ldy;       // floats per Y row (the full N when W is processed in row chunks)
    uint wt_offset; // MATVEC: texel offset of W in binding 4
    uint xt_offset; // MATVEC: texel offset of X in binding 5
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { uint w[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };

#if defined(MATVEC)
// VEC: rows of X start at a multiple of 4 floats and rows of W are aligned enough for chunks (types.glsl),
// so chunks and vec4 loads apply; otherwise elements are read in 4s. W_ALIGN: the alignment of W rows;
// W_BLOCKS: Q blocks per chunk; W_TEXELS, X_TEXELS: chunks of W and quads of X come from their texel
// views in bindings 4 and 5 (CPU drivers).
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS = 1;
layout(constant_id = 2) const uint MV = 1;       // = p.M
layout(constant_id = 3) const bool VEC = false;
layout(constant_id = 4) const uint W_ALIGN = 4;
layout(constant_id = 5) const uint W_BLOCKS = 1;
layout(constant_id = 6) const bool W_TEXELS = false;
layout(constant_id = 7) const bool X_TEXELS = false;

layout(binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(binding = 1) readonly buffer W4 { uvec4 w4[]; };
#if defined(W64)
layout(binding = 0) readonly buffer X16 { u64vec2 x16[]; };
layout(binding = 1) readonly buffer W8 { uint64_t w8[]; };
layout(binding = 1) readonly buffer W16 { u64vec2 w16[]; };
layout(binding = 1) readonly buffer W32 { u64vec4 w32[]; };
#endif
layout(binding = 4) uniform usamplerBuffer wt;
layout(binding = 5) uniform usamplerBuffer xt;

// Where byte addr of binding 1 lies in the texel view, in bytes (W starts on a texel when W_TEXELS).
uint w_texel_byte (uint addr)
{
    return p.wt_offset * 16u + (addr - p.w_addr);
}
#define W_CHUNKS
#endif
#include "types.glsl"

float finish (uint m, uint n, float acc)
{
    if ((p.flags & 1u) != 0u)
        acc += bias[p.ob + n];
    if ((p.flags & 2u) != 0u)
        acc += y[p.oy + m * p.ldy + n];
    return acc;
}

#if defined(MATVEC)

// Quad i of the X binding.
vec4 x_quad (uint i)
{
    if (X_TEXELS)
        return uintBitsToFloat (texelFetch (xt, int (p.xt_offset + i - (p.ox >> 2))));
#if defined(W64)
    u64vec2 v = x16[i];
    return uintBitsToFloat (uvec4 (unpackUint2x32 (v.x), unpackUint2x32 (v.y)));
#else
    return x4[i];
#endif
}

// A chunk of one row of X as the products with weight chunks want it: its quads scaled by
// w_quad_x_scale, and per scale part the zero point's share W_CHUNK_ZERO · Σx (types.glsl).
#if defined(W_FLOAT)
const uint X_QUADS_MAX = W_CHUNK / 4u;
#else
const uint X_QUADS_MAX = 32u;   // 4 blocks
#endif
struct XChunk {
    vec4 v[X_QUADS_MAX];
    float zero[4];
};

// Sets quad q of the chunk (quads in element order) to v.
void x_chunk_set (inout XChunk xc, uint q, vec4 v)
{
    const uint SQ = W_CHUNK / 4u / W_CHUNK_SCALES;
    if (q % SQ == 0u)
        xc.zero[q / SQ] = 0.0;
    if (W_CHUNK_ZERO != 0.0)
        xc.zero[q / SQ] += W_CHUNK_ZERO * dot (v, vec4 (1.0));
    xc.v[q] = v * w_quad_x_scale (q);
}

// The dot product of a weight chunk with the same chunk of a row of X.
float chunk_dot (WChunk ch, XChunk xc)
{
    const uint SQ = W_CHUNK / 4u / W_CHUNK_SCALES;
    float d = 0.0;
    [[unroll]] for (uint b = 0u; b < W_CHUNK_SCALES; b++) {
        float s = -xc.zero[b];
        [[unroll]] for (uint i = 0u; i < SQ; i++)
            s += dot (w_chunk_quad (ch, b * SQ + i), xc.v[b * SQ + i]);
        d += ch.d[b] * s;
    }
    return d;
}

#if defined(LANE_ROWS)
// CPU drivers, Q types: the workgroup is one subgroup and each invocation owns ROWS / WG whole rows
// (t, t + WG, …), which it reads front to back a chunk (one 64-byte line of quants) at a time. With the
// invocations splitting K, the Q4_0 4096² mat-vec on lavapipe spent two thirds of its time stalled on
// the weights' loads and ran 1.6 times faster once they were in cache; streaming whole rows in whole
// lines halves its time. X is the same for all rows: each invocation fetches every WG-th quad of a
// chunk and the quads are shuffled round.
void main ()
{
    const uint WG = gl_WorkGroupSize.x, RL = ROWS / WG;
    const uint NQ = W_CHUNK / 4u, XL = NQ / WG;
    uint t = gl_LocalInvocationID.x;
    uint n0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * ROWS;
    if (n0 >= p.N)
        return;
    uint row[RL];
    [[unroll]] for (uint j = 0u; j < RL; j++)
        row[j] = p.w_addr + min (n0 + j * WG + t, p.N - 1u) * p.row_stride;
    float acc[RL * MV];
    [[unroll]] for (uint j = 0u; j < RL * MV; j++)
        acc[j] = 0.0;
    uint xq = p.ox >> 2, kq = p.K >> 2;
    for (uint c = 0u; c < p.K / W_CHUNK; c++) {
        XChunk xc[MV];
        [[unroll]] for (uint m = 0u; m < MV; m++) {
            vec4 mine[XL];
            [[unroll]] for (uint i = 0u; i < XL; i++)
                mine[i] = x_quad (xq + m * kq + c * NQ + i * WG + t);
            [[unroll]] for (uint q = 0u; q < NQ; q++)
                x_chunk_set (xc[m], q, subgroupShuffle (mine[q / WG], q % WG));
        }
        [[unroll]] for (uint j = 0u; j < RL; j++) {
            WChunk ch = w_chunk (row[j], p.K, c);
            [[unroll]] for (uint m = 0u; m < MV; m++)
                acc[j * MV + m] += chunk_dot (ch, xc[m]);
        }
    }
    [[unroll]] for (uint j = 0u; j < RL; j++) {
        uint n = n0 + j * WG + t;
        if (n < p.N)
            [[unroll]] for (uint m = 0u; m < MV; m++)
                y[p.oy + m * p.ldy + n] = finish (m, n, acc[j * MV + m]);
    }
}
#else
// One workgroup computes ROWS outputs for every row of X: its invocations split K, each streaming
// whole chunks (types.glsl) of the ROWS weight rows and reusing each load for all MV rows of X, then
// the partial sums are reduced across the workgroup. W64: quads of X (from a binding that starts
// 16-byte aligned), and chunks of W as W_ALIGN allows, are read in 64-bit components.

// SUBGROUP: one partial sum per subgroup; otherwise one per invocation (the workgroup size is a power of 2).
shared float red[ROWS * MV][gl_WorkGroupSize.x];

void main ()
{
    const uint WG = gl_WorkGroupSize.x;
    uint t = gl_LocalInvocationID.x;
    uint n0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * ROWS;
    if (n0 >= p.N)
        return;
    // Rows past N repeat the last row, so the loops stay uniform; their results are not stored.
    uint row[ROWS];
    [[unroll]] for (uint r = 0u; r < ROWS; r++)
        row[r] = p.w_addr + min (n0 + r, p.N - 1u) * p.row_stride;
    float acc[ROWS * MV];
    [[unroll]] for (uint j = 0u; j < ROWS * MV; j++)
        acc[j] = 0.0;

    if (VEC) {
        const uint NQ = W_CHUNK / 4u;     // quads per chunk
        uint xq = p.ox >> 2, kq = p.K >> 2;
        for (uint c = t; c < p.K / W_CHUNK; c += WG) {
            // This chunk of every row of X, loaded once for all ROWS weight rows.
            XChunk xc[MV];
            [[unroll]] for (uint m = 0u; m < MV; m++)
                [[unroll]] for (uint q = 0u; q < NQ; q++)
                    x_chunk_set (xc[m], q, x_quad (xq + m * kq + c * NQ + q));
            [[unroll]] for (uint r = 0u; r < ROWS; r++) {
                WChunk ch = w_chunk (row[r], p.K, c);
                [[unroll]] for (uint m = 0u; m < MV; m++)
                    acc[r * MV + m] += chunk_dot (ch, xc[m]);
            }
        }
    } else {
        uint k4 = p.K & ~3u;
        for (uint k = t * 4u; k < k4; k += WG * 4u) {
            [[unroll]] for (uint r = 0u; r < ROWS; r++) {
                vec4 wv = w_load4 (row[r], k, p.K);
                [[unroll]] for (uint m = 0u; m < MV; m++) {
                    uint xi = p.ox + m * p.K + k;
                    acc[r * MV + m] += dot (wv, vec4 (x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u]));
                }
            }
        }
#if defined(W_FLOAT)
        for (uint k = k4 + t; k < p.K; k += WG) {
            [[unroll]] for (uint r = 0u; r < ROWS; r++) {
                float wv = w_load1 (row[r], k);
                [[unroll]] for (uint m = 0u; m < MV; m++)
                    acc[r * MV + m] += wv * x[p.ox + m * p.K + k];
            }
        }
#endif
    }

    uint nr = min (ROWS, p.N - n0);
#if defined(SUBGROUP)
    [[unroll]] for (uint j = 0u; j < ROWS * MV; j++)
        acc[j] = subgroupAdd (acc[j]);
    if (gl_NumSubgroups == 1u) {
        // One subgroup: no shared memory and no barrier (costly on CPU drivers).
        if (t == 0u)
            [[unroll]] for (uint r = 0u; r < ROWS; r++)
                if (r < nr)
                    [[unroll]] for (uint m = 0u; m < MV; m++)
                        y[p.oy + m * p.ldy + n0 + r] = finish (m, n0 + r, acc[r * MV + m]);
        return;
    }
    if (gl_SubgroupInvocationID == 0u)
        [[unroll]] for (uint j = 0u; j < ROWS * MV; j++)
            red[j][gl_SubgroupID] = acc[j];
    barrier ();
    if (t < nr * MV) {
        float v = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++)
            v += red[t][i];
        uint r = t / MV, m = t % MV;
        y[p.oy + m * p.ldy + n0 + r] = finish (m, n0 + r, v);
    }
#else
    [[unroll]] for (uint j = 0u; j < ROWS * MV; j++)
        red[j][t] = acc[j];
    barrier ();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        if (t < h)
            [[unroll]] for (uint j = 0u; j < ROWS * MV; j++)
                red[j][t] += red[j][t + h];
        barrier ();
    }
    if (t < nr * MV) {
        uint r = t / MV, m = t % MV;
        y[p.oy + m * p.ldy + n0 + r] = finish (m, n0 + r, red[t][0]);
    }
#endif
}
#endif

#else

#define BM 64
#define BN 64
#define BK 16
#define TM 8    // outputs per invocation: TM rows of X by TN rows of W
#define TN 8
// 64 invocations of 8×8 outputs: each value read from shared memory feeds 8 multiply-adds, which
// matters most on CPU drivers, where every shared-memory access is a per-lane load.
layout(local_size_x = (BM / TM) * (BN / TN)) in;

shared float xs[BK][BM];
shared float ws[BK][BN];

void main ()
{
    uint t = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    uint tm = (t / (BN / TN)) * TM, tn = (t % (BN / TN)) * TN;
    float acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; i++)
        [[unroll]] for (uint j = 0u; j < TN; j++)
            acc[i][j] = 0.0;

    // Invocation t loads BK consecutive k of row t of the X tile and of the W tile.
    uint m = m0 + t, n = n0 + t;
    uint row = p.w_addr + min (n, p.N - 1u) * p.row_stride;
    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        [[unroll]] for (uint j = 0u; j < BK; j += 4u) {
            uint k = k0 + j;
            vec4 xv = vec4 (0.0), wv = vec4 (0.0);
            if (k + 3u < p.K) {
                if (m < p.M) {
                    uint xi = p.ox + m * p.K + k;
                    xv = vec4 (x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u]);
                }
                if (n < p.N)
                    wv = w_load4 (row, k, p.K);
            } else {
                // The tail of K (float types only: Q rows are whole blocks of 32).
                [[unroll]] for (uint i = 0u; i < 4u; i++) {
                    if (k + i < p.K) {
                        if (m < p.M)
                            xv[i] = x[p.ox + m * p.K + k + i];
#if defined(W_FLOAT)
                        if (n < p.N)
                            wv[i] = w_load1 (row, k + i);
#endif
                    }
                }
            }
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                xs[j + i][t] = xv[i];
                ws[j + i][t] = wv[i];
            }
        }
        barrier ();
        for (uint kk = 0u; kk < BK; kk++) {
            float a[TM], b[TN];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                a[i] = xs[kk][tm + i];
            [[unroll]] for (uint j = 0u; j < TN; j++)
                b[j] = ws[kk][tn + j];
            [[unroll]] for (uint i = 0u; i < TM; i++)
                [[unroll]] for (uint j = 0u; j < TN; j++)
                    acc[i][j] += a[i] * b[j];
        }
        barrier ();
    }
    [[unroll]] for (uint i = 0u; i < TM; i++) {
        uint mo = m0 + tm + i;
        if (mo < p.M)
            [[unroll]] for (uint j = 0u; j < TN; j++) {
                uint no = n0 + tn + j;
                if (no < p.N)
                    y[p.oy + mo * p.ldy + no] = finish (mo, no, acc[i][j]);
            }
    }
}

#endif
