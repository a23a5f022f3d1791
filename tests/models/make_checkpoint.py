#!/usr/bin/python3
"""Miniature OneLLM checkpoints with the official key names and layout, for tests.

The state dict has every key of the released OneLLM-7B checkpoint (onellm-model-spec.md §8): the
`llma.` prefix, the LLaMA decoder, the frozen CLIP ViT (packed `in_proj_weight`, unused `proj` and
text-tower leftovers included), the 3 UPM experts, and per modality the router, resample tokens,
projections, tags and the tokenizers of audio/point/IMU/fMRI. Shapes follow from the hyperparameters
below (the 7B values are in OFFICIAL_7B); values come from a seeded numpy Generator, scaled like a
trained model's so that activations stay in a sane range.

As a module: `checkpoint_shapes(cfg)`, `make_state_dict(cfg, seed)`, `write_checkpoint(out_dir, cfg, ...)`.
As a program: `make_checkpoint.py OUT_DIR [--seed S] [--shards 10] [--clip-width 64 ...]`.
"""

import argparse
import collections
import json
import math
import os
import sys

import numpy as np

# The modalities in the order OneLLM creates their parameters (`self.modals`).
MODALITIES = ["image", "video", "audio", "point", "rgbd", "rgbn", "fmri", "imu"]

# The lead's tiny test model; input geometry (patch/image size, mel bins, points, IMU length, voxels)
# stays official so that the preprocessing code paths are the real ones.
TINY = dict(
    clip_width=64, clip_layers=2, clip_heads=2, clip_mlp=256, patch_size=14, image_size=224,
    clip_text_width=32, clip_text_vocab=49408, clip_text_ctx=77, clip_embed_dim=32,
    upm_experts=3, upm_blocks=2, upm_heads=2, resample_tokens=30,
    llm_dim=128, llm_layers=2, llm_heads=4, multiple_of=256, norm_eps=1e-5, vocab_size=32000,
    audio_mel_bins=128, audio_frames=1024, audio_kernel=16, audio_stride=10,
    point_groups=1024, imu_length=400, imu_kernel=10, fmri_voxels=15724, fmri_tokens=8,
)

OFFICIAL_7B = dict(
    TINY, clip_width=1024, clip_layers=24, clip_heads=16, clip_mlp=4096,
    clip_text_width=768, clip_embed_dim=768, upm_blocks=8, upm_heads=16,
    llm_dim=4096, llm_layers=32, llm_heads=32,
)


def ffn_hidden(dim, multiple_of):
    """LLaMA's SwiGLU width: 2/3 of 4·dim rounded up to a multiple (onellm.py FeedForward)."""
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def audio_tokens(cfg):
    rows = (cfg["audio_mel_bins"] - cfg["audio_kernel"]) // cfg["audio_stride"] + 1
    cols = (cfg["audio_frames"] - cfg["audio_kernel"]) // cfg["audio_stride"] + 1
    return rows * cols


