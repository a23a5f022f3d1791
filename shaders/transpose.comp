// 2-D transpose of each matrix: x [A, B, C] → y [B, A, C], one invocation per output element.
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n;
    uint A, B;
    uint ox, oy;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

void main ()
{
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    uint b = i % p.B;
    uint rest = i / p.B;
    uint a = rest % p.A, c = rest / p.A;
    y[p.oy + i] = x[p.ox + (c * p.B + b) * p.A + a];
}
