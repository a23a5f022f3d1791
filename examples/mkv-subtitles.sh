#!/bin/sh
# A video file re-encoded into Matroska with the captions as a subtitle track.
#
#   examples/mkv-subtitles.sh INPUT OUTPUT.mkv [MODEL]
#
# The video is encoded with VP8 (vp8enc, gst-plugins-good); the captions of 3-s windows (onellmcaption,
# text/x-raw utf8 with the timestamps of their windows) go to matroskamux's subtitle pad, so players show each
# caption over the stretch of video it describes. leaky=false captions every window; the muxer waits for them.
# An uninstalled build needs GST_PLUGIN_PATH=build/gst.
set -e
if [ $# -lt 2 ]; then
  echo "usage: $0 INPUT OUTPUT.mkv [MODEL]" >&2
  exit 2
fi
model=${3:+model=$3}
exec gst-launch-1.0 -q \
  filesrc location="$1" ! decodebin ! videoconvert ! tee name=t \
  t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! vp8enc deadline=1 ! mux.video_0 \
  t. ! queue ! onellmvideotok window=3000000000 interval=3000000000 $model ! onellmencoder $model \
     ! onellmcaption leaky=false max-tokens=48 $model ! mux.subtitle_0 \
  matroskamux name=mux ! filesink location="$2"
