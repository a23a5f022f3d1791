#!/usr/bin/python3
# Synthetic captioning data for the default model: all eight modalities, with ground truth, from GStreamer's
# test sources and small numpy simulators; also writes the held-out cases of tools/train/heldout.json.
"""Synthetic training and held-out data for the shipped default OneLLM model (docs/default-model.md).

Every sample is a *configuration* (a dict: the GStreamer test-source settings or the simulator's parameters),
a caption made from a template, and the key attribute the caption must state (the keyword). Configurations are
drawn from a seeded generator; the held-out cases are combinations of attributes (pattern x colours x frame
size, wave x frequency, motion x device orientation, shape x colour, ...) that the training split never
contains, so the held-out accuracy measures generalisation to new combinations rather than memorisation.

Model inputs are made with tests/reference/preprocess_ref.py, the numpy preprocessing that the C engine
matches, so training sees the tensors inference will see. Only the point tokenizer's indices use a faster
torch furthest-point sampling for training (same algorithm, tie-breaking may differ on exactly equal
distances); the held-out point inputs use the reference's exact indices.

    synth.py train OUT_DIR [--seed S] [--scale F]     training tensors, one .npz per modality
    synth.py heldout OUT_DIR [--json heldout.json]    the held-out cases (heldout.json) and the .npy inputs of the
                                                      simulated modalities (IMU, points, depth/normal, fMRI)
"""

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import preprocess_ref as pre  # noqa: E402

# The prompts tools/onellm-convert.py writes into the GGUF (onellm.modality.<m>.prompt): the official ones,
# taken from the converter so that training and the shipped file cannot disagree.
_convert_spec = importlib.util.spec_from_file_location("onellm_convert",
                                                       os.path.join(HERE, "..", "onellm-convert.py"))
_convert = importlib.util.module_from_spec(_convert_spec)
_convert_spec.loader.exec_module(_convert)
PROMPTS = _convert.PROMPTS

# Named colours: big-endian ARGB as videotestsrc's foreground-color/background-color take them, and RGB.
COLOURS = {
    "red": 0xFFFF0000, "green": 0xFF00FF00, "blue": 0xFF0000FF, "yellow": 0xFFFFFF00,
    "white": 0xFFFFFFFF, "black": 0xFF000000, "cyan": 0xFF00FFFF, "magenta": 0xFFFF00FF,
}
COLOUR_NAMES = list(COLOURS)


def rgb_of(colour):
    """RGB in [0, 1] of a colour name, or of an unnamed colour given as its RGB triple."""
    if not isinstance(colour, str):
        return np.array(colour, np.float32)
    v = COLOURS[colour]
    return np.array([(v >> 16) & 255, (v >> 8) & 255, v & 255], np.float32) / 255.0


# Training shows point clouds, scenes and two-colour patterns in unnamed colours too, with every shape and
# pattern: colours at least this far (RGB in [0, 1]) from every named colour, in this share of the recoloured
# samples. Without them the held-out (shape, colour) pairs leave each colour with a shape it never has in
# training, and the model learned that ("a white cloud is never a cone") wherever its shape evidence was weak;
# a pattern seen only in the named colour pairs went unseen in a held-out pair's contrast (red on magenta).
UNNAMED_DISTANCE = 0.4
UNNAMED_SHARE = 0.3
UNNAMED_CONTRAST = 0.35
# The share of unnamed pattern pairs that differ in one channel only. Of the 48 named training pairs 6 differ
# in blue alone, and the models that missed the held-out red on magenta (a ball as "concentric circles", a
# gradient as "a plain screen") saw no pattern where only blue changes.
UNNAMED_ONE_CHANNEL = 0.5


def is_unnamed(c):
    return min(np.linalg.norm(np.subtract(c, rgb_of(n))) for n in COLOUR_NAMES) >= UNNAMED_DISTANCE


def unnamed_colour(rng):
    while True:
        c = [round(float(v), 3) for v in rng.uniform(0, 1, 3)]
        if is_unnamed(c):
            return c


def unnamed_pair(rng):
    """Two unnamed colours at least UNNAMED_CONTRAST apart, in UNNAMED_ONE_CHANNEL of the pairs in one channel only."""
    one_channel = rng.uniform() < UNNAMED_ONE_CHANNEL
    while True:
        fg, bg = unnamed_colour(rng), unnamed_colour(rng)
        if one_channel:
            k = int(rng.integers(3))
            bg = [b if i == k else f for i, (f, b) in enumerate(zip(fg, bg))]
        if is_unnamed(bg) and np.linalg.norm(np.subtract(fg, bg)) >= UNNAMED_CONTRAST:
            return fg, bg


# ------------------------------------------------------------------------------------------ GStreamer sources

def gst_video(cfg, n_frames, last_only=False):
    """uint8 [n, H, W, 3] frames of videotestsrc with the settings of cfg; [1, H, W, 3] the last with last_only."""
    # multifilesink without a %d in its location rewrites the one file with every frame: the last one stays
    sink = "multifilesink" if last_only else "filesink"
    with tempfile.NamedTemporaryFile(suffix=".raw") as f:
        subprocess.run(["gst-launch-1.0", "-q"] + video_pipeline(cfg, n_frames).split()
                       + ["!", sink, f"location={f.name}"], check=True)
        data = np.fromfile(f.name, np.uint8)
    return data.reshape(-1, cfg["height"], cfg["width"], 3)


