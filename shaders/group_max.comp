// y[d, i] = max over j < group of x[d, i·group + j], one invocation per output element.
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n;             // elements of y
    uint D, group;
    uint ox, oy;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

void main ()
{
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    uint d = i % p.D, g = i / p.D;
    uint base = p.ox + g * p.group * p.D + d;
    float m = x[base];
    for (uint j = 1u; j < p.group; j++)
        m = max (m, x[base + j * p.D]);
    y[p.oy + i] = m;
}
