# Writes the preprocessing goldens of tests/test-preprocess.c into tests/data/preprocess/ from
# preprocess_ref.py, and cross-checks the reference against the libraries the official pipeline uses where
# they are installed (Pillow, torch, torchaudio). Run by hand with /usr/bin/python3; the tests only read the
# files.
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import preprocess_ref as ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "preprocess")


def save(name, arr):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(arr))


def photo(h, w, seed, gray=False):
    """A photo-like picture: smooth colour gradients, hard-edged shapes and fine texture."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / w, y / h
    img = np.stack([120 + 100 * np.sin(3 * u + 1.5 * v), 90 + 80 * v + 40 * np.cos(7 * u * v),
                    200 - 150 * u * v], axis=2)
    disc = (u - 0.6) ** 2 + (v - 0.4) ** 2 < 0.05
    img[disc] = [230, 40, 30]
    img[(np.abs(u - 0.25) < 0.08) & (v > 0.55)] = [20, 30, 60]
    img += (10 * np.sin(x * 1.7) * np.cos(y * 2.3))[:, :, None] + rng.normal(0, 8, img.shape)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img.mean(axis=2).round().astype(np.uint8) if gray else img


def check_pil(img, crop, size=224):
    try:
        from PIL import Image
    except ImportError:
        print("  (Pillow not installed: no cross-check)")
        return
    im = Image.fromarray(img).convert("RGB")
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    nl = int(size * long / short)
    nw, nh = (size, nl) if w <= h else (nl, size)
    r = np.asarray(im.resize((nw, nh), Image.BICUBIC))
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    diff = np.abs(r[top:top + size, left:left + size].astype(int) - crop.astype(int)).max()
    print(f"  Pillow {Image.__version__} vs reference: max |diff| = {diff} (of 255)")
    assert diff == 0


def images():
    cases = {"landscape": photo(250, 333, 1), "portrait": photo(389, 150, 2), "small": photo(60, 97, 3),
             "wide_gray": photo(40, 1000, 4, gray=True)}
    for name, img in cases.items():
        crop = ref.image_eval_crop(img)
        print(f"image {name} {img.shape}")
        check_pil(img, crop)
        save(f"image_{name}_in", img)
        save(f"image_{name}_crop", crop)
    depth = photo(100, 150, 5, gray=True)
    crop = ref.map_crop(cases["landscape"], depth)
    try:
        from PIL import Image
        m = Image.fromarray(depth).convert("RGB").resize((333, 250))
        check_pil(np.asarray(m), crop)
    except ImportError:
        pass
    save("depth_in", depth)
    save("depth_crop", crop)


def video():
    # (frames, fps numerator, fps denominator)
    cases = [(300, 30, 1), (250, 25, 1), (30, 30, 1), (10, 30, 1), (1000, 30000, 1001), (7, 5, 2),
             (451, 24000, 1001), (120, 60000, 1001), (90, 2997, 100), (1, 30, 1), (12345, 30000, 1001)]
    idx = [ref.video_clip_frames(n, num / den) for n, num, den in cases]
    save("video_clip_cases", np.array(cases, np.int32))
    save("video_clip_frames", np.array(idx, np.int32))
    win = [(30, 5), (31, 5), (7, 5), (1, 5), (100, 8), (64, 1), (10, 10), (1001, 7)]
    save("video_window_cases", np.array(win, np.int32))
    frames = np.concatenate([ref.video_window_frames(n, t) for n, t in win])
    save("video_window_frames", frames.astype(np.int32))
    for name, frame in (("land", photo(144, 256, 6)), ("port", photo(260, 150, 7))):
        out = ref.video_frame(frame)
        try:
            import torch
            import torch.nn.functional as F
            x = torch.from_numpy(frame.astype(np.float32).transpose(2, 0, 1)[:, None]) / 255.0
            c, t, h, w = x.shape
            if w < h:
                nh, nw = int(math.floor((float(h) / w) * 224)), 224
            else:
                nh, nw = 224, int(math.floor((float(w) / h) * 224))
            s = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)[:, 0]
            s = (s - torch.tensor(ref.CLIP_MEAN)[:, None, None]) / torch.tensor(ref.CLIP_STD)[:, None, None]
            tc = []
            for sp in range(3):
                yo, xo = int(math.ceil((nh - 224) / 2)), int(math.ceil((nw - 224) / 2))
                if nh > nw:
                    yo = [0, yo, nh - 224][sp]
                else:
                    xo = [0, xo, nw - 224][sp]
                tc.append(s[:, yo:yo + 224, xo:xo + 224].numpy())
            print(f"video frame {name}: torch {torch.__version__} F.interpolate vs reference: max |diff| = "
                  f"{np.abs(np.stack(tc) - out).max():.3g}")
        except ImportError:
            pass
        save(f"video_{name}_in", frame)
        # 1/16 of the pixels (every 4th row and column) keeps the golden small
        save(f"video_{name}_out_sub4", out[:, :, ::4, ::4])


def chirp(n, rate, f0, f1, seed):
    rng = np.random.RandomState(seed)
    t = np.arange(n) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * t[-1]))
    x = 0.4 * np.sin(phase) + 0.15 * np.sin(2 * np.pi * 440 * t) * (t > t[-1] / 3) + 0.05 * rng.normal(size=n)
    return x + 0.02


def audio():
    n44 = int(2.0 * 44100)
    st = np.stack([chirp(n44, 44100, 100, 12000, 8), 0.6 * chirp(n44, 44100, 3000, 200, 9)])
    s16 = np.clip(np.rint(st * 32767), -32768, 32767).astype(np.int16)
    wav44 = s16.astype(np.float32) / 32768
    mono = chirp(int(1.3 * 16000), 16000, 50, 7900, 10).astype(np.float32)[None]
    for name, wav, rate in (("44k_stereo", wav44, 44100), ("16k_mono", mono, 16000)):
        fb, full = ref.audio_features(wav, rate)
        print(f"audio {name}: {fb.shape[0]} frames")
        try:
            import torch
            import torchaudio
            w = torch.from_numpy(wav)
            if rate != 16000:
                w = torchaudio.transforms.Resample(rate, 16000)(w)
                print(f"  torchaudio {torchaudio.__version__} resample vs reference: max |diff| = "
                      f"{np.abs(w.numpy() - ref.resample(wav, rate, 16000)).max():.3g}")
            w = w - w.mean()
            tf = torchaudio.compliance.kaldi.fbank(w, htk_compat=True, sample_frequency=16000,
                                                   use_energy=False, window_type="hanning", num_mel_bins=128,
                                                   dither=0.0, frame_shift=10).numpy()
            d = np.abs(tf - fb)
            t64 = torchaudio.compliance.kaldi.fbank(w.double(), htk_compat=True, sample_frequency=16000,
                                                    use_energy=False, window_type="hanning", num_mel_bins=128,
                                                    dither=0.0, frame_shift=10).numpy()
            print(f"  torchaudio kaldi.fbank vs reference (log-mel): max |diff| = {d.max():.3g}, "
                  f"99.9th percentile {np.percentile(d, 99.9):.3g}; on float64 input max |diff| = "
                  f"{np.abs(t64 - fb).max():.3g}")
        except ImportError:
            pass
        save(f"audio_{name}_in", s16.T if rate == 44100 else wav[0])
        save(f"audio_{name}_logmel", fb)


def points():
    rng = np.random.RandomState(11)
    n = 8192
    xyz = rng.normal(size=(n, 3))
    xyz[: n // 2] /= np.linalg.norm(xyz[: n // 2], axis=1, keepdims=True)
    xyz[n // 2:, 2] = -1.2
    xyz = xyz * [2.0, 1.0, 0.5] + [3.0, -1.0, 0.2]
    palette = rng.randint(0, 256, size=(12, 3)) / 255.0
    rgb = palette[rng.randint(0, 12, n)]
    grad = slice(n // 2, n // 2 + 2500)
    rgb[grad] = np.round(np.clip(0.5 + 0.4 * xyz[grad, :3] / [2, 1, 0.5] - [1.5, -1, 0.4], 0, 1) * 255) / 255
    rgb[-1500:] = rng.uniform(size=(1500, 3))
    rgb[:40] = 0.0
    pc = np.concatenate([xyz, rgb], axis=1).astype(np.float32)
    pc = pc[rng.permutation(n)]
    x, f, k = ref.point_prepare(pc)
    print(f"point: {len(np.unique(pc[:, 3:], axis=0))} distinct colours, "
          f"{len(np.unique(f))} distinct centres")
    save("point_in", pc)
    save("point_norm", x)
    save("point_fps", f.astype(np.int32))
    save("point_knn", k.astype(np.int32))
    # a small tokenizer (600 points: the kernel's block is 512) on 5 colours: FPS runs out of distinct colours
    few = np.concatenate([rng.normal(size=(600, 3)), (rng.randint(0, 5, size=(600, 1)) * [0.2, 0.1, 0.05])],
                         axis=1).astype(np.float32)
    x, f, k = ref.point_prepare(few, 600, 128, 8)
    save("point_few_in", few)
    save("point_few_fps", f.astype(np.int32))
    save("point_few_knn", k.astype(np.int32))


def imu():
    rng = np.random.RandomState(12)
    for rate, n in ((100, 300), (250, 700)):
        t = np.arange(n) / rate
        sig = np.stack([9.81 * np.sin(2 * np.pi * 1.3 * t), np.cos(2 * np.pi * 0.7 * t), 0.3 + 0 * t,
                        0.5 * np.sin(2 * np.pi * 4 * t), rng.normal(0, 0.1, n),
                        np.sign(np.sin(2 * np.pi * t))])
        sig = sig.astype(np.float32)
        out = ref.imu(sig, rate)
        try:
            import torch
            import torchaudio
            ta = torchaudio.functional.resample(torch.from_numpy(sig), rate, 200).numpy()
            keep = min(400, ta.shape[1])
            print(f"imu {rate} Hz: torchaudio.functional.resample vs reference: max |diff| = "
                  f"{np.abs(ta[:, :keep] - out[:, :keep]).max():.3g}")
        except ImportError:
            pass
        save(f"imu_{rate}hz_in", sig)
        save(f"imu_{rate}hz_out", out)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    images()
    video()
    audio()
    points()
    imu()