def video_source(cfg):
    """The videotestsrc element and caps of a configuration, as gst-launch syntax."""
    props = [f"pattern={cfg['pattern']}"]
    if "fg" in cfg:
        props.append(f"foreground-color=0x{COLOURS[cfg['fg']]:08x}")
    if "bg" in cfg:
        props.append(f"background-color=0x{COLOURS[cfg['bg']]:08x}")
    if "motion" in cfg:
        props.append(f"motion={cfg['motion']}")
    return ("videotestsrc " + " ".join(props)
            + f" ! video/x-raw,format=RGB,width={cfg['width']},height={cfg['height']},framerate={cfg['fps']}/1")


def video_pipeline(cfg, n_frames):
    src, caps = video_source(cfg).split(" ! ")
    return f"{src} num-buffers={n_frames} ! {caps}"


def audio_source(cfg):
    props = [f"wave={cfg['wave']}", f"volume={cfg['volume']}"]
    if "freq" in cfg:
        props.append(f"freq={cfg['freq']}")
    return (f"audiotestsrc {' '.join(props)} ! audio/x-raw,format=F32LE,rate={cfg['rate']},channels=1")


def gst_audio(cfg, seconds):
    n = int(round(seconds * cfg["rate"]))
    per = cfg["rate"] // 10
    src, caps = audio_source(cfg).split(" ! ")
    with tempfile.NamedTemporaryFile(suffix=".raw") as f:
        subprocess.run(["gst-launch-1.0", "-q"] + f"{src} num-buffers={-(-n // per)} samplesperbuffer={per}".split()
                       + ["!"] + caps.split() + ["!", "filesink", f"location={f.name}"], check=True)
        data = np.fromfile(f.name, np.float32)
    return data[:n][None]


# ------------------------------------------------------------------------------------------ image and video

# pattern -> (uses colours, caption template, caption in unnamed colours, keyword). The key attribute comes
# before the colours in every caption: a small language model writes the words in order, and a colour written
# first would make it pick the pattern (or shape) it saw most with that colour in training instead of the one it
# sees. Training also shows the two-colour patterns in unnamed colours (UNNAMED_SHARE), captioned without them.
IMAGE_PATTERNS = {
    "ball": (True, "A ball, {fg} on a {bg} background.", "A ball.", "ball"),
    "smpte": (False, "Colour bars of a television test pattern.", None, "bars"),
    "snow": (False, "Random black and white television snow.", None, "snow"),
    "checkers-1": (False, "A fine red and green checkerboard.", None, "checkerboard"),
    "checkers-4": (False, "A red and green checkerboard.", None, "checkerboard"),
    "checkers-8": (False, "A coarse red and green checkerboard.", None, "checkerboard"),
    "circular": (True, "Concentric circles in {fg} and {bg}.", "Concentric circles.", "circles"),
    "pinwheel": (True, "A pinwheel in {fg} and {bg}.", "A pinwheel.", "pinwheel"),
    "spokes": (True, "Spokes in {fg} on a {bg} background.", "Spokes.", "spokes"),
    "gradient": (True, "A vertical gradient from {bg} to {fg}.", "A vertical gradient.", "gradient"),
    "solid-color": (True, "A plain {fg} screen.", None, None),          # keyword: the colour
}
# Frame sizes in 4:3, 1:1, 3:4 and 16:9 (cameras' usual shapes); the held-out ones are sizes training never has
TRAIN_SIZES = [(320, 240), (640, 480), (224, 224), (400, 300), (160, 120), (256, 256), (300, 400), (640, 360),
               (320, 180)]
HELDOUT_SIZES = [(352, 288), (480, 270)]
# videotestsrc's ball runs its path in 200 frames across and 141 down: training images show it anywhere on its
# path (a camera's frame at any time), the held-out ones at its start as the main job's first caption does.
BALL_FRAMES = 200
# Training images draw the ball this many times as often as each other pattern: its positions make it 200
# images where every other pattern is one, and the runs with one-channel pairs named it at 9 and 15 of 22 places.
BALL_WEIGHT = 3
MOTIONS = {"wavy": "moving around", "sweep": "circling", "hsweep": "sweeping down"}


def colour_pair_heldout(fg, bg):
    """Colour pairs reserved for the held-out split (never in training for any pattern)."""
    return (COLOUR_NAMES.index(fg) * 3 + COLOUR_NAMES.index(bg)) % 7 == 0


def caption_fill(pattern, cfg):
    _, template, unnamed, _ = IMAGE_PATTERNS[pattern]
    if not isinstance(cfg.get("fg", ""), str):
        return unnamed
    return template.format(fg=cfg.get("fg", ""), bg=cfg.get("bg", ""))


