# Writes the encoder goldens of tests/test-encoder.c into tests/data/encoder/ from onellm_ref.py on the tiny model.
"""Usage: /usr/bin/python3 tests/reference/make_encoder_goldens.py [OUTDIR]

The tiny checkpoint is make_checkpoint's TINY with seed 0, the weights tests/meson.build's tiny-model GGUF
holds. Model inputs come from encoder_inputs.py: a 64-bit LCG whose values are exact in float32, so the C test
regenerates them bit for bit instead of reading 9 MB of video. For each modality the files are:

  <m>.<stage>.rows.npy   [k, W]     rows 0, s, 2s, ... of the stage's [rows, W] matrix (s = ceil(rows / 16))
  <m>.<stage>.stats.npy  [rows, 2]  every row's sum and sum of squares (float64 sums, stored float32)
  <m>.routing.npy        [R, E]     routing weights
  <m>.block.npy          [R + 2, D] the LLM input block
  input-sums.npy         [8]        float64 sums of the eight inputs, to check the C generator

with stage = tokens (tokenizer output, frames × tokens rows) and clip (after ln_post and the frame mean).
The point groups are preprocess_ref.py's FPS and kNN, which the engine's ol_point_group_indices matches index
for index (with nvcc's FMA contraction; onellm_ref's own search sums without FMA and breaks some near-ties
of the 16-level colours differently).
"""

import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "models"))
import make_checkpoint  # noqa: E402
import onellm_ref as ref  # noqa: E402
import preprocess_ref  # noqa: E402
from encoder_inputs import model_input  # noqa: E402

OUT = os.path.join(HERE, "..", "data", "encoder")
SAMPLED_ROWS = 16
ENGINE_NAMES = {"rgbd": "depth", "rgbn": "normal"}   # file names use the engine's modality names


def save_matrix(name: str, m: np.ndarray):
    m = m.reshape(-1, m.shape[-1]).astype(np.float64)
    step = -(-m.shape[0] // SAMPLED_ROWS)
    np.save(os.path.join(OUT, name + ".rows.npy"), m[::step].astype(np.float32))
    stats = np.stack((m.sum(axis=1), (m * m).sum(axis=1)), axis=1)
    np.save(os.path.join(OUT, name + ".stats.npy"), stats.astype(np.float32))


def main(argv):
    global OUT
    if len(argv) > 1:
        OUT = argv[1]
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as work:
        make_checkpoint.write_checkpoint(work, seed=0, dtype="f32")
        model = ref.OneLLM.from_path(work)
    sums = []
    for m in ref.MODALITIES:
        name = ENGINE_NAMES.get(m, m)
        x = model_input(name, model.expected_input_shape(m))
        fps = knn = None
        if m == "point":
            rgb = np.ascontiguousarray(x[:, 3:6])
            fps = preprocess_ref.furthest_point_sample(rgb, model.cfg.point_groups)
            knn = torch.from_numpy(preprocess_ref.knn(rgb, fps, ref.POINT_GROUP_SIZE))
            fps = torch.from_numpy(fps)
        e = model.encode(m, torch.from_numpy(x), fps, knn)
        save_matrix(f"{name}.tokens", e.tokens.numpy())
        save_matrix(f"{name}.clip", e.clip_mean.numpy())
        np.save(os.path.join(OUT, f"{name}.routing.npy"), e.routing.numpy().astype(np.float32))
        np.save(os.path.join(OUT, f"{name}.block.npy"), e.block.numpy().astype(np.float32))
        sums.append(x.astype(np.float64).sum())
        print(f"{name}: input {x.shape}, tokens {tuple(e.tokens.shape)}, block {tuple(e.block.shape)}")
    np.save(os.path.join(OUT, "input-sums.npy"), np.array(sums, dtype=np.float64))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
