// Mean over the outermost dimension: y[i] = Σ_f x[f·n + i] / F, one invocation per output element.
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n;             // elements of y
    uint F;
    uint ox, oy;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

void main ()
{
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    float acc = 0.0;
    for (uint f = 0u; f < p.F; f++)
        acc += x[p.ox + f * p.n + i];
    y[p.oy + i] = acc / float (p.F);
}
