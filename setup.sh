#!/bin/sh
# gst-onellm in one command on Debian 12: installs the missing packages, builds, and runs.
#   ./setup.sh run    the main job: caption a test source with the shipped default model
#   ./setup.sh test   the whole test suite
# Both are idempotent. BUILD_DIR (default: build) and MESON_ARGS (extra `meson setup` options) may be set.
set -eu
cd "$(dirname "$0")"

mode=${1:-}
case "$mode" in
  run|test) ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=""
for p in $(sed 's/#.*//' debian-packages.txt); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup.sh: installing Debian packages:$missing"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi

build=${BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  # shellcheck disable=SC2086
  meson setup "$build" ${MESON_ARGS:-}
elif [ -n "${MESON_ARGS:-}" ]; then
  # shellcheck disable=SC2086
  meson configure "$build" ${MESON_ARGS}
fi
meson compile -C "$build"

case "$mode" in
  run)
    # The uninstalled plugin from the build tree; it finds the default model there (models/).
    case "$build" in /*) plugins=$build/gst ;; *) plugins=$PWD/$build/gst ;; esac
    export GST_PLUGIN_PATH="$plugins${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
    echo "setup.sh: captioning a live videotestsrc (pattern=ball), one frame a second for 3 s"
    gst-launch-1.0 -q videotestsrc is-live=true pattern=ball num-buffers=90 \
      ! onellmimagetok interval=1000000000 ! onellmencoder ! onellmcaptionsink print=true
    ;;
  test)
    meson test -C "$build" --print-errorlogs --num-processes "${TEST_JOBS:-$(nproc)}"
    ;;
esac
