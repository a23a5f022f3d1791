#!/usr/bin/python3
"""Converter round trip: miniature checkpoints (one file and 10 shards) -> onellm-convert.py (f32, f16, bf16)
(and a legacy-format file) -> the C reader, which checks every tensor (type, shape, SHA-256 of the bytes) and the metadata against a
manifest computed here from the checkpoint with torch; then the converter's strictness: a checkpoint with a
missing, an unexpected or a wrongly shaped key is refused with the key named and nothing written.

    test_convert.py --checker PATH/check-converted --converter tools/onellm-convert.py --workdir DIR

Exits 77 (skipped) when torch or sentencepiece is missing.
"""

import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

try:
    import torch
    import sentencepiece
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

import make_checkpoint as mc  # noqa: E402
import make_tokenizer  # noqa: E402

OURS = {"image": "image", "video": "video", "audio": "audio", "point": "point", "rgbd": "depth",
        "rgbn": "normal", "fmri": "fmri", "imu": "imu"}
LLAMA_BLOCK = [("attention.wq.weight", "attn_q.weight"), ("attention.wk.weight", "attn_k.weight"),
               ("attention.wv.weight", "attn_v.weight"), ("attention.wo.weight", "attn_output.weight"),
               ("feed_forward.w1.weight", "ffn_gate.weight"), ("feed_forward.w3.weight", "ffn_up.weight"),
               ("feed_forward.w2.weight", "ffn_down.weight"), ("attention_norm.weight", "attn_norm.weight"),
               ("ffn_norm.weight", "ffn_norm.weight")]


def expected_tensors(cfg):
    """(official key, GGUF name, reshape) for every tensor the GGUF must hold, as docs/model-format.md
    describes it; reshape maps the torch tensor to the stored one."""
    same = lambda t: t  # noqa: E731
    out = [("tok_embeddings.weight", "token_embd.weight", same)]
    for i in range(cfg["llm_layers"]):
        out += [(f"layers.{i}.{k}", f"blk.{i}.{g}", same) for k, g in LLAMA_BLOCK]
    out += [("norm.weight", "output_norm.weight", same), ("output.weight", "output.weight", same)]
    v = "clip.visual"
    out += [(f"{v}.conv1.weight", "clip.patch_embd.weight", same), (f"{v}.class_embedding", "clip.class_embd", same),
            (f"{v}.positional_embedding", "clip.pos_embd", same)]
    for p, q in (("ln_pre", "pre_ln"), ("ln_post", "post_ln")):
        out += [(f"{v}.{p}.{s}", f"clip.{q}.{s}", same) for s in ("weight", "bias")]
    for i in range(cfg["clip_layers"]):
        r = f"{v}.transformer.resblocks.{i}"
        for s in ("weight", "bias"):
            out += [(f"{r}.ln_1.{s}", f"clip.blk.{i}.ln1.{s}", same), (f"{r}.ln_2.{s}", f"clip.blk.{i}.ln2.{s}", same),
                    (f"{r}.attn.in_proj_{s}", f"clip.blk.{i}.attn_qkv.{s}", same),
                    (f"{r}.attn.out_proj.{s}", f"clip.blk.{i}.attn_out.{s}", same),
                    (f"{r}.mlp.c_fc.{s}", f"clip.blk.{i}.ffn_up.{s}", same),
                    (f"{r}.mlp.c_proj.{s}", f"clip.blk.{i}.ffn_down.{s}", same)]
    for e in range(cfg["upm_experts"]):
        for b in range(cfg["upm_blocks"]):
            out += [(f"resample_layers.{e}.{b}.{k}", f"upm.expert.{e}.blk.{b}.{g}", same) for k, g in LLAMA_BLOCK]
    out += [("conv1.audio.weight", "mod.audio.conv.weight", same), ("conv1.audio.bias", "mod.audio.conv.bias", same),
            ("conv1.point.conv1.weight", "mod.point.conv.weight", lambda t: t[:, :, 0, 0]),
            ("conv1.point.conv1.bias", "mod.point.conv.bias", same), ("conv1.imu.weight", "mod.imu.conv.weight", same),
            ("conv1.fmri.weight", "mod.fmri.linear.weight", same), ("conv1.fmri.bias", "mod.fmri.linear.bias", same)]
    for m in ("audio", "point", "imu", "fmri"):
        out.append((f"positional_embedding.{m}", f"mod.{m}.pos_embd", same))
    for m, ours in OURS.items():
        out += [(f"resample_tokens.{m}", f"mod.{ours}.resample_tokens", lambda t: t[0]),
                (f"start_tag.{m}", f"mod.{ours}.start_tag", lambda t: t[0, 0]),
                (f"end_tag.{m}", f"mod.{ours}.end_tag", lambda t: t[0, 0])]
        for i, (part, name) in enumerate((("clip_proj1", "proj1"), ("clip_proj2", "proj2"))):
            for s in ("weight", "bias"):
                out += [(f"{part}.{m}.0.{s}", f"mod.{ours}.{name}.{s}", same),
                        (f"{part}.{m}.1.{s}", f"mod.{ours}.{name}_norm.{s}", same)]
        for fc in ("fc1", "fc2"):
            for s in ("weight", "bias"):
                out.append((f"routers.{m}.{fc}.{s}", f"mod.{ours}.router.{fc}.{s}", same))
    return out


