#!/usr/bin/python3
"""The held-out cases of tools/train/heldout.json as GStreamer pipeline heads, for test-default-model.

Writes OUT_DIR/cases.tsv, one case a line: id, modality (the engine's name), keyword, the pipeline from the
source to the modality tokenizer, the .npy input the test pushes through appsrc (or "-"), and whether the case
must be right ("required") or counts towards its modality's accuracy ("heldout"). The simulated modalities'
inputs (IMU, points, depth/normal scenes, fMRI) are written to OUT_DIR by synth.py. The last case is the
README's main job, which must name the ball in every caption.
Usage: make_heldout_pipelines.py OUT_DIR [--cases N]   (the first N cases of every modality)
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "..", "..", "tools", "train")
sys.path.insert(0, TRAIN)
import synth  # noqa: E402

ENGINE_NAMES = {"rgbd": "depth", "rgbn": "normal"}
NS = 1000000000
# The main job of README.md and setup.sh (`./setup.sh run`): a live ball, one caption a second for 3 s
MAIN_JOB = "videotestsrc is-live=true pattern=ball num-buffers=90 ! onellmimagetok interval=1000000000"


def head(case, out):
    """(pipeline head, .npy pushed by the test or None) of a case."""
    m, cfg = case["modality"], case["config"]
    if m in ("image", "video"):
        # image: the first frame; video: one window over the clip synth.py renders (synth.VIDEO_SECONDS)
        n = 1 if m == "image" else synth.VIDEO_SECONDS * cfg["fps"]
        src, caps = case["source"].split(" ! ")
        tok = "onellmimagetok" if m == "image" else \
            f"onellmvideotok window={synth.VIDEO_SECONDS * NS} interval={synth.VIDEO_SECONDS * NS}"
        return f"{src} num-buffers={n} ! {caps} ! {tok}", None
    if m == "audio":
        # as synth.gst_audio: buffers of a tenth of a second, the clip is one window
        per = cfg["rate"] // 10
        n = int(round(case["seconds"] * cfg["rate"]))
        window = n * NS // cfg["rate"]
        src, caps = case["source"].split(" ! ")
        return (f"{src} num-buffers={-(-n // per)} samplesperbuffer={per} ! {caps} "
                f"! onellmaudiotok window={window} interval={window}"), None
    path = os.path.join(out, case["file"])
    if m in ("point", "fmri"):
        return f"filesrc location=\"{path}\" ! onellm{m}tok", None
    if m == "imu":
        return (f"appsrc name=src format=time caps=\"application/x-onellm-imu,channels=6,rate={cfg['rate']}\" "
                "! onellmimutok"), path
    tok = "onellmdepthtok" if m == "rgbd" else "onellmnormaltok"
    if cfg["map_only"]:
        return f"appsrc name=map format=time ! {tok}", path
    # the photo's branch first: the test appends the encoder and sink to the tokenizer
    return f"appsrc name=rgb format=time ! t.rgb appsrc name=map format=time ! {tok} name=t", path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--cases", type=int, default=30, help="cases per modality")
    ap.add_argument("--heldout", default=os.path.join(TRAIN, "heldout.json"))
    args = ap.parse_args(argv)
    with open(args.heldout) as f:
        cases = [c for c in json.load(f) if int(c["id"].rsplit("-", 1)[1]) < args.cases]
    args.out = os.path.abspath(args.out)       # the test runs in another folder
    synth.write_heldout_files(args.out, cases)
    with open(os.path.join(args.out, "cases.tsv"), "w") as f:
        for c in cases:
            pipeline, npy = head(c, args.out)
            m = ENGINE_NAMES.get(c["modality"], c["modality"])
            f.write("\t".join([c["id"], m, c["keyword"], pipeline, npy or "-", "heldout"]) + "\n")
        f.write("\t".join(["main-job", "image", "ball", MAIN_JOB, "-", "required"]) + "\n")


if __name__ == "__main__":
    main()
