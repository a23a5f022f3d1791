// Fused scaled-dot-product attention with an online softmax (flash-attention style), in two main passes
// with the same inputs, outputs and split-K partials, and the COMBINE pass that merges the partials.
// Tiled (GPUs): one workgroup per (key split, tile of BR query rows, KV head and batch). The rows of a
// tile are (query, head of the GQA group) pairs, so the heads sharing a KV head share its K/V tiles. Key
// tiles of BC positions are staged in shared memory (F16 K/V read as packed words, KV_F16), scores and
// the running max/sum live in shared memory, the output accumulates in registers.
// ROWS (CPU devices): the same grid, but a workgroup is one subgroup with its rows, scores and outputs in
// registers (below).
// With one split the normalised result goes to `out`; with several, each split writes its unnormalised
// partial output and (max, sum) to a scratch buffer and the COMBINE pass merges them.
#version 450
#if defined(ROWS)
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_control_flow_attributes : require
#endif

#define NEG_INF uintBitsToFloat (0xff800000u)

layout(constant_id = 0) const uint D = 64;      // head_dim, a multiple of 4
layout(constant_id = 1) const uint BR = 16;     // query rows per workgroup
layout(constant_id = 2) const uint BC = 32;     // keys per tile
layout(constant_id = 3) const uint WG = 128;    // invocations
layout(local_size_x_id = 3) in;

#if defined(COMBINE)

layout(push_constant) uniform Params {
    uint tq, n_heads, n_split, n_rows;
    uint opart, oml, oo;
} p;

layout(binding = 0) readonly buffer Part { float part[]; };
layout(binding = 1) writeonly buffer Out { float o[]; };

// One workgroup per output row (query i, head h, batch b), linear index ((b·n_heads + h)·tq + i).
void main ()
{
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.n_rows)
        return;
    uint i = row % p.tq, h = (row / p.tq) % p.n_heads, b = row / (p.tq * p.n_heads);
    uint base = row * p.n_split;
    float m = NEG_INF;
    for (uint s = 0u; s < p.n_split; s++)
        if (part[p.oml + (base + s) * 2u + 1u] > 0.0)
            m = max (m, part[p.oml + (base + s) * 2u]);
    float l = 0.0;
    for (uint s = 0u; s < p.n_split; s++) {
        float ls = part[p.oml + (base + s) * 2u + 1u];
        if (ls > 0.0)
            l += ls * exp (part[p.oml + (base + s) * 2u] - m);
    }
    uint dst = p.oo + (b * p.tq + i) * p.n_heads * D + h * D;
    for (uint d = gl_LocalInvocationID.x; d < D; d += WG) {
        float acc = 0.0;
        for (uint s = 0u; s < p.n_split; s++) {
            float ls = part[p.oml + (base + s) * 2u + 1u];
            if (ls > 0.0)
                acc += part[p.opart + (base + s) * D + d] * exp (part[p.oml + (base + s) * 2u] - m);
        }
        o[dst + d] = l > 0.0 ? acc / l : 0.0;
    }
}

#else

layout(push_constant) uniform Params {
    uint tq, tk;            // queries; key positions in k and v (the cache length)
    uint n_heads, n_kv_heads, group;
    uint oq, ok, ov, oo, on;// word offsets in the bindings
    uint flags;             // 1: causal, 2: n_kv tensor bound, 4: write split partials
    float scale;
    uint chunk;             // keys per split, a multiple of BC
    uint n_split;
    uint oml;               // word offset of the (max, sum) pairs in the partials binding
} p;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 3) writeonly buffer Out { float o[]; };
layout(binding = 4) readonly buffer NKv { int nkv[]; };

const uint D4 = D / 4u;

#if defined(ROWS)

// K and V in 64-bit words (the host checks that the word offsets are even): a CPU driver loads a storage
// buffer lane by lane and word by word, and a 64-bit word costs it no more than a 32-bit one.
layout(binding = 1) readonly buffer K { uint64_t k[]; };
layout(binding = 2) readonly buffer V { uint64_t v[]; };