def draw_visual(rng, heldout, ball_weight=1):
    """A visual configuration (pattern, colours, size): heldout picks reserved colour pairs or sizes."""
    names = list(IMAGE_PATTERNS)
    # a weighted choice draws other numbers than the plain one: held-out cases and videos keep theirs
    if ball_weight == 1:
        pattern = str(rng.choice(names))
    else:
        p = np.array([ball_weight if n == "ball" else 1 for n in names], np.float64)
        pattern = str(rng.choice(names, p=p / p.sum()))
    coloured, _, _, keyword = IMAGE_PATTERNS[pattern]
    while True:
        fg, bg = rng.choice(COLOUR_NAMES, 2, replace=False)
        if pattern == "solid-color" or colour_pair_heldout(fg, bg) == heldout or not coloured:
            break
    sizes = HELDOUT_SIZES if heldout else TRAIN_SIZES
    w, h = sizes[rng.integers(len(sizes))]
    cfg = {"pattern": pattern, "width": int(w), "height": int(h), "fps": 10}
    if coloured:
        cfg["fg"] = str(fg)
        if pattern != "solid-color":
            cfg["bg"] = str(bg)
    return cfg, keyword or cfg["fg"]


def image_sample(rng, heldout=False):
    cfg, keyword = draw_visual(rng, heldout, 1 if heldout else BALL_WEIGHT)
    if cfg["pattern"] == "ball" and not heldout:
        cfg["frame"] = int(rng.integers(BALL_FRAMES))
    return cfg, caption("image", cfg), keyword


def video_sample(rng, heldout=False):
    cfg, keyword = draw_visual(rng, heldout)
    if cfg["pattern"] == "ball":
        cfg["motion"] = str(rng.choice(list(MOTIONS)))
    return cfg, caption("video", cfg), keyword


def image_input(cfg):
    """uint8 224x224x3 crop of frame cfg['frame'] (default the first; the image transform before normalisation)."""
    return pre.image_eval_crop(gst_video(cfg, cfg.get("frame", 0) + 1, last_only=True)[0])


VIDEO_SECONDS = 3


def video_frames(cfg):
    """The 5 frames file mode picks from a 3-second clip: uint8 [5, H, W, 3]."""
    n = VIDEO_SECONDS * cfg["fps"]
    frames = gst_video(cfg, n)
    return frames[pre.video_clip_frames(n, cfg["fps"])]


def video_input(frames):
    """[15, 3, 224, 224] float32 model input of 5 frames."""
    return np.concatenate([pre.video_frame(f) for f in frames])


def video_input_u8(frames):
    """The model input of 5 frames before normalisation, rounded to uint8 [15, 224, 224, 3] (training
    storage: the rounding error is below 0.002 of the normalised range)."""
    x = video_input(frames) * pre.CLIP_STD[:, None, None] + pre.CLIP_MEAN[:, None, None]
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


# ------------------------------------------------------------------------------------------ audio

WAVES = {
    "sine": "A steady {f} hertz sine tone.",
    "square": "A buzzing {f} hertz square wave.",
    "saw": "A harsh {f} hertz sawtooth wave.",
    "triangle": "A soft {f} hertz triangle wave.",
    "ticks": "Short {f} hertz ticks every second.",
    "white-noise": "Loud white noise hiss.",
    "pink-noise": "Soft pink noise rumble.",
    "silence": "Silence.",
}
WAVE_KEYWORD = {"sine": "sine", "square": "square", "saw": "sawtooth", "triangle": "triangle", "ticks": "ticks",
                "white-noise": "white noise", "pink-noise": "pink noise", "silence": "silence"}
FREQS = [110, 220, 330, 440, 660, 880, 1320, 1760, 2640, 3520]


def audio_pair_heldout(wave, i):
    """(wave, FREQS[i]) pairs reserved for the held-out split."""
    return (i + list(WAVES).index(wave)) % 4 == 0


def clear_of(x, held_out):
    """True when x (a frequency, a sample rate) is more than 8 % from every held-out value."""
    return all(abs(x / v - 1) > 0.08 for v in held_out)


def training_frequency(rng):
    """A frequency (10 Hz steps, log-uniform over FREQS's range) for a training sample of a pitched wave: not
    within 8 % of any of FREQS, whatever the wave. Continuous frequencies keep the model from tying a wave to the
    few frequencies it was heard at; keeping every wave away from the held-out frequencies keeps it from
    learning which wave a held-out frequency has from the waves it never hears there (with only the held-out
    pair's wave kept away, the 1320 Hz sawtooth became the square wave training had there, and the 440 Hz
    square the sawtooth)."""
    while True:
        f = round(float(np.exp(rng.uniform(math.log(100), math.log(3700)))), -1)
        if clear_of(f, FREQS):
            return int(f)


def audio_sample(rng, heldout=False):
    wave = str(rng.choice(list(WAVES)))
    cfg = {"wave": wave, "volume": round(float(rng.uniform(0.2, 0.8)), 2),
           "rate": int(rng.choice([16000, 48000])), "seconds": round(float(rng.uniform(2.0, 10.0)), 1)}
    if "{f}" in WAVES[wave] and heldout:
        while True:
            i = int(rng.integers(len(FREQS)))
            if audio_pair_heldout(wave, i):
                break
        cfg["freq"] = FREQS[i]
    elif "{f}" in WAVES[wave]:
        cfg["freq"] = training_frequency(rng)
    elif heldout:
        cfg["volume"] = round(float(rng.choice([0.1, 0.9])), 2)   # a level outside the training range
    return cfg, WAVES[wave].format(f=cfg.get("freq")), WAVE_KEYWORD[wave]


