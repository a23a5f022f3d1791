# Writes OneLLM golden tensors (.npy) from the PyTorch reference for comparison with the C/Vulkan engine.
"""Usage: /usr/bin/python3 tests/reference/dump_goldens.py CHECKPOINT OUTDIR [options]

CHECKPOINT: consolidated.00-of-01.pth, or a folder with it or its shards (+ params.json).
Model inputs are read from --inputs DIR (<modality>.npy, spec §2.1 shapes; point.fps.npy / point.knn.npy
there replace the FPS / kNN search) or generated from --seed. README.md lists every file written.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import sentencepiece
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onellm_ref as ref  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TOKENIZER = os.path.join(REPO_ROOT, "..", "shared", "data", "llama2-tokenizer.model")

# Questions of the official evaluation scripts where the spec (§6.2) lists one.
QUESTIONS = {
    "text": "Name three colours.",
    "image": "Provide a one-sentence caption for the provided image.",
    "video": "Provide a one-sentence caption for the provided video.",
    "audio": "Provide a one-sentence caption for the provided audio.",
    "point": "What is this?",
    "rgbd": "Describe the scene.",
    "rgbn": "Describe the scene.",
    "fmri": "Provide a one-sentence caption for the provided fMRI data.",
    "imu": "Describe the scene.",
}
MULTI_QUESTION = "Describe the video and its sound."


def make_input(model: ref.OneLLM, modality: str, gen: torch.Generator) -> torch.Tensor:
    """A deterministic random model input of the modality's shape. Points: xyz normalised like pc_norm,
    colours on a 16-level grid so that FPS and kNN meet the equal-distance ties real 8-bit colours produce."""
    shape = model.expected_input_shape(modality)
    if modality != "point":
        return torch.randn(shape, generator=gen)
    xyz = torch.randn((shape[0], 3), generator=gen)
    xyz = xyz - xyz.mean(dim=0)
    xyz = xyz / xyz.norm(dim=1).max()
    rgb = torch.randint(0, 16, (shape[0], 3), generator=gen).float() / 15
    return torch.cat((xyz, rgb), dim=1)


class Writer:
    """Saves arrays and remembers their shapes for manifest.json."""

    def __init__(self, outdir: str):
        self.outdir = outdir
        self.files = {}
        os.makedirs(outdir, exist_ok=True)

    def save(self, name: str, tensor: torch.Tensor, integer: bool = False):
        array = tensor.detach().to(torch.int32 if integer else torch.float32).contiguous().numpy()
        np.save(os.path.join(self.outdir, name + ".npy"), array)
        self.files[name + ".npy"] = {"shape": list(array.shape), "dtype": str(array.dtype)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("outdir")
    ap.add_argument("--inputs", help="folder with <modality>.npy model inputs (others are generated)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=("fp32", "fp16"), default="fp32")
    ap.add_argument("--modalities", default=",".join(ref.MODALITIES))
    ap.add_argument("--multi", default="video,audio",
                    help="modalities spliced together in one prompt, in order ('' for none)")
    ap.add_argument("--max-tokens", type=int, default=12)
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER)
    args = ap.parse_args(argv)

    modalities = [m for m in args.modalities.split(",") if m]
    multi = [m for m in args.multi.split(",") if m]
    for m in modalities + multi:
        if m not in ref.MODALITIES:
            ap.error(f"unknown modality {m!r}")
    if not set(multi) <= set(modalities):
        ap.error("--multi modalities must be among --modalities")

    started = time.time()
    model = ref.OneLLM.from_path(args.checkpoint, fp16=args.precision == "fp16")
    sp = sentencepiece.SentencePieceProcessor(model_file=args.tokenizer)
    out = Writer(args.outdir)
    gen = torch.Generator().manual_seed(args.seed)
    sources, blocks = {}, {}

    for m in modalities:
        path = os.path.join(args.inputs, m + ".npy") if args.inputs else None
        if path and os.path.exists(path):
            x, sources[m] = torch.from_numpy(np.load(path)).float(), path
        else:
            x, sources[m] = make_input(model, m, gen), f"seed {args.seed}"
        fps = knn = None
        if m == "point" and args.inputs and os.path.exists(os.path.join(args.inputs, "point.fps.npy")):
            fps = torch.from_numpy(np.load(os.path.join(args.inputs, "point.fps.npy"))).long()
            knn = torch.from_numpy(np.load(os.path.join(args.inputs, "point.knn.npy"))).long()
        enc = model.encode(m, x, fps, knn)
        out.save(f"{m}.input", x.to(model.P.low))
        for name in ("tokens", "clip", "clip_mean", "routing", "upm", "block"):
            out.save(f"{m}.{name}", getattr(enc, name))
        if m == "point":
            out.save("point.fps", enc.point_fps, integer=True)
            out.save("point.knn", enc.point_knn, integer=True)
        blocks[m] = enc.block

    cases = [("text", [])] + [(m, [m]) for m in modalities]
    if len(multi) > 1:
        cases.append(("+".join(multi), multi))
    prompts = {}
    for case, mods in cases:
        question = QUESTIONS[case] if case in QUESTIONS else MULTI_QUESTION
        ids = ref.prompt_ids(sp, question)
        prompts[case] = question
        case_blocks = [blocks[m] for m in mods]
        out.save(f"llm.{case}.prompt_ids", torch.tensor(ids), integer=True)
        out.save(f"llm.{case}.logits", model.prefill(ids, case_blocks)[0])
        for mode in ("official", "correct"):
            tokens = model.generate(ids, case_blocks, args.max_tokens, mode, sp)
            out.save(f"llm.{case}.greedy.{mode}", torch.tensor(tokens, dtype=torch.int64), integer=True)

    manifest = {
        "checkpoint": os.path.abspath(args.checkpoint),
        "precision": args.precision,
        "seed": args.seed,
        "max_tokens": args.max_tokens,
        "config": vars(model.cfg),
        "inputs": sources,
        "questions": prompts,
        "llm_cases": {case: mods for case, mods in cases},
        "decode_offset": {mode: {str(k): model.decode_offset(k, mode) for k in (0, 1, len(multi))}
                          for mode in ("official", "correct")},
        "files": out.files,
        "seconds": round(time.time() - started, 2),
    }
    with open(os.path.join(args.outdir, "manifest.json"), "w") as fp:
        json.dump(manifest, fp, indent=1)
    print(f"wrote {len(out.files)} files to {args.outdir} in {manifest['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
