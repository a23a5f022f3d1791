#!/bin/sh
# Camera captioning with the caption drawn on the picture.
#
#   examples/camera-overlay.sh [DEVICE] [MODEL]
#
# DEVICE defaults to /dev/video0; MODEL to the default model ($ONELLM_MODEL or the installed one). Without a
# camera, replace "v4l2src device=..." by "videotestsrc is-live=true". An uninstalled build needs
# GST_PLUGIN_PATH=build/gst.
#
# The camera never waits for the captioner: onellmimagetok takes one frame every 2 s and onellmcaption drops
# windows that arrive while it is still generating (leaky=true, the default). textoverlay shows each caption on
# the frames of the window it describes, so the picture is shown late by the window plus the generation time,
# which onellmcaption reports in the LATENCY query; the video queue holds the frames meanwhile.
set -e
device=${1:-/dev/video0}
model=${2:+model=$2}
exec gst-launch-1.0 -e \
  v4l2src device="$device" ! videoconvert ! tee name=t \
  t. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! videoconvert \
     ! textoverlay name=overlay valignment=bottom wrap-mode=word font-desc="Sans 18" ! videoconvert ! autovideosink \
  t. ! queue leaky=downstream max-size-buffers=2 ! onellmimagetok interval=2000000000 $model \
     ! onellmencoder $model ! onellmcaption max-tokens=48 $model ! overlay.text_sink
