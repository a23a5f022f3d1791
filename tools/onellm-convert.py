#!/usr/bin/python3
"""Converts an official OneLLM checkpoint (consolidated.00-of-01.pth, or its 10 shards) and the LLaMA
tokenizer.model into one GGUF file for gst-onellm.

    onellm-convert.py CHECKPOINT --tokenizer tokenizer.model --outtype f32|f16|bf16 --outfile OUT.gguf

CHECKPOINT is the .pth file or a folder holding it or the shards consolidated.00-of-01.s0.pth ...; a
params.json beside it is read when present. Every hyperparameter comes from params.json or from the
tensor names and shapes, so reduced checkpoints with the official key names convert the same way.
The key set is checked strictly: every missing and every unexpected key is reported and nothing is
written unless the model is complete. Tensor names and metadata keys are in docs/model-format.md.

Checkpoints are read lazily: the pickle inside torch's zip format is parsed without torch and each
tensor is a view of the memory-mapped file, so converting the 15 GB release needs little RAM. Files
in another format fall back to torch.load, one shard at a time.
"""

import argparse
import collections
import json
import math
import mmap
import os
import pickle
import re
import struct
import sys
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402

# OneLLM's names for the modalities, in its parameter order, and the names this project uses.
MODALITIES = [("image", "image"), ("video", "video"), ("audio", "audio"), ("point", "point"),
              ("rgbd", "depth"), ("rgbn", "normal"), ("fmri", "fmri"), ("imu", "imu")]
VISUAL = {"image", "video", "rgbd", "rgbn"}   # these use CLIP's own patch and positional embedding

# Constants of OneLLM's code and preprocessing (not of the 7B release), see onellm-model-spec.md §2.
CONTEXT_LENGTH = 2048                 # MetaModel max_seq_len
ROPE_THETA = 10000.0
CLIP_LN_EPS = 1e-5                    # open_clip LayerNorm
FRAMES = {"image": 1, "video": 15, "rgbd": 2, "rgbn": 2, "audio": 1, "point": 1, "fmri": 1, "imu": 1}
AUDIO_MEL_BINS, AUDIO_TARGET_LENGTH, AUDIO_STRIDE = 128, 1024, 10
AUDIO_NORM_MEAN, AUDIO_NORM_STD = -4.2677393, 4.5689974 * 2
POINT_GROUP_SIZE, POINT_COUNT = 32, 8192
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
PROMPT_TEMPLATE = SYSTEM + "\n\n###Human: {question}\n###Assistant:"
PROMPTS = {
    "image": "Provide a one-sentence caption for the provided image.",
    "video": "Provide a one-sentence caption for the provided video.",
    "audio": "Provide a one-sentence caption for the provided audio.",
    "point": "What is this?",
    "rgbd": "Provide a one-sentence caption for the provided image.",
    "rgbn": "Provide a one-sentence caption for the provided image.",
    "fmri": "Provide a one-sentence caption for the provided fMRI data.",
    "imu": "Describe the scene.",
}
# llama.cpp's general.file_type values
FILE_TYPES = {"f32": 0, "f16": 1, "bf16": 32}
OUT_TYPES = {"f32": gw.F32, "f16": gw.F16, "bf16": gw.BF16}
CHUNK_ELEMENTS = 1 << 23


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------- reading checkpoints

class Tensor:
    """A checkpoint tensor: torch shape, dtype name ('bf16', 'f16', 'f32', ...), a loader of its
    elements as a C-contiguous numpy array (bf16 as raw uint16), and a release function that lets the
    kernel drop the pages the loader mapped in (so memory use stays flat over a 15 GB file)."""

    def __init__(self, shape, dtype, load, release=lambda: None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.load = load
        self.release = release


_STORAGE_DTYPES = {
    "BFloat16Storage": ("bf16", np.uint16), "HalfStorage": ("f16", np.float16),
    "FloatStorage": ("f32", np.float32), "DoubleStorage": ("f64", np.float64),
    "LongStorage": ("i64", np.int64), "IntStorage": ("i32", np.int32), "ShortStorage": ("i16", np.int16),
    "CharStorage": ("i8", np.int8), "ByteStorage": ("u8", np.uint8), "BoolStorage": ("bool", np.bool_),
}


class _StorageType:
    def __init__(self, name):
        self.dtype, self.np_dtype = _STORAGE_DTYPES[name]


class _LazyUnpickler(pickle.Unpickler):
    """Unpickles torch's data.pkl into Tensors whose elements stay in the mapped zip file."""

    def __init__(self, fp, storage_array):
        super().__init__(fp)
        self._storage_array = storage_array

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, requires_grad, hooks: data
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"cannot read {module}.{name} lazily")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {kind}")
        return (storage_type, lambda: self._storage_array(key, storage_type.np_dtype, numel))