// Four elements of K or V starting at element e (a multiple of 4) after the binding's word offset.
#if defined(KV_F16)
vec4 unpack_f16x4 (uint64_t x)
{
    uvec2 w = unpackUint2x32 (x);
    return vec4 (unpackHalf2x16 (w.x), unpackHalf2x16 (w.y));
}

vec4 load_k (uint e)
{
    return unpack_f16x4 (k[(p.ok + e / 2u) / 2u]);
}

vec4 load_v (uint e)
{
    return unpack_f16x4 (v[(p.ov + e / 2u) / 2u]);
}
#else
vec4 load_k (uint e)
{
    uint i = (p.ok + e) / 2u;
    return uintBitsToFloat (uvec4 (unpackUint2x32 (k[i]), unpackUint2x32 (k[i + 1u])));
}

vec4 load_v (uint e)
{
    uint i = (p.ov + e) / 2u;
    return uintBitsToFloat (uvec4 (unpackUint2x32 (v[i]), unpackUint2x32 (v[i + 1u])));
}
#endif

// ROWS main pass. A CPU driver runs a workgroup's invocations as the SIMD lanes of one thread: shared
// memory reads and barriers cost it far more than arithmetic. So a workgroup is one subgroup (WG = the
// subgroup size) and owns BR rows: R = BR / WG rows per invocation, or, with BR = 1 (decode: one row per
// KV head), one row whose keys are dealt round the invocations, each of which then writes its own
// partial result for the combine pass. Per block of BC keys each invocation loads a chunk of a different
// key, so that one load step of the driver fetches WG keys, and in the rows shape subgroupShuffle hands
// every key to every row (a vector permute on llvmpipe, where subgroupBroadcast is a loop over the lanes).
// Queries, scores and outputs stay in registers: no shared memory, no barrier. The loops over head_dim
// stay loops: unrolled, they made llvmpipe compile for many seconds and ran no faster.
const bool KEYS = BR < WG;
const uint R = KEYS ? 1u : BR / WG;         // rows per invocation
const uint NS = KEYS ? BC / WG : BC;        // scores per row and block

