// Row softmax of scale · x, one workgroup per row: max, then sum of exp(scale·x − max), then the quotient.
#version 450
#extension GL_GOOGLE_include_directive : require

#define WG 256
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
    uint ncols, nrows;
    uint ox, oy;
    float scale;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

#include "reduce.glsl"

void main ()
{
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.nrows)
        return;   // uniform over the workgroup
    uint t = gl_LocalInvocationID.x;
    uint xr = p.ox + row * p.ncols, yr = p.oy + row * p.ncols;
    float m = OL_NEG_INF;
    for (uint i = t; i < p.ncols; i += WG)
        m = max (m, p.scale * x[xr + i]);
    m = wg_max (m);
    float acc = 0.0;
    for (uint i = t; i < p.ncols; i += WG)
        acc += exp (p.scale * x[xr + i] - m);
    float inv = 1.0 / wg_sum (acc);
    for (uint i = t; i < p.ncols; i += WG)
        y[yr + i] = exp (p.scale * x[xr + i] - m) * inv;
}
