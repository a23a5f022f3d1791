# Independent PyTorch reference of OneLLM inference, written from shared/docs/onellm-model-spec.md.
"""Plain-torch reference of the released OneLLM model (spec = shared/docs/onellm-model-spec.md).

Reads top to bottom in the order data flows: checkpoint loading and hyperparameters (spec §8)
  -> numerics (§7) -> per-modality tokenizers (§2.1, §2.6) -> CLIP ViT (§3) -> UPM (§4)
  -> LLaMA with KV cache, splicing, greedy generation (§5, §6) -> prompt (§6.2).

One sample at a time (no batch dimension). Two precisions:
  fp32 (default): weights and every operation in float32.
  fp16: emulates the official inference (fp16 weights under CUDA fp16 autocast, spec §7) on the CPU by
        rounding to float16 exactly where the reference produces float16 tensors; each operation itself is
        computed in float32, as CUDA does for half tensors. See README.md for what is approximate.
"""

import glob
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

MODALITIES = ("image", "video", "audio", "point", "rgbd", "rgbn", "fmri", "imu")
IMAGE_LIKE = ("image", "video", "rgbd", "rgbn")     # CLIP's conv1 and positional embedding (§2.1)
BOS_ID, EOS_ID = 1, 2
KEY_PREFIX = "llma."                                # MetaModel stores the Transformer as self.llma (§8)

# Model-input shapes of one sample (spec §2.1); the positional embeddings must fit them.
IMAGE_SIZE = 224                                    # the only size the model supports (§2.2)
AUDIO_INPUT = (1, 128, 1024)                        # mel bins x frames (§2.5)
POINT_COUNT = 8192                                  # points per cloud (§2.6); other counts are accepted
IMU_INPUT = (6, 400)                                # 2 s at 200 Hz (§2.7)

# Constants of the released code that the weights' shapes do not reveal.
AUDIO_STRIDE = 10                                   # Conv2d k16 s10 (§2.5)
POINT_GROUP_SIZE = 32                               # kNN neighbours per FPS centre (§2.6)
POINT_SAMPLE_CHANNELS = slice(3, 6)                 # FPS and kNN run on the RGB channels (§2.6 quirk)
FPS_MAX_THREADS = 1024                              # TOTAL_THREADS of the pointnet2 CUDA kernel
FPS_INITIAL_DISTANCE = 1e10
DEFAULT_MAX_SEQ_LEN = 2048                          # MetaModel's max_seq_len; RoPE table has twice that
DEFAULT_ROPE_THETA = 10000.0
HEAD_DIM_RULE = 64                                  # CLIP and UPM heads = width / 64 (see Config)
UNUSED_KEYS = ("clip.visual.proj", "clip.token_embedding.weight", "clip.positional_embedding",
               "clip.ln_final.weight", "clip.ln_final.bias", "clip.text_projection", "clip.logit_scale")


# ---------------------------------------------------------------------------------------------------------
# Checkpoint loading and hyperparameters (spec §8)
# ---------------------------------------------------------------------------------------------------------

