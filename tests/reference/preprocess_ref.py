# Reference preprocessing of every OneLLM modality in numpy, written from the model spec (§2) and the
# documented algorithms of the libraries the official pipeline calls (Pillow, torchvision, pytorchvideo,
# torchaudio, the pointnet2 CUDA kernel, torch.cdist/topk). Independent of the C code; used to generate the
# goldens.
import math
from fractions import Fraction

import numpy as np

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)


# ---------------------------------------------------------------- images (Pillow ImagingResample, 8-bit)

PREC = 22  # Pillow: 32 - 8 - 2 fraction bits


def _bicubic(x):
    a = -0.5
    x = np.abs(x)
    return np.where(x < 1.0, ((a + 2.0) * x - (a + 3.0)) * x * x + 1,
                    np.where(x < 2.0, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _coeffs(in_size, out_size):
    """Pillow's precompute_coeffs (support 2, scaled when shrinking) and normalize_coeffs_8bpc."""
    scale = float(np.float32(in_size)) / out_size
    fscale = max(scale, 1.0)
    support = 2.0 * fscale
    ksize = int(math.ceil(support)) * 2 + 1
    starts, weights = [], np.zeros((out_size, ksize), dtype=np.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = _bicubic((np.arange(xmax) + xmin - center + 0.5) * (1.0 / fscale))
        ww = w.sum()
        if ww != 0.0:
            w = w / ww
        fixed = w * (1 << PREC)
        weights[xx, :xmax] = np.trunc(np.where(w < 0, fixed - 0.5, fixed + 0.5)).astype(np.int64)
        starts.append(xmin)
    return np.array(starts), weights


def _pass(img, out_size, axis):
    """One resampling pass along axis of a uint8 [H, W, C] image, rounded and clipped back to uint8."""
    in_size = img.shape[axis]
    starts, weights = _coeffs(in_size, out_size)
    ksize = weights.shape[1]
    src = np.moveaxis(img, axis, 0).astype(np.int64)
    padded = np.concatenate([src, np.zeros((ksize,) + src.shape[1:], np.int64)], axis=0)
    acc = np.full((out_size,) + src.shape[1:], 1 << (PREC - 1), dtype=np.int64)
    for j in range(ksize):
        acc += padded[starts + j] * weights[:, j].reshape((-1,) + (1,) * (src.ndim - 1))
    out = np.clip(acc >> PREC, 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def pil_resize(img, out_w, out_h):
    """Image.resize((out_w, out_h), BICUBIC) of a uint8 [H, W, C] image: horizontal pass, then vertical."""
    h, w = img.shape[:2]
    if out_w != w:
        img = _pass(img, out_w, 1)
    if out_h != h:
        img = _pass(img, out_h, 0)
    return img


def to_rgb(img):
    """Image.convert('RGB') for L and RGB(A) inputs."""
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    return img[:, :, :3]


def image_eval_crop(img, size=224):
    """torchvision Resize(size, BICUBIC) + CenterCrop(size) on a PIL image: the uint8 crop [size, size, 3]."""
    img = to_rgb(img)
    h, w = img.shape[:2]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    r = pil_resize(img, new_w, new_h)
    top = int(round((new_h - size) / 2.0))
    left = int(round((new_w - size) / 2.0))
    return r[top:top + size, left:left + size]


def normalize_u8(crop):
    """ToTensor + Normalize: [3, H, W] float32."""
    x = crop.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    return (x - CLIP_MEAN[:, None, None]) / CLIP_STD[:, None, None]


def map_crop(rgb, depth, size=224):
    """The map slot of a (RGB, map) pair: convert('RGB'), resize to the photo's size (bicubic), eval crop."""
    h, w = rgb.shape[:2]
    return image_eval_crop(pil_resize(to_rgb(depth), w, h), size)


# ---------------------------------------------------------------- video (pytorchvideo 0.1.5)

def video_clip_frames(n_frames, fps, n_clips=5, clip_duration=1):
    duration = n_frames / fps
    span = Fraction(max(duration - clip_duration, 0))
    out = []
    for i in range(n_clips):
        start = Fraction(span, n_clips) * i
        out.append(min(math.ceil(fps * float(start)), n_frames - 1))
    return out


def video_window_frames(n_frames, n_samples):
    """torch.linspace(0, n - 1, n_samples) in float32 (two halves), clamped, truncated."""
    start, end = np.float32(0), np.float32(n_frames - 1)
    if n_samples == 1:
        return [0]
    step = (end - start) / np.float32(n_samples - 1)
    half = n_samples // 2
    v = [start + step * np.float32(i) if i < half else end - step * np.float32(n_samples - i - 1)
         for i in range(n_samples)]
    return [int(min(max(x, start), end)) for x in v]


def _lerp(in_size, out_size):
    """torch's linear source index and weights: the scale in float32, the position in double (torch's CPU
    accumulate type), the weights rounded to float32."""
    if in_size == out_size:
        i = np.arange(out_size)
        return i, i, np.ones(out_size, np.float32), np.zeros(out_size, np.float32)
    scale = float(np.float32(in_size) / np.float32(out_size))
    real = np.maximum(scale * (np.arange(out_size) + 0.5) - 0.5, 0.0)
    i0 = real.astype(np.int64)
    i1 = i0 + (i0 < in_size - 1)
    l1 = np.clip(real - i0, 0.0, 1.0)
    return i0, i1, (1.0 - l1).astype(np.float32), l1.astype(np.float32)


def video_frame(frame, size=224, n_crops=3):
    """÷255, F.interpolate(bilinear, align_corners=False) of the short side, NormalizeVideo, SpatialCrop."""
    x = to_rgb(frame).astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    _, h, w = x.shape
    if w < h:
        new_h, new_w = int(math.floor(float(h) / w * size)), size
    else:
        new_h, new_w = size, int(math.floor(float(w) / h * size))
    y0, y1, a0, a1 = _lerp(h, new_h)
    x0, x1, b0, b1 = _lerp(w, new_w)
    t0 = x[:, y0][:, :, x0] * b0 + x[:, y0][:, :, x1] * b1
    t1 = x[:, y1][:, :, x0] * b0 + x[:, y1][:, :, x1] * b1
    s = t0 * a0[:, None] + t1 * a1[:, None]
    s = (s - CLIP_MEAN[:, None, None]) / CLIP_STD[:, None, None]
    crops = []
    for spatial in ([0, 1, 2] if n_crops == 3 else [1]):
        yo, xo = int(math.ceil((new_h - size) / 2)), int(math.ceil((new_w - size) / 2))
        if new_h > new_w:
            yo = {0: 0, 1: yo, 2: new_h - size}[spatial]
        else:
            xo = {0: 0, 1: xo, 2: new_w - size}[spatial]
        crops.append(s[:, yo:yo + size, xo:xo + size])
    return np.stack(crops).astype(np.float32)


# ---------------------------------------------------------------- audio (torchaudio 0.13 Resample +
# kaldi.fbank)

def resample_kernel(orig, new):
    g = math.gcd(orig, new)
    orig, new = orig // g, new // g
    base = min(orig, new) * 0.99
    width = math.ceil(6 * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64) / orig
    phase = (-np.arange(new, dtype=np.float32) / np.float32(new)).astype(np.float64)
    t = (phase[:, None] + idx[None, :]) * base
    t = np.clip(t, -6, 6)
    window = np.cos(t * math.pi / 6 / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(t == 0, 1.0, np.sin(t) / t)
    return (sinc * (window * (base / orig))).astype(np.float32), width, orig, new


def resample(x, orig_rate, new_rate):
    """x: [C, N] float32 → [C, ceil(new * N / orig)] (rates reduced by their gcd)."""
    if orig_rate == new_rate:
        return x.astype(np.float32)
    k, width, orig, new = resample_kernel(orig_rate, new_rate)
    c, n = x.shape
    xp = np.concatenate([np.zeros((c, width)), x.astype(np.float64), np.zeros((c, width + orig))], axis=1)
    blocks = (xp.shape[1] - k.shape[1]) // orig + 1
    frames = np.stack([xp[:, m * orig:m * orig + k.shape[1]] for m in range(blocks)], axis=1)  # [C, M, taps]
    y = np.einsum("cmt,jt->cmj", frames, k.astype(np.float64)).reshape(c, -1)
    target = -(-new * n // orig)
    return y[:, :target].astype(np.float32)


def _mel(f):
    return 1127.0 * np.log(1.0 + f / 700.0)


def kaldi_fbank(wav, n_mels=128):
    """Channel 0 of wav [C, N] float32 → log-mel [frames, n_mels] (float64 arithmetic)."""
    x = wav[0].astype(np.float64)
    n_frames = 1 + (len(x) - 400) // 160
    idx = np.arange(400)[None, :] + 160 * np.arange(n_frames)[:, None]
    fr = x[idx]
    fr = fr - fr.mean(axis=1, keepdims=True)
    prev = np.concatenate([fr[:, :1], fr[:, :-1]], axis=1)
    fr = fr - 0.97 * prev
    fr = fr * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399))
    spec = np.abs(np.fft.rfft(fr, n=512)) ** 2  # [frames, 257]
    # torchaudio builds the triangles in float32 from float64 scalars
    f32 = np.float32
    lo, hi = _mel(20.0), _mel(8000.0)
    delta = f32((hi - lo) / (n_mels + 1))
    b = np.arange(n_mels, dtype=f32)[:, None]
    left, center, right = f32(lo) + b * delta, f32(lo) + (b + f32(1)) * delta, f32(lo) + (b + f32(2)) * delta
    arg = f32(1) + f32(16000 / 512) * np.arange(256, dtype=f32)[None, :] / f32(700)
    mel = f32(1127.0) * np.log(arg.astype(np.float64)).astype(f32)
    banks = np.maximum(f32(0), np.minimum((mel - left) / (center - left), (right - mel) / (right - center)))
    banks = np.concatenate([banks.astype(np.float64), np.zeros((n_mels, 1))], axis=1)
    e = spec @ banks.T
    return np.log(np.maximum(e, np.finfo(np.float32).eps))


def audio_features(wav, rate, n_mels=128, target=1024):
    """wav [C, N] float32 in [-1, 1] → (the log-mel rows before padding [frames, n_mels],
    the model input [1, n_mels, target]). Samples past full scale are clipped, as the engine does."""
    x = resample(np.clip(wav, np.float32(-1), np.float32(1)), rate, 16000)
    x = (x - np.float32(x.astype(np.float64).mean())).astype(np.float32)
    fb = kaldi_fbank(x, n_mels).astype(np.float32)
    n = fb.shape[0]
    full = np.zeros((target, n_mels), np.float32)
    full[:min(n, target)] = fb[:target]
    norm = (full + np.float32(4.2677393)) / np.float32(9.1379948)
    return fb, norm.T[None].astype(np.float32)


# ---------------------------------------------------------------- point cloud

def fma32(a, b, c):
    """Correctly rounded float32 fma: the float64 sum made round-to-odd, then rounded to float32."""
    a, b, c = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    p = a * b  # exact: 48 significant bits
    s = p + c
    bp = s - p
    err = (p - (s - bp)) + (c - bp)
    bits = s.view(np.int64)
    odd = (bits & 1) == 1
    fix = (err != 0) & ~odd
    s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def pc_norm(pc):
    xyz = pc[:, :3].astype(np.float32)
    centroid = xyz.astype(np.float64).mean(axis=0).astype(np.float32)
    xyz = xyz - centroid
    sq = xyz * xyz
    m = np.sqrt((sq[:, 0] + sq[:, 1]) + sq[:, 2]).max()
    if m > 0:
        xyz = xyz / m
    return np.concatenate([xyz, pc[:, 3:].astype(np.float32)], axis=1)


def _bitrev(t, bits):
    r = np.zeros_like(t)
    for _ in range(bits):
        r = (r << 1) | (t & 1)
        t = t >> 1
    return r


def furthest_point_sample(p, m):
    """The pointnet2 CUDA kernel on p [N, 3] float32 (nvcc fma contraction, per-thread first maximum, tree
    reduction keeping the lower slot on ties)."""
    n = p.shape[0]
    block = max(min(1 << int(math.log(n) / math.log(2.0)), 1024), 1)
    prio = _bitrev(np.arange(n) % block, block.bit_length() - 1)
    temp = np.full(n, 1e10, np.float32)
    idx = [0]
    for _ in range(1, m):
        q = p[idx[-1]]
        dx, dy, dz = (p[:, i] - q[i] for i in range(3))
        d = fma32(dz, dz, fma32(dx, dx, dy * dy))
        temp = np.minimum(d, temp)
        cand = np.nonzero(temp == temp.max())[0]
        idx.append(int(cand[np.lexsort((cand, prio[cand]))[0]]))
    return np.array(idx, dtype=np.int64)


def knn(p, centres, k):
    """torch.cdist (matrix-product form, one FMA chain per element) + topk(largest=False): [m, k], ascending,
    equal distances in index order."""
    sq = p * p
    pn = (sq[:, 0] + sq[:, 1]) + sq[:, 2]
    out = []
    for c in centres:
        cv = p[c]
        csq = cv * cv
        cn = (csq[0] + csq[1]) + csq[2]
        acc = (np.float32(-2) * p[:, 0]) * cv[0]
        acc = fma32(np.float32(-2) * p[:, 1], cv[1], acc)
        acc = fma32(np.float32(-2) * p[:, 2], cv[2], acc)
        acc = (acc + pn).astype(np.float32)
        acc = (acc + cn).astype(np.float32)
        dist = np.sqrt(np.maximum(acc, np.float32(0)))
        out.append(np.argsort(dist, kind="stable")[:k])
    return np.array(out, dtype=np.int64)


def point_prepare(pc, n_points=8192, n_groups=1024, group_size=32):
    n = pc.shape[0]
    sel = (np.arange(n_points) * n) // n_points if n >= n_points else np.arange(n_points) % n
    x = pc_norm(pc[sel])
    rgb = np.ascontiguousarray(x[:, 3:6])
    f = furthest_point_sample(rgb, n_groups)
    return x, f, knn(rgb, f, group_size)


# ---------------------------------------------------------------- IMU and fMRI

def imu(signal, rate, n_out=400):
    x = resample(signal.astype(np.float32), rate, 200)
    out = np.zeros((signal.shape[0], n_out), np.float32)
    keep = min(n_out, x.shape[1])
    out[:, :keep] = x[:, :keep]
    return out


def fmri(data):
    return data.astype(np.float32).mean(axis=0)[None]