void main ()
{
    uint lane = gl_SubgroupInvocationID;
    uint split = gl_WorkGroupID.x;
    uint row0 = gl_WorkGroupID.y * BR;
    uint hk = gl_WorkGroupID.z % p.n_kv_heads, b = gl_WorkGroupID.z / p.n_kv_heads;
    uint rows = p.tq * p.group;
    uint qrow = p.n_heads * D, kvrow = p.n_kv_heads * D;
    bool causal = (p.flags & 1u) != 0u;

    int n_valid = int (p.tk);
    if ((p.flags & 2u) != 0u)
        n_valid = clamp (nkv[p.on], 0, int (p.tk));
    int kv_end = n_valid;
    if (causal) {
        uint last = min (row0 + BR, rows) - 1u;
        kv_end = clamp (n_valid - int (p.tq) + int (last / p.group) + 1, 0, n_valid);
    }
    uint kbeg = split * p.chunk;
    uint kend = min (kbeg + p.chunk, uint (kv_end));

    vec4 qr[R * D4], acc[R * D4];
    float m[R], l[R];
    int limit[R];
    for (uint r = 0u; r < R; r++) {
        uint rg = KEYS ? row0 : row0 + r * WG + lane;
        uint i = min (rg, rows - 1u) / p.group;
        limit[r] = rg >= rows ? -1 : causal ? n_valid - int (p.tq) + int (i) : n_valid - 1;
        uint qa = p.oq + (b * p.tq + i) * qrow + (hk * p.group + min (rg, rows - 1u) % p.group) * D;
        [[dont_unroll]] for (uint d = 0u; d < D4; d++) {
            uint a = qa + 4u * d;
            qr[r * D4 + d] = vec4 (q[a], q[a + 1u], q[a + 2u], q[a + 3u]) * p.scale;
            acc[r * D4 + d] = vec4 (0.0);
        }
        m[r] = NEG_INF;
        l[r] = 0.0;
    }
    uint kv0 = b * p.tk * kvrow + hk * D;

    for (uint j0 = kbeg; j0 < kend; j0 += BC) {
        // Invocation `lane` loads key j0 + t·WG + lane, clamped to a valid key (a masked score).
        float s[R * NS];
        for (uint e = 0u; e < R * NS; e++)
            s[e] = 0.0;
        [[dont_unroll]] for (uint d = 0u; d < D4; d++)
            for (uint t = 0u; t < BC / WG; t++) {
                uint j = min (j0 + t * WG + lane, kend - 1u);
                vec4 x = load_k (kv0 + j * kvrow + 4u * d);
                if (KEYS) {
                    s[t] += dot (qr[d], x);
                } else {
                    for (uint c = 0u; c < WG; c++) {
                        vec4 y = subgroupShuffle (x, c);
                        for (uint r = 0u; r < R; r++)
                            s[r * NS + t * WG + c] += dot (qr[r * D4 + d], y);
                    }
                }
            }
        float alpha[R];
        for (uint r = 0u; r < R; r++) {
            float mb = m[r];
            for (uint e = 0u; e < NS; e++) {
                uint j = KEYS ? j0 + e * WG + lane : j0 + e;
                if (j >= kend || int (j) > limit[r])
                    s[r * NS + e] = NEG_INF;
                mb = max (mb, s[r * NS + e]);
            }
            alpha[r] = isinf (m[r]) ? 1.0 : exp (m[r] - mb);
            float sum = 0.0;
            for (uint e = 0u; e < NS; e++) {
                float x = s[r * NS + e];
                x = isinf (x) ? 0.0 : exp (x - mb);
                s[r * NS + e] = x;
                sum += x;
            }
            m[r] = mb;
            l[r] = l[r] * alpha[r] + sum;
        }
        [[dont_unroll]] for (uint d = 0u; d < D4; d++) {
            vec4 a[R];
            for (uint r = 0u; r < R; r++)
                a[r] = acc[r * D4 + d] * alpha[r];
            for (uint t = 0u; t < BC / WG; t++) {
                uint j = min (j0 + t * WG + lane, kend - 1u);
                vec4 x = load_v (kv0 + j * kvrow + 4u * d);
                if (KEYS) {
                    a[0] += s[t] * x;
                } else {
                    for (uint c = 0u; c < WG; c++) {
                        vec4 y = subgroupShuffle (x, c);
                        for (uint r = 0u; r < R; r++)
                            a[r] += s[r * NS + t * WG + c] * y;
                    }
                }
            }
            for (uint r = 0u; r < R; r++)
                acc[r * D4 + d] = a[r];
        }
    }

    for (uint r = 0u; r < R; r++) {
        uint rg = KEYS ? row0 : row0 + r * WG + lane;
        if (rg >= rows)
            continue;
        uint i = rg / p.group, h = hk * p.group + rg % p.group;
        if ((p.flags & 4u) != 0u) {
            uint idx = ((b * p.n_heads + h) * p.tq + i) * p.n_split + (KEYS ? split * WG + lane : split);
            [[dont_unroll]] for (uint d = 0u; d < D4; d++) {
                uint a = p.oo + idx * D + 4u * d;
                vec4 x = acc[r * D4 + d];
                o[a] = x.x;
                o[a + 1u] = x.y;
                o[a + 2u] = x.z;
                o[a + 3u] = x.w;
            }
            o[p.oml + idx * 2u] = m[r];
            o[p.oml + idx * 2u + 1u] = l[r];
        } else {
            float f = l[r] > 0.0 ? 1.0 / l[r] : 0.0;
            uint a = p.oo + (b * p.tq + i) * qrow + h * D;
            [[dont_unroll]] for (uint d = 0u; d < D4; d++) {
                vec4 x = acc[r * D4 + d] * f;
                o[a + 4u * d] = x.x;
                o[a + 4u * d + 1u] = x.y;
                o[a + 4u * d + 2u] = x.z;
                o[a + 4u * d + 3u] = x.w;
            }
        }
    }
}

