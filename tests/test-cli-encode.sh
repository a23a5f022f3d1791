#!/bin/sh
# onellm-cli encode: --preprocessed input matches the reference's block; media files (decoded through GStreamer)
# and .npy point/IMU/fMRI inputs give a [32, dim] block; bad input exits 1 with one line on stderr.
#   test-cli-encode.sh ONELLM_CLI TINY_MODEL GOLDEN_DIR REFERENCE_DIR PYTHON WORK_DIR
set -eu
cli=$1
model=$2
golden=$3
refdir=$4
python=$5
work=$6
rm -rf "$work"
mkdir -p "$work"

# The [32, 128] block of the tiny model, finite, and within the encoder test's tolerance of a golden if given.
check_block() {
  "$python" - "$1" "${2:-}" <<'EOF'
import sys
import numpy as np
got = np.load(sys.argv[1])
assert got.shape == (32, 128) and got.dtype == np.float32, (got.shape, got.dtype)
assert np.isfinite(got).all()
if sys.argv[2]:
    want = np.load(sys.argv[2])
    rms = np.sqrt((want.astype(np.float64) ** 2).mean(axis=1, keepdims=True))
    bad = np.abs(got - want) > 1e-4 * (np.abs(want) + rms)
    assert not bad.any(), f"{bad.sum()} elements differ, worst {np.abs(got - want).max()}"
EOF
}

# --preprocessed: the model-input tensors of the encoder goldens.
for m in image:3,224,224 fmri:1,15724 imu:6,400; do
  name=${m%%:*}
  shape=$(echo "${m#*:}" | tr , ' ')
  # shellcheck disable=SC2086
  "$python" "$refdir/encoder_inputs.py" "$name" $shape "$work/$name.in.npy"
  "$cli" encode --model "$model" --modality "$name" --input "$work/$name.in.npy" --preprocessed \
    --output "$work/$name.out.npy" --time
  check_block "$work/$name.out.npy" "$golden/$name.block.npy"
done

# Media files through GStreamer, .npy files through the host preprocessing.
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=320,height=240 ! pngenc \
  ! filesink location="$work/image.png"
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=ball ! video/x-raw,width=320,height=240 ! pngenc \
  ! filesink location="$work/ball.png"
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=gradient ! video/x-raw,format=GRAY8,width=160,height=120 \
  ! pngenc ! filesink location="$work/depth.png"
gst-launch-1.0 -q videotestsrc num-buffers=25 pattern=ball ! video/x-raw,width=160,height=120,framerate=10/1 \
  ! jpegenc ! avimux ! filesink location="$work/video.avi"
gst-launch-1.0 -q audiotestsrc num-buffers=20 wave=pink-noise ! audio/x-raw,rate=22050,channels=2 ! wavenc \
  ! filesink location="$work/audio.wav"
"$python" - "$work" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(1)
w = sys.argv[1]
np.save(f"{w}/points.npy", np.concatenate((rng.uniform(-1, 1, (3000, 3)), rng.integers(0, 4, (3000, 3)) / 3),
                                          axis=1).astype(np.float32))
np.save(f"{w}/imu.npy", rng.normal(0, 1, (6, 250)).astype(np.float32))
np.save(f"{w}/fmri.npy", rng.normal(0, 1, (3, 15724)).astype(np.float32))
nan = rng.normal(0, 1, (15724,)).astype(np.float32)
nan[17] = np.nan
np.save(f"{w}/fmri-nan.npy", nan)
np.save(f"{w}/audio-shape.npy", np.zeros((1, 128, 1000), np.float32))
np.save(f"{w}/points-few.npy", rng.uniform(0, 1, (100, 6)).astype(np.float32))
np.save(f"{w}/fmri-short.npy", np.zeros((15000,), np.float32))
EOF
encode() {
  "$cli" encode --model "$model" --modality "$1" --input "$2" --output "$work/$1.raw.npy" --time
  check_block "$work/$1.raw.npy"
}
encode image "$work/image.png"
encode video "$work/video.avi"
encode audio "$work/audio.wav"
encode depth "$work/depth.png"
"$cli" encode --model "$model" --modality normal --input "$work/depth.png" --rgb "$work/image.png" \
  --output "$work/normal.raw.npy"
check_block "$work/normal.raw.npy"
encode point "$work/points.npy"
"$cli" encode --model "$model" --modality imu --input "$work/imu.npy" --rate 100 --output "$work/imu.raw.npy"
check_block "$work/imu.raw.npy"
encode fmri "$work/fmri.npy"
# Different pictures give different blocks.
"$cli" encode --model "$model" --modality image --input "$work/ball.png" --output "$work/ball.raw.npy"
"$python" -c "import numpy as np, sys; sys.exit(np.array_equal(np.load('$work/ball.raw.npy'), np.load('$work/image.raw.npy')))"

expect_failure() {
  what=$1
  shift
  if "$cli" encode --model "$model" --output "$work/fail.npy" "$@" >"$work/out" 2>"$work/err"; then
    echo "encode $* succeeded"; exit 1
  fi
  cat "$work/err"
  [ "$(wc -l <"$work/err")" -eq 1 ] || { echo "expected one line of error"; exit 1; }
  grep -q "^onellm-cli: .*$what" "$work/err" || { echo "expected '$what'"; exit 1; }
}
expect_failure "unknown modality 'smell'" --modality smell --input "$work/fmri.npy"
expect_failure "needs --modality, --input and --output" --modality fmri
expect_failure "missing.png: no such file" --modality image --input "$work/missing.png"
expect_failure "element 17 is NaN" --modality fmri --input "$work/fmri-nan.npy"
expect_failure "fmri: 15000 voxels, the model takes 15724" --modality fmri --input "$work/fmri-short.npy"
expect_failure "audio input has shape \[1, 128, 1000\], the model takes \[1, 128, 1024\]" --modality audio \
  --input "$work/audio-shape.npy" --preprocessed
expect_failure "too few points" --modality point --input "$work/points-few.npy"
expect_failure "a point cloud is \[N, 6\]" --modality point --input "$work/imu.npy"
expect_failure "imu: 3000 channels, expected 6" --modality imu --input "$work/points.npy"
expect_failure "cannot decode" --modality image --input "$work/fmri.npy"
rm -rf "$work"
