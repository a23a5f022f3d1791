// Weight access for every tensor type: the one place in GLSL that knows the block layouts.
// The including shader declares `uint w[]` (the weight binding as 32-bit words) before including,
// and defines one of W_F32, W_F16, W_BF16, W_Q8_0, W_Q4_0. Byte addresses are relative to the binding.
// With W_CHUNKS it also declares, for the chunk functions at the end, `uvec4 w4[]` on the same binding
// and, with W64 (shaderInt64), `uint64_t w8[]`, `u64vec2 w16[]` and `u64vec4 w32[]`, and the uint
// specialization constants W_ALIGN, the alignment of the rows in bytes (a power of two up to 32), and
// W_BLOCKS, the Q blocks per chunk (1, 2 or 4); and the texel view of the binding: `usamplerBuffer wt`,
// `uint w_texel_byte (uint byte_addr)` (where the byte lies in the view) and the bool specialization
// constant W_TEXELS (set only where W_ALIGN is at least 16).
//
// Q8_0 and Q4_0 rows are stored on the device in their split layout (engine/types.h, docs/kernels.md):
// a row of n elements holds the quants of its n / 32 blocks (32 or 16 bytes each), then their fp16
// scales, so that quants come in aligned whole-word loads.

uint w_u16 (uint byte_addr)
{
    return (w[byte_addr >> 2] >> ((byte_addr & 2u) * 8u)) & 0xffffu;
}

// Four bytes starting at a 2-byte aligned address; never reads past the last byte requested.
uint w_u32_at (uint byte_addr)
{
    uint lo = w[byte_addr >> 2];
    if ((byte_addr & 3u) == 0u)
        return lo;
    return (lo >> 16) | (w[(byte_addr >> 2) + 1u] << 16);
}

float w_f16 (uint bits)
{
    return unpackHalf2x16 (bits).x;
}

#if defined(W_F32) || defined(W_F16) || defined(W_BF16)
#define W_FLOAT 1   // one element per block: rows of any length
#endif

#if defined(W_F32)
const uint W_BLOCK = 1u;
const uint W_BLOCK_BYTES = 4u;
#elif defined(W_F16) || defined(W_BF16)
const uint W_BLOCK = 1u;
const uint W_BLOCK_BYTES = 2u;
#elif defined(W_Q8_0)
const uint W_BLOCK = 32u;
const uint W_BLOCK_BYTES = 34u;
#elif defined(W_Q4_0)
const uint W_BLOCK = 32u;
const uint W_BLOCK_BYTES = 18u;
#else
#error "define the weight type"
#endif

#if !defined(W_FLOAT)
const uint W_QUANT_BYTES = W_BLOCK_BYTES - 2u;  // per block, in the split layout

// Byte address of the scale of block b of the row of n elements that starts at byte row_addr.
uint w_scale_addr (uint row_addr, uint n, uint b)
{
    return row_addr + (n / W_BLOCK) * W_QUANT_BYTES + b * 2u;
}
#endif

// Elements k..k+3 of the row of n elements that starts at byte row_addr; k is a multiple of 4.
vec4 w_load4 (uint row_addr, uint k, uint n)
{
#if defined(W_F32)
    uint i = (row_addr >> 2) + k;
    return vec4 (uintBitsToFloat (w[i]), uintBitsToFloat (w[i + 1u]), uintBitsToFloat (w[i + 2u]),
                 uintBitsToFloat (w[i + 3u]));
#elif defined(W_F16)
    uint a = row_addr + k * 2u;
    uint lo = w_u32_at (a), hi = w_u32_at (a + 4u);
    return vec4 (unpackHalf2x16 (lo), unpackHalf2x16 (hi));
#elif defined(W_BF16)
    uint a = row_addr + k * 2u;
    uint lo = w_u32_at (a), hi = w_u32_at (a + 4u);
    return vec4 (uintBitsToFloat (lo << 16), uintBitsToFloat (lo & 0xffff0000u),
                 uintBitsToFloat (hi << 16), uintBitsToFloat (hi & 0xffff0000u));
#elif defined(W_Q8_0)
    float d = w_f16 (w_u16 (w_scale_addr (row_addr, n, k >> 5)));
    uint q = w_u32_at (row_addr + k);
    ivec4 v = ivec4 (int (q << 24) >> 24, int (q << 16) >> 24, int (q << 8) >> 24, int (q) >> 24);
    return d * vec4 (v);
#elif defined(W_Q4_0)
    float d = w_f16 (w_u16 (w_scale_addr (row_addr, n, k >> 5)));
    uint q = w_u32_at (row_addr + (k >> 5) * 16u + (k & 15u));
    uint shift = (k & 16u) != 0u ? 4u : 0u;
    q = (q >> shift) & 0x0f0f0f0fu;
    return d * (vec4 (float (q & 0xffu), float ((q >> 8) & 0xffu), float ((q >> 16) & 0xffu), float (q >> 24)) - 8.0);
#endif
}

