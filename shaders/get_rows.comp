// Row gather y[:, i] = dequant(w[:, ids[i]]) for every weight type (types.glsl). Large tables are bound
// in chunks of rows [r0, r0 + nc): each dispatch writes the rows whose id falls in its chunk, and the
// first writes zero rows for ids outside the table. Float types: one invocation per element; quantized
// types (rows are whole 32-element blocks): one per 4 elements.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint units;         // invocations
    uint upr;           // invocations per row
    uint K;             // elements per row
    uint R;             // rows of the whole table
    uint r0, nc;        // rows of the table in this binding
    uint w_addr;        // byte offset of row r0 in the binding
    uint row_bytes;
    uint oy, oids;
} p;

layout(binding = 0) readonly buffer W { uint w[]; };
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

#include "types.glsl"

void main ()
{
    uint u = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (u >= p.units)
        return;
    uint i = u / p.upr, c = u - i * p.upr;
    int id = ids[p.oids + i];
    bool valid = id >= 0 && uint (id) < p.R;
    if (valid && (uint (id) < p.r0 || uint (id) - p.r0 >= p.nc))
        return;     // another chunk's row
    if (!valid && p.r0 != 0u)
        return;     // the first chunk writes the zero row
    uint row = p.w_addr + (uint (id) - p.r0) * p.row_bytes;
#if defined(W_FLOAT)
    y[p.oy + i * p.K + c] = valid ? w_load1 (row, c) : 0.0;
#else
    vec4 v = valid ? w_load4 (row, 4u * c, p.K) : vec4 (0.0);
    uint o = p.oy + i * p.K + 4u * c;
    y[o] = v.x;
    y[o + 1u] = v.y;
    y[o + 2u] = v.z;
    y[o + 3u] = v.w;
#endif
}