def load_checkpoint(path: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Load an official checkpoint: `consolidated.00-of-01.pth`, or a folder holding it or its 10 shards
    `consolidated.00-of-01.s{0..9}.pth`; `params.json` beside it is read when present."""
    if os.path.isdir(path):
        folder = path
        single = os.path.join(path, "consolidated.00-of-01.pth")
        files = [single] if os.path.exists(single) else sorted(
            glob.glob(os.path.join(path, "consolidated.00-of-01.s*.pth")),
            key=lambda f: int(re.search(r"\.s(\d+)\.pth$", f).group(1)))
        if not files:
            raise FileNotFoundError(f"{path}: no consolidated.00-of-01.pth or consolidated.00-of-01.s*.pth")
    else:
        folder, files = os.path.dirname(path) or ".", [path]
    state: Dict[str, torch.Tensor] = {}
    for f in files:
        shard = torch.load(f, map_location="cpu")
        duplicated = state.keys() & shard.keys()
        if duplicated:
            raise ValueError(f"{f}: keys already loaded from another shard: {sorted(duplicated)[:5]}")
        state.update(shard)
    params_path = os.path.join(folder, "params.json")
    params = {}
    if os.path.exists(params_path):
        with open(params_path) as fp:
            params = json.load(fp)
    return state, params


@dataclass
class Config:
    """Every hyperparameter, inferred from tensor shapes and params.json (never assumed from the 7B model).

    Heads are not visible in the shapes. LLM: params.json `n_heads` (and `n_kv_heads`, default n_heads;
    without params.json dim/128, LLaMA-2's head size). CLIP: width/64 (open_clip's rule for the OpenAI
    weights). UPM: width/64 too; the released code hard-codes 16 heads, which is the same at width 1024.
    Checkpoints that break the 64-wide-head rule say so in params.json with `clip_n_heads` / `upm_n_heads`
    (extension keys of this project; absent from the official params.json).
    """
    clip_width: int
    clip_layers: int
    clip_heads: int
    clip_patch: int
    upm_dim: int
    upm_experts: int
    upm_layers: int
    upm_heads: int
    clip_mlp: int
    modality_tokens: int            # resample tokens per modality (30); the LLM block has 2 more (tags)
    router_hidden: int
    llm_dim: int
    llm_layers: int
    llm_heads: int
    llm_kv_heads: int
    llm_hidden: int
    upm_hidden: int
    vocab_size: int
    norm_eps: float
    rope_theta: float
    max_seq_len: int
    audio_kernel: Tuple[int, int]
    imu_kernel: int
    fmri_inputs: int
    fmri_tokens: int
    point_groups: int

    def token_count(self, modality: str) -> int:
        """CLIP sequence length of a modality without the class token (spec §2.1 table)."""
        if modality in IMAGE_LIKE:
            return (IMAGE_SIZE // self.clip_patch) ** 2
        if modality == "audio":
            return (((AUDIO_INPUT[1] - self.audio_kernel[0]) // AUDIO_STRIDE + 1)
                    * ((AUDIO_INPUT[2] - self.audio_kernel[1]) // AUDIO_STRIDE + 1))
        if modality == "point":
            return self.point_groups
        if modality == "imu":
            return IMU_INPUT[1] - self.imu_kernel + 1
        if modality == "fmri":
            return self.fmri_tokens
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")


def _count(state: Dict[str, torch.Tensor], pattern: str) -> int:
    """Number of distinct integers matched by the single group of `pattern` among the key names."""
    found = {int(m.group(1)) for k in state for m in [re.fullmatch(pattern, k)] if m}
    if found != set(range(len(found))):
        raise ValueError(f"checkpoint: indices of {pattern} are not 0..n-1: {sorted(found)}")
    return len(found)


def infer_config(state: Dict[str, torch.Tensor], params: dict,
                 max_seq_len: int = DEFAULT_MAX_SEQ_LEN) -> Config:
    """Hyperparameters from the shapes of the tensors and from params.json (see Config for the heads)."""
    def shape(name):
        if KEY_PREFIX + name not in state:
            raise KeyError(f"checkpoint: missing {KEY_PREFIX + name}")
        return tuple(state[KEY_PREFIX + name].shape)

    clip_width, _, clip_patch, _ = shape("clip.visual.conv1.weight")
    upm_dim = shape("resample_layers.0.0.attention.wq.weight")[0]
    vocab_size, llm_dim = shape("tok_embeddings.weight")
    prefix = re.escape(KEY_PREFIX)
    llm_layers = _count(state, prefix + r"layers\.(\d+)\.attention_norm\.weight")
    if "n_layers" in params and params["n_layers"] != llm_layers:
        raise ValueError(f"params.json n_layers {params['n_layers']} but the checkpoint has {llm_layers}")
    if "dim" in params and params["dim"] != llm_dim:
        raise ValueError(f"params.json dim {params['dim']} but tok_embeddings has width {llm_dim}")
    llm_heads = params.get("n_heads", llm_dim // 128)
    llm_kv_heads = params.get("n_kv_heads") or llm_heads
    cfg = Config(
        clip_width=clip_width,
        clip_layers=_count(state, prefix + r"clip\.visual\.transformer\.resblocks\.(\d+)\.ln_1\.weight"),
        clip_heads=params.get("clip_n_heads", clip_width // HEAD_DIM_RULE),
        clip_patch=clip_patch,
        clip_mlp=shape("clip.visual.transformer.resblocks.0.mlp.c_fc.weight")[0],
        upm_dim=upm_dim,
        upm_experts=_count(state, prefix + r"resample_layers\.(\d+)\.0\.attention_norm\.weight"),
        upm_layers=_count(state, prefix + r"resample_layers\.0\.(\d+)\.attention_norm\.weight"),
        upm_heads=params.get("upm_n_heads", upm_dim // HEAD_DIM_RULE),
        modality_tokens=shape("resample_tokens.image")[1],
        router_hidden=shape("routers.image.fc1.weight")[0],
        llm_dim=llm_dim,
        llm_layers=llm_layers,
        llm_heads=llm_heads,
        llm_kv_heads=llm_kv_heads,
        llm_hidden=shape("layers.0.feed_forward.w1.weight")[0],
        upm_hidden=shape("resample_layers.0.0.feed_forward.w1.weight")[0],
        vocab_size=vocab_size,
        norm_eps=params.get("norm_eps", 1e-5),
        rope_theta=params.get("rope_theta", DEFAULT_ROPE_THETA),
        max_seq_len=max_seq_len,
        audio_kernel=shape("conv1.audio.weight")[2:],
        imu_kernel=shape("conv1.imu.weight")[2],
        fmri_inputs=shape("conv1.fmri.weight")[1],
        fmri_tokens=shape("conv1.fmri.weight")[0] // clip_width,
        point_groups=shape("positional_embedding.point")[0] - 1,
    )
    for name, width, heads in [("CLIP", cfg.clip_width, cfg.clip_heads), ("UPM", cfg.upm_dim, cfg.upm_heads),
                               ("LLM", cfg.llm_dim, cfg.llm_heads)]:
        if heads < 1 or width % heads:
            raise ValueError(f"{name}: width {width} is not divisible into {heads} heads")
    if cfg.llm_heads % cfg.llm_kv_heads:
        raise ValueError(f"LLM: {cfg.llm_heads} heads are not a multiple of {cfg.llm_kv_heads} KV heads")
    return cfg


def expected_shapes(cfg: Config) -> Dict[str, Tuple[int, ...]]:
    """Names (without `llma.`) and shapes of every tensor the model uses (spec §8 table)."""
    D, U, L = cfg.clip_width, cfg.upm_dim, cfg.llm_dim
    kv = cfg.llm_kv_heads * (L // cfg.llm_heads)
    e: Dict[str, Tuple[int, ...]] = {"tok_embeddings.weight": (cfg.vocab_size, L), "norm.weight": (L,),
                                     "output.weight": (cfg.vocab_size, L)}

    def llama_block(prefix, dim, kv_dim, hidden):
        e.update({prefix + "attention.wq.weight": (dim, dim), prefix + "attention.wk.weight": (kv_dim, dim),
                  prefix + "attention.wv.weight": (kv_dim, dim), prefix + "attention.wo.weight": (dim, dim),
                  prefix + "feed_forward.w1.weight": (hidden, dim),
                  prefix + "feed_forward.w3.weight": (hidden, dim),
                  prefix + "feed_forward.w2.weight": (dim, hidden),
                  prefix + "attention_norm.weight": (dim,), prefix + "ffn_norm.weight": (dim,)})

    for i in range(cfg.llm_layers):
        llama_block(f"layers.{i}.", L, kv, cfg.llm_hidden)
    for x in range(cfg.upm_experts):
        for i in range(cfg.upm_layers):
            llama_block(f"resample_layers.{x}.{i}.", U, U, cfg.upm_hidden)
    c = "clip.visual."
    e.update({c + "conv1.weight": (D, 3, cfg.clip_patch, cfg.clip_patch), c + "class_embedding": (D,),
              c + "positional_embedding": (cfg.token_count("image") + 1, D)})
    for n in ("ln_pre", "ln_post"):
        e.update({c + n + ".weight": (D,), c + n + ".bias": (D,)})
    mlp = cfg.clip_mlp
    for i in range(cfg.clip_layers):
        r = f"{c}transformer.resblocks.{i}."
        e.update({r + "attn.in_proj_weight": (3 * D, D), r + "attn.in_proj_bias": (3 * D,),
                  r + "attn.out_proj.weight": (D, D), r + "attn.out_proj.bias": (D,),
                  r + "ln_1.weight": (D,), r + "ln_1.bias": (D,),
                  r + "ln_2.weight": (D,), r + "ln_2.bias": (D,),
                  r + "mlp.c_fc.weight": (mlp, D), r + "mlp.c_fc.bias": (mlp,),
                  r + "mlp.c_proj.weight": (D, mlp), r + "mlp.c_proj.bias": (D,)})
    e.update({"conv1.audio.weight": (D, 1) + tuple(cfg.audio_kernel), "conv1.audio.bias": (D,),
              "conv1.point.conv1.weight": (D, 6, 1, 1), "conv1.point.conv1.bias": (D,),
              "conv1.fmri.weight": (cfg.fmri_tokens * D, cfg.fmri_inputs),
              "conv1.fmri.bias": (cfg.fmri_tokens * D,),
              "conv1.imu.weight": (D, IMU_INPUT[0], cfg.imu_kernel)})
    for m in ("audio", "point", "imu", "fmri"):
        e["positional_embedding." + m] = (cfg.token_count(m) + 1, D)
    router_hidden = cfg.router_hidden
    for m in MODALITIES:
        e.update({f"resample_tokens.{m}": (1, cfg.modality_tokens, U),
                  f"routers.{m}.fc1.weight": (router_hidden, U), f"routers.{m}.fc1.bias": (router_hidden,),
                  f"routers.{m}.fc2.weight": (cfg.upm_experts, router_hidden),
                  f"routers.{m}.fc2.bias": (cfg.upm_experts,),
                  f"clip_proj1.{m}.0.weight": (U, D), f"clip_proj1.{m}.0.bias": (U,),
                  f"clip_proj1.{m}.1.weight": (U,), f"clip_proj1.{m}.1.bias": (U,),
                  f"clip_proj2.{m}.0.weight": (L, U), f"clip_proj2.{m}.0.bias": (L,),
                  f"clip_proj2.{m}.1.weight": (L,), f"clip_proj2.{m}.1.bias": (L,),
                  f"start_tag.{m}": (1, 1, L), f"end_tag.{m}": (1, 1, L)})
    return e


def check_keys(state: Dict[str, torch.Tensor], expected: Dict[str, Tuple[int, ...]]) -> None:
    """Strict check: every used tensor present with its shape; nothing unknown. The unused CLIP leftovers
    (text tower, visual.proj) may be present or absent."""
    names = {k[len(KEY_PREFIX):]: k for k in state if k.startswith(KEY_PREFIX)}
    missing = sorted(k for k in expected if k not in names)
    unexpected = sorted([k for k in state if not k.startswith(KEY_PREFIX)]
                        + [names[k] for k in names if k not in expected and k not in UNUSED_KEYS])
    wrong = sorted(f"{KEY_PREFIX}{k} {tuple(state[names[k]].shape)} != {s}" for k, s in expected.items()
                   if k in names and tuple(state[names[k]].shape) != s)
    if missing or unexpected or wrong:
        raise ValueError("checkpoint does not match the OneLLM layout:"
                         + (f"\n  missing: {[KEY_PREFIX + k for k in missing]}" if missing else "")
                         + (f"\n  unexpected: {unexpected}" if unexpected else "")
                         + (f"\n  wrong shape: {wrong}" if wrong else ""))


# ---------------------------------------------------------------------------------------------------------
# Numerics (spec §7)
# ---------------------------------------------------------------------------------------------------------

class Precision:
    """Where the official fp16 inference rounds. `low` is the dtype of the weights and of every autocast
    matmul/conv output: float16 in fp16 mode, float32 otherwise (then all casts below are no-ops).
    Operations always compute in float32 (CUDA's op math for half tensors) and round their result."""

    def __init__(self, fp16: bool = False):
        self.fp16 = fp16
        self.low = torch.float16 if fp16 else torch.float32

    def linear(self, x, w, b=None):
        return F.linear(x.float(), w.float(), None if b is None else b.float()).to(self.low)

    def conv(self, fn, x, w, b=None, **kw):
        return fn(x.float(), w.float(), None if b is None else b.float(), **kw).to(self.low)

    @staticmethod
    def pointwise(fn, x):
        """An elementwise op that keeps its input's dtype (GELU, SiLU, sigmoid under autocast)."""
        return fn(x.float()).to(x.dtype)

    @staticmethod
    def layer_norm(x, w, b, eps, out_dtype):
        """LayerNorm runs in float32 under autocast; open_clip's LayerNorm casts back to the input dtype
        (out_dtype=x.dtype), a plain nn.LayerNorm (clip_proj1/2) returns float32."""
        return F.layer_norm(x.float(), (x.shape[-1],), w.float(), b.float(), eps).to(out_dtype)

    @staticmethod
    def rms_norm(x, w, eps):
        """components.py RMSNorm: normalise in float32, cast to the input dtype, then times the weight with
        ordinary type promotion (fp32 stream x fp16 weight -> fp32; fp16 x fp16 -> fp16)."""
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype) * w

    def attention(self, q, k, v, first_query_row: Optional[int] = None):
        """Softmax attention over [..., S, heads, head_dim]. first_query_row=None: bidirectional; otherwise
        query i sits at key row first_query_row+i and sees rows 0..first_query_row+i (causal with a cache).
        Scores and softmax in float32; fp16 mode rounds the probabilities before P·V (flash-attn's
        fp16 P; its online-softmax rescaling is not emulated) and the output."""
        heads, kv_heads = q.shape[-2], k.shape[-2]
        if heads != kv_heads:
            k = k.repeat_interleave(heads // kv_heads, dim=-2)
            v = v.repeat_interleave(heads // kv_heads, dim=-2)
        s = torch.einsum("...qhd,...khd->...hqk", q.float(), k.float()) * q.shape[-1] ** -0.5
        if first_query_row is not None:
            rows = torch.arange(k.shape[-3])
            last_visible = first_query_row + torch.arange(q.shape[-3])
            s = s.masked_fill(rows[None, :] > last_visible[:, None], float("-inf"))
        p = torch.softmax(s, dim=-1)
        if self.fp16:
            p = p.half().float()
        return torch.einsum("...hqk,...khd->...qhd", p, v.float()).to(self.low)


def quick_gelu(x):
    """open_clip QuickGELU x·sigmoid(1.702x); three ops, each rounded to x's dtype."""
    t = (x.float() * 1.702).to(x.dtype)
    s = torch.sigmoid(t.float()).to(x.dtype)
    return (x.float() * s.float()).to(x.dtype)


def rope_table(head_dim: int, n_positions: int, theta: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [n_positions, head_dim/2] in float32, angles computed as precompute_freqs_cis does (§5)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = torch.outer(torch.arange(n_positions).float(), inv_freq)
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x, cos, sin):
    """Rotate the interleaved pairs (x[2i], x[2i+1]) of each head (Meta's complex layout, not rotate_half).
    x [S, heads, head_dim]; cos/sin [S, head_dim/2]. Computed in float32, cast back to x's dtype."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2).to(x.dtype)


# ---------------------------------------------------------------------------------------------------------
# Point tokenizer helpers (spec §2.6)
# ---------------------------------------------------------------------------------------------------------

def fps_threads(n: int) -> int:
    """Threads per block of the pointnet2 FPS kernel: the largest power of two <= n, at most 1024."""
    return max(min(1 << int(math.log(n) / math.log(2.0)), FPS_MAX_THREADS), 1)


def furthest_point_sample(p: torch.Tensor, m: int) -> torch.Tensor:
    """Furthest point sampling of `m` indices from p [N, 3] (float32), replicating sampling_gpu.cu.

    Start at index 0, distances initialised to 1e10, d_k = min(d_k, |p_k - p_last|^2) with the squares summed
    in x, y, z order. The argmax is the kernel's: thread t of T scans k = t, t+T, ... keeping the first strict
    maximum (best starts at -1, so its first k always counts), then a shared-memory tree reduction over
    strides T/2, T/4, ..., 1 where slot i takes slot i+stride only if strictly greater. On ties the winner is
    therefore decided by the tree, not simply by the lowest index: with 4 threads, when threads 1 and 2
    hold equal maxima, slot 0 takes thread 2's at stride 2 and keeps it against slot 1 (thread 1)."""
    n = p.shape[0]
    threads = fps_threads(n)
    rows = -(-n // threads)
    slot_index = torch.arange(rows * threads).view(rows, threads)
    row_index = torch.arange(rows)[:, None].expand(rows, threads)
    temp = torch.full((n,), FPS_INITIAL_DISTANCE, dtype=torch.float32)
    padding = torch.full((rows * threads - n,), -1.0, dtype=torch.float32)
    out = torch.zeros(m, dtype=torch.int64)
    last = 0
    for j in range(1, m):
        diff = p - p[last]
        d = diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1]
        d = d + diff[:, 2] * diff[:, 2]
        temp = torch.minimum(d, temp)
        grid = torch.cat((temp, padding)).view(rows, threads)
        best = grid.max(dim=0).values
        first_row = torch.where(grid == best, row_index, rows).min(dim=0).values
        best_index = slot_index[first_row, torch.arange(threads)]
        stride = threads // 2
        while stride >= 1:
            v1, v2 = best[:stride], best[stride:2 * stride]
            take = v2 > v1
            best = torch.where(take, v2, v1)
            best_index = torch.where(take, best_index[stride:2 * stride], best_index[:stride])
            stride //= 2
        last = int(best_index[0])
        out[j] = last
    return out


def knn_indices(support: torch.Tensor, query: torch.Tensor, k: int) -> torch.Tensor:
    """For each query point, the k nearest support points: [M, k] int64, nearest first.

    Distances as torch.cdist computes them for these sizes (the matrix-multiply path): the 5-term dot product
    [-2a, |a|^2, 1]·[b, 1, |b|^2], summed left to right in float32 here, clamped to >= 1e-30, square root.
    topk(largest=False) leaves the order of equal distances unspecified (and equal colours are common), so
    this reference fixes it: equal distances are ordered by the lower support index."""
    a, b = support.float(), query.float()
    a_sq = a[:, 0] * a[:, 0] + a[:, 1] * a[:, 1]
    a_sq = a_sq + a[:, 2] * a[:, 2]
    b_sq = b[:, 0] * b[:, 0] + b[:, 1] * b[:, 1]
    b_sq = b_sq + b[:, 2] * b[:, 2]
    dot = (-2.0 * a[:, None, 0]) * b[None, :, 0] + (-2.0 * a[:, None, 1]) * b[None, :, 1]
    dot = dot + (-2.0 * a[:, None, 2]) * b[None, :, 2]
    dist = ((dot + a_sq[:, None]) + b_sq[None, :]).clamp_min(1e-30).sqrt()      # [N, M]
    # Non-negative float32 bit patterns sort like the values, so (bits, index) is one exact int64 key.
    key = dist.view(torch.int32).to(torch.int64) * a.shape[0] + torch.arange(a.shape[0])[:, None]
    return torch.topk(key, k, dim=0, largest=False, sorted=True).indices.t().contiguous()


# ---------------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Encoded:
    """Intermediate tensors of one modality input (float32 copies are what dump_goldens.py writes)."""
    tokens: torch.Tensor                    # [T, L, D_clip] tokenizer output, before the class token
    clip: torch.Tensor                      # [T, L+1, D_clip] after ln_post, per frame
    clip_mean: torch.Tensor                 # [L+1, D_clip] mean over the T frames
    routing: torch.Tensor                   # [modality_tokens, experts]
    upm: torch.Tensor                       # [modality_tokens, D_llm] after clip_proj2, before the tags
    block: torch.Tensor                     # [modality_tokens + 2, D_llm] start tag, upm, end tag
    point_fps: Optional[torch.Tensor] = None    # [groups] FPS centre indices (point only)
    point_knn: Optional[torch.Tensor] = None    # [groups, 32] neighbour indices (point only)


class KVCache:
    """Per-layer K and V rows [max_seq_len, kv_heads, head_dim], written at explicit rows (spec §6.4)."""

    def __init__(self, cfg: Config, dtype):
        head_dim = cfg.llm_dim // cfg.llm_heads
        shape = (cfg.llm_layers, cfg.max_seq_len, cfg.llm_kv_heads, head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)


class OneLLM:
    """Inference of the released model from an official-format state dict (keys prefixed `llma.`)."""

    def __init__(self, state: Dict[str, torch.Tensor], params: dict, fp16: bool = False,
                 max_seq_len: int = DEFAULT_MAX_SEQ_LEN):
        self.cfg = infer_config(state, params, max_seq_len)
        check_keys(state, expected_shapes(self.cfg))
        self.P = Precision(fp16)
        self.w = {k[len(KEY_PREFIX):]: v.to(self.P.low) for k, v in state.items()
                  if k[len(KEY_PREFIX):] not in UNUSED_KEYS}
        head_dim = self.cfg.llm_dim // self.cfg.llm_heads
        self.rope_cos, self.rope_sin = rope_table(head_dim, 2 * max_seq_len, self.cfg.rope_theta)
        self._routing = {m: self.routing_weights(m, self.w[f"resample_tokens.{m}"][0]) for m in MODALITIES}

    @classmethod
    def from_path(cls, path: str, fp16: bool = False, max_seq_len: int = DEFAULT_MAX_SEQ_LEN) -> "OneLLM":
        state, params = load_checkpoint(path)
        return cls(state, params, fp16, max_seq_len)

    # ----- per-modality tokenizers (spec §2.1) -----

    def expected_input_shape(self, modality: str) -> Tuple[int, ...]:
        """Model-input tensor of one sample (spec §2.1 table). Video/rgbd/rgbn take any number of frames T
        as the first axis (shown with the spec's 15 / 2); points any count >= the number of groups."""
        shapes = {"image": (3, IMAGE_SIZE, IMAGE_SIZE), "video": (15, 3, IMAGE_SIZE, IMAGE_SIZE),
                  "rgbd": (2, 3, IMAGE_SIZE, IMAGE_SIZE), "rgbn": (2, 3, IMAGE_SIZE, IMAGE_SIZE),
                  "audio": AUDIO_INPUT, "point": (POINT_COUNT, 6), "imu": IMU_INPUT,
                  "fmri": (1, self.cfg.fmri_inputs)}
        if modality not in shapes:
            raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
        return shapes[modality]

    def tokenize(self, modality: str, x: torch.Tensor, point_fps: Optional[torch.Tensor] = None,
                 point_knn: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, dict]:
        """Model input -> tokens [T, L, D_clip] (before the class token) and, for points, the FPS/kNN
        indices used ({"point_fps", "point_knn"}; pass them in to skip the search)."""
        self._check_input(modality, x)
        P, w = self.P, self.w
        x = x.to(P.low)
        if modality in IMAGE_LIKE:
            frames = x[None] if modality == "image" else x
            y = P.conv(F.conv2d, frames, w["clip.visual.conv1.weight"], stride=self.cfg.clip_patch)
            return y.flatten(2).transpose(1, 2), {}                       # token = row * grid + col
        if modality == "audio":
            y = P.conv(F.conv2d, x[None], w["conv1.audio.weight"], w["conv1.audio.bias"], stride=AUDIO_STRIDE)
            return y.flatten(2).transpose(1, 2), {}                       # token = mel_row * 101 + time_col
        if modality == "imu":
            y = P.conv(F.conv1d, x[None], w["conv1.imu.weight"], stride=1)
            return y.transpose(1, 2), {}
        if modality == "fmri":
            y = P.linear(x.reshape(-1), w["conv1.fmri.weight"], w["conv1.fmri.bias"])
            # token t, channel c = y[c * n_tokens + t]
            return y.reshape(self.cfg.clip_width, self.cfg.fmri_tokens).t()[None], {}
        return self.point_tokens(x, point_fps, point_knn)

    def point_tokens(self, x, fps=None, knn=None):
        """PointPatchEmbed (spec §2.6): FPS and kNN on channels 3:6 (RGB) in float32, group the raw 6-d
        features, 1x1 conv (a per-point linear map) with bias, max over the neighbours."""
        xf = x.float()
        p = xf[:, POINT_SAMPLE_CHANNELS].contiguous()
        if fps is None:
            fps = furthest_point_sample(p, self.cfg.point_groups)
        if knn is None:
            knn = knn_indices(p, p[fps], POINT_GROUP_SIZE)
        if fps.shape != (self.cfg.point_groups,) or knn.shape != (self.cfg.point_groups, POINT_GROUP_SIZE):
            raise ValueError(f"point indices: fps {tuple(fps.shape)} / knn {tuple(knn.shape)}, expected "
                             f"({self.cfg.point_groups},) / ({self.cfg.point_groups}, {POINT_GROUP_SIZE})")
        grouped = xf[knn]                                                 # [groups, 32, 6]
        weight = self.w["conv1.point.conv1.weight"].flatten(1)            # [D, 6]
        y = self.P.linear(grouped, weight, self.w["conv1.point.conv1.bias"])
        return y.max(dim=1).values[None], {"point_fps": fps, "point_knn": knn}

    def _check_input(self, modality, x):
        want = self.expected_input_shape(modality)
        got = tuple(x.shape)
        if modality in ("video", "rgbd", "rgbn"):
            ok = len(got) == 4 and got[0] >= 1 and got[1:] == want[1:]
        elif modality == "point":
            ok = len(got) == 2 and got[1] == 6 and got[0] >= self.cfg.point_groups
        elif modality == "fmri":
            ok = got in (want, want[1:])
        else:
            ok = got == want
        if not ok:
            raise ValueError(f"{modality}: input shape {got}, expected {want}")
        if not torch.isfinite(x).all():
            raise ValueError(f"{modality}: input contains NaN or Inf")

    # ----- CLIP ViT (spec §3) -----

    def clip_encode(self, modality: str, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [T, L, D] -> [T, L+1, D]: class token, positional embedding (CLIP's for image-like
        modalities, the modality's own otherwise), ln_pre, pre-LN blocks, ln_post on all tokens, no proj."""
        P, w, D = self.P, self.w, self.cfg.clip_width
        own = f"positional_embedding.{modality}"
        pos = w["clip.visual.positional_embedding" if modality in IMAGE_LIKE else own]
        if pos.shape[0] != tokens.shape[1] + 1:
            raise ValueError(f"{modality}: {tokens.shape[1]} tokens + class token but a positional embedding "
                             f"of {pos.shape[0]} rows")
        cls = w["clip.visual.class_embedding"].to(tokens.dtype).expand(tokens.shape[0], 1, D)
        x = torch.cat((cls, tokens), dim=1) + pos.to(tokens.dtype)
        x = P.layer_norm(x, w["clip.visual.ln_pre.weight"], w["clip.visual.ln_pre.bias"], 1e-5, x.dtype)
        heads = self.cfg.clip_heads
        for i in range(self.cfg.clip_layers):
            r = f"clip.visual.transformer.resblocks.{i}."
            h = P.layer_norm(x, w[r + "ln_1.weight"], w[r + "ln_1.bias"], 1e-5, x.dtype)
            q, k, v = P.linear(h, w[r + "attn.in_proj_weight"], w[r + "attn.in_proj_bias"]).split(D, dim=-1)
            a = P.attention(*(t.unflatten(-1, (heads, D // heads)) for t in (q, k, v))).flatten(-2)
            x = x + P.linear(a, w[r + "attn.out_proj.weight"], w[r + "attn.out_proj.bias"])
            h = P.layer_norm(x, w[r + "ln_2.weight"], w[r + "ln_2.bias"], 1e-5, x.dtype)
            h = quick_gelu(P.linear(h, w[r + "mlp.c_fc.weight"], w[r + "mlp.c_fc.bias"]))
            x = x + P.linear(h, w[r + "mlp.c_proj.weight"], w[r + "mlp.c_proj.bias"])
        return P.layer_norm(x, w["clip.visual.ln_post.weight"], w["clip.visual.ln_post.bias"], 1e-5, x.dtype)

    # ----- UPM (spec §4) -----

    def routing_weights(self, modality: str, rows: torch.Tensor) -> torch.Tensor:
        """Router MLP applied row-wise: fc1, exact GELU, fc2, sigmoid, divide by the sum over experts."""
        P, r = self.P, f"routers.{modality}."
        h = P.pointwise(F.gelu, P.linear(rows, self.w[r + "fc1.weight"], self.w[r + "fc1.bias"]))
        s = P.pointwise(torch.sigmoid, P.linear(h, self.w[r + "fc2.weight"], self.w[r + "fc2.bias"]))
        total = s.float().sum(dim=-1, keepdim=True).to(s.dtype)
        return (s.float() / total.float()).to(s.dtype)

    def constant_routing(self, modality: str) -> torch.Tensor:
        """[modality_tokens, experts]: the only rows used are the learned resample tokens, so the weights are
        input-independent constants computed at load."""
        return self._routing[modality]

    def _llama_block(self, prefix: str, x, heads: int, kv_heads: int,
                     rope=None, cache=None, layer=0, start=0):
        """LLaMA block (RMSNorm, attention, SwiGLU). UPM experts: no RoPE, no cache, bidirectional.
        LLM: RoPE at positions start.., K/V written to cache rows start.., query i sees rows 0..start+i."""
        P, w, eps = self.P, self.w, self.cfg.norm_eps
        S, dim = x.shape
        head_dim = dim // heads
        h = P.rms_norm(x, w[prefix + "attention_norm.weight"], eps)
        q = P.linear(h, w[prefix + "attention.wq.weight"]).view(S, heads, head_dim)
        k = P.linear(h, w[prefix + "attention.wk.weight"]).view(S, kv_heads, head_dim)
        v = P.linear(h, w[prefix + "attention.wv.weight"]).view(S, kv_heads, head_dim)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is None:
            a = P.attention(q, k, v)
        else:
            cache.k[layer, start:start + S] = k
            cache.v[layer, start:start + S] = v
            a = P.attention(q, cache.k[layer, :start + S], cache.v[layer, :start + S], first_query_row=start)
        x = x + P.linear(a.reshape(S, dim), w[prefix + "attention.wo.weight"])
        h = P.rms_norm(x, w[prefix + "ffn_norm.weight"], eps)
        gate = P.pointwise(F.silu, P.linear(h, w[prefix + "feed_forward.w1.weight"]))
        h = gate * P.linear(h, w[prefix + "feed_forward.w3.weight"])
        return x + P.linear(h, w[prefix + "feed_forward.w2.weight"])

    def upm_sequence(self, modality: str, clip_features: torch.Tensor) -> torch.Tensor:
        """Expert input [modality_tokens + L+1, D_upm]: the learned resample tokens as they are, then
        clip_proj1 (Linear + LayerNorm) of every CLIP token including the class token."""
        P, w, m = self.P, self.w, modality
        x = P.linear(clip_features, w[f"clip_proj1.{m}.0.weight"], w[f"clip_proj1.{m}.0.bias"])
        x = P.layer_norm(x, w[f"clip_proj1.{m}.1.weight"], w[f"clip_proj1.{m}.1.bias"], 1e-5, torch.float32)
        return torch.cat((w[f"resample_tokens.{m}"][0].to(x.dtype), x), dim=0)

    def upm(self, modality: str, clip_features: torch.Tensor) -> torch.Tensor:
        """[L+1, D_clip] CLIP features (after the frame mean) -> [modality_tokens, D_llm]: each expert runs
        the whole sequence, its first modality_tokens rows are weighted by the routing and summed."""
        P, w, cfg, m = self.P, self.w, self.cfg, modality
        seq = self.upm_sequence(m, clip_features)
        routing = self.constant_routing(m)
        n = cfg.modality_tokens
        mixed = None
        for e in range(cfg.upm_experts):
            y = seq
            for i in range(cfg.upm_layers):
                y = self._llama_block(f"resample_layers.{e}.{i}.", y, cfg.upm_heads, cfg.upm_heads)
            term = y[:n] * routing[:, e:e + 1]
            mixed = term if mixed is None else mixed + term
        y = P.linear(mixed, w[f"clip_proj2.{m}.0.weight"], w[f"clip_proj2.{m}.0.bias"])
        return P.layer_norm(y, w[f"clip_proj2.{m}.1.weight"], w[f"clip_proj2.{m}.1.bias"], 1e-5,
                            torch.float32)

    def encode(self, modality: str, x: torch.Tensor, point_fps=None, point_knn=None) -> Encoded:
        """Model input -> every intermediate down to the LLM block of modality_tokens+2 rows."""
        tokens, aux = self.tokenize(modality, x, point_fps, point_knn)
        clip = self.clip_encode(modality, tokens)
        clip_mean = clip.float().mean(dim=0).to(clip.dtype)
        upm = self.upm(modality, clip_mean)
        block = torch.cat((self.w[f"start_tag.{modality}"][0].to(upm.dtype), upm,
                           self.w[f"end_tag.{modality}"][0].to(upm.dtype)), dim=0)
        return Encoded(tokens, clip, clip_mean, self.constant_routing(modality), upm, block, **aux)

    # ----- LLM (spec §5, §6) -----

    def splice(self, prompt_ids: Sequence[int], blocks: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """[E(BOS), block_1, ..., block_k, E(t_1..t_{n-1})] (spec §6.1; several blocks in the given order,
        e.g. video then audio as in the paper's appendix D). The result is float32 in fp16 mode whenever a
        block is present (fp16 embeddings concatenated with the float32 clip_proj2 output)."""
        if not prompt_ids or prompt_ids[0] != BOS_ID:
            raise ValueError("prompt must start with BOS (id 1)")
        emb = self.w["tok_embeddings.weight"][torch.tensor(list(prompt_ids))]
        if not blocks:
            return emb
        dtype = torch.float32
        return torch.cat([emb[:1].to(dtype)] + [b.to(dtype) for b in blocks] + [emb[1:].to(dtype)], dim=0)

    def llm_forward(self, h: torch.Tensor, start: int, cache: KVCache) -> torch.Tensor:
        """Embeddings h [S, D] at RoPE positions / cache rows start..start+S-1 -> float32 logits of the last
        row (forward_inference semantics)."""
        cfg = self.cfg
        if start + h.shape[0] > cfg.max_seq_len:
            raise ValueError(f"context overflow: {start + h.shape[0]} rows > max_seq_len {cfg.max_seq_len}")
        rope = (self.rope_cos[start:start + h.shape[0]], self.rope_sin[start:start + h.shape[0]])
        for i in range(cfg.llm_layers):
            h = self._llama_block(f"layers.{i}.", h, cfg.llm_heads, cfg.llm_kv_heads, rope, cache, i, start)
        last = self.P.rms_norm(h[-1:], self.w["norm.weight"], cfg.norm_eps)
        return self.P.linear(last, self.w["output.weight"])[0].float()

    def prefill(self, prompt_ids: Sequence[int],
                blocks: Sequence[torch.Tensor] = ()) -> Tuple[torch.Tensor, KVCache]:
        """Logits of the last position of the spliced prompt, and the filled cache."""
        cache = KVCache(self.cfg, self.P.low)
        return self.llm_forward(self.splice(prompt_ids, blocks), 0, cache), cache

    def decode_offset(self, n_blocks: int, position_mode: str) -> int:
        """Row of a decoded token = its text-space position + this offset (spec §6.4). `correct`: the
        n_blocks * (modality_tokens + 2) inserted rows. `official`: the released code adds only
        cache_image_words = modality_tokens per block, so the first decoded token overwrites the last 2 prompt
        rows per block (for several blocks this generalises the released single-block behaviour)."""
        if position_mode == "correct":
            return n_blocks * (self.cfg.modality_tokens + 2)
        if position_mode == "official":
            return n_blocks * self.cfg.modality_tokens
        raise ValueError(f"position mode {position_mode!r}: expected 'official' or 'correct'")

    def decode_step(self, token: int, row: int, cache: KVCache) -> torch.Tensor:
        """Feed one token at RoPE position = cache row `row`, attending rows 0..row; its logits."""
        return self.llm_forward(self.w["tok_embeddings.weight"][token][None], row, cache)

    def generate(self, prompt_ids: Sequence[int], blocks: Sequence[torch.Tensor] = (),
                 max_new_tokens: int = 12, position_mode: str = "correct", sp=None,
                 step_logits: Optional[list] = None) -> List[int]:
        """Greedy (temperature 0) generation. Stops before EOS, after max_new_tokens, or after the token
        whose decoded text (with SentencePiece processor `sp`, if given) contains '###'. The argmax takes the
        lowest id among equal logits. `step_logits`, if a list, receives the logits each token came from."""
        offset = self.decode_offset(len(blocks), position_mode)
        logits, cache = self.prefill(prompt_ids, blocks)
        out: List[int] = []
        while len(out) < max_new_tokens:
            token = int(torch.nonzero(logits == logits.max())[0, 0])
            if step_logits is not None:
                step_logits.append(logits)
            if token == EOS_ID:
                break
            out.append(token)
            if (sp is not None and "###" in sp.decode(out)) or len(out) == max_new_tokens:
                break
            text_position = len(prompt_ids) + len(out) - 1
            logits = self.decode_step(token, text_position + offset, cache)
        return out


# ---------------------------------------------------------------------------------------------------------
# Prompt (spec §6.2)
# ---------------------------------------------------------------------------------------------------------

SYSTEM_PROMPT = ("A chat between a curious human and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the human's questions.")


def chat_prompt(question: str) -> str:
    """conv_templates['v1'] single-turn inference string: no space after '###'."""
    return f"{SYSTEM_PROMPT}\n\n###Human: {question}\n###Assistant:"


def prompt_ids(sp, question: str) -> List[int]:
    """BOS + SentencePiece ids of the chat prompt (sp: a sentencepiece.SentencePieceProcessor)."""
    return [BOS_ID] + list(sp.encode(chat_prompt(question)))