def checkpoint_shapes(cfg):
    """Ordered {key: shape} of the state dict, in the order torch's state_dict() lists them."""
    W = cfg["clip_width"]
    D = cfg["llm_dim"]
    grid = cfg["image_size"] // cfg["patch_size"]
    llm_ffn = ffn_hidden(D, cfg["multiple_of"])
    upm_ffn = ffn_hidden(W, cfg["multiple_of"])
    tw = cfg["clip_text_width"]
    s = collections.OrderedDict()

    def block(prefix, dim, ffn):
        for w in ("wq", "wk", "wv", "wo"):
            s[f"{prefix}.attention.{w}.weight"] = (dim, dim)
        s[f"{prefix}.feed_forward.w1.weight"] = (ffn, dim)
        s[f"{prefix}.feed_forward.w2.weight"] = (dim, ffn)
        s[f"{prefix}.feed_forward.w3.weight"] = (ffn, dim)
        s[f"{prefix}.attention_norm.weight"] = (dim,)
        s[f"{prefix}.ffn_norm.weight"] = (dim,)

    s["tok_embeddings.weight"] = (cfg["vocab_size"], D)
    for i in range(cfg["llm_layers"]):
        block(f"layers.{i}", D, llm_ffn)
    s["norm.weight"] = (D,)
    s["output.weight"] = (cfg["vocab_size"], D)

    # open_clip CLIP: its own parameters first, then visual, then the text-side modules
    s["clip.positional_embedding"] = (cfg["clip_text_ctx"], tw)
    s["clip.text_projection"] = (tw, cfg["clip_embed_dim"])
    s["clip.logit_scale"] = ()
    v = "clip.visual"
    s[f"{v}.class_embedding"] = (W,)
    s[f"{v}.positional_embedding"] = (grid * grid + 1, W)
    s[f"{v}.proj"] = (W, cfg["clip_embed_dim"])
    s[f"{v}.conv1.weight"] = (W, 3, cfg["patch_size"], cfg["patch_size"])
    s[f"{v}.ln_pre.weight"] = (W,)
    s[f"{v}.ln_pre.bias"] = (W,)
    for i in range(cfg["clip_layers"]):
        r = f"{v}.transformer.resblocks.{i}"
        s[f"{r}.ln_1.weight"] = (W,)
        s[f"{r}.ln_1.bias"] = (W,)
        s[f"{r}.attn.in_proj_weight"] = (3 * W, W)
        s[f"{r}.attn.in_proj_bias"] = (3 * W,)
        s[f"{r}.attn.out_proj.weight"] = (W, W)
        s[f"{r}.attn.out_proj.bias"] = (W,)
        s[f"{r}.ln_2.weight"] = (W,)
        s[f"{r}.ln_2.bias"] = (W,)
        s[f"{r}.mlp.c_fc.weight"] = (cfg["clip_mlp"], W)
        s[f"{r}.mlp.c_fc.bias"] = (cfg["clip_mlp"],)
        s[f"{r}.mlp.c_proj.weight"] = (W, cfg["clip_mlp"])
        s[f"{r}.mlp.c_proj.bias"] = (W,)
    s[f"{v}.ln_post.weight"] = (W,)
    s[f"{v}.ln_post.bias"] = (W,)
    s["clip.token_embedding.weight"] = (cfg["clip_text_vocab"], tw)
    s["clip.ln_final.weight"] = (tw,)
    s["clip.ln_final.bias"] = (tw,)

    for e in range(cfg["upm_experts"]):
        for b in range(cfg["upm_blocks"]):
            block(f"resample_layers.{e}.{b}", W, upm_ffn)

    s["conv1.audio.weight"] = (W, 1, cfg["audio_kernel"], cfg["audio_kernel"])
    s["conv1.audio.bias"] = (W,)
    s["conv1.point.conv1.weight"] = (W, 6, 1, 1)
    s["conv1.point.conv1.bias"] = (W,)
    s["conv1.fmri.weight"] = (cfg["fmri_tokens"] * W, cfg["fmri_voxels"])
    s["conv1.fmri.bias"] = (cfg["fmri_tokens"] * W,)
    s["conv1.imu.weight"] = (W, 6, cfg["imu_kernel"])
    s["positional_embedding.audio"] = (audio_tokens(cfg) + 1, W)
    s["positional_embedding.point"] = (cfg["point_groups"] + 1, W)
    s["positional_embedding.fmri"] = (cfg["fmri_tokens"] + 1, W)
    s["positional_embedding.imu"] = (cfg["imu_length"] - cfg["imu_kernel"] + 1 + 1, W)
    for m in MODALITIES:
        s[f"resample_tokens.{m}"] = (1, cfg["resample_tokens"], W)
    for m in MODALITIES:
        s[f"clip_proj1.{m}.0.weight"] = (W, W)
        s[f"clip_proj1.{m}.0.bias"] = (W,)
        s[f"clip_proj1.{m}.1.weight"] = (W,)
        s[f"clip_proj1.{m}.1.bias"] = (W,)
    for m in MODALITIES:
        s[f"clip_proj2.{m}.0.weight"] = (D, W)
        s[f"clip_proj2.{m}.0.bias"] = (D,)
        s[f"clip_proj2.{m}.1.weight"] = (D,)
        s[f"clip_proj2.{m}.1.bias"] = (D,)
    for m in MODALITIES:
        s[f"routers.{m}.fc1.weight"] = (4 * W, W)
        s[f"routers.{m}.fc1.bias"] = (4 * W,)
        s[f"routers.{m}.fc2.weight"] = (cfg["upm_experts"], 4 * W)
        s[f"routers.{m}.fc2.bias"] = (cfg["upm_experts"],)
    for m in MODALITIES:
        s[f"start_tag.{m}"] = (1, 1, D)
    for m in MODALITIES:
        s[f"end_tag.{m}"] = (1, 1, D)
    return collections.OrderedDict(("llma." + k, v) for k, v in s.items())