def escape(s):
    """What g_strcompress turns back into s: backslash and control bytes as escapes, UTF-8 as is."""
    out = bytearray()
    for b in s.encode("utf-8"):
        if b == 0x5C:
            out += b"\\\\"
        elif b < 0x20 or b == 0x7F:
            out += b"\\%03o" % b
        else:
            out.append(b)
    return out.decode("utf-8")


def tensor_bytes(t, ggml_type):
    if ggml_type == "f32":
        return t.float().numpy().tobytes()
    if ggml_type == "f16":
        return t.half().numpy().tobytes()
    return t.bfloat16().view(torch.int16).numpy().tobytes()


def manifest(sd, cfg, outtype, tokenizer_path):
    import hashlib
    lines = []
    for key, name, reshape in expected_tensors(cfg):
        t = reshape(sd["llma." + key]).contiguous()
        ggml_type = "f32" if t.dim() == 1 else outtype
        ne = ",".join(str(d) for d in reversed(t.shape))
        lines.append(f"tensor\t{name}\t{ggml_type}\t{ne}\t{hashlib.sha256(tensor_bytes(t, ggml_type)).hexdigest()}")

    W, D = cfg["clip_width"], cfg["llm_dim"]
    grid = cfg["image_size"] // cfg["patch_size"]
    u32 = {"onellm.context_length": 2048, "onellm.embedding_length": D, "onellm.block_count": cfg["llm_layers"],
           "onellm.feed_forward_length": mc.ffn_hidden(D, cfg["multiple_of"]),
           "onellm.attention.head_count": cfg["llm_heads"], "onellm.attention.head_count_kv": cfg["llm_heads"],
           "onellm.rope.dimension_count": D // cfg["llm_heads"], "onellm.vocab_size": cfg["vocab_size"],
           "onellm.clip.embedding_length": W, "onellm.clip.block_count": cfg["clip_layers"],
           "onellm.clip.attention.head_count": cfg["clip_heads"], "onellm.clip.feed_forward_length": cfg["clip_mlp"],
           "onellm.clip.patch_size": cfg["patch_size"], "onellm.clip.image_size": cfg["image_size"],
           "onellm.upm.expert_count": cfg["upm_experts"], "onellm.upm.block_count": cfg["upm_blocks"],
           "onellm.upm.embedding_length": W, "onellm.upm.attention.head_count": cfg["upm_heads"],
           "onellm.upm.feed_forward_length": mc.ffn_hidden(W, cfg["multiple_of"]),
           "onellm.upm.resample_token_count": cfg["resample_tokens"], "onellm.upm.router.feed_forward_length": 4 * W,
           "onellm.modality.imu.length": cfg["imu_length"], "onellm.modality.fmri.voxel_count": cfg["fmri_voxels"],
           "general.file_type": {"f32": 0, "f16": 1, "bf16": 32}[outtype],
           "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0}
    tokens = {"image": grid * grid + 1, "video": grid * grid + 1, "rgbd": grid * grid + 1, "rgbn": grid * grid + 1,
              "audio": mc.audio_tokens(cfg) + 1, "point": cfg["point_groups"] + 1,
              "imu": cfg["imu_length"] - cfg["imu_kernel"] + 2, "fmri": cfg["fmri_tokens"] + 1}
    frames = {"image": 1, "video": 15, "rgbd": 2, "rgbn": 2, "audio": 1, "point": 1, "imu": 1, "fmri": 1}
    for m, ours in OURS.items():
        u32[f"onellm.modality.{ours}.token_count"] = tokens[m]
        u32[f"onellm.modality.{ours}.frames"] = frames[m]
    lines += [f"u32\t{k}\t{v}" for k, v in u32.items()]
    lines += [f"f32\tonellm.attention.layer_norm_rms_epsilon\t{cfg['norm_eps']!r}",
              f"f32\tonellm.upm.attention.layer_norm_rms_epsilon\t{cfg['norm_eps']!r}",
              "f32\tonellm.rope.freq_base\t10000", "str\tgeneral.architecture\tonellm",
              "str\ttokenizer.ggml.model\tllama", "bool\ttokenizer.ggml.add_bos_token\t1",
              "str\tonellm.modality.image.prompt\tProvide a one-sentence caption for the provided image.",
              "str\tonellm.prompt_template\t" + escape(
                  "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
                  "helpful, detailed, and polite answers to the human's questions.\n\n###Human: {question}\n"
                  "###Assistant:"),
              f"strarr\tonellm.modalities\t{len(OURS)}"]
    lines += [f"stritem\tonellm.modalities\t{i}\t{ours}" for i, ours in enumerate(OURS.values())]

    sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer_path)
    lines.append(f"strarr\ttokenizer.ggml.tokens\t{sp.vocab_size()}")
    for i in range(sp.vocab_size()):
        ttype = 2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else 5 if sp.is_unused(i) else 1
        lines += [f"stritem\ttokenizer.ggml.tokens\t{i}\t{escape(sp.id_to_piece(i))}",
                  f"f32item\ttokenizer.ggml.scores\t{i}\t{sp.get_score(i)!r}",
                  f"i32item\ttokenizer.ggml.token_type\t{i}\t{ttype}"]
    return "\n".join(lines) + "\n"


