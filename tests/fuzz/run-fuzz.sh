#!/bin/sh
# Builds a libFuzzer target with clang and runs it for a bounded time on a seed corpus.
#   run-fuzz.sh SOURCE_ROOT TARGET WORK_DIR SEEDS ENGINE_SOURCE...
# TARGET names tests/fuzz/TARGET.c, linked with the engine sources named (relative to engine/). SEEDS is a
# program that writes the seed inputs into the folder it is given, or a file to use as the only seed.
# FUZZ_SECONDS (default 30) sets the run time. Exits 77 (skipped) only when clang is missing.
set -eu
src=$1
target=$2
work=$3
seeds=$4
shift 4
seconds=${FUZZ_SECONDS:-30}

if ! command -v clang >/dev/null 2>&1; then
  echo "clang not found: fuzz test skipped"
  exit 77
fi

rm -rf "$work"
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
if [ -x "$seeds" ]; then
  "$seeds" "$work/seeds"
else
  cp "$seeds" "$work/seeds/"
fi

sources=""
for s in "$@"; do
  sources="$sources $src/engine/$s"
done
# shellcheck disable=SC2046,SC2086
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$src/engine" $(pkg-config --cflags glib-2.0) \
  "$src/tests/fuzz/$target.c" $sources \
  $(pkg-config --libs glib-2.0) -o "$work/$target"

# -timeout: any single input taking a second is a hang; -rss_limit_mb and -malloc_limit_mb catch
# allocations sized by unchecked counts.
"$work/$target" -max_total_time="$seconds" -max_len=4096 -timeout=1 -rss_limit_mb=1024 \
  -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$work/seeds"