def audio_input(cfg):
    return pre.audio_features(gst_audio(cfg, cfg["seconds"]), cfg["rate"])[1]


# ------------------------------------------------------------------------------------------ IMU

IMU_MOTIONS = {
    "still": "The person is standing still.",
    "walking": "The person is walking.",
    "running": "The person is running.",
    "turning": "The person is turning around.",
    "shaking": "The person is shaking the device.",
}
IMU_KEYWORD = {"still": "still", "walking": "walking", "running": "running", "turning": "turning",
               "shaking": "shaking"}
ORIENTATIONS = ["flat", "upright", "sideways", "tilted"]
# Sample rates (Hz). Resampling to 200 Hz rings at the window's edges over a width that grows as the rate falls:
# with training at 100 and 200 Hz only, the wider ringing of 50 Hz read as turning, and with training at 75 to
# 300 Hz a still device at 50 Hz read as walking. Training draws rates log-uniformly from IMU_TRAIN_RANGE, so
# that the low rates, where the ringing is widest, are as common per octave as the high ones (drawn uniformly,
# 6 % of the samples were at 60 Hz or below and a still device at 40-60 Hz was right in 37 of 100 cases), in
# steps of 5 Hz (keeping the resampler's phases few), none within 8 % of a held-out rate, as audio does with
# frequencies.
IMU_TRAIN_RANGE = (30, 600)
IMU_HELDOUT_RATES = [50, 400]


def imu_train_rate(rng):
    while True:
        rate = 5 * int(round(math.exp(rng.uniform(*np.log(IMU_TRAIN_RANGE))) / 5))
        if clear_of(rate, IMU_HELDOUT_RATES):
            return rate


def rotation(name, rng):
    base = {"flat": (0.0, 0.0), "upright": (math.pi / 2, 0.0), "sideways": (0.0, math.pi / 2),
            "tilted": (math.pi / 4, math.pi / 5)}[name]
    a, b = base[0] + rng.normal(0, 0.1), base[1] + rng.normal(0, 0.1)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    return ry @ rx


def imu_signal(cfg):
    """[6, T] accelerometer (m/s^2, with gravity) and gyroscope (rad/s) in the device frame at cfg['rate']."""
    rng = np.random.default_rng(cfg["seed"])
    rate, motion = cfg["rate"], cfg["motion"]
    t = np.arange(int(2 * rate)) / rate
    acc = np.zeros((3, t.size))
    gyro = np.zeros((3, t.size))
    acc[2] = 9.81
    f, ph = cfg["cadence"], rng.uniform(0, 2 * math.pi)
    if motion == "walking":
        acc[2] += 2.5 * np.sin(2 * math.pi * f * t + ph)
        acc[0] += 1.2 * np.sin(math.pi * f * t + ph)
        gyro[1] += 0.4 * np.sin(math.pi * f * t + ph)
    elif motion == "running":
        acc[2] += 9.0 * np.abs(np.sin(math.pi * f * t + ph)) - 5.7
        acc[0] += 3.0 * np.sin(math.pi * f * t + ph)
        gyro[1] += 1.5 * np.sin(math.pi * f * t + ph)
    elif motion == "turning":
        w = cfg["cadence"] * rng.choice([-1, 1])
        gyro[2] += w * np.clip(np.sin(math.pi * t / 2) * 1.5, 0, 1)
        acc[1] += 0.4 * w * w * np.sin(math.pi * t / 2)
    elif motion == "shaking":
        for ax in range(3):
            acc[ax] += rng.uniform(6, 14) * np.sin(2 * math.pi * (f * 3) * t + rng.uniform(0, 6))
            gyro[ax] += rng.uniform(2, 5) * np.sin(2 * math.pi * (f * 3) * t + rng.uniform(0, 6))
    r = rotation(cfg["orientation"], rng)
    acc, gyro = r @ acc, r @ gyro
    acc += rng.normal(0, 0.05, acc.shape)
    gyro += rng.normal(0, 0.01, gyro.shape)
    return np.concatenate([acc, gyro]).astype(np.float32)


def imu_sample(rng, heldout=False):
    motion = str(rng.choice(list(IMU_MOTIONS)))
    while True:
        o = int(rng.integers(len(ORIENTATIONS)))
        if ((o + list(IMU_MOTIONS).index(motion)) % 4 == 0) == heldout:
            break
    cadence = {"still": 0.0, "walking": rng.uniform(1.5, 2.2), "running": rng.uniform(2.5, 3.5),
               "turning": rng.uniform(1.0, 3.0), "shaking": rng.uniform(1.5, 3.0)}[motion]
    cfg = {"motion": motion, "orientation": ORIENTATIONS[o], "cadence": round(float(cadence), 2),
           "rate": int(rng.choice(IMU_HELDOUT_RATES)) if heldout else imu_train_rate(rng),
           "seed": int(rng.integers(1 << 31))}
    return cfg, IMU_MOTIONS[motion], IMU_KEYWORD[motion]