def load_state_dict(paths):
    sd = {}
    for p in paths:
        sd.update(torch.load(p, map_location="cpu"))
    return sd


def convert(args, checkpoint, tokenizer, outtype, outfile):
    return subprocess.run([sys.executable, args.converter, checkpoint, "--tokenizer", tokenizer,
                           "--outtype", outtype, "--outfile", outfile], capture_output=True, text=True)


def check_info(args, path, cfg):
    info = subprocess.run([args.cli, "info", path], capture_output=True, text=True).stdout
    want = [
        "architecture: onellm, name OneLLM",
        f"LLM:         {cfg['llm_layers']} layers, width {cfg['llm_dim']}, {cfg['llm_heads']} heads "
        f"({cfg['llm_heads']} kv), FFN {mc.ffn_hidden(cfg['llm_dim'], cfg['multiple_of'])}, context 2048",
        f"CLIP:        {cfg['clip_layers']} layers, width {cfg['clip_width']}, {cfg['clip_heads']} heads, "
        f"MLP {cfg['clip_mlp']}, patch 14, image 224",
        f"UPM:         {cfg['upm_experts']} experts x {cfg['upm_blocks']} blocks, width {cfg['clip_width']}",
        "modalities:  image (257 tokens x 1), video (257 tokens x 15), audio (1213 tokens x 1), point (1025 "
        "tokens x 1), depth (257 tokens x 2), normal (257 tokens x 2), fmri (9 tokens x 1), imu (392 tokens x 1)",
        f"tokenizer:   \"llama\", {cfg['vocab_size']} tokens, BOS 1, EOS 2",
        "tensors:     237 (f32 121, f16 116)",
    ]
    missing = [w for w in want if w not in info]
    if missing:
        print(f"FAIL: onellm-cli info {path} printed:\n{info}\nwithout:\n" + "\n".join(missing))
    return not missing


