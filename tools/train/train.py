#!/usr/bin/python3
# Trains the shipped default model: OneLLM's architecture at small widths on synth.py's data, CLIP first, then end to end.
"""Train a small OneLLM on the synthetic data of synth.py (docs/default-model.md).

The model is OneLLM's architecture (spec = shared/docs/onellm-model-spec.md): a CLIP ViT with per-modality
tokenizers and positional embeddings, the universal projection module (3 experts of bidirectional LLaMA blocks,
a sigmoid-normalised router per modality, 30 resample tokens, clip_proj1/2, start/end tags) and a LLaMA decoder
with the LLaMA-2 tokenizer, at small widths. Nothing is pretrained, so every parameter is trained. Modules carry
the official parameter names, so the saved state dict (`llma.` prefix) is an official-format checkpoint that
tools/onellm-convert.py converts unchanged and tests/reference/onellm_ref.py loads.

Prompt and loss follow OneLLM's fine-tuning: the conversation template of spec §6.2 (no space after '###', as
at inference) with the modality's prompt, BOS, the 32-row modality block right after BOS, and the loss only on
the answer tokens and the closing EOS. Half of the batches lay the answer out as the released inference code
does (spec §6.4: the answer rows start 2 positions early and cannot see the last 2 prompt rows), so the model
captions correctly in both of the engine's position modes.

Two stages: with --pretrain-minutes the CLIP ViT first learns the image patterns, audio waves and IMU motions
alone (pretrain_clip), as OneLLM starts from a pretrained CLIP; then everything trains end to end on captions.

    train.py DATA_DIR OUT_DIR --tokenizer tokenizer.model [--pretrain-minutes P] [--minutes M | --steps N] [--seed S]
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np

# Threads that wait for work sleep instead of spinning: on a shared machine spinning burns the CPU time the
# other thread needs (set before torch loads its OpenMP runtime).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS's own thread pool competes with PyTorch's OpenMP one for the two cores: the forward and backward
# passes of one step (all eight modalities) took 5.1 s with both pools at two threads, 2.0 s with OpenBLAS on one.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
sys.path.insert(0, HERE)
import onellm_ref as ref  # noqa: E402
import synth  # noqa: E402

MODALITIES = list(ref.MODALITIES)
HP = dict(clip_width=64, clip_layers=2, clip_heads=2, clip_mlp=256, patch=14,
          experts=3, upm_blocks=2, upm_heads=2, resample_tokens=30,
          llm_dim=128, llm_layers=2, llm_heads=4, multiple_of=256, norm_eps=1e-5, vocab=32000,
          audio_kernel=16, fmri_voxels=15724, fmri_tokens=8, point_groups=1024, imu_kernel=10)
# Samples per batch, and the share of each modality: of the steps, or with --every-modality the weight of its
# loss (the harder visual ones and audio get more)
BATCH = {"image": 8, "video": 4, "audio": 12, "point": 8, "rgbd": 6, "rgbn": 6, "fmri": 8, "imu": 16}
# Tokens per frame kept by token dropout during training (all of them at inference)
# (images and scenes keep all: a small ball or object covers a few patches that dropout would often remove,
# and its shape lies in them; audio keeps a third, the patches that vary first: Transformer.kept_tokens)
KEEP = {"image": None, "video": 128, "audio": 384, "point": 128, "rgbd": None, "rgbn": None, "fmri": None, "imu": 96}
SHARE = {"image": 3, "video": 2, "audio": 4, "point": 3, "rgbd": 3, "rgbn": 3, "fmri": 1, "imu": 2}
# The key attribute of each modality's configurations (synth.py), classified from the UPM's output by an
# auxiliary head during training (Aux); the heads are not part of the model and are not saved.
AUX_CLASSES = {"image": ("pattern", list(synth.IMAGE_PATTERNS)), "video": ("pattern", list(synth.IMAGE_PATTERNS)),
               "audio": ("wave", list(synth.WAVES)), "point": ("shape", synth.SHAPES),
               "rgbd": ("shape", synth.SCENE_SHAPES), "rgbn": ("shape", synth.SCENE_SHAPES),
               "fmri": ("category", synth.FMRI_CATEGORIES), "imu": ("motion", list(synth.IMU_MOTIONS))}
VIDEO_TRAIN_FRAMES = 4          # random frames of the 15 per step; the model averages whatever it gets
OFFICIAL_LAYOUT_SHARE = 0.5


def ffn_hidden(dim, multiple_of):
    hidden = int(2 * (4 * dim) / 3)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def normal(*shape, std=0.02):
    return nn.Parameter(torch.randn(*shape) * std)


# ------------------------------------------------------------------------------------------ modules

class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(dim, dim, bias=False) for _ in range(4))

    def forward(self, x, rope=None, mask=None):
        B, S, D = x.shape
        q, k, v = (w(x).view(B, S, self.heads, D // self.heads) for w in (self.wq, self.wk, self.wv))
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)
        a = attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask)
        return self.wo(a.transpose(1, 2).reshape(B, S, D))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class LlamaBlock(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.attention = Attention(dim, heads)
        self.feed_forward = FeedForward(dim, hidden)
        self.attention_norm = RMSNorm(dim, eps)
        self.ffn_norm = RMSNorm(dim, eps)

    def forward(self, x, rope=None, mask=None):
        x = x + self.attention(self.attention_norm(x), rope, mask)
        return x + self.feed_forward(self.ffn_norm(x))


def attend(q, k, v, mask=None):
    """Softmax attention over [B, H, S, hd] (mask: True where a key is visible)."""
    s = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, -1) @ v


def rotate(x, cos, sin):
    """RoPE on interleaved pairs (Meta's complex layout); x [B, S, H, hd], cos/sin [B or 1, S, hd/2]."""
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    c, s = cos[:, :, None, :], sin[:, :, None, :]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2)


