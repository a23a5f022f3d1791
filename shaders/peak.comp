// Peak-measurement kernels for onellm-bench: PEAK_COPY streams one binding into another (bandwidth),
// PEAK_FMA runs CHAINS independent multiply-add chains that touch no memory (arithmetic throughput).
#version 450

layout(local_size_x_id = 0) in;

layout(push_constant) uniform Params {
    uint n;         // PEAK_COPY: uvec4 elements to copy; PEAK_FMA: invocations that store their result
    uint iters;     // PEAK_FMA: loop trips
    float a, b;     // PEAK_FMA: chain coefficients, pushed so that the compiler cannot fold the chains
} p;

#if defined(PEAK_COPY)

// TEXELS: read the source through its texel view (binding 2) as the mat-vec does on CPU drivers, which
// fetch texels faster than they load storage buffers; onellm-bench keeps the faster way.
layout(constant_id = 1) const bool TEXELS = false;

layout(binding = 0) readonly buffer Src { uvec4 src[]; };
layout(binding = 1) writeonly buffer Dst { uvec4 dst[]; };
layout(binding = 2) uniform usamplerBuffer src_texels;

// Grid-stride loop: consecutive invocations touch consecutive 16-byte elements.
void main ()
{
    uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < p.n; i += stride)
        dst[i] = TEXELS ? texelFetch (src_texels, int (i)) : src[i];
}

#elif defined(PEAK_FMA)

// CHAINS: set by onellm-bench, which keeps the best of a few (a CPU driver needs many, see bench.c).
layout(constant_id = 1) const int CHAINS = 8;

layout(binding = 0) writeonly buffer Out { float outv[]; };

// Each trip is CHAINS independent fma, 2 flops each, so latency never hides throughput.
void main ()
{
    float acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = float (gl_GlobalInvocationID.x + uint (c)) * 1e-7;
    for (uint i = 0u; i < p.iters; i++)
        for (int c = 0; c < CHAINS; c++)
            acc[c] = fma (acc[c], p.a, p.b);
    float s = 0.0;
    for (int c = 0; c < CHAINS; c++)
        s += acc[c];
    uint g = gl_GlobalInvocationID.x;
    if (g < p.n)
        outv[g] = s;
}

#else
#error "define PEAK_COPY or PEAK_FMA"
#endif
