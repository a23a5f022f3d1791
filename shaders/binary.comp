// Elementwise binary ops y = a OP b, with b repeating over a (bias rows, positional embeddings).
// OP_ADD: a + b   OP_MUL: a * b   OP_SWIGLU: silu(a) * b
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n;         // elements of a and y
    uint nb;        // elements of b; element i uses b[i % nb]
    uint oa, ob, oy;
} p;

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

void main ()
{
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    float va = a[p.oa + i];
    float vb = b[p.ob + (p.nb == p.n ? i : i % p.nb)];
#if defined(OP_ADD)
    y[p.oy + i] = va + vb;
#elif defined(OP_MUL)
    y[p.oy + i] = va * vb;
#elif defined(OP_SWIGLU)
    y[p.oy + i] = va / (1.0 + exp (-va)) * vb;
#endif
}
