// Workgroup-wide reductions for row kernels (one workgroup per row). The including shader defines WG
// (its local_size_x); every invocation of the workgroup must call, and each receives the total.

shared float wg_red[WG];

#define OL_WG_REDUCE(name, combine)                                     \
float name (float v)                                                    \
{                                                                       \
    uint t = gl_LocalInvocationID.x;                                    \
    barrier ();  /* an earlier reduction may still be reading wg_red */ \
    wg_red[t] = v;                                                      \
    barrier ();                                                         \
    for (uint s = WG / 2u; s > 0u; s >>= 1) {                           \
        if (t < s)                                                      \
            wg_red[t] = combine (wg_red[t], wg_red[t + s]);             \
        barrier ();                                                     \
    }                                                                   \
    return wg_red[0];                                                   \
}

float ol_add (float a, float b)
{
    return a + b;
}

OL_WG_REDUCE (wg_sum, ol_add)
OL_WG_REDUCE (wg_max, max)

#define OL_NEG_INF uintBitsToFloat (0xff800000u)