class ClipAttention(nn.Module):
    """nn.MultiheadAttention's parameters (packed q|k|v in_proj), as open_clip stores them."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        nn.init.xavier_uniform_(self.in_proj_weight)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, S, D = x.shape
        q, k, v = (t.view(B, S, self.heads, D // self.heads).transpose(1, 2)
                   for t in F.linear(x, self.in_proj_weight, self.in_proj_bias).split(D, -1))
        return self.out_proj(attend(q, k, v).transpose(1, 2).reshape(B, S, D))


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResBlock(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = ClipAttention(dim, heads)
        self.mlp = nn.Sequential()
        self.mlp.add_module("c_fc", nn.Linear(dim, mlp))
        self.mlp.add_module("gelu", QuickGELU())
        self.mlp.add_module("c_proj", nn.Linear(mlp, dim))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Visual(nn.Module):
    def __init__(self, hp):
        super().__init__()
        W, grid = hp["clip_width"], ref.IMAGE_SIZE // hp["patch"]
        self.conv1 = nn.Conv2d(3, W, hp["patch"], hp["patch"], bias=False)
        self.class_embedding = normal(W, std=W ** -0.5)
        self.positional_embedding = normal(grid * grid + 1, W, std=W ** -0.5)
        self.ln_pre, self.ln_post = nn.LayerNorm(W), nn.LayerNorm(W)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList(ResBlock(W, hp["clip_heads"], hp["clip_mlp"])
                                                   for _ in range(hp["clip_layers"]))


class PointPatchEmbed(nn.Module):
    def __init__(self, W):
        super().__init__()
        self.conv1 = nn.Conv2d(6, W, 1)

    def forward(self, x, knn):
        grouped = torch.stack([xb[kb] for xb, kb in zip(x, knn)])          # [B, groups, 32, 6]
        return F.linear(grouped, self.conv1.weight.flatten(1), self.conv1.bias).max(dim=2).values


class Router(nn.Module):
    def __init__(self, dim, hidden, experts):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, experts)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(F.gelu(self.fc1(x))))
        return s / s.sum(-1, keepdim=True)


def proj(din, dout):
    return nn.Sequential(nn.Linear(din, dout), nn.LayerNorm(dout))


class Transformer(nn.Module):
    """OneLLM's `Transformer` (model/LLM/onellm.py) with its parameter names."""

    def __init__(self, hp):
        super().__init__()
        W, D, V = hp["clip_width"], hp["llm_dim"], hp["vocab"]
        self.hp = hp
        self.tok_embeddings = nn.Embedding(V, D)
        self.layers = nn.ModuleList(LlamaBlock(D, hp["llm_heads"], ffn_hidden(D, hp["multiple_of"]), hp["norm_eps"])
                                    for _ in range(hp["llm_layers"]))
        self.norm = RMSNorm(D, hp["norm_eps"])
        self.output = nn.Linear(D, V, bias=False)
        self.clip = nn.Module()
        self.clip.visual = Visual(hp)
        upm_hidden = ffn_hidden(W, hp["multiple_of"])
        self.resample_layers = nn.ModuleList(
            nn.ModuleList(LlamaBlock(W, hp["upm_heads"], upm_hidden, hp["norm_eps"]) for _ in range(hp["upm_blocks"]))
            for _ in range(hp["experts"]))
        k = hp["audio_kernel"]
        self.conv1 = nn.ModuleDict({
            "audio": nn.Conv2d(1, W, k, ref.AUDIO_STRIDE),
            "point": PointPatchEmbed(W),
            "fmri": nn.Linear(hp["fmri_voxels"], hp["fmri_tokens"] * W),
            "imu": nn.Conv1d(6, W, hp["imu_kernel"], bias=False)})
        n_audio = (((128 - k) // ref.AUDIO_STRIDE + 1) * ((1024 - k) // ref.AUDIO_STRIDE + 1))
        self.positional_embedding = nn.ParameterDict({
            "audio": normal(n_audio + 1, W), "point": normal(hp["point_groups"] + 1, W),
            "imu": normal(400 - hp["imu_kernel"] + 2, W), "fmri": normal(hp["fmri_tokens"] + 1, W)})
        N = hp["resample_tokens"]
        self.resample_tokens = nn.ParameterDict({m: normal(1, N, W) for m in MODALITIES})
        self.routers = nn.ModuleDict({m: Router(W, 4 * W, hp["experts"]) for m in MODALITIES})
        self.clip_proj1 = nn.ModuleDict({m: proj(W, W) for m in MODALITIES})
        self.clip_proj2 = nn.ModuleDict({m: proj(W, D) for m in MODALITIES})
        self.start_tag = nn.ParameterDict({m: normal(1, 1, D) for m in MODALITIES})
        self.end_tag = nn.ParameterDict({m: normal(1, 1, D) for m in MODALITIES})
        nn.init.normal_(self.tok_embeddings.weight, std=0.02)
        head_dim = D // hp["llm_heads"]
        cos, sin = ref.rope_table(head_dim, 512, ref.DEFAULT_ROPE_THETA)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    # ----- encoder: model input batch -> [B, 32, D] modality block

    def tokens(self, m, x, knn=None):
        """[B, T, L, W] tokens before the class token (T frames for the image-like modalities, else 1)."""
        W = self.hp["clip_width"]
        if m in ref.IMAGE_LIKE:
            B, T = x.shape[:2]
            y = self.clip.visual.conv1(x.flatten(0, 1))
            return y.flatten(2).transpose(1, 2).view(B, T, -1, W)
        if m == "audio":
            return self.conv1.audio(x).flatten(2).transpose(1, 2)[:, None]
        if m == "imu":
            return self.conv1.imu(x).transpose(1, 2)[:, None]
        if m == "fmri":
            y = self.conv1.fmri(x.flatten(1))
            return y.view(-1, W, self.hp["fmri_tokens"]).transpose(1, 2)[:, None]
        return self.conv1.point(x, knn)[:, None]

    def kept_tokens(self, m, x, B, L, keep):
        """[B, keep] ascending indices of the tokens a sample keeps under token dropout. Audio keeps the
        patches that vary (a tone, a tick) four times as often as flat ones (padding, digital silence): a
        clip's ticks cover a few dozen of its 1212 patches, and dropped at random they often left a "ticks"
        clip looking like silence."""
        w = torch.ones(B, L)
        if m == "audio":
            var = F.unfold(x, self.hp["audio_kernel"], stride=ref.AUDIO_STRIDE).var(1)
            w = 1 + 3 * (var > 1e-4).float()
        return torch.multinomial(w, keep).sort(1).values

    def clip_features(self, m, x, knn=None, keep=None):
        """The CLIP ViT's output [B, L + 1, W], averaged over frames. keep: train on this many random tokens per
        frame (with their positional embeddings) instead of all of them (token dropout as in FLIP); inference
        always uses all."""
        v = self.clip.visual
        t = self.tokens(m, x, knn)
        pos = v.positional_embedding if m in ref.IMAGE_LIKE else self.positional_embedding[m]
        B, T, L, W = t.shape
        if keep is not None and keep < L:
            idx = self.kept_tokens(m, x, B, L, keep)
            t = t.gather(2, idx[:, None, :, None].expand(-1, T, -1, W))
            pos = torch.cat((pos[:1].expand(B, 1, W), pos[1 + idx]), 1).repeat_interleave(T, 0)
            L = keep
        t = t.flatten(0, 1)
        h = torch.cat((v.class_embedding.expand(B * T, 1, W), t), 1) + pos
        h = v.ln_pre(h)
        for blk in v.transformer.resblocks:
            h = blk(h)
        return v.ln_post(h).view(B, T, L + 1, W).mean(1)

    def encode(self, m, x, knn=None, keep=None):
        """The modality block [B, 32, D] and the UPM's output averaged over its tokens [B, W]."""
        h = self.clip_features(m, x, knn, keep)
        B = h.shape[0]
        h = torch.cat((self.resample_tokens[m].expand(B, -1, -1), self.clip_proj1[m](h)), 1)
        N = self.hp["resample_tokens"]
        w = self.routers[m](self.resample_tokens[m][0])                      # [N, experts]
        mixed = 0
        for e, expert in enumerate(self.resample_layers):
            y = h
            for blk in expert:
                y = blk(y)
            mixed = mixed + y[:, :N] * w[:, e:e + 1]
        up = self.clip_proj2[m](mixed)
        D = up.shape[-1]
        return torch.cat((self.start_tag[m].expand(B, 1, D), up, self.end_tag[m].expand(B, 1, D)), 1), mixed.mean(1)

    # ----- decoder with the answer laid out as in either position mode

    def forward(self, m, x, prompt, answers, official, knn=None, keep=None):
        """Mean cross-entropy of the answer tokens, and the UPM's output averaged over its tokens [B, W].
        prompt: ids with BOS; answers: list of id lists (each ending with EOS). official: lay out the answer
        rows as the released inference code's KV cache does."""
        block, pooled = self.encode(m, x, knn, keep)
        B = block.shape[0]
        A = max(len(a) for a in answers)
        ids = torch.tensor([a + [0] * (A - len(a)) for a in answers])
        emb_p = self.tok_embeddings(torch.tensor(prompt))
        h = torch.cat((emb_p[:1].expand(B, 1, -1), block, emb_p[1:].expand(B, -1, -1),
                       self.tok_embeddings(ids[:, :-1])), 1)
        P = len(prompt) + block.shape[1]                                    # prompt rows
        S = h.shape[1]
        pos = torch.arange(S)
        mask = torch.ones(S, S, dtype=torch.bool).tril()
        if official:
            pos = torch.where(pos >= P, pos - 2, pos)
            mask[P:, P - 2:P] = False
        rope = (self.rope_cos[pos][None], self.rope_sin[pos][None])
        for layer in self.layers:
            h = layer(h, rope, mask)
        out = self.output(self.norm(h[:, P - 1:]))                          # rows predicting the answer
        labels = torch.tensor([a + [-100] * (A - len(a)) for a in answers])
        return F.cross_entropy(out.flatten(0, 1), labels.flatten(), ignore_index=-100), pooled


class MetaModel(nn.Module):
    def __init__(self, hp):
        super().__init__()
        self.llma = Transformer(hp)


def key_labels(m, cfgs):
    """Class indices of the configurations' key attribute (AUX_CLASSES)."""
    key, classes = AUX_CLASSES[m]
    return torch.tensor([classes.index(c[key]) for c in cfgs])


class Aux(nn.Module):
    """Training-only heads that classify each modality's key attribute from pooled features: the UPM's output in
    stage 2, the CLIP's in stage 1 (pretrain_clip). The caption loss reaches the encoder through the whole LLM
    and rests on one or two answer tokens; this loss gives the encoder and the UPM the same evidence directly."""

    def __init__(self, hp):
        super().__init__()
        self.heads = nn.ModuleDict({m: nn.Linear(hp["clip_width"], len(AUX_CLASSES[m][1])) for m in MODALITIES})

    def forward(self, m, pooled, cfgs):
        return F.cross_entropy(self.heads[m](pooled), key_labels(m, cfgs))


# ------------------------------------------------------------------------------------------ data

def random_rotations(n, gen):
    """n uniformly distributed 3-D rotation matrices (QR of Gaussian matrices with the sign fixed)."""
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=gen))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    return q * torch.sign(torch.det(q))[:, None, None]