#if defined(W_FLOAT)
// Element k of a row of a float weight type.
float w_load1 (uint row_addr, uint k)
{
#if defined(W_F32)
    return uintBitsToFloat (w[(row_addr >> 2) + k]);
#elif defined(W_F16)
    return w_f16 (w_u16 (row_addr + k * 2u));
#else
    return uintBitsToFloat (w_u16 (row_addr + k * 2u) << 16);
#endif
}
#endif

#if defined(W_CHUNKS)
// Chunks: W_CHUNK consecutive elements of a row fetched with as few load instructions as the layout
// allows, for kernels that stream whole rows. CPU drivers load a storage buffer lane by lane in a loop,
// one loop per load instruction (its components inside), so the number of load instructions is what
// counts there. Float types: 16 bytes, one load (rows 16-byte aligned). Q types (rows at least 4-byte
// aligned, hence an even number of blocks): W_BLOCKS blocks, their quants in loads as wide as W_ALIGN
// and W64 allow (w_load_vecs) and their scales in one word (two for 4 blocks).
#if defined(W_F32)
const uint W_CHUNK = 4u;
#elif defined(W_F16) || defined(W_BF16)
const uint W_CHUNK = 8u;
#else
const uint W_CHUNK = W_BLOCK * W_BLOCKS;
#endif
#if defined(W_FLOAT)
const uint W_CHUNK_SCALES = 1u;     // scales per chunk: one per W_CHUNK / W_CHUNK_SCALES elements
const uint W_CHUNK_VECS = 1u;       // uvec4s of stored values per chunk
const uint W_CHUNK_VECS_MAX = 1u;   // the same, as a constant (GLSL sizes no struct by spec constants)
#else
const uint W_CHUNK_SCALES = W_BLOCKS;
const uint W_CHUNK_VECS = W_QUANT_BYTES / 16u * W_BLOCKS;
const uint W_CHUNK_VECS_MAX = W_QUANT_BYTES / 4u;
#endif

// w_chunk_quad returns the stored quants (for Q4_0 at their place value, see w_quad_x_scale); the
// element is its scale · (quant − W_CHUNK_ZERO). Leaving the zero point out lets a dot product subtract
// W_CHUNK_ZERO · Σx once per block instead of per element.
#if defined(W_Q4_0)
const float W_CHUNK_ZERO = 8.0;
#else
const float W_CHUNK_ZERO = 0.0;
#endif

struct WChunk {
    uvec4 v[W_CHUNK_VECS_MAX];  // the stored values, or the blocks' quants in element order
    vec4 d;                     // scale of each of the W_CHUNK_SCALES parts: the blocks' (Q types), or 1
};

// 16 · W_CHUNK_VECS bytes at addr, a multiple of W_ALIGN (at least 4): as texels (W_TEXELS), or in loads
// as wide as W_ALIGN and W64 allow: 32 bytes (W64), 16, 8 (W64) or 4.
void w_load_vecs (uint addr, out uvec4 v[W_CHUNK_VECS_MAX])
{
    [[unroll]] for (uint i = 0u; i < W_CHUNK_VECS; i++) {
        uint a = addr + i * 16u;
        if (W_TEXELS)
            v[i] = texelFetch (wt, int (w_texel_byte (a) >> 4));
        else
#if defined(W64)
        if (W_ALIGN >= 32u && W_CHUNK_VECS % 2u == 0u) {
            if ((i & 1u) == 0u) {
                u64vec4 q = w32[a >> 5];
                v[i] = uvec4 (unpackUint2x32 (q.x), unpackUint2x32 (q.y));
                v[i + 1u] = uvec4 (unpackUint2x32 (q.z), unpackUint2x32 (q.w));
            }
        } else if (W_ALIGN >= 16u) {
            u64vec2 q = w16[a >> 4];
            v[i] = uvec4 (unpackUint2x32 (q.x), unpackUint2x32 (q.y));
        } else if (W_ALIGN >= 8u) {
            v[i] = uvec4 (unpackUint2x32 (w8[a >> 3]), unpackUint2x32 (w8[(a >> 3) + 1u]));
        } else
#else
        if (W_ALIGN >= 16u)
            v[i] = w4[a >> 4];
        else
#endif
            v[i] = uvec4 (w[a >> 2], w[(a >> 2) + 1u], w[(a >> 2) + 2u], w[(a >> 2) + 3u]);
    }
}

