// Row normalisation, one workgroup per row of ncols elements; w (and b) are vectors of ncols.
// RMS: y = x · rsqrt(mean(x²) + eps) · w   LAYER: y = (x − mean) · rsqrt(var + eps) · w (+ b), two-pass
// variance so that rows with a large mean keep their precision.
#version 450
#extension GL_GOOGLE_include_directive : require

#define WG 256
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
    uint ncols, nrows;
    uint ox, ow, ob, oy;
    uint has_b;
    float eps;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer Wt { float w[]; };
layout(binding = 2) readonly buffer B { float b[]; };
layout(binding = 3) writeonly buffer Y { float y[]; };

#include "reduce.glsl"

void main ()
{
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.nrows)
        return;   // uniform over the workgroup
    uint t = gl_LocalInvocationID.x;
    uint xr = p.ox + row * p.ncols, yr = p.oy + row * p.ncols;
    float n = float (p.ncols);
#if defined(RMS)
    float acc = 0.0;
    for (uint i = t; i < p.ncols; i += WG) {
        float v = x[xr + i];
        acc += v * v;
    }
    float s = inversesqrt (wg_sum (acc) / n + p.eps);
    for (uint i = t; i < p.ncols; i += WG)
        y[yr + i] = x[xr + i] * s * w[p.ow + i];
#elif defined(LAYER)
    float acc = 0.0;
    for (uint i = t; i < p.ncols; i += WG)
        acc += x[xr + i];
    float mean = wg_sum (acc) / n;
    acc = 0.0;
    for (uint i = t; i < p.ncols; i += WG) {
        float d = x[xr + i] - mean;
        acc += d * d;
    }
    float s = inversesqrt (wg_sum (acc) / n + p.eps);
    for (uint i = t; i < p.ncols; i += WG) {
        float v = (x[xr + i] - mean) * s * w[p.ow + i];
        if (p.has_b != 0u)
            v += b[p.ob + i];
        y[yr + i] = v;
    }
#else
#error "define RMS or LAYER"
#endif
}