def imu_input(cfg):
    return pre.imu(imu_signal(cfg), cfg["rate"])


# ------------------------------------------------------------------------------------------ point clouds

SHAPES = ["sphere", "cube", "cylinder", "cone", "torus"]


def shape_points(shape, n, rng):
    """n points on the surface of a unit-size primitive."""
    u, v = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    th = 2 * math.pi * u
    if shape == "sphere":
        z = 2 * v - 1
        r = np.sqrt(1 - z * z)
        return np.stack([r * np.cos(th), r * np.sin(th), z], 1)
    if shape == "cube":
        p = rng.uniform(-1, 1, (n, 3))
        face = rng.integers(0, 3, n)
        p[np.arange(n), face] = rng.choice([-1.0, 1.0], n)
        return p
    if shape == "cylinder":
        cap = rng.uniform(0, 1, n) < 0.3
        r = np.where(cap, np.sqrt(v), 1.0)
        z = np.where(cap, rng.choice([-1.0, 1.0], n), 2 * rng.uniform(0, 1, n) - 1)
        return np.stack([0.6 * r * np.cos(th), 0.6 * r * np.sin(th), z], 1)
    if shape == "cone":
        base = rng.uniform(0, 1, n) < 0.3
        h = np.sqrt(v)                                            # uniform on the lateral surface
        r = np.where(base, np.sqrt(rng.uniform(0, 1, n)), h)
        z = np.where(base, -1.0, 1 - 2 * h)
        return np.stack([r * np.cos(th), r * np.sin(th), z], 1)
    ph = 2 * math.pi * v                                          # torus
    return np.stack([(1 + 0.35 * np.cos(ph)) * np.cos(th), (1 + 0.35 * np.cos(ph)) * np.sin(th),
                     0.35 * np.sin(ph)], 1)


def point_cloud(cfg):
    """[8192, 6] xyz + rgb in [0, 1]. The colour is shaded by position: the tokenizer samples and groups on
    the colours (spec §2.6), so a flat colour would collapse every group onto the same 32 points."""
    rng = np.random.default_rng(cfg["seed"])
    p = shape_points(cfg["shape"], 8192, rng)
    p = p * np.array(cfg["scale"])
    a = cfg["yaw"]
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    p = p @ rz.T
    shade = (p - p.min(0)) / np.maximum(np.ptp(p, 0), 1e-6)
    rgb = np.clip(0.65 * rgb_of(cfg["colour"]) + 0.35 * shade, 0, 1)
    return np.concatenate([p, rgb], 1).astype(np.float32)


def point_pair_heldout(shape, colour):
    """(shape, colour) pairs reserved for the held-out split."""
    return (COLOUR_NAMES.index(colour) + 2 * SHAPES.index(shape)) % 5 == 0


def point_sample(rng, heldout=False):
    shape = str(rng.choice(SHAPES))
    while True:
        c = int(rng.integers(len(COLOUR_NAMES)))
        if point_pair_heldout(shape, COLOUR_NAMES[c]) == heldout:
            break
    cfg = {"shape": shape, "colour": COLOUR_NAMES[c], "scale": [round(float(s), 2) for s in rng.uniform(0.7, 1.3, 3)],
           "yaw": round(float(rng.uniform(0, math.pi)), 3), "seed": int(rng.integers(1 << 31))}
    return cfg, caption("point", cfg), shape


def fast_point_indices(x, groups=1024, k=32):
    """Furthest point sampling and kNN on the colours (channels 3:6) in torch: the reference algorithm
    without the CUDA kernel's exact tie-breaking, for training only."""
    import torch
    p = torch.from_numpy(np.ascontiguousarray(x[:, 3:6]))
    dist = torch.full((p.shape[0],), 1e10)
    idx = torch.zeros(groups, dtype=torch.long)
    for i in range(1, groups):
        dist = torch.minimum(dist, ((p - p[idx[i - 1]]) ** 2).sum(1))
        idx[i] = torch.argmax(dist)
    knn = torch.cdist(p[idx], p).topk(k, largest=False).indices
    return idx.numpy(), knn.numpy()


# ------------------------------------------------------------------------------------------ depth / normal maps

SCENE_SHAPES = ["sphere", "cube", "cylinder", "cone"]


def sdf(shape, q):
    """Signed distance of a unit primitive at the origin (q: [..., 3])."""
    if shape == "sphere":
        return np.linalg.norm(q, axis=-1) - 1.0
    if shape == "cube":
        d = np.abs(q) - 0.8
        return np.linalg.norm(np.maximum(d, 0), axis=-1) + np.minimum(d.max(-1), 0)
    if shape == "cylinder":
        d = np.stack([np.linalg.norm(q[..., [0, 2]], axis=-1) - 0.7, np.abs(q[..., 1]) - 1.0], -1)
        return np.linalg.norm(np.maximum(d, 0), axis=-1) + np.minimum(d.max(-1), 0)
    # cone, apex up, base radius 1 at y = -1, height 2
    r = np.linalg.norm(q[..., [0, 2]], axis=-1)
    h = q[..., 1]
    side = (r * 2 - (1 - h)) / math.sqrt(5)
    return np.maximum(side, np.maximum(-1 - h, h - 1))


