// Weight access for every tensor type: the one place in GLSL that knows the block layouts.
// The including shader declares `uint w[]` (the weight binding as 32-bit words) before including,
// and defines one of W_F32, W_F16, W_BF16, W_Q8_0, W_Q4_0. Byte addresses are relative to the binding.
// With W_CHUNKS it also declares `uvec4 w4[]` on the same binding, for the chunk functions at the end.

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

// Elements k..k+3 of a row that starts at byte row_addr; k is a multiple of 4.
vec4 w_load4 (uint row_addr, uint k)
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
    uint blk = row_addr + (k >> 5) * 34u;
    float d = w_f16 (w_u16 (blk));
    uint q = w_u32_at (blk + 2u + (k & 31u));
    ivec4 v = ivec4 (int (q << 24) >> 24, int (q << 16) >> 24, int (q << 8) >> 24, int (q) >> 24);
    return d * vec4 (v);
#elif defined(W_Q4_0)
    uint blk = row_addr + (k >> 5) * 18u;
    float d = w_f16 (w_u16 (blk));
    uint j = k & 15u;
    uint q = w_u32_at (blk + 2u + j);
    uint shift = (k & 16u) != 0u ? 4u : 0u;
    q = (q >> shift) & 0x0f0f0f0fu;
    return d * (vec4 (float (q & 0xffu), float ((q >> 8) & 0xffu), float ((q >> 16) & 0xffu), float (q >> 24)) - 8.0);
#endif
}

// Byte length of a row of n elements.
uint w_row_bytes (uint n)
{
    return n / W_BLOCK * W_BLOCK_BYTES;
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
// Chunks: W_CHUNK consecutive elements of a row fetched with as few loads as the layout allows, for
// kernels that stream whole rows. Float types: one 16-byte load (the row must start 16-byte aligned).
// Q types: one block from its 2-byte aligned start, as the 5 or 9 words that cover it, scale read once.
#if defined(W_F32)
const uint W_CHUNK = 4u;
#elif defined(W_F16) || defined(W_BF16)
const uint W_CHUNK = 8u;
#else
const uint W_CHUNK = 32u;
#endif

// w_chunk_quad returns the stored quants; the element is ch.d · (quant − W_CHUNK_ZERO). Leaving the
// zero point out lets a dot product subtract W_CHUNK_ZERO · Σx once per chunk instead of per element.
#if defined(W_Q4_0)
const float W_CHUNK_ZERO = 8.0;
#else
const float W_CHUNK_ZERO = 0.0;
#endif

#if defined(W_FLOAT)
struct WChunk {
    uvec4 v;
    float d;        // scale of the values w_chunk_quad returns: 1 for float types
};
#else
struct WChunk {
    uint v[W_CHUNK / 4u];   // the block's quants, 4 bytes per word, in element order
    float d;
};
#endif

// Chunk c of the row that starts at byte row_addr.
WChunk w_chunk (uint row_addr, uint c)
{
    WChunk ch;
#if defined(W_FLOAT)
    ch.v = w4[(row_addr >> 4) + c];
    ch.d = 1.0;
#else
    // The block starts at byte 0 or 2 of word i; its quants start 2 bytes later.
    uint a = row_addr + c * W_BLOCK_BYTES;
    uint i = a >> 2;
    bool odd = (a & 2u) != 0u;
    uint prev = w[i];
    ch.d = w_f16 (odd ? prev >> 16 : prev & 0xffffu);
    [[unroll]] for (uint j = 0u; j < W_CHUNK / 4u; j++) {
        uint next = w[i + j + 1u];
        ch.v[j] = odd ? next : (prev >> 16) | (next << 16);
        prev = next;
    }
#endif
    return ch;
}

// Quants (or values) of elements 4q..4q+3 of a chunk.
vec4 w_chunk_quad (WChunk ch, uint q)
{
#if defined(W_F32)
    return uintBitsToFloat (ch.v);
#elif defined(W_F16)
    return vec4 (unpackHalf2x16 (ch.v[q * 2u]), unpackHalf2x16 (ch.v[q * 2u + 1u]));
#elif defined(W_BF16)
    uint lo = ch.v[q * 2u], hi = ch.v[q * 2u + 1u];
    return vec4 (uintBitsToFloat (lo << 16), uintBitsToFloat (lo & 0xffff0000u),
                 uintBitsToFloat (hi << 16), uintBitsToFloat (hi & 0xffff0000u));
#elif defined(W_Q8_0)
    uint v = ch.v[q];
    return vec4 (ivec4 (int (v << 24) >> 24, int (v << 16) >> 24, int (v << 8) >> 24, int (v) >> 24));
#elif defined(W_Q4_0)
    // Elements 0-15 are the low nibbles of the 16 bytes, 16-31 the high nibbles.
    uint v = (ch.v[q & 3u] >> ((q & 4u) != 0u ? 4u : 0u)) & 0x0f0f0f0fu;
    return vec4 (float (v & 0xffu), float ((v >> 8) & 0xffu), float ((v >> 16) & 0xffu), float (v >> 24));
#endif
}
#endif
