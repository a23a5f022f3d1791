#!/bin/sh
# onellm-cli info: describes a valid file; a missing or corrupt file exits 1 with one line on stderr.
#   test-cli-info.sh ONELLM_CLI GGUF_CORPUS_TOOL WORK_DIR
set -eu
cli=$1
corpus=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
"$corpus" "$work"

out=$("$cli" info --metadata --tensors "$work/tensors.gguf")
echo "$out"
echo "$out" | grep -q "^architecture: onellm$"
echo "$out" | grep -q "GGUF v3, alignment 64"
echo "$out" | grep -q "^tensors:     6 (f32 1, f16 1, bf16 1, q8_0 1, q4_0 1, i32 1)"
echo "$out" | grep -q "blk.3.q8_0 *q8_0  \[32, 2, 1, 1\]"

expect_failure() {
  if "$cli" info "$1" >"$work/out" 2>"$work/err"; then
    echo "info $1 succeeded"; exit 1
  fi
  cat "$work/err"
  [ "$(wc -l <"$work/err")" -eq 1 ] || { echo "expected one line of error"; exit 1; }
  grep -q "^onellm-cli: .*$2" "$work/err" || { echo "expected '$2'"; exit 1; }
}
expect_failure "$work/missing.gguf" "No such file"
head -c 100 "$work/tensors.gguf" >"$work/cut.gguf"
expect_failure "$work/cut.gguf" "tensor count 6 is impossible for a file of 100 bytes"
head -c $(( $(wc -c <"$work/tensors.gguf") - 100 )) "$work/tensors.gguf" >"$work/cut.gguf"
expect_failure "$work/cut.gguf" "runs past the end of the file"
printf 'not a model' >"$work/text.gguf"
expect_failure "$work/text.gguf" "not a GGUF file"
rm -rf "$work"