class Data:
    """The .npz files of synth.py, turned into normalised model-input batches."""

    def __init__(self, folder, sp, seed=0):
        self.gen = torch.Generator().manual_seed(seed)
        self.sp = sp
        self.answers = {}
        self.sets = {}
        for m in MODALITIES:
            d = np.load(os.path.join(folder, f"{m}.npz"))
            self.sets[m] = {k: d[k] for k in d.files}
            self.sets[m]["answers"] = [self.answer(c) for c in d["captions"]]
            self.sets[m]["configs"] = [json.loads(c) for c in d["configs"]]
        self.prompts = {m: ref.prompt_ids(sp, synth.PROMPTS[m]) for m in MODALITIES}

    def answer(self, caption):
        """Token ids of a caption and EOS (kept: recoloured batches ask for the same few hundred again)."""
        if caption not in self.answers:
            self.answers[caption] = list(self.sp.encode(caption)) + [ref.EOS_ID]
        return self.answers[caption]

    def batch(self, m, rng, n=None):
        """n samples (BATCH[m] by default) drawn at random, with their model input, answers and configurations."""
        s = self.sets[m]
        idx = rng.choice(len(s["answers"]), min(n or BATCH[m], len(s["answers"])), replace=False)
        answers = [s["answers"][i] for i in idx]
        if m in synth.RECOLOURED:
            cfgs = [synth.training_colours(m, s["configs"][i], rng) for i in idx]
            answers = [self.answer(synth.caption(m, c)) for c in cfgs]
        else:
            cfgs = [s["configs"][i] for i in idx]
        x = s["x"][idx]
        knn = None
        if m in ("image", "video", "rgbd", "rgbn"):
            if m == "image":
                x = x[:, None]
            if m == "video":
                x = np.stack([v[rng.choice(15, VIDEO_TRAIN_FRAMES, replace=False)] for v in x])
            x = x.astype(np.float32) / 255
            x = np.stack([synth.recolour(m, xb, s["configs"][i], c, s["mask"][i] if "mask" in s else None)
                          for xb, i, c in zip(x, idx, cfgs)])
            x = torch.from_numpy(x).permute(0, 1, 4, 2, 3)
            x = (x - torch.from_numpy(ref_mean)[:, None, None]) / torch.from_numpy(ref_std)[:, None, None]
        else:
            x = x.astype(np.float32)
            if m == "point":
                x = np.stack([synth.recolour(m, xb, s["configs"][i], c) for xb, i, c in zip(x, idx, cfgs)])
                knn = torch.from_numpy(s["knn"][idx].astype(np.int64))
            x = torch.from_numpy(x)
            if m == "imu":
                # The device held in any orientation: the accelerometer and gyroscope triples turn together,
                # so the motion, not the direction of gravity, has to decide the caption.
                r = random_rotations(x.shape[0], self.gen)
                x = torch.cat((r @ x[:, :3], r @ x[:, 3:]), 1)
        return x, knn, answers, cfgs


