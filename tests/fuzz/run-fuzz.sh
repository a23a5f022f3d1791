#!/bin/sh
# Builds the GGUF reader's libFuzzer target with clang and runs it for a bounded time on a seed corpus.
#   run-fuzz.sh SOURCE_ROOT GGUF_CORPUS_TOOL WORK_DIR
# FUZZ_SECONDS (default 30) sets the run time. Exits 77 (skipped) only when clang is missing.
set -eu
src=$1
corpus_tool=$2
work=$3
seconds=${FUZZ_SECONDS:-30}

if ! command -v clang >/dev/null 2>&1; then
  echo "clang not found: fuzz test skipped"
  exit 77
fi

rm -rf "$work"
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
"$corpus_tool" "$work/seeds"

# shellcheck disable=SC2046
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -I"$src/engine" $(pkg-config --cflags glib-2.0) \
  "$src/tests/fuzz/fuzz-gguf.c" "$src/engine/gguf.c" "$src/engine/types.c" "$src/engine/error.c" \
  $(pkg-config --libs glib-2.0) -o "$work/fuzz-gguf"

# -timeout: any single input taking a second is a hang; -rss_limit_mb and -malloc_limit_mb catch
# allocations sized by unchecked counts.
"$work/fuzz-gguf" -max_total_time="$seconds" -max_len=4096 -timeout=1 -rss_limit_mb=1024 \
  -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$work/seeds"
