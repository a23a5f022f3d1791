// Copy with conversion, data read and written in order. IN_F32/IN_F16 and OUT_F32/OUT_F16 pick the types.
// Buffers are 32-bit words (no 16-bit storage needed); F16 tensors may start at any even byte. With an
// F16 output each invocation owns one output word, so words shared with a neighbouring tensor are
// read-modified-written by exactly one invocation and the neighbour's half is kept.
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n;             // elements
    uint units;         // invocations: elements (F32 out) or output words (F16 out)
    uint sb, db;        // byte offsets of x and y in their bindings
} p;

layout(binding = 0) readonly buffer X { uint x[]; };
layout(binding = 1) buffer Y { uint y[]; };

float load (uint e)
{
#if defined(IN_F32)
    return uintBitsToFloat (x[(p.sb >> 2) + e]);
#elif defined(IN_F16)
    uint a = p.sb + 2u * e;
    return unpackHalf2x16 (x[a >> 2] >> ((a & 2u) * 8u)).x;
#else
#error "define IN_F32 or IN_F16"
#endif
}

void main ()
{
    uint u = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (u >= p.units)
        return;
#if defined(OUT_F32)
    y[(p.db >> 2) + u] = floatBitsToUint (load (u));
#elif defined(OUT_F16)
    uint word = (p.db >> 2) + u;
    bool lo_in = 4u * word >= p.db && ((4u * word - p.db) >> 1) < p.n;
    uint hi_e = (4u * word + 2u - p.db) >> 1;   // the high half is never before db (db is even)
    bool hi_in = hi_e < p.n;
    uint old = lo_in && hi_in ? 0u : y[word];
    uint lo = lo_in ? packHalf2x16 (vec2 (load (hi_e - 1u), 0.0)) : old & 0xffffu;
    uint hi = hi_in ? packHalf2x16 (vec2 (load (hi_e), 0.0)) : old >> 16;
    y[word] = lo | (hi << 16);
#else
#error "define OUT_F32 or OUT_F16"
#endif
}