// Chunk c of the row of n elements that starts at byte row_addr.
WChunk w_chunk (uint row_addr, uint n, uint c)
{
    WChunk ch;
    w_load_vecs (row_addr + c * (W_CHUNK_VECS * 16u), ch.v);
#if defined(W_FLOAT)
    ch.d = vec4 (1.0);
#else
    // Read after the quants: measured faster on lavapipe than before them. Two or four blocks' scales
    // lie in one aligned word or two (rows hold an even number of blocks and start 4-byte aligned).
    uint sa = w_scale_addr (row_addr, n, c * W_BLOCKS), word, word2 = 0u;
    if (W_TEXELS) {
        uint tb = w_texel_byte (sa);
        uvec4 v = texelFetch (wt, int (tb >> 4));
        word = v[(tb >> 2) & 3u];
        if (W_BLOCKS == 4u)
            word2 = v[((tb >> 2) & 3u) + 1u];
    } else {
        word = w[sa >> 2];
        if (W_BLOCKS == 4u)
            word2 = w[(sa >> 2) + 1u];
    }
    word >>= (sa & 2u) * 8u;
    ch.d = W_BLOCKS == 1u ? vec4 (w_f16 (word & 0xffffu)) : vec4 (unpackHalf2x16 (word), unpackHalf2x16 (word2));
#endif
    return ch;
}

// Multipliers for X quad q of a chunk: the dot product of w_chunk_quad (ch, q) with X times these is
// the quants' dot product with X (all ones except for Q4_0, below; powers of two, so exact while
// x · 2^-28 stays a normal float, |x| ≥ 2^-98).
vec4 w_quad_x_scale (uint q)
{
#if defined(W_Q4_0)
    return (q & 4u) == 0u ? vec4 (1.0, 1.0 / 256.0, 1.0 / 65536.0, 1.0 / 16777216.0)
                          : vec4 (1.0 / 16.0, 1.0 / 4096.0, 1.0 / 1048576.0, 1.0);
#else
    return vec4 (1.0);
#endif
}

// Quants (or values) of elements 4q..4q+3 of a chunk.
vec4 w_chunk_quad (WChunk ch, uint q)
{
#if defined(W_F32)
    return uintBitsToFloat (ch.v[0]);
#elif defined(W_F16)
    return vec4 (unpackHalf2x16 (ch.v[0][q * 2u]), unpackHalf2x16 (ch.v[0][q * 2u + 1u]));
#elif defined(W_BF16)
    uint lo = ch.v[0][q * 2u], hi = ch.v[0][q * 2u + 1u];
    return vec4 (uintBitsToFloat (lo << 16), uintBitsToFloat (lo & 0xffff0000u),
                 uintBitsToFloat (hi << 16), uintBitsToFloat (hi & 0xffff0000u));
#elif defined(W_Q8_0)
    uint v = ch.v[q >> 2][q & 3u];
    return vec4 (ivec4 (int (v << 24) >> 24, int (v << 16) >> 24, int (v << 8) >> 24, int (v) >> 24));
#elif defined(W_Q4_0)
    // Elements 0-15 of a block are the low nibbles of its 16 bytes, 16-31 the high nibbles. A nibble is
    // converted where it sits in its word (an exact float: 4 significant bits), which saves shifting it
    // down; w_quad_x_scale moves the place value to X, where one multiply serves every row.
    uint v = ch.v[q >> 3][q & 3u];
    if ((q & 4u) == 0u)
        return vec4 (float (v & 0xfu), float (v & 0xf00u), float (v & 0xf0000u), float (v & 0xf000000u));
    return vec4 (float (v & 0xf0u), float (v & 0xf000u), float (v & 0xf00000u), float (v >> 28));
#endif
}
#endif
