// Row scatter dst[:, rows[i]] = x[:, i] (the KV-cache write); rows outside dst are skipped.
// DST_F32: one invocation per element. DST_F16: one per pair of elements, packed into one 32-bit word;
// rows have an even width and start on a word, so no two rows share a word.
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint units;         // invocations
    uint upr;           // invocations per row: D (F32) or D/2 (F16)
    uint R;             // rows of dst
    uint ox, od, orows; // word offsets
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer Rows { int rows[]; };
layout(binding = 2) writeonly buffer Dst { uint dst[]; };

void main ()
{
    uint u = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (u >= p.units)
        return;
    uint i = u / p.upr, c = u - i * p.upr;
    int r = rows[p.orows + i];
    if (r < 0 || uint (r) >= p.R)
        return;
#if defined(DST_F32)
    dst[p.od + uint (r) * p.upr + c] = floatBitsToUint (x[p.ox + u]);
#elif defined(DST_F16)
    dst[p.od + uint (r) * p.upr + c] = packHalf2x16 (vec2 (x[p.ox + 2u * u], x[p.ox + 2u * u + 1u]));
#else
#error "define DST_F32 or DST_F16"
#endif
}