#else

#if defined(KV_F16)
layout(binding = 1) readonly buffer K { uint k[]; };
layout(binding = 2) readonly buffer V { uint v[]; };
#else
layout(binding = 1) readonly buffer K { float k[]; };
layout(binding = 2) readonly buffer V { float v[]; };
#endif

// Four elements of K or V starting at element e (a multiple of 4) after the binding's word offset.
vec4 load_k (uint e)
{
#if defined(KV_F16)
    uint w = p.ok + e / 2u;
    return vec4 (unpackHalf2x16 (k[w]), unpackHalf2x16 (k[w + 1u]));
#else
    uint w = p.ok + e;
    return vec4 (k[w], k[w + 1u], k[w + 2u], k[w + 3u]);
#endif
}

vec4 load_v (uint e)
{
#if defined(KV_F16)
    uint w = p.ov + e / 2u;
    return vec4 (unpackHalf2x16 (v[w]), unpackHalf2x16 (v[w + 1u]));
#else
    uint w = p.ov + e;
    return vec4 (v[w], v[w + 1u], v[w + 2u], v[w + 3u]);
#endif
}

const uint NSLOT = BR * D4;                                 // output vec4s of a tile
const uint PARTS = NSLOT >= WG ? 1u : (WG / NSLOT < BC ? WG / NSLOT : BC); // invocations per output vec4
const uint OPT = (NSLOT + WG - 1u) / WG;                    // output vec4s per invocation

shared vec4 qs[BR * D4];
shared vec4 kvs[BC * D4];
shared float ss[BR * BC];
shared float row_m[BR], row_l[BR], row_a[BR];
shared vec4 red[WG];