def render_scene(cfg, size=(160, 120)):
    """Ray-marched scene: a primitive on a grey floor in front of a wall. Returns uint8 RGB photo, depth map
    (grayscale inverse depth, nearer is brighter, stretched to the image's range as relative depth from a
    DPT model like Omnidata's is stored), normal map ((n+1)/2 as RGB) and the object's mask (255 where the
    primitive is)."""
    w, h = size
    shape, yaw = cfg["shape"], cfg["yaw"]
    ys, xs = np.mgrid[0:h, 0:w]
    d = np.stack([(xs - w / 2) / h * 1.2, -(ys - h / 2) / h * 1.2, np.ones_like(xs, float)], -1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = np.array([0.0, 0.6, -4.0 + cfg["distance"]])
    c, s = math.cos(yaw), math.sin(yaw)

    def scene(p):
        q = p.copy()
        q[..., 0], q[..., 2] = c * p[..., 0] + s * p[..., 2], -s * p[..., 0] + c * p[..., 2]
        obj = sdf(shape, q)
        floor = p[..., 1] + 1.0
        wall = 3.0 - p[..., 2]
        return np.minimum(obj, np.minimum(floor, wall)), obj

    t = np.zeros((h, w))
    for _ in range(80):
        dist, _ = scene(o + d * t[..., None])
        t += dist
    p = o + d * t[..., None]
    _, obj = scene(p)
    e = 1e-3
    n = np.stack([scene(p + np.eye(3)[i] * e)[0] - scene(p - np.eye(3)[i] * e)[0] for i in range(3)], -1)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-9)
    light = np.array([-0.5, 0.8, -0.6]) / np.linalg.norm([-0.5, 0.8, -0.6])
    lam = np.clip((n * light).sum(-1), 0, 1)[..., None]
    base = np.where((obj < 0.01)[..., None], rgb_of(cfg["colour"]), np.array([0.6, 0.6, 0.6]))
    photo = np.clip(base * (0.3 + 0.7 * lam), 0, 1)
    inv = 1 / np.maximum(t, 1e-3)
    depth = (inv - inv.min()) / max(inv.max() - inv.min(), 1e-6)
    normal = (n * np.array([1, 1, -1]) + 1) / 2              # camera frame, z towards the viewer
    u8 = lambda a: (a * 255 + 0.5).astype(np.uint8)
    return u8(photo), u8(depth), u8(normal), u8((obj < 0.01).astype(float))


def scene_pair_heldout(shape, colour):
    """(shape, colour) pairs reserved for the held-out split; white scenes are never in training."""
    return (COLOUR_NAMES.index(colour) + SCENE_SHAPES.index(shape)) % 5 == 0


def scene_sample(rng, heldout=False):
    shape = str(rng.choice(SCENE_SHAPES))
    while True:
        c = int(rng.integers(len(COLOUR_NAMES)))
        if COLOUR_NAMES[c] == "white" and not heldout:     # white only in held-out scenes (the cube's)
            continue
        if scene_pair_heldout(shape, COLOUR_NAMES[c]) == heldout:
            break
    cfg = {"shape": shape, "colour": COLOUR_NAMES[c], "yaw": round(float(rng.uniform(0, math.pi / 2)), 3),
           "distance": round(float(rng.uniform(-0.5, 1.0)), 2), "map_only": bool(rng.uniform() < 0.3)}
    return cfg, caption("rgbd", cfg), shape


def scene_input(cfg, kind, rendered=None):
    """uint8 [2, 224, 224, 3]: (photo, map) crops; with map_only the map fills both slots, as the engine
    does for a map without its photo (docs/modalities.md). rendered: render_scene(cfg), if already made."""
    photo, depth, normal, _ = rendered or render_scene(cfg)
    m = depth if kind == "rgbd" else normal
    mc = pre.map_crop(photo, m)
    return np.stack([mc if cfg["map_only"] else pre.image_eval_crop(photo), mc])


# ------------------------------------------------------------------------------------------ fMRI (synthetic)

FMRI_VOXELS = 15724
FMRI_CATEGORIES = ["dog", "car", "person", "pizza", "house", "tree", "airplane", "boat"]
FMRI_SEED = 20240


def fmri_basis():
    """The synthetic 'brain': every voxel responds linearly to an 8-d stimulus code (one-hot category) and to
    a 4-d nuisance code (e.g. brightness, arousal), through a fixed random sparse-ish weight matrix."""
    rng = np.random.default_rng(FMRI_SEED)
    w = rng.normal(0, 1, (FMRI_VOXELS, 12)) * (rng.uniform(0, 1, (FMRI_VOXELS, 1)) < 0.6)
    return w.astype(np.float32)


