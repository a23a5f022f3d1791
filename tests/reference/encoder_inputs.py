# The encoder tests' model inputs, reproducible bit for bit in C (tests/test-encoder.c make_input); numpy only.
"""lcg_uniform(seed, n) and model_input(modality, shape), shared by make_encoder_goldens.py and
tests/test-cli-encode.sh (`encoder_inputs.py MODALITY SHAPE... OUT.npy` writes one input)."""

import sys

import numpy as np

MODALITIES = ("image", "video", "audio", "point", "depth", "normal", "fmri", "imu")   # engine order and names
MASK64 = (1 << 64) - 1


def lcg_uniform(seed: int, n: int) -> np.ndarray:
    """n values k / 2^24 in [0, 1): state ← state · 6364136223846793005 + 1442695040888963407 (mod 2^64),
    k = the top 24 bits; state starts at seed. Exact in float32, so C reproduces it bit for bit."""
    state = seed & MASK64
    a, c = 6364136223846793005, 1442695040888963407
    k = np.empty(n, dtype=np.int64)
    for i in range(n):
        state = (state * a + c) & MASK64
        k[i] = state >> 40
    return (k.astype(np.float64) / float(1 << 24)).astype(np.float32)


def model_input(modality: str, shape) -> np.ndarray:
    """The test input of a modality: uniform in [-2, 2) from seed = modality index + 1; points: xyz in
    [-1, 1) and colours on a 16-level grid (ties for FPS and kNN, as 8-bit colours give)."""
    seed = MODALITIES.index(modality) + 1
    n = int(np.prod(shape))
    u = lcg_uniform(seed, n)
    if modality != "point":
        return ((u - np.float32(0.5)) * np.float32(4)).reshape(shape)
    pts = u.reshape(shape)
    xyz = (pts[:, :3] - np.float32(0.5)) * np.float32(2)
    rgb = np.floor(pts[:, 3:] * np.float32(16)).astype(np.float32) / np.float32(15)
    return np.concatenate((xyz, rgb), axis=1).astype(np.float32)


if __name__ == "__main__":
    np.save(sys.argv[-1], model_input(sys.argv[1], tuple(int(d) for d in sys.argv[2:-1])))
