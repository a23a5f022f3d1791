// Patch extraction for convolutions as matmuls, one invocation per output element:
// x [W, H, C, F] → y [C·kh·kw, OH·OW, F], row p = oy·OW + ox holding the patch in (c, ky, kx) order.
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n;             // elements of y
    uint K;             // C·kh·kw
    uint P;             // OH·OW
    uint OW, W, H, C;
    uint kh, kw, sh, sw;
    uint ox, oy;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

void main ()
{
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= p.n)
        return;
    uint col = i % p.K;
    uint rest = i / p.K;
    uint pi = rest % p.P, f = rest / p.P;
    uint c = col / (p.kh * p.kw);
    uint ky = (col / p.kw) % p.kh, kx = col % p.kw;
    uint sy = (pi / p.OW) * p.sh + ky, sx = (pi % p.OW) * p.sw + kx;
    y[p.oy + i] = x[p.ox + ((f * p.C + c) * p.H + sy) * p.W + sx];
}