ref_mean = synth.pre.CLIP_MEAN
ref_std = synth.pre.CLIP_STD


# --------------------------------------------------------------------------------- schedule, stage 1

def scheduled(lr, step, warmup, progress):
    """Learning rate at a step: linear warm-up, then cosine decay to 5 % as progress (0..1) runs."""
    return lr * min(1.0, (step + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


# Stage 1 batches (videos of 4 random frames; tokens kept as in stage 2, KEEP)
PRETRAIN_BATCH = {"image": 32, "video": 8, "audio": 16, "imu": 8}


def pretrain_clip(model, data, rng, minutes, lr, warmup):
    """Stage 1: the CLIP ViT and the modalities' tokenizers learn the key attribute (AUX_CLASSES) of the modalities
    of PRETRAIN_BATCH on their own, a linear head per modality on the mean of the CLIP's output tokens (the heads
    are dropped afterwards). OneLLM starts from a pretrained CLIP; trained end to end from scratch, this one
    named the two-colour patterns of a third of its own training images, the caption loss reaching it through
    the whole LLM and the aux loss through the UPM. Alone it tells them apart in minutes (docs/default-model.md);
    audio and IMU, which share the CLIP, learn beside the images so that it does not become an image model only."""
    head = Aux(HP)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    budget, start, step, losses = minutes * 60, time.time(), 0, []
    while time.time() - start < budget:
        progress = (time.time() - start) / budget
        for g in opt.param_groups:
            g["lr"] = scheduled(lr, step, warmup, progress)
        opt.zero_grad(set_to_none=True)
        loss, n = 0, 0
        for m, size in PRETRAIN_BATCH.items():
            x, _, _, cfgs = data.batch(m, rng, size)
            features = model.llma.clip_features(m, x, None, KEEP[m]).mean(1)
            loss = loss + head(m, features, cfgs) * len(cfgs)
            n += len(cfgs)
        (loss / n).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item() / n)
        step += 1
        if step % 100 == 0:
            print(f"stage 1 step {step} {(time.time() - start) / 60:.1f} min loss={np.mean(losses[-50:]):.3f}",
                  flush=True)
    print(f"stage 1: {step} steps in {(time.time() - start) / 60:.1f} min", flush=True)


# ------------------------------------------------------------------------------------------ main

def params_json(hp):
    """params.json as the release has it (config/llama2/7B.json), plus this project's head-count keys."""
    return {"dim": hp["llm_dim"], "multiple_of": hp["multiple_of"], "n_heads": hp["llm_heads"],
            "n_layers": hp["llm_layers"], "norm_eps": hp["norm_eps"], "vocab_size": -1,
            "clip_n_heads": hp["clip_heads"], "upm_n_heads": hp["upm_heads"]}


def save(model, out):
    os.makedirs(out, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(out, "consolidated.00-of-01.pth"))
    with open(os.path.join(out, "params.json"), "w") as f:
        json.dump(params_json(HP), f)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--tokenizer", required=True, help="the LLaMA-2 tokenizer.model (32000 pieces)")
    ap.add_argument("--minutes", type=float, default=25.0, help="training time budget (wall clock)")
    ap.add_argument("--steps", type=int, default=0, help="fixed number of steps instead of a time budget")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=100, help="linear warm-up steps")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--aux-weight", type=float, default=1.0,
                    help="weight of the auxiliary key-attribute loss (Aux) beside each caption loss; 0: none")
    ap.add_argument("--pretrain-minutes", type=float, default=0.0,
                    help="stage 1: train the CLIP ViT alone on the key attributes this long first (pretrain_clip)")
    ap.add_argument("--every-modality", action="store_true",
                    help="one batch of every modality in each step, the losses weighted by SHARE (instead of "
                    "one modality per step drawn with those weights)")
    args = ap.parse_args(argv)

    import sentencepiece
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    sp = sentencepiece.SentencePieceProcessor(model_file=args.tokenizer)
    data = Data(args.data, sp, args.seed)
    model = MetaModel(HP)
    aux = Aux(HP)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params / 1e6:.2f} M parameters", flush=True)
    if args.pretrain_minutes:
        pretrain_clip(model, data, rng, args.pretrain_minutes, args.lr, warmup=args.warmup)
    named = list(model.named_parameters()) + list(aux.named_parameters())
    decay = [p for n, p in named if p.dim() >= 2 and "embedding" not in n]
    other = [p for n, p in named if not (p.dim() >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    order = list(SHARE)
    weights = np.array([SHARE[m] for m in order]) / sum(SHARE.values())
    budget = args.minutes * 60
    start = time.time()
    step, losses, aux_losses = 0, {m: [] for m in MODALITIES}, []
    warmup = args.warmup
    while True:
        elapsed = time.time() - start
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1:
            break
        lr = scheduled(args.lr, step, warmup, progress)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        drawn = order if args.every_modality else [order[rng.choice(len(order), p=weights)]]
        for m in drawn:
            x, knn, answers, cfgs = data.batch(m, rng)
            loss, pooled = model.llma(m, x, data.prompts[m], answers, rng.uniform() < OFFICIAL_LAYOUT_SHARE, knn,
                                      KEEP[m])
            total = loss
            if args.aux_weight:
                aux_loss = aux(m, pooled, cfgs)
                aux_losses.append(aux_loss.item())
                total = loss + args.aux_weight * aux_loss
            (total * (weights[order.index(m)] if args.every_modality else 1.0)).backward()
            losses[m].append(loss.item())
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(aux.parameters()), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            summary = " ".join(f"{k}={np.mean(v[-10:]):.3f}" for k, v in losses.items() if v)
            if aux_losses:
                summary += f" aux={np.mean(aux_losses[-10 * len(drawn):]):.3f}"
            print(f"step {step} {elapsed / 60:.1f} min lr {lr:.2e} {summary}", flush=True)
        if step % 500 == 0:
            save(model, args.out)
    save(model, args.out)
    print(f"trained {step} steps in {(time.time() - start) / 60:.1f} min; wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