def _values(rng, key, shape):
    """Random values scaled by the role of the tensor, so that a forward pass stays finite and varied."""
    name = key[len("llma."):]
    n = int(np.prod(shape)) if shape else 1
    if name == "clip.logit_scale":
        return np.full(shape, math.log(1 / 0.07), np.float32)
    if name.startswith(("start_tag.", "end_tag.")):
        return rng.random(shape, np.float32)           # OneLLM initialises tags with torch.rand
    if name.endswith("norm.weight") or ".ln_" in name or name.endswith(".1.weight"):
        if name.endswith("bias"):
            return (0.02 * rng.standard_normal(shape)).astype(np.float32)
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if name.endswith("bias"):
        return (0.02 * rng.standard_normal(shape)).astype(np.float32)
    if name.startswith("resample_tokens.") or name == "tok_embeddings.weight":
        return (0.5 * rng.standard_normal(shape)).astype(np.float32)
    if "positional_embedding" in name or name.endswith("class_embedding"):
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)
    if len(shape) >= 2:
        fan_in = n // shape[0]
        return (rng.standard_normal(shape) / math.sqrt(fan_in)).astype(np.float32)
    return (0.02 * rng.standard_normal(shape)).astype(np.float32)


def make_state_dict(cfg, seed=0, dtype="bf16"):
    """The state dict as an OrderedDict of torch tensors (bf16 like the release, or f16/f32)."""
    import torch
    torch_dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[dtype]
    rng = np.random.default_rng(seed)
    sd = collections.OrderedDict()
    for key, shape in checkpoint_shapes(cfg).items():
        sd[key] = torch.from_numpy(_values(rng, key, shape)).to(torch_dtype)
    return sd


def params_json(cfg):
    """params.json as the release ships it, plus the head counts of CLIP and the UPM when they differ
    from the width/64 rule the converter applies otherwise."""
    p = {"dim": cfg["llm_dim"], "multiple_of": cfg["multiple_of"], "n_heads": cfg["llm_heads"],
         "n_layers": cfg["llm_layers"], "norm_eps": cfg["norm_eps"], "vocab_size": -1}
    if cfg["clip_heads"] != cfg["clip_width"] // 64:
        p["clip_n_heads"] = cfg["clip_heads"]
    if cfg["upm_heads"] != cfg["clip_width"] // 64:
        p["upm_n_heads"] = cfg["upm_heads"]
    return p


def write_checkpoint(out_dir, cfg=None, seed=0, shards=0, dtype="bf16", state_dict=None):
    """Writes consolidated.00-of-01.pth (or `shards` files consolidated.00-of-01.s{i}.pth) and
    params.json into out_dir; returns the checkpoint paths."""
    import torch
    cfg = dict(TINY, **(cfg or {}))
    sd = state_dict if state_dict is not None else make_state_dict(cfg, seed, dtype)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "params.json"), "w") as f:
        json.dump(params_json(cfg), f)
    if shards <= 0:
        path = os.path.join(out_dir, "consolidated.00-of-01.pth")
        torch.save(sd, path)
        return [path]
    keys = list(sd)
    paths = []
    for i in range(shards):
        part = collections.OrderedDict((k, sd[k]) for k in keys[i * len(keys) // shards:(i + 1) * len(keys) // shards])
        path = os.path.join(out_dir, f"consolidated.00-of-01.s{i}.pth")
        torch.save(part, path)
        paths.append(path)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shards", type=int, default=0, help="write N shards instead of one file (the -hf layout has 10)")
    ap.add_argument("--dtype", choices=["bf16", "f16", "f32"], default="bf16")
    for k, v in TINY.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=v, metavar=type(v).__name__.upper())
    args = ap.parse_args(argv)
    cfg = {k: getattr(args, k) for k in TINY}
    paths = write_checkpoint(args.out_dir, cfg, args.seed, args.shards, args.dtype)
    n = sum(int(np.prod(s)) for s in checkpoint_shapes(cfg).values())
    print(f"wrote {len(paths)} file(s) with {n:,} parameters to {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