def _rebuild_tensor(storage, offset, shape, stride, *_):
    storage_type, storage_array = storage
    mapped = []

    def load():
        a, release = storage_array()
        mapped.append(release)
        itemsize = a.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(a[offset:], shape=tuple(shape),
                                               strides=tuple(s * itemsize for s in stride))
        return np.ascontiguousarray(view)

    def release():
        while mapped:
            mapped.pop()()
    return Tensor(shape, storage_type.dtype, load, release)


def _lazy_load(path):
    """{name: Tensor} of a torch zip checkpoint, reading only the pickle."""
    zf = zipfile.ZipFile(path)
    pkl = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkl) != 1:
        raise pickle.UnpicklingError("no data.pkl")
    prefix = pkl[0][:-len("data.pkl")]
    f = open(path, "rb")
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)

    def storage_array(key, np_dtype, numel):
        info = zf.getinfo(f"{prefix}data/{key}")
        if info.compress_type != zipfile.ZIP_STORED:
            return np.frombuffer(zf.read(info), np_dtype, numel), lambda: None
        # the local header's name and extra lengths can differ from the central directory's
        name_len, extra_len = struct.unpack("<HH", mm[info.header_offset + 26:info.header_offset + 30])
        start = info.header_offset + 30 + name_len + extra_len
        page = start - start % mmap.PAGESIZE
        size = start + numel * np.dtype(np_dtype).itemsize - page
        return np.frombuffer(mm, np_dtype, numel, start), lambda: mm.madvise(mmap.MADV_DONTNEED, page, size)

    with zf.open(pkl[0]) as fp:
        obj = _LazyUnpickler(fp, storage_array).load()
    return obj


def _torch_load(path):
    """Fallback for files the lazy reader does not understand: torch.load (memory-mapped where this
    torch supports it, which is only for its zip format)."""
    import inspect
    import torch
    kwargs = {"map_location": "cpu"}
    if "mmap" in inspect.signature(torch.load).parameters and zipfile.is_zipfile(path):
        kwargs["mmap"] = True
    sd = torch.load(path, **kwargs)
    out = collections.OrderedDict()
    names = {torch.bfloat16: "bf16", torch.float16: "f16", torch.float32: "f32"}
    for k, t in sd.items():
        if not isinstance(t, torch.Tensor):
            raise ConvertError(f"{path}: {k} is not a tensor")
        dtype = names.get(t.dtype, str(t.dtype))

        def load(t=t):
            t = t.contiguous()
            return t.view(torch.int16).numpy().view(np.uint16) if t.dtype == torch.bfloat16 else t.numpy()
        out[k] = Tensor(t.shape, dtype, load)
    return out


def checkpoint_files(path):
    """The checkpoint file(s) and the params.json (or None) that CHECKPOINT names."""
    if os.path.isdir(path):
        folder = path
        single = os.path.join(path, "consolidated.00-of-01.pth")
        shards = {}
        for name in os.listdir(path):
            m = re.fullmatch(r"consolidated\.00-of-01\.s(\d+)\.pth", name)
            if m:
                shards[int(m.group(1))] = os.path.join(path, name)
        if os.path.exists(single):
            if shards:
                raise ConvertError(f"{path} holds both {os.path.basename(single)} and shards; name one file")
            files = [single]
        elif shards:
            missing = [i for i in range(max(shards) + 1) if i not in shards]
            if missing:
                raise ConvertError(f"{path}: shard(s) {', '.join(f's{i}' for i in missing)} missing")
            files = [shards[i] for i in sorted(shards)]
        else:
            raise ConvertError(f"{path} holds neither consolidated.00-of-01.pth nor consolidated.00-of-01.s*.pth")
    elif os.path.isfile(path):
        folder = os.path.dirname(os.path.abspath(path))
        files = [path]
    else:
        raise ConvertError(f"{path}: no such file or folder")
    params = os.path.join(folder, "params.json")
    return files, params if os.path.exists(params) else None


def load_index(files, log):
    """{key without the llma. prefix: Tensor} over all files; a key in two files is an error."""
    index = collections.OrderedDict()
    for path in files:
        try:
            part = _lazy_load(path)
        except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, ValueError) as e:
            log(f"{os.path.basename(path)}: {e}; loading it with torch.load instead")
            part = _torch_load(path)
        if not isinstance(part, dict):
            raise ConvertError(f"{path} does not hold a state dict")
        for key, t in part.items():
            if not isinstance(t, Tensor):
                raise ConvertError(f"{path}: {key} is not a tensor")
            name = key[len("llma."):] if key.startswith("llma.") else key
            if name in index:
                raise ConvertError(f"key llma.{name} appears twice")
            index[name] = t
    return index


