#!/bin/bash
# onellm-cli tokenize / detokenize: the golden ids and the round trip with the vocabulary of a GGUF model
# and of tokenizer.model; missing or unusable files and bad arguments exit 1 with one line on stderr.
#   test-cli-tokenize.sh ONELLM_CLI MODEL.gguf TOKENIZER.model GOLDEN.tsv GGUF_CORPUS_TOOL WORK_DIR
set -eu
cli=$1
gguf=$2
spm=$3
golden=$4
corpus=$5
work=$6
rm -rf "$work"
mkdir -p "$work"

# The goldens escape \n, \t, \\ and \xHH, which printf's %b undoes. Command substitution drops trailing
# newlines, so the texts are captured with an 'x' after them.
lines=0
while IFS=$'\t' read -r escaped want; do
  case $escaped in "#"*) continue ;; esac
  text=$(printf '%bx' "$escaped")
  text=${text%x}
  for model in "$gguf" "$spm"; do
    got=$("$cli" tokenize --model "$model" "$text")
    if [ "$got" != "$want" ]; then
      printf 'tokenize %s with %s:\n got  %s\n want %s\n' "$escaped" "$model" "$got" "$want"
      exit 1
    fi
    # shellcheck disable=SC2086
    back=$("$cli" detokenize --model "$model" $got; printf x)
    back=${back%$'\n'x}
    [ "$back" = "$text" ] || { printf 'detokenize of %s with %s: "%s"\n' "$got" "$model" "$back"; exit 1; }
  done
  lines=$((lines + 1))
done <"$golden"
echo "$lines golden lines, both vocabularies"
[ "$lines" -ge 10 ]

# ids in one argument, as tokenize prints them; a text that begins with '-' after "--"
[ "$("$cli" detokenize --model "$gguf" "1 15043  3186")" = "Hello world" ]
ids=$("$cli" tokenize --model "$gguf" -- "-5 degrees")
[ "$("$cli" detokenize --model "$gguf" -- $ids)" = "-5 degrees" ]

expect_failure() {
  if "$cli" "$@" >"$work/out" 2>"$work/err"; then
    echo "$* succeeded"; exit 1
  fi
  cat "$work/err"
  [ "$(wc -l <"$work/err")" -eq 1 ] || { echo "expected one line of error"; exit 1; }
  grep -q "^onellm-cli: .*$want_error" "$work/err" || { echo "expected '$want_error'"; exit 1; }
}
"$corpus" "$work"
want_error="$work/missing.gguf: No such file" expect_failure tokenize --model "$work/missing.gguf" "x"
want_error="$work/missing.model: No such file" expect_failure detokenize --model "$work/missing.model" 1
want_error="$work/tensors.gguf: missing key 'tokenizer.ggml.tokens'" \
  expect_failure tokenize --model "$work/tensors.gguf" "x"
head -c 100000 "$gguf" >"$work/cut.gguf"
want_error="$work/cut.gguf: .*file" expect_failure tokenize --model "$work/cut.gguf" "x"
printf 'not a model' >"$work/text.model"
want_error="$work/text.model: not a valid SentencePiece model" \
  expect_failure tokenize --model "$work/text.model" "x"
want_error="--model is required" expect_failure tokenize "x"
want_error="expected one TEXT argument, got 2" expect_failure tokenize --model "$spm" "x" "y"
want_error="'32000' is not a token id (0 to 31999)" expect_failure detokenize --model "$gguf" 1 32000
want_error="'x1' is not a token id" expect_failure detokenize --model "$spm" 1 x1
want_error="no token ids given" expect_failure detokenize --model "$spm"
rm -rf "$work"
