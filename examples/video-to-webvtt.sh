#!/bin/sh
# A video file to WebVTT subtitles, one cue per 3-s window.
#
#   examples/video-to-webvtt.sh INPUT.mp4 OUTPUT.vtt [MODEL]
#
# Every window is captioned (leaky=false: the file is read as fast as the captions are made, never dropped), with
# the video modality (OneLLM's frame sampling over each window). OUTPUT.vtt plays beside the video in any
# player (e.g. mpv --sub-file=OUTPUT.vtt INPUT.mp4). format=srt writes SubRip instead. An uninstalled build
# needs GST_PLUGIN_PATH=build/gst.
set -e
if [ $# -lt 2 ]; then
  echo "usage: $0 INPUT OUTPUT.vtt [MODEL]" >&2
  exit 2
fi
model=${3:+model=$3}
exec gst-launch-1.0 -q \
  filesrc location="$1" ! decodebin ! videoconvert \
  ! onellmvideotok window=3000000000 interval=3000000000 $model ! onellmencoder $model \
  ! onellmcaptionsink leaky=false location="$2" format=webvtt print=true $model