def fmri_signal(cfg, basis):
    """[R, 15724] repetitions: response = basis @ [category one-hot, nuisance] + noise, z-scored per voxel
    against the population statistics (like MindEye's session-wise z-scoring)."""
    rng = np.random.default_rng(cfg["seed"])
    code = np.zeros(12, np.float32)
    code[FMRI_CATEGORIES.index(cfg["category"])] = 1.0
    code[8:] = rng.normal(0, cfg["nuisance"], 4)
    clean = basis @ code
    reps = clean[None] + rng.normal(0, cfg["noise"], (cfg["repetitions"], FMRI_VOXELS))
    mean = basis[:, :8].mean(1)
    std = np.sqrt(basis[:, :8].var(1) + (basis[:, 8:] ** 2).sum(1) * 0.25 + cfg["noise"] ** 2) + 1e-3
    return ((reps - mean) / std).astype(np.float32)


def fmri_sample(rng, heldout=False):
    cat = str(rng.choice(FMRI_CATEGORIES))
    cfg = {"category": cat, "noise": round(float(rng.uniform(1.5, 2.5) if heldout else rng.uniform(0.5, 1.5)), 2),
           "nuisance": round(float(rng.uniform(0.2, 1.0)), 2), "repetitions": int(rng.integers(1, 4)),
           "seed": int(rng.integers(1 << 31))}
    article = "an" if cat[0] in "aeiou" else "a"
    return cfg, f"A photo of {article} {cat}.", cat


# ------------------------------------------------------------------------------------------ captions and colours

def caption(modality, cfg):
    """The caption of an image, video, point or scene configuration: the key attribute, then the colours."""
    if modality == "image":
        return caption_fill(cfg["pattern"], cfg)
    if modality == "video":
        if cfg["pattern"] == "ball":
            if not isinstance(cfg["fg"], str):
                return f"A ball {MOTIONS[cfg['motion']]}."
            return f"A ball {MOTIONS[cfg['motion']]}, {cfg['fg']} on a {cfg['bg']} background."
        still = caption_fill(cfg["pattern"], cfg)
        return "A still picture: " + still[0].lower() + still[1:]
    colour = f" in {cfg['colour']}" if isinstance(cfg["colour"], str) else ""     # unnamed: not said
    if modality == "point":
        return f"A {cfg['shape']}{colour}."
    return f"A {cfg['shape']}{colour} on the floor in front of a wall."


# Training recolours these at every step (train.py): the stored inputs are kept in a form from which any
# colouring follows exactly, so the model sees every training colour with every pattern and shape instead of
# the one it was drawn with and cannot tell the pattern or shape from the colour.
RECOLOURED = ("image", "video", "point", "rgbd", "rgbn")


def training_colours(modality, cfg, rng):
    """cfg with colours drawn again from the training split's (the held-out pairs never come up), or unnamed
    colours (UNNAMED_SHARE; for patterns, two at least UNNAMED_CONTRAST apart, so the pattern stays visible)."""
    cfg = dict(cfg)
    if modality in ("image", "video"):
        if "bg" in cfg and rng.uniform() < UNNAMED_SHARE:
            cfg["fg"], cfg["bg"] = unnamed_pair(rng)
            return cfg
        if "fg" in cfg:
            while True:
                fg, bg = rng.choice(COLOUR_NAMES, 2, replace=False)
                if "bg" not in cfg or not colour_pair_heldout(fg, bg):
                    break
            cfg["fg"] = str(fg)
            if "bg" in cfg:
                cfg["bg"] = str(bg)
        return cfg
    if rng.uniform() < UNNAMED_SHARE:
        cfg["colour"] = unnamed_colour(rng)
        return cfg
    if modality == "point":
        allowed = [c for c in COLOUR_NAMES if not point_pair_heldout(cfg["shape"], c)]
    else:
        allowed = [c for c in COLOUR_NAMES if c != "white" and not scene_pair_heldout(cfg["shape"], c)]
    cfg["colour"] = str(rng.choice(allowed))
    return cfg


def training_arrays(modality, cfg):
    """What write_train stores for a configuration: make_inputs' arrays, except that the recoloured modalities
    keep what recolour() needs: two-colour patterns rendered white on black (the foreground's share of every
    pixel: videotestsrc's output, resizing and cropping are linear in the two colours), scenes rendered with a
    white object together with the object's mask."""
    if modality in ("image", "video") and "fg" in cfg:
        white = dict(cfg, fg="white")
        if "bg" in cfg:
            white["bg"] = "black"
        return make_inputs(modality, white)
    if modality in ("rgbd", "rgbn"):
        white = dict(cfg, colour="white")
        rendered = render_scene(white)
        return {"x": scene_input(white, modality, rendered), "mask": pre.image_eval_crop(rendered[3])[..., 0]}
    return make_inputs(modality, cfg, exact=False)


def recolour(modality, x, stored, cfg, mask=None):
    """x: training_arrays' input of the stored configuration, as float32 in [0, 1] (image-like: [T, H, W, 3],
    points [8192, 6]); returns the input of cfg, the same configuration coloured as cfg says."""
    if modality in ("image", "video"):
        if "fg" not in cfg:
            return x
        return x * rgb_of(cfg["fg"]) + (1 - x) * rgb_of(cfg.get("bg", "black"))
    if modality == "point":
        x = x.copy()
        x[:, 3:6] += 0.65 * (rgb_of(cfg["colour"]) - rgb_of(stored["colour"]))
        return x
    if cfg["map_only"]:
        return x
    x = x.copy()
    m = mask[..., None].astype(np.float32) / 255
    x[0] *= 1 - m + m * rgb_of(cfg["colour"])
    return x