def expect_refused(args, work, tokenizer, name, sd, cfg, words):
    folder = os.path.join(work, name)
    mc.write_checkpoint(folder, cfg, state_dict=sd)
    out = os.path.join(work, name + ".gguf")
    r = convert(args, folder, tokenizer, "f16", out)
    if r.returncode == 0 or os.path.exists(out) or any(w not in r.stderr for w in words):
        print(f"FAIL: {name}: exit {r.returncode}, stderr:\n{r.stderr}\nexpected it to name {words}")
        return False
    print(f"ok: {name} refused: {r.stderr.strip().splitlines()[-1]}")
    shutil.rmtree(folder)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checker", required=True)
    ap.add_argument("--converter", required=True)
    ap.add_argument("--cli", required=True, help="onellm-cli, whose info command is checked on one file")
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)

    tokenizer = os.path.join(work, "tokenizer.model")
    make_tokenizer.train_tokenizer(tokenizer, 512)
    cfg = dict(mc.TINY, vocab_size=512)
    single = mc.write_checkpoint(os.path.join(work, "single"), cfg, seed=1)
    shards = mc.write_checkpoint(os.path.join(work, "shards"), cfg, seed=2, shards=10)

    ok = True
    for paths, target, outtypes in ((single, single[0], ("f32", "f16", "bf16")),
                                    (shards, os.path.dirname(shards[0]), ("f32", "f16"))):
        sd = load_state_dict(paths)
        for outtype in outtypes:
            out = os.path.join(work, f"model-{outtype}.gguf")
            r = convert(args, target, tokenizer, outtype, out)
            if r.returncode != 0:
                print(f"FAIL: converting {target} to {outtype}:\n{r.stderr}")
                ok = False
                continue
            mpath = out + ".manifest"
            with open(mpath, "w", encoding="utf-8") as f:
                f.write(manifest(sd, cfg, outtype, tokenizer))
            c = subprocess.run([args.checker, out, mpath], capture_output=True, text=True)
            print(c.stdout.strip(), c.stderr.strip())
            ok = ok and c.returncode == 0
            if outtype == "f16":
                ok &= check_info(args, out, cfg)
            os.remove(out)

    # torch's pre-1.6 serialization is not a zip: the converter falls back to torch.load
    sd = load_state_dict(single)
    legacy = os.path.join(work, "legacy.pth")
    torch.save(sd, legacy, _use_new_zipfile_serialization=False)
    shutil.copy(os.path.join(work, "single", "params.json"), work)
    out = os.path.join(work, "legacy.gguf")
    r = convert(args, legacy, tokenizer, "f16", out)
    if r.returncode != 0 or "torch.load" not in r.stderr:
        print(f"FAIL: converting a legacy-format checkpoint: exit {r.returncode}\n{r.stderr}")
        ok = False
    else:
        with open(out + ".manifest", "w", encoding="utf-8") as f:
            f.write(manifest(sd, cfg, "f16", tokenizer))
        c = subprocess.run([args.checker, out, out + ".manifest"], capture_output=True, text=True)
        print("legacy format:", c.stdout.strip(), c.stderr.strip())
        ok = ok and c.returncode == 0
        os.remove(out)

    missing = dict(sd)
    del missing["llma.layers.1.feed_forward.w3.weight"]
    del missing["llma.end_tag.imu"]
    ok &= expect_refused(args, work, tokenizer, "missing", missing, cfg,
                         ["2 missing", "llma.layers.1.feed_forward.w3.weight", "llma.end_tag.imu"])
    extra = dict(sd)
    extra["llma.extra.weight"] = torch.zeros(4)
    extra["llma.clip.transformer.resblocks.0.ln_1.weight"] = torch.zeros(4)
    ok &= expect_refused(args, work, tokenizer, "unexpected", extra, cfg,
                         ["2 unexpected", "llma.extra.weight", "llma.clip.transformer.resblocks.0.ln_1.weight"])
    wrong = dict(sd)
    wrong["llma.routers.video.fc2.weight"] = torch.zeros(2, 4 * cfg["clip_width"])
    ok &= expect_refused(args, work, tokenizer, "wrong-shape", wrong, cfg,
                         ["wrong shape", "llma.routers.video.fc2.weight"])

    # the unused CLIP text leftovers may be absent
    lean = {k: v for k, v in sd.items() if not k.startswith(("llma.clip.token_embedding", "llma.clip.logit_scale"))}
    folder = os.path.join(work, "lean")
    mc.write_checkpoint(folder, cfg, state_dict=lean)
    r = convert(args, folder, tokenizer, "f16", os.path.join(work, "lean.gguf"))
    if r.returncode != 0 or "llma.clip.logit_scale" not in r.stderr:
        print(f"FAIL: a checkpoint without the unused CLIP text keys: exit {r.returncode}\n{r.stderr}")
        ok = False

    if ok:
        shutil.rmtree(work)
    print("PASS" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
