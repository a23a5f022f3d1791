#!/bin/sh
# onellm-cli generate / caption on the tiny model: greedy ids equal the reference goldens, runs repeat
# exactly, errors exit non-zero with one line on stderr.
#   test-cli-caption.sh ONELLM_CLI TINY_MODEL SESSION_DATA PYTHON WORK_DIR
set -eu
cli=$1
model=$2
data=$3
python=$4
work=$5
rm -rf "$work"
mkdir -p "$work"

ids_of() {
  "$python" -c "import numpy, sys; print(' '.join(str(int(i)) for i in numpy.load(sys.argv[1])))" "$1"
}

# generate: the answer then the ids; greedy ids are the reference's (text prompts are the same in both modes).
for mode in official correct; do
  "$cli" generate --model "$model" --prompt "Name three colours." --temperature 0 --max-tokens 16 --ids \
    --position-mode $mode >"$work/gen.$mode"
  cat "$work/gen.$mode"
  [ "$(wc -l <"$work/gen.$mode")" -eq 2 ] || { echo "expected the answer and the ids"; exit 1; }
  [ "$(sed -n 2p "$work/gen.$mode")" = "$(ids_of "$data/text.greedy.$mode.npy")" ] ||
    { echo "generate ids differ from text.greedy.$mode.npy"; exit 1; }
done
"$cli" generate --model "$model" --prompt "Name three colours." --temperature 0 --max-tokens 16 --ids \
  >"$work/again"
cmp "$work/gen.official" "$work/again"

# Sampling with a seed repeats; the token budget holds.
"$cli" generate -m "$model" -p "Hi." --temperature 0.8 --top-p 0.9 --seed 5 --max-tokens 6 --ids >"$work/s1"
"$cli" generate -m "$model" -p "Hi." --temperature 0.8 --top-p 0.9 --seed 5 --max-tokens 6 --ids >"$work/s2"
cmp "$work/s1" "$work/s2"
[ "$(tail -n 1 "$work/s1" | wc -w)" -le 6 ]

# caption of a preprocessed fMRI input ([1, 15724], the model-input tensor) in both position modes.
"$python" -c "import numpy, sys; numpy.save(sys.argv[1], numpy.linspace(-1, 1, 15724, dtype='f4')[None])" \
  "$work/fmri.npy"
for mode in official correct; do
  "$cli" caption --model "$model" --modality fmri --input "$work/fmri.npy" --preprocessed --temperature 0 \
    --max-tokens 8 --ids --position-mode $mode >"$work/cap.$mode"
  cat "$work/cap.$mode"
  tail -n 1 "$work/cap.$mode" | grep -Eq '^[0-9]+( [0-9]+)*$' || { echo "no ids on the last line"; exit 1; }
done
"$cli" caption --model "$model" --modality fmri --input "$work/fmri.npy" --preprocessed --temperature 0 \
  --max-tokens 8 --ids --position-mode correct >"$work/again"
cmp "$work/cap.correct" "$work/again"

expect_failure() {
  want=$1
  shift
  if "$cli" "$@" >"$work/out" 2>"$work/err"; then
    echo "$* succeeded"; exit 1
  fi
  cat "$work/err"
  [ "$(wc -l <"$work/err")" -eq 1 ] || { echo "expected one line of error"; exit 1; }
  grep -q "^onellm-cli: .*$want" "$work/err" || { echo "expected '$want'"; exit 1; }
}
# Without --model: $ONELLM_MODEL first (ol_model_default_path).
ONELLM_MODEL="$model" "$cli" generate --prompt "Name three colours." --temperature 0 --max-tokens 16 --ids \
  >"$work/default"
cmp "$work/gen.official" "$work/default"
export ONELLM_MODEL="$work/default-missing.gguf"
expect_failure "default-missing.gguf" generate --prompt "Hi."
unset ONELLM_MODEL
expect_failure "needs --prompt" generate --model "$model"
expect_failure "No such file" generate --model "$work/missing.gguf" --prompt "Hi."
expect_failure "unknown position mode 'sideways'" generate --model "$model" --prompt "Hi." \
  --position-mode sideways
expect_failure "max-tokens must be at least 1" generate --model "$model" --prompt "Hi." --max-tokens 0
expect_failure "needs --modality and --input" caption --model "$model" --input "$work/fmri.npy"
expect_failure "unknown modality 'smell'" caption --model "$model" --modality smell --input "$work/fmri.npy"
expect_failure "missing.npy" caption --model "$model" --modality fmri --input "$work/missing.npy" \
  --preprocessed
expect_failure "takes no positional arguments" generate --model "$model" --prompt "Hi." extra
rm -rf "$work"
