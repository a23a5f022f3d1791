// Elementwise unary ops y = f(x).
// OP_SCALE: x * s   OP_GELU: exact erf GELU   OP_QUICK_GELU: x * sigmoid(1.702 x)   OP_SILU: x * sigmoid(x)
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n;
    uint ox, oy;
    float s;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

#if defined(OP_GELU)
// erf with |error| < 1.2e-7 (Numerical Recipes' erfc via Chebyshev fit); GLSL has no erf.
float erf_approx (float v)
{
    float z = abs (v);
    float t = 1.0 / (1.0 + 0.5 * z);
    float r = t * exp (-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
              t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
              t * (-0.82215223 + t * 0.17087277)))))))));
    return v >= 0.0 ? 1.0 - r : r - 1.0;
}
#endif

void main ()
{
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    float v = x[p.ox + i];
#if defined(OP_SCALE)
    y[p.oy + i] = v * p.s;
#elif defined(OP_GELU)
    y[p.oy + i] = 0.5 * v * (1.0 + erf_approx (v * 0.70710678118654752));
#elif defined(OP_QUICK_GELU)
    y[p.oy + i] = v / (1.0 + exp (-1.702 * v));
#elif defined(OP_SILU)
    y[p.oy + i] = v / (1.0 + exp (-v));
#endif
}
