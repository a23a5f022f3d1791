#!/bin/sh
# Microphone captioning printed to the terminal.
#
#   examples/microphone.sh [MODEL]
#
# MODEL defaults to the default model ($ONELLM_MODEL or the installed one). Each line is the caption of a 5-s
# window of sound, taken every 5 s, printed as "[start time] text" while it is generated (streaming=true).
# autoaudiosrc picks PulseAudio/PipeWire or ALSA. An uninstalled build needs GST_PLUGIN_PATH=build/gst.
set -e
model=${1:+model=$1}
exec gst-launch-1.0 -q \
  autoaudiosrc ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1 \
  ! onellmaudiotok window=5000000000 interval=5000000000 $model ! onellmencoder $model \
  ! onellmcaptionsink print=true streaming=true max-tokens=48 $model