# ------------------------------------------------------------------------------------------ splits

SAMPLERS = {"image": image_sample, "video": video_sample, "audio": audio_sample, "point": point_sample,
            "rgbd": scene_sample, "rgbn": scene_sample, "fmri": fmri_sample, "imu": imu_sample}
TRAIN_COUNTS = {"image": 4000, "video": 1000, "audio": 3000, "point": 1500, "rgbd": 1000, "rgbn": 1000,
                "fmri": 600, "imu": 12000}
HELDOUT_COUNT = 30


def make_inputs(modality, cfg, exact=True):
    """The arrays stored for one configuration (see train.py's loader for how they become model input)."""
    if modality == "image":
        return {"x": image_input(cfg)}
    if modality == "video":
        return {"x": video_input_u8(video_frames(cfg))}
    if modality == "audio":
        return {"x": audio_input(cfg).astype(np.float16)}
    if modality == "imu":
        return {"x": imu_input(cfg)}
    if modality == "point":
        x = pre.pc_norm(point_cloud(cfg))
        if exact:
            x, fps, knn = pre.point_prepare(point_cloud(cfg))
        else:
            fps, knn = fast_point_indices(x)
        return {"x": x, "fps": fps.astype(np.int16), "knn": knn.astype(np.int16)}
    if modality in ("rgbd", "rgbn"):
        return {"x": scene_input(cfg, modality)}
    return {"x": pre.fmri(fmri_signal(cfg, fmri_basis()))}


def write_train(out, seed, scale, only=None):
    os.makedirs(out, exist_ok=True)
    basis = fmri_basis()
    for i, modality in enumerate(SAMPLERS):
        if only and modality not in only:
            continue
        rng = np.random.default_rng([seed, i])
        n = max(1, int(TRAIN_COUNTS[modality] * scale))
        arrays, captions, configs = {}, [], []
        for j in range(n):
            cfg, caption, _ = SAMPLERS[modality](rng)
            if modality == "fmri":
                data = {"x": pre.fmri(fmri_signal(cfg, basis))}
            else:
                data = training_arrays(modality, cfg)
            for k, v in data.items():
                arrays.setdefault(k, []).append(v)
            captions.append(caption)
            configs.append(cfg)
            if (j + 1) % 100 == 0:
                print(f"{modality}: {j + 1}/{n}", file=sys.stderr, flush=True)
        np.savez(os.path.join(out, f"{modality}.npz"), captions=np.array(captions),
                 configs=np.array([json.dumps(c) for c in configs]),
                 **{k: np.stack(v) for k, v in arrays.items()})
        print(f"{modality}: {n} samples", file=sys.stderr, flush=True)


def heldout_cases(seed=8008):
    """The held-out cases: each with its modality, configuration, the gst-launch source where one exists,
    the reference caption and the keyword the generated caption must contain."""
    cases = []
    for i, modality in enumerate(SAMPLERS):
        rng = np.random.default_rng([seed, i])
        for j in range(HELDOUT_COUNT):
            cfg, caption, keyword = SAMPLERS[modality](rng, heldout=True)
            case = {"id": f"{modality}-{j:02d}", "modality": modality, "config": cfg,
                    "prompt": PROMPTS[modality], "caption": caption, "keyword": keyword}
            if modality in ("image", "video"):
                case["source"] = video_source(cfg)
            elif modality == "audio":
                case["source"] = audio_source(cfg)
                case["seconds"] = cfg["seconds"]
            else:
                case["file"] = f"{case['id']}.npy"
            cases.append(case)
    return cases


def write_heldout_files(out, cases):
    """The simulator inputs of the held-out cases as the .npy files the engine reads: IMU [6, T] at the
    case's rate, points [8192, 6], fMRI [R, 15724], and for rgbd/rgbn a [2, H, W, 3] uint8 (photo, map)."""
    os.makedirs(out, exist_ok=True)
    basis = fmri_basis()
    for c in cases:
        m, cfg = c["modality"], c["config"]
        if m == "imu":
            a = imu_signal(cfg)
        elif m == "point":
            a = point_cloud(cfg)
        elif m == "fmri":
            a = fmri_signal(cfg, basis)
        elif m in ("rgbd", "rgbn"):
            photo, depth, normal, _ = render_scene(cfg)
            a = np.stack([photo, np.repeat(depth[..., None], 3, 2) if m == "rgbd" else normal])
        else:
            continue
        np.save(os.path.join(out, c["file"]), a)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["train", "heldout"])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the training sample counts")
    ap.add_argument("--only", nargs="*", help="modalities to generate (default: all)")
    ap.add_argument("--json", default=os.path.join(HERE, "heldout.json"), help="where heldout writes its cases")
    args = ap.parse_args(argv)
    if args.what == "train":
        write_train(args.out, args.seed, args.scale, args.only)
    else:
        cases = heldout_cases()
        write_heldout_files(args.out, cases)
        with open(args.json, "w") as f:
            json.dump(cases, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