void main ()
{
    uint t = gl_LocalInvocationID.x;
    uint split = gl_WorkGroupID.x;
    uint row0 = gl_WorkGroupID.y * BR;
    uint hk = gl_WorkGroupID.z % p.n_kv_heads, b = gl_WorkGroupID.z / p.n_kv_heads;
    uint rows = p.tq * p.group;
    uint qrow = p.n_heads * D, kvrow = p.n_kv_heads * D;
    bool causal = (p.flags & 1u) != 0u;

    int n_valid = int (p.tk);
    if ((p.flags & 2u) != 0u)
        n_valid = clamp (nkv[p.on], 0, int (p.tk));
    // Keys the tile's last row may see: the loop stops there.
    int kv_end = n_valid;
    if (causal) {
        uint last = min (row0 + BR, rows) - 1u;
        kv_end = clamp (n_valid - int (p.tq) + int (last / p.group) + 1, 0, n_valid);
    }
    uint kbeg = split * p.chunk;
    uint kend = min (kbeg + p.chunk, uint (kv_end));

    for (uint e = t; e < BR * D4; e += WG) {
        uint r = e / D4, rg = row0 + r;
        vec4 x = vec4 (0.0);
        if (rg < rows) {
            uint a = p.oq + (b * p.tq + rg / p.group) * qrow + (hk * p.group + rg % p.group) * D + (e % D4) * 4u;
            x = vec4 (q[a], q[a + 1u], q[a + 2u], q[a + 3u]) * p.scale;
        }
        qs[e] = x;
    }
    if (t < BR) {
        row_m[t] = NEG_INF;
        row_l[t] = 0.0;
    }
    vec4 acc[OPT];
    for (uint s = 0u; s < OPT; s++)
        acc[s] = vec4 (0.0);
    uint part = t / NSLOT;
    barrier ();

    for (uint j0 = kbeg; j0 < kend; j0 += BC) {
        for (uint e = t; e < BC * D4; e += WG) {
            uint j = j0 + e / D4;
            kvs[e] = j < kend ? load_k ((b * p.tk + j) * kvrow + hk * D + (e % D4) * 4u) : vec4 (0.0);
        }
        barrier ();
        for (uint e = t; e < BR * BC; e += WG) {
            uint r = e / BC, c = e % BC, rg = row0 + r, j = j0 + c;
            int limit = causal ? n_valid - int (p.tq) + int (rg / p.group) : n_valid - 1;
            float s = NEG_INF;
            if (rg < rows && j < kend && int (j) <= limit) {
                s = 0.0;
                for (uint d = 0u; d < D4; d++)
                    s += dot (qs[r * D4 + d], kvs[c * D4 + d]);
            }
            ss[e] = s;
        }
        barrier ();
        if (t < BR) {
            float m_old = row_m[t], m = m_old;
            for (uint c = 0u; c < BC; c++)
                m = max (m, ss[t * BC + c]);
            float alpha = 1.0, sum = 0.0;
            bool any = !isinf (m);
            if (any && !isinf (m_old))
                alpha = exp (m_old - m);
            for (uint c = 0u; c < BC; c++) {
                float s = ss[t * BC + c];
                float e = any && !isinf (s) ? exp (s - m) : 0.0;
                ss[t * BC + c] = e;
                sum += e;
            }
            row_m[t] = m;
            row_l[t] = row_l[t] * alpha + sum;
            row_a[t] = alpha;
        }
        for (uint e = t; e < BC * D4; e += WG) {
            uint j = j0 + e / D4;
            kvs[e] = j < kend ? load_v ((b * p.tk + j) * kvrow + hk * D + (e % D4) * 4u) : vec4 (0.0);
        }
        barrier ();
        if (part < PARTS) {
            for (uint s = 0u; s < OPT; s++) {
                uint slot = t % NSLOT + s * WG;
                if (slot < NSLOT) {
                    uint r = slot / D4, d = slot % D4;
                    vec4 a = acc[s] * row_a[r];
                    for (uint c = part; c < BC; c += PARTS)
                        a += ss[r * BC + c] * kvs[c * D4 + d];
                    acc[s] = a;
                }
            }
        }
        barrier ();
    }

    if (PARTS > 1u) {
        red[t] = acc[0];
        barrier ();
        if (t < NSLOT)
            for (uint s = 1u; s < PARTS; s++)
                acc[0] += red[t + s * NSLOT];
    }
    if (part != 0u)
        return;
    for (uint s = 0u; s < OPT; s++) {
        uint slot = t + s * WG;
        uint r = slot / D4, rg = row0 + r;
        if (slot >= NSLOT || rg >= rows)
            continue;
        uint i = rg / p.group, h = hk * p.group + rg % p.group, d = (slot % D4) * 4u;
        float l = row_l[r];
        if ((p.flags & 4u) != 0u) {
            uint idx = ((b * p.n_heads + h) * p.tq + i) * p.n_split + split;
            uint a = p.oo + idx * D + d;
            o[a] = acc[s].x;
            o[a + 1u] = acc[s].y;
            o[a + 2u] = acc[s].z;
            o[a + 3u] = acc[s].w;
            if (d == 0u) {
                o[p.oml + idx * 2u] = row_m[r];
                o[p.oml + idx * 2u + 1u] = l;
            }
        } else {
            vec4 x = l > 0.0 ? acc[s] / l : vec4 (0.0);
            uint a = p.oo + (b * p.tq + i) * qrow + h * D + d;
            o[a] = x.x;
            o[a + 1u] = x.y;
            o[a + 2u] = x.z;
            o[a + 3u] = x.w;
        }
    }
}

#endif

#endif
