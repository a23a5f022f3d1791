#!/usr/bin/python3
# Held-out accuracy of a trained default model through the Python reference (greedy), per modality.
"""Caption every case of tools/train/heldout.json with tests/reference/onellm_ref.py and check its keyword.

A case is right when the generated caption contains the case's keyword (case-insensitive): the key attribute
of its configuration (pattern or solid colour, wave, motion, shape, stimulus category). The model inputs are
made from the configurations with the reference preprocessing (exact point indices included), i.e. what the
engine computes from the same GStreamer source or .npy file.

    evaluate.py CHECKPOINT_DIR --tokenizer tokenizer.model [--position-mode correct|official]
                [--cache DIR] [--out results.json]
"""

import argparse
import collections
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
sys.path.insert(0, HERE)
import onellm_ref as ref  # noqa: E402
import synth  # noqa: E402

pre = synth.pre


def normalise(u8):
    """uint8 [..., H, W, 3] -> float32 [..., 3, H, W] with the CLIP mean/std."""
    return np.stack([pre.normalize_u8(f) for f in u8.reshape(-1, *u8.shape[-3:])]).reshape(
        *u8.shape[:-3], 3, *u8.shape[-3:-1])


def model_input(case):
    """(input tensor, extra generate/encode arguments) of a case, computed from its configuration."""
    m, cfg = case["modality"], case["config"]
    if m == "image":
        return normalise(synth.image_input(cfg)), {}
    if m == "video":
        return synth.video_input(synth.video_frames(cfg)), {}
    if m == "audio":
        return synth.audio_input(cfg), {}
    if m == "point":
        d = synth.make_inputs(m, cfg, exact=True)
        return d["x"], {"point_fps": d["fps"].astype(np.int64), "point_knn": d["knn"].astype(np.int64)}
    if m in ("rgbd", "rgbn"):
        return normalise(synth.scene_input(cfg, m)), {}
    if m == "imu":
        return synth.imu_input(cfg), {}
    return pre.fmri(synth.fmri_signal(cfg, synth.fmri_basis())), {}


def fake_quantize(state, target):
    """Round-trip the weight matrices through the type onellm-quantize gives them (llama.cpp's reference
    Q8_0/Q4_0 quantizers; output.weight stays Q8_0 under q4_0; other 2-d arrays F16), so the reference
    measures the accuracy of the quantized file."""
    from fnmatch import fnmatchcase
    matrices = ["tok_embeddings.weight", "output.weight", "layers.*.attention.w?.weight",
                "layers.*.feed_forward.w?.weight", "resample_layers.*.attention.w?.weight",
                "resample_layers.*.feed_forward.w?.weight", "clip.visual.transformer.resblocks.*.attn.in_proj_weight",
                "clip.visual.transformer.resblocks.*.attn.out_proj.weight",
                "clip.visual.transformer.resblocks.*.mlp.c_*.weight", "clip_proj?.*.0.weight", "conv1.fmri.weight"]
    out = {}
    for key, w in state.items():
        name = key[len(ref.KEY_PREFIX):]
        kind = "f16" if w.dim() >= 2 else None
        if w.dim() == 2 and any(fnmatchcase(name, p) for p in matrices):
            kind = "q8_0" if target == "q4_0" and name == "output.weight" else target
        if kind == "f16":
            w = w.half().float()
        elif kind in ("q8_0", "q4_0"):
            k = w.shape[1]
            pad = -k % 32                                  # fMRI rows: zero-padded to whole blocks
            b = F.pad(w.float(), (0, pad)).view(w.shape[0], -1, 32)
            if kind == "q8_0":
                d = b.abs().amax(-1, keepdim=True) / 127
                q = torch.where(d > 0, torch.round(b / torch.where(d > 0, d, 1)), 0 * b)
                w = (q * d.half().float()).view(w.shape[0], -1)[:, :k]
            else:
                idx = b.abs().argmax(-1, keepdim=True)
                d = (b.gather(-1, idx) / -8)
                inv = torch.where(d != 0, 1 / d, 0 * d)
                q = torch.clamp(torch.trunc(b * inv + 8.5), max=15)
                w = ((q - 8) * d.half().float()).view(w.shape[0], -1)[:, :k]
        out[key] = w
    return out


def cached_input(case, cache):
    path = os.path.join(cache, case["id"] + ".npz") if cache else None
    if path and os.path.exists(path):
        d = np.load(path)
        return d["x"], {k: d[k] for k in d.files if k != "x"}
    x, extra = model_input(case)
    if path:
        os.makedirs(cache, exist_ok=True)
        np.savez(path, x=x, **extra)
    return x, extra


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--heldout", default=os.path.join(HERE, "heldout.json"))
    ap.add_argument("--position-mode", default="correct", choices=["correct", "official"])
    ap.add_argument("--cache", help="folder keeping the preprocessed inputs between runs")
    ap.add_argument("--only", nargs="*", help="modalities to evaluate (default: all)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many cases per modality")
    ap.add_argument("--prepare", action="store_true", help="only fill --cache with the model inputs")
    ap.add_argument("--out", help="write every case's caption and verdict here (JSON)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quantized", choices=["f16", "q8_0", "q4_0"], help="evaluate the weights as onellm-quantize "
                    "stores them at this type")
    args = ap.parse_args(argv)

    import sentencepiece
    torch.set_num_threads(args.threads)
    sp = sentencepiece.SentencePieceProcessor(model_file=args.tokenizer)
    with open(args.heldout) as f:
        cases = [c for c in json.load(f) if not args.only or c["modality"] in args.only]
    if args.limit:
        cases = [c for c in cases if int(c["id"].rsplit("-", 1)[1]) < args.limit]
    if args.prepare:
        for case in cases:
            cached_input(case, args.cache)
        return
    state, params = ref.load_checkpoint(args.checkpoint)
    if args.quantized:
        state = fake_quantize(state, args.quantized)
    model = ref.OneLLM(state, params)
    right, total, results = collections.Counter(), collections.Counter(), []
    start = time.time()
    for case in cases:
        m = case["modality"]
        x, extra = cached_input(case, args.cache)
        with torch.no_grad():
            enc = model.encode(m, torch.from_numpy(np.asarray(x, np.float32)),
                               **{k: torch.from_numpy(v) for k, v in extra.items()})
            ids = model.generate(ref.prompt_ids(sp, case["prompt"]), [enc.block], max_new_tokens=24,
                                 position_mode=args.position_mode, sp=sp)
        caption = sp.decode(ids).split("###")[0].strip()
        ok = case["keyword"].lower() in caption.lower()
        right[m] += ok
        total[m] += 1
        results.append({"id": case["id"], "caption": caption, "keyword": case["keyword"], "ok": ok})
        print(f"{case['id']:10s} {'ok  ' if ok else 'MISS'} [{case['keyword']}] {caption}", flush=True)
    print(f"\n{args.position_mode} positions, {len(cases)} cases in {time.time() - start:.0f} s")
    for m in ref.MODALITIES:
        if total[m]:
            print(f"{m:6s} {right[m]:3d}/{total[m]:3d} = {100.0 * right[m] / total[m]:5.1f} %")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"position_mode": args.position_mode, "cases": results,
                       "accuracy": {m: right[m] / total[m] for m in total}}, f, indent=1)


if __name__ == "__main__":
    main()
