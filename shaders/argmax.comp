// Index of the largest element of each row (the lowest index on ties), one workgroup per row.
#version 450

#define WG 256
layout(local_size_x = WG) in;

layout(push_constant) uniform Params {
    uint ncols, nrows;
    uint ox, oy;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { int y[]; };

shared float red_v[WG];
shared uint red_i[WG];

void main ()
{
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.nrows)
        return;   // uniform over the workgroup
    uint t = gl_LocalInvocationID.x;
    uint xr = p.ox + row * p.ncols;
    // Each invocation visits increasing indices, so a strict > keeps its lowest index of the maximum;
    // 0xffffffff marks "nothing seen" (short rows, or only NaN).
    float bv = uintBitsToFloat (0xff800000u);
    uint bi = 0xffffffffu;
    for (uint i = t; i < p.ncols; i += WG) {
        float v = x[xr + i];
        if (v > bv || (bi == 0xffffffffu && v == bv)) {
            bv = v;
            bi = i;
        }
    }
    red_v[t] = bv;
    red_i[t] = bi;
    barrier ();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (t < s) {
            float ov = red_v[t + s];
            uint oi = red_i[t + s];
            uint mi = red_i[t];
            if (oi != 0xffffffffu && (mi == 0xffffffffu || ov > red_v[t] || (ov == red_v[t] && oi < mi))) {
                red_v[t] = ov;
                red_i[t] = oi;
            }
        }
        barrier ();
    }
    if (t == 0u)
        y[p.oy + row] = red_i[0] == 0xffffffffu ? 0 : int (red_i[0]);
}
