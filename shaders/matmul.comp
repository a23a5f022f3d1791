// Y[M,N] = X[M,K] · W[N,K]ᵀ (+ bias[N]) (+ Y when accumulating), X/Y/bias F32, W in any weight type.
// MATVEC: for M <= 8 (decode), one workgroup per output column streams its weight row once.
// Otherwise: 64×64 output tiles through shared memory, 4×4 outputs per invocation.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(push_constant) uniform Params {
    uint M, N, K;
    uint ox;        // word offset of X in its binding
    uint w_addr;    // byte offset of W in its binding
    uint oy, ob;
    uint flags;     // 1: add bias, 2: accumulate into Y
    uint row_stride;// bytes per W row
    uint ldy;       // floats per Y row (the full N when W is processed in row chunks)
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { uint w[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(binding = 3) readonly buffer Bias { float bias[]; };

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

#define WG 128
#define MAX_M 8
layout(local_size_x = WG) in;

shared float red[MAX_M][WG];

void main ()
{
    uint n = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (n >= p.N)
        return;
    uint t = gl_LocalInvocationID.x;
    uint row = p.w_addr + n * p.row_stride;
    float acc[MAX_M];
    for (uint m = 0u; m < MAX_M; m++)
        acc[m] = 0.0;
    uint k4 = p.K & ~3u;
    for (uint k = t * 4u; k < k4; k += WG * 4u) {
        vec4 wv = w_load4 (row, k);
        for (uint m = 0u; m < p.M; m++) {
            uint xi = p.ox + m * p.K + k;
            acc[m] += dot (wv, vec4 (x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u]));
        }
    }
#if defined(W_FLOAT)
    for (uint k = k4 + t; k < p.K; k += WG) {
        float wv = w_load1 (row, k);
        for (uint m = 0u; m < p.M; m++)
            acc[m] += wv * x[p.ox + m * p.K + k];
    }
#endif
    for (uint m = 0u; m < p.M; m++)
        red[m][t] = acc[m];
    barrier ();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s)
            for (uint m = 0u; m < p.M; m++)
                red[m][t] += red[m][t + s];
        barrier ();
    }
    if (t < p.M)
        y[p.oy + t * p.ldy + n] = finish (t, n, red[t][0]);
}

#else

#define BM 64
#define BN 64
#define BK 16
layout(local_size_x = 256) in;

shared float xs[BK][BM + 1];
shared float ws[BK][BN + 1];

void main ()
{
    uint t = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
    uint tm = (t / 16u) * 4u, tn = (t % 16u) * 4u;
    float acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = 0.0;

    // Each invocation loads 4 consecutive k of one row of the X tile and of the W tile.
    uint lr = t / 4u, lk = (t % 4u) * 4u;
    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        uint k = k0 + lk;
        uint m = m0 + lr;
        for (uint j = 0u; j < 4u; j++)
            xs[lk + j][lr] = (m < p.M && k + j < p.K) ? x[p.ox + m * p.K + k + j] : 0.0;
        uint n = n0 + lr;
        vec4 wv = vec4 (0.0);
        if (n < p.N) {
            uint row = p.w_addr + n * p.row_stride;
            if (k + 3u < p.K) {
                wv = w_load4 (row, k);
            }
#if defined(W_FLOAT)
            else {
                for (uint j = 0u; j < 4u; j++)
                    if (k + j < p.K)
                        wv[j] = w_load1 (row, k + j);
            }
#endif
        }
        for (uint j = 0u; j < 4u; j++)
            ws[lk + j][lr] = wv[j];
        barrier ();
        for (uint kk = 0u; kk < BK; kk++) {
            vec4 a = vec4 (xs[kk][tm], xs[kk][tm + 1u], xs[kk][tm + 2u], xs[kk][tm + 3u]);
            vec4 b = vec4 (ws[kk][tn], ws[kk][tn + 1u], ws[kk][tn + 2u], ws[kk][tn + 3u]);
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    acc[i][j] += a[i] * b[j];
        }
        barrier ();
    }
    for (uint i = 0u; i < 4u; i++) {
        uint m = m0 + tm + i;
        if (m >= p.M)
            continue;
        for (uint j = 0u; j < 4u; j++) {
            uint n = n0 + tn + j;
            if (n < p.N)
                y[p.oy + m * p.ldy + n] = finish (m, n, acc[i][j]);
        }
    }
}

#endif