# ---------------------------------------------------------------- model description

def _count(names, pattern):
    """1 + the largest index captured by pattern among names (0 if none)."""
    found = [int(m.group(1)) for m in map(re.compile(pattern).match, names) if m]
    return max(found) + 1 if found else 0


def _shape(index, name, problems, ndim=None):
    t = index.get(name)
    if t is None:
        problems.append(f"cannot infer the model's sizes without llma.{name}")
        return None
    if ndim is not None and len(t.shape) != ndim:
        problems.append(f"llma.{name} has shape {list(t.shape)}, expected {ndim} dimensions")
        return None
    return t.shape


def infer_hparams(index, params):
    """Every size of the model, from params.json and the tensors. Raises ConvertError with all problems."""
    names = list(index)
    problems = []
    hp = {}

    emb = _shape(index, "tok_embeddings.weight", problems, 2)
    w1 = _shape(index, "layers.0.feed_forward.w1.weight", problems, 2)
    conv = _shape(index, "clip.visual.conv1.weight", problems, 4)
    pos = _shape(index, "clip.visual.positional_embedding", problems, 2)
    c_fc = _shape(index, "clip.visual.transformer.resblocks.0.mlp.c_fc.weight", problems, 2)
    wq = _shape(index, "resample_layers.0.0.attention.wq.weight", problems, 2)
    uw1 = _shape(index, "resample_layers.0.0.feed_forward.w1.weight", problems, 2)
    rtok = _shape(index, "resample_tokens.image", problems, 3)
    fc1 = _shape(index, "routers.image.fc1.weight", problems, 2)
    audio = _shape(index, "conv1.audio.weight", problems, 4)
    imu = _shape(index, "conv1.imu.weight", problems, 3)
    fmri = _shape(index, "conv1.fmri.weight", problems, 2)
    mod_pos = {m: _shape(index, f"positional_embedding.{m}", problems, 2) for m in ("audio", "point", "imu", "fmri")}
    if problems:
        raise ConvertError("\n".join(problems))

    hp["vocab"], hp["dim"] = emb
    hp["layers"] = _count(names, r"layers\.(\d+)\.")
    hp["ffn"] = w1[0]
    hp["heads"] = params.get("n_heads", hp["dim"] // 128)
    hp["kv_heads"] = params.get("n_kv_heads") or hp["heads"]
    hp["norm_eps"] = float(params.get("norm_eps", 1e-5))
    if "dim" in params and params["dim"] != hp["dim"]:
        problems.append(f"params.json dim {params['dim']} but tok_embeddings has width {hp['dim']}")
    if "n_layers" in params and params["n_layers"] != hp["layers"]:
        problems.append(f"params.json n_layers {params['n_layers']} but the checkpoint has {hp['layers']} layers")
    if hp["dim"] % hp["heads"] or (hp["dim"] // hp["heads"]) % 2:
        problems.append(f"LLM width {hp['dim']} does not split into {hp['heads']} heads of even size")
    hp["head_dim"] = hp["dim"] // hp["heads"]

    hp["clip_width"], _, hp["patch"], patch_w = conv
    grid = math.isqrt(pos[0] - 1)
    if patch_w != hp["patch"] or grid * grid + 1 != pos[0]:
        problems.append(f"CLIP patch embedding {list(conv)} with {pos[0]} positions is not a square grid "
                        "of square patches plus a class token")
    hp["image_size"] = grid * hp["patch"]
    hp["clip_tokens"] = pos[0]
    hp["clip_layers"] = _count(names, r"clip\.visual\.transformer\.resblocks\.(\d+)\.")
    hp["clip_mlp"] = c_fc[0]
    # open_clip's VisionTransformer: heads = width // 64 (ViT-L/14: 1024 -> 16)
    hp["clip_heads"] = params.get("clip_n_heads", hp["clip_width"] // 64)
    if hp["clip_heads"] < 1 or hp["clip_width"] % hp["clip_heads"]:
        problems.append(f"CLIP width {hp['clip_width']} does not split into {hp['clip_heads']} heads")

    hp["experts"] = _count(names, r"resample_layers\.(\d+)\.")
    hp["upm_blocks"] = _count(names, r"resample_layers\.\d+\.(\d+)\.")
    hp["upm_dim"] = wq[0]
    hp["upm_ffn"] = uw1[0]
    # OneLLM copies the LLM's args with dim = CLIP width and n_heads = 16 (1024 -> 16, i.e. width // 64)
    hp["upm_heads"] = params.get("upm_n_heads", hp["upm_dim"] // 64)
    hp["resample_tokens"] = rtok[1]
    hp["router_hidden"] = fc1[0]
    if hp["upm_dim"] != hp["clip_width"]:
        problems.append(f"UPM width {hp['upm_dim']} differs from the CLIP width {hp['clip_width']}")
    if hp["upm_heads"] < 1 or hp["upm_dim"] % hp["upm_heads"]:
        problems.append(f"UPM width {hp['upm_dim']} does not split into {hp['upm_heads']} heads")

    W = hp["clip_width"]
    tokens = {m: hp["clip_tokens"] for m in VISUAL}
    kh, kw = audio[2], audio[3]
    grid_audio = ((AUDIO_MEL_BINS - kh) // AUDIO_STRIDE + 1) * ((AUDIO_TARGET_LENGTH - kw) // AUDIO_STRIDE + 1)
    if grid_audio + 1 != mod_pos["audio"][0]:
        problems.append(f"audio: a {kh}x{kw} kernel with stride {AUDIO_STRIDE} over {AUDIO_MEL_BINS}x"
                        f"{AUDIO_TARGET_LENGTH} gives {grid_audio} tokens, but the positional embedding has "
                        f"{mod_pos['audio'][0]} rows")
    hp["audio_kernel"] = (kh, kw)
    hp["imu_kernel"] = imu[2]
    hp["imu_length"] = mod_pos["imu"][0] - 2 + imu[2]
    hp["fmri_voxels"] = fmri[1]
    if fmri[0] % W or fmri[0] // W + 1 != mod_pos["fmri"][0]:
        problems.append(f"fMRI: {fmri[0]} outputs do not make {mod_pos['fmri'][0] - 1} tokens of width {W}")
    hp["fmri_tokens"] = fmri[0] // W
    for m in ("audio", "point", "imu", "fmri"):
        tokens[m] = mod_pos[m][0]
    hp["tokens"] = tokens
    if problems:
        raise ConvertError("\n".join(problems))
    return hp


def expected_shapes(hp):
    """{official key without prefix: torch shape} of a complete checkpoint with these sizes."""
    D, W = hp["dim"], hp["clip_width"]
    kv = hp["kv_heads"] * hp["head_dim"]
    s = {}

    def block(prefix, dim, ffn, kv_dim):
        s.update({f"{prefix}.attention.wq.weight": (dim, dim), f"{prefix}.attention.wk.weight": (kv_dim, dim),
                  f"{prefix}.attention.wv.weight": (kv_dim, dim), f"{prefix}.attention.wo.weight": (dim, dim),
                  f"{prefix}.feed_forward.w1.weight": (ffn, dim), f"{prefix}.feed_forward.w2.weight": (dim, ffn),
                  f"{prefix}.feed_forward.w3.weight": (ffn, dim), f"{prefix}.attention_norm.weight": (dim,),
                  f"{prefix}.ffn_norm.weight": (dim,)})

    s["tok_embeddings.weight"] = (hp["vocab"], D)
    for i in range(hp["layers"]):
        block(f"layers.{i}", D, hp["ffn"], kv)
    s["norm.weight"] = (D,)
    s["output.weight"] = (hp["vocab"], D)

    v = "clip.visual"
    s.update({f"{v}.conv1.weight": (W, 3, hp["patch"], hp["patch"]), f"{v}.class_embedding": (W,),
              f"{v}.positional_embedding": (hp["clip_tokens"], W), f"{v}.ln_pre.weight": (W,),
              f"{v}.ln_pre.bias": (W,), f"{v}.ln_post.weight": (W,), f"{v}.ln_post.bias": (W,)})
    for i in range(hp["clip_layers"]):
        r = f"{v}.transformer.resblocks.{i}"
        s.update({f"{r}.ln_1.weight": (W,), f"{r}.ln_1.bias": (W,), f"{r}.ln_2.weight": (W,), f"{r}.ln_2.bias": (W,),
                  f"{r}.attn.in_proj_weight": (3 * W, W), f"{r}.attn.in_proj_bias": (3 * W,),
                  f"{r}.attn.out_proj.weight": (W, W), f"{r}.attn.out_proj.bias": (W,),
                  f"{r}.mlp.c_fc.weight": (hp["clip_mlp"], W), f"{r}.mlp.c_fc.bias": (hp["clip_mlp"],),
                  f"{r}.mlp.c_proj.weight": (W, hp["clip_mlp"]), f"{r}.mlp.c_proj.bias": (W,)})

    for e in range(hp["experts"]):
        for b in range(hp["upm_blocks"]):
            block(f"resample_layers.{e}.{b}", W, hp["upm_ffn"], W)

    kh, kw = hp["audio_kernel"]
    s.update({"conv1.audio.weight": (W, 1, kh, kw), "conv1.audio.bias": (W,),
              "conv1.point.conv1.weight": (W, 6, 1, 1), "conv1.point.conv1.bias": (W,),
              "conv1.imu.weight": (W, 6, hp["imu_kernel"]),
              "conv1.fmri.weight": (hp["fmri_tokens"] * W, hp["fmri_voxels"]),
              "conv1.fmri.bias": (hp["fmri_tokens"] * W,)})
    for m in ("audio", "point", "imu", "fmri"):
        s[f"positional_embedding.{m}"] = (hp["tokens"][m], W)
    H = hp["router_hidden"]
    for m, _ in MODALITIES:
        s.update({f"resample_tokens.{m}": (1, hp["resample_tokens"], W),
                  f"clip_proj1.{m}.0.weight": (W, W), f"clip_proj1.{m}.0.bias": (W,),
                  f"clip_proj1.{m}.1.weight": (W,), f"clip_proj1.{m}.1.bias": (W,),
                  f"clip_proj2.{m}.0.weight": (D, W), f"clip_proj2.{m}.0.bias": (D,),
                  f"clip_proj2.{m}.1.weight": (D,), f"clip_proj2.{m}.1.bias": (D,),
                  f"routers.{m}.fc1.weight": (H, W), f"routers.{m}.fc1.bias": (H,),
                  f"routers.{m}.fc2.weight": (hp["experts"], H), f"routers.{m}.fc2.bias": (hp["experts"],),
                  f"start_tag.{m}": (1, 1, D), f"end_tag.{m}": (1, 1, D)})
    return s


# Keys of the release that OneLLM's forward pass never reads: CLIP's text tower leftovers and its visual
# projection. They are dropped; their absence is only noted, since the model is complete without them.
UNUSED = {"clip.visual.proj", "clip.token_embedding.weight", "clip.positional_embedding", "clip.ln_final.weight",
          "clip.ln_final.bias", "clip.text_projection", "clip.logit_scale"}

# Official key -> GGUF name (None: dropped).
_LLAMA_BLOCK = {"attention.wq.weight": "attn_q.weight", "attention.wk.weight": "attn_k.weight",
                "attention.wv.weight": "attn_v.weight", "attention.wo.weight": "attn_output.weight",
                "feed_forward.w1.weight": "ffn_gate.weight", "feed_forward.w3.weight": "ffn_up.weight",
                "feed_forward.w2.weight": "ffn_down.weight", "attention_norm.weight": "attn_norm.weight",
                "ffn_norm.weight": "ffn_norm.weight"}
_CLIP_BLOCK = {"ln_1": "ln1", "ln_2": "ln2", "attn.in_proj_weight": "attn_qkv.weight",
               "attn.in_proj_bias": "attn_qkv.bias", "attn.out_proj": "attn_out", "mlp.c_fc": "ffn_up",
               "mlp.c_proj": "ffn_down"}
_FIXED = {"tok_embeddings.weight": "token_embd.weight", "norm.weight": "output_norm.weight",
          "output.weight": "output.weight", "clip.visual.conv1.weight": "clip.patch_embd.weight",
          "clip.visual.class_embedding": "clip.class_embd", "clip.visual.positional_embedding": "clip.pos_embd",
          "clip.visual.ln_pre.weight": "clip.pre_ln.weight", "clip.visual.ln_pre.bias": "clip.pre_ln.bias",
          "clip.visual.ln_post.weight": "clip.post_ln.weight", "clip.visual.ln_post.bias": "clip.post_ln.bias",
          "conv1.audio.weight": "mod.audio.conv.weight", "conv1.audio.bias": "mod.audio.conv.bias",
          "conv1.point.conv1.weight": "mod.point.conv.weight", "conv1.point.conv1.bias": "mod.point.conv.bias",
          "conv1.imu.weight": "mod.imu.conv.weight", "conv1.fmri.weight": "mod.fmri.linear.weight",
          "conv1.fmri.bias": "mod.fmri.linear.bias",
          "clip.visual.proj": None, "clip.token_embedding.weight": None, "clip.positional_embedding": None,
          "clip.ln_final.weight": None, "clip.ln_final.bias": None, "clip.text_projection": None,
          "clip.logit_scale": None}
_OUR_NAME = dict(MODALITIES)


def gguf_name(key):
    """The GGUF tensor name of an official key (None: dropped)."""
    if key in _FIXED:
        return _FIXED[key]
    m = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
    if m and m.group(2) in _LLAMA_BLOCK:
        return f"blk.{m.group(1)}.{_LLAMA_BLOCK[m.group(2)]}"
    m = re.fullmatch(r"resample_layers\.(\d+)\.(\d+)\.(.+)", key)
    if m and m.group(3) in _LLAMA_BLOCK:
        return f"upm.expert.{m.group(1)}.blk.{m.group(2)}.{_LLAMA_BLOCK[m.group(3)]}"
    m = re.fullmatch(r"clip\.visual\.transformer\.resblocks\.(\d+)\.(.+?)(\.weight|\.bias)?", key)
    if m and m.group(2) in _CLIP_BLOCK:
        return f"clip.blk.{m.group(1)}.{_CLIP_BLOCK[m.group(2)]}{m.group(3) or ''}"
    m = re.fullmatch(r"(\w+)\.(\w+)(.*)", key)
    if m and m.group(2) in _OUR_NAME:
        part, mod, rest = m.group(1), _OUR_NAME[m.group(2)], m.group(3)
        sub = {("positional_embedding", ""): "pos_embd", ("resample_tokens", ""): "resample_tokens",
               ("start_tag", ""): "start_tag", ("end_tag", ""): "end_tag",
               ("clip_proj1", ".0.weight"): "proj1.weight", ("clip_proj1", ".0.bias"): "proj1.bias",
               ("clip_proj1", ".1.weight"): "proj1_norm.weight", ("clip_proj1", ".1.bias"): "proj1_norm.bias",
               ("clip_proj2", ".0.weight"): "proj2.weight", ("clip_proj2", ".0.bias"): "proj2.bias",
               ("clip_proj2", ".1.weight"): "proj2_norm.weight", ("clip_proj2", ".1.bias"): "proj2_norm.bias",
               ("routers", ".fc1.weight"): "router.fc1.weight", ("routers", ".fc1.bias"): "router.fc1.bias",
               ("routers", ".fc2.weight"): "router.fc2.weight", ("routers", ".fc2.bias"): "router.fc2.bias"}
        if (part, rest) in sub:
            return f"mod.{mod}.{sub[(part, rest)]}"
    raise KeyError(key)


def gguf_shape(key, torch_shape):
    """The torch shape as stored: leading 1s of tags and resample tokens and the 1x1 of the point
    tokenizer's conv are dropped (they are a vector, a matrix and a linear layer)."""
    if key.startswith(("start_tag.", "end_tag.", "resample_tokens.")):
        return tuple(torch_shape[-2:] if key.startswith("resample_tokens.") else torch_shape[-1:])
    if key == "conv1.point.conv1.weight":
        return tuple(torch_shape[:2])
    return tuple(torch_shape)


def check_keys(index, hp, log):
    expected = expected_shapes(hp)
    missing = [k for k in expected if k not in index]
    unexpected = [k for k in index if k not in expected and k not in UNUSED]
    wrong = [f"llma.{k}: shape {list(index[k].shape)}, expected {list(s)}"
             for k, s in expected.items() if k in index and tuple(index[k].shape) != tuple(s)]
    absent = sorted(UNUSED - set(index))
    if absent:
        log("note: unused CLIP keys absent (not needed): " + ", ".join(f"llma.{k}" for k in absent))
    lines = []
    if missing:
        lines.append(f"{len(missing)} missing key(s):")
        lines += [f"  llma.{k}" for k in missing]
    if unexpected:
        lines.append(f"{len(unexpected)} unexpected key(s):")
        lines += [f"  llma.{k}" for k in unexpected]
    if wrong:
        lines.append(f"{len(wrong)} key(s) with the wrong shape:")
        lines += [f"  {w}" for w in wrong]
    if lines:
        raise ConvertError("the checkpoint is not a complete OneLLM model; nothing written\n" + "\n".join(lines))


# ---------------------------------------------------------------- tokenizer

def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def _fields(b):
    """(field number, wire type, value) of a protobuf message; length-delimited values as bytes."""
    i = 0
    while i < len(b):
        tag, i = _varint(b, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 1:
            v, i = b[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wire == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ConvertError(f"tokenizer model: unsupported protobuf wire type {wire}")
        yield field, wire, v


def read_tokenizer(path):
    """Pieces, scores and types (sentencepiece's ModelProto, whose type values are llama.cpp's token
    types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), special ids and flags."""
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor()
    if not sp.Load(path):
        raise ConvertError(f"{path}: not a sentencepiece model")
    proto = sp.serialized_model_proto()
    pieces, scores, types = [], [], []
    add_dummy_prefix = True
    for field, _, value in _fields(proto):
        if field == 1:          # SentencePiece { piece = 1; score = 2; type = 3 [default NORMAL] }
            piece, score, ptype = "", 0.0, 1
            for f, _, v in _fields(value):
                if f == 1:
                    piece = v.decode("utf-8")
                elif f == 2:
                    score = struct.unpack("<f", v)[0]
                elif f == 3:
                    ptype = v
            pieces.append(piece)
            scores.append(score)
            types.append(ptype)
        elif field == 3:        # NormalizerSpec { add_dummy_prefix = 3 [default true] }
            for f, _, v in _fields(value):
                if f == 3:
                    add_dummy_prefix = bool(v)
    if len(pieces) != sp.GetPieceSize() or any(sp.IdToPiece(i) != p for i, p in enumerate(pieces)):
        raise ConvertError(f"{path}: the model's pieces disagree with sentencepiece's")
    return {"tokens": pieces, "scores": scores, "types": types, "bos": sp.bos_id(), "eos": sp.eos_id(),
            "unk": sp.unk_id(), "pad": sp.pad_id(), "add_dummy_prefix": add_dummy_prefix}


# ---------------------------------------------------------------- conversion

def _to_f32(a, dtype):
    if dtype == "bf16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def _to_bf16(f):
    """Round to nearest even, like torch; NaNs stay NaN."""
    u = f.view(np.uint32)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(f)
    if nan.any():
        r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r


def producer(name, tensor, out_type):
    """Chunks of the tensor's bytes in the output type, a slab of rows at a time."""
    def chunks():
        a = tensor.load().reshape(-1)
        for start in range(0, a.size, CHUNK_ELEMENTS):
            part = a[start:start + CHUNK_ELEMENTS]
            if out_type == gw.BF16 and tensor.dtype == "bf16":
                yield np.ascontiguousarray(part)
                continue
            f = _to_f32(part, tensor.dtype)
            if out_type == gw.F32:
                yield f
            elif out_type == gw.BF16:
                yield _to_bf16(f)
            else:
                h = f.astype(np.float16)
                if np.isinf(h).sum() != np.isinf(f).sum():
                    raise ConvertError(f"{name}: values beyond the f16 range; use --outtype bf16 or f32")
                yield h
        del a
        tensor.release()
    return chunks


def build_writer(index, hp, tok, outtype, model_name):
    w = gw.GGUFWriter()
    w.add_string("general.architecture", "onellm")
    w.add_string("general.name", model_name)
    w.add_uint32("general.file_type", FILE_TYPES[outtype])
    a = "onellm"
    for key, value in [("context_length", CONTEXT_LENGTH), ("embedding_length", hp["dim"]),
                       ("block_count", hp["layers"]), ("feed_forward_length", hp["ffn"]),
                       ("attention.head_count", hp["heads"]), ("attention.head_count_kv", hp["kv_heads"]),
                       ("rope.dimension_count", hp["head_dim"]), ("vocab_size", hp["vocab"])]:
        w.add_uint32(f"{a}.{key}", value)
    w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", hp["norm_eps"])
    w.add_float32(f"{a}.rope.freq_base", ROPE_THETA)
    for key, value in [("embedding_length", hp["clip_width"]), ("block_count", hp["clip_layers"]),
                       ("attention.head_count", hp["clip_heads"]), ("feed_forward_length", hp["clip_mlp"]),
                       ("patch_size", hp["patch"]), ("image_size", hp["image_size"])]:
        w.add_uint32(f"{a}.clip.{key}", value)
    w.add_float32(f"{a}.clip.attention.layer_norm_epsilon", CLIP_LN_EPS)
    for key, value in [("expert_count", hp["experts"]), ("block_count", hp["upm_blocks"]),
                       ("embedding_length", hp["upm_dim"]), ("attention.head_count", hp["upm_heads"]),
                       ("feed_forward_length", hp["upm_ffn"]), ("resample_token_count", hp["resample_tokens"]),
                       ("router.feed_forward_length", hp["router_hidden"])]:
        w.add_uint32(f"{a}.upm.{key}", value)
    w.add_float32(f"{a}.upm.attention.layer_norm_rms_epsilon", hp["norm_eps"])
    w.add_array(f"{a}.modalities", gw.STRING, [ours for _, ours in MODALITIES])
    for theirs, ours in MODALITIES:
        w.add_uint32(f"{a}.modality.{ours}.token_count", hp["tokens"][theirs])
        w.add_uint32(f"{a}.modality.{ours}.frames", FRAMES[theirs])
        w.add_string(f"{a}.modality.{ours}.prompt", PROMPTS[theirs])
    w.add_uint32(f"{a}.modality.audio.mel_bins", AUDIO_MEL_BINS)
    w.add_uint32(f"{a}.modality.audio.target_length", AUDIO_TARGET_LENGTH)
    w.add_uint32(f"{a}.modality.audio.patch_stride", AUDIO_STRIDE)
    w.add_float32(f"{a}.modality.audio.norm_mean", AUDIO_NORM_MEAN)
    w.add_float32(f"{a}.modality.audio.norm_std", AUDIO_NORM_STD)
    w.add_uint32(f"{a}.modality.point.point_count", POINT_COUNT)
    w.add_uint32(f"{a}.modality.point.group_size", POINT_GROUP_SIZE)
    w.add_uint32(f"{a}.modality.imu.length", hp["imu_length"])
    w.add_uint32(f"{a}.modality.fmri.voxel_count", hp["fmri_voxels"])
    w.add_array(f"{a}.image_mean", gw.FLOAT32, IMAGE_MEAN)
    w.add_array(f"{a}.image_std", gw.FLOAT32, IMAGE_STD)
    w.add_string(f"{a}.prompt_template", PROMPT_TEMPLATE)

    w.add_string("tokenizer.ggml.model", "llama")
    w.add_array("tokenizer.ggml.tokens", gw.STRING, tok["tokens"])
    w.add_array("tokenizer.ggml.scores", gw.FLOAT32, tok["scores"])
    w.add_array("tokenizer.ggml.token_type", gw.INT32, tok["types"])
    w.add_uint32("tokenizer.ggml.bos_token_id", tok["bos"])
    w.add_uint32("tokenizer.ggml.eos_token_id", tok["eos"])
    w.add_uint32("tokenizer.ggml.unknown_token_id", tok["unk"])
    if tok["pad"] >= 0:
        w.add_uint32("tokenizer.ggml.padding_token_id", tok["pad"])
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_bool("tokenizer.ggml.add_eos_token", False)
    w.add_bool("tokenizer.ggml.add_space_prefix", tok["add_dummy_prefix"])

    for key, tensor in index.items():
        name = gguf_name(key)
        if name is None:
            continue
        shape = gguf_shape(key, tensor.shape)
        # like llama.cpp: vectors (norms, biases, tags, the class token) stay F32
        out_type = gw.F32 if len(shape) == 1 else OUT_TYPES[outtype]
        w.add_tensor(name, tuple(reversed(shape)), out_type, producer(name, tensor, out_type))
    return w


def convert(checkpoint, tokenizer, outtype, outfile, model_name="OneLLM", log=print):
    files, params_path = checkpoint_files(checkpoint)
    params = {}
    if params_path:
        with open(params_path) as f:
            params = json.load(f)
    log(f"reading {len(files)} checkpoint file(s)" + (f" and {params_path}" if params_path else " (no params.json)"))
    index = load_index(files, log)
    hp = infer_hparams(index, params)
    check_keys(index, hp, log)
    tok = read_tokenizer(tokenizer)
    if len(tok["tokens"]) != hp["vocab"]:
        raise ConvertError(f"{tokenizer} has {len(tok['tokens'])} pieces but the model's vocabulary is {hp['vocab']}")
    log(f"LLM {hp['layers']} layers x {hp['dim']} ({hp['heads']} heads), CLIP {hp['clip_layers']} x "
        f"{hp['clip_width']} ({hp['clip_heads']} heads), UPM {hp['experts']} experts x {hp['upm_blocks']} "
        f"blocks ({hp['upm_heads']} heads), vocabulary {hp['vocab']}")
    w = build_writer(index, hp, tok, outtype, model_name)
    total = w.total_size()
    log(f"writing {outfile} ({total / 1e9:.2f} GB, {outtype})")
    w.write(outfile, progress=lambda name, i, n: log(f"[{i + 1}/{n}] {name}") if (i + 1) % 50 == 0 or i + 1 == n else None)
    log(f"wrote {outfile}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert an official OneLLM checkpoint to GGUF.")
    ap.add_argument("checkpoint", help="consolidated.00-of-01.pth, or a folder with it or its shards")
    ap.add_argument("--tokenizer", help="tokenizer.model (default: the one beside the checkpoint)")
    ap.add_argument("--outtype", choices=sorted(OUT_TYPES), default="f16",
                    help="type of the matrices (vectors stay f32); default f16")
    ap.add_argument("--outfile", required=True)
    ap.add_argument("--name", default="OneLLM", help="general.name of the model")
    args = ap.parse_args(argv)
    tokenizer = args.tokenizer
    if tokenizer is None:
        folder = args.checkpoint if os.path.isdir(args.checkpoint) else os.path.dirname(os.path.abspath(args.checkpoint))
        tokenizer = os.path.join(folder, "tokenizer.model")
    if not os.path.isfile(tokenizer):
        print(f"onellm-convert: {tokenizer}: no such tokenizer file (give --tokenizer)", file=sys.stderr)
        return 1
    try:
        convert(args.checkpoint, tokenizer, args.outtype, args.outfile, args.name,
                log=lambda msg: print(msg, file=sys.stderr))
    except (ConvertError, OSError) as e:
        print(f"onellm-convert: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
