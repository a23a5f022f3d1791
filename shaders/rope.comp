// RoPE in LLaMA's interleaved-pair layout: one invocation per pair (2k, 2k+1) of a head, turned by
// pos[t] · theta^(−2k/head_dim). The frequency and the angle are F32, as in LLaMA's reference; the angle
// is reduced to [−π, π] with a three-part 2π (Cody–Waite) before cos/sin, so that large positions keep
// the precision that the devices' cos/sin only promise near zero.
#version 450

layout(local_size_x = 256) in;

layout(push_constant) uniform Params {
    uint n_pairs;       // elements of x / 2
    uint half_row;      // ne[0] / 2
    uint half_head;     // head_dim / 2
    uint T;             // rows per batch; row r has position pos[r % T]
    uint ox, oy, opos;
    float head_dim;
    float log2_theta;
} p;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

// 2π = C1 + C2 + C3 with C1 and C2 short enough that k·C1 and k·C2 are exact for |k| < 2^15.
const float C1 = 6.28125;
const float C2 = 0.0019378662109375;
const float C3 = -2.559031351268e-6;

void main ()
{
    uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
    if (i >= p.n_pairs)
        return;
    uint row = i / p.half_row;
    uint k = (i - row * p.half_row) % p.half_head;
    float freq = exp2 (-(float (2u * k) / p.head_dim) * p.log2_theta);
    float a = float (pos[p.opos + row % p.T]) * freq;
    float q = round (a * 0.15915494309189535);
    float r = ((a - q * C1) - q * C2) - q * C3;
    float c = cos (r), s = sin (r);
    float x0 = x[p.ox + 2u * i], x1 = x[p.ox + 2u * i + 1u];
    y[p.oy + 2u * i] = x0 * c - x1 * s;
    y[p.oy + 2u * i + 1u] = x0 * s + x1 * c;
}
