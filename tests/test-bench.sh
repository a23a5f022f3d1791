#!/bin/sh
# onellm-bench ops: a filtered quick run prints the peaks and its rows; bad input exits 1 with one line.
#   test-bench.sh ONELLM_BENCH WORK_DIR
set -eu
bench=$1
work=$2
rm -rf "$work"
mkdir -p "$work"

out=$("$bench" ops --quick --filter "q4_0 1x4096x4096" --repeat 1)
echo "$out"
echo "$out" | grep -q "^peak copy bandwidth: [0-9.]* GB/s"
echo "$out" | grep -q "^peak compute: [0-9.]* GFLOP/s"
[ "$(echo "$out" | grep -c "^matvec q4_0 ")" -eq 1 ] || { echo "expected one q4_0 matvec row"; exit 1; }

expect_failure() {
  msg=$1
  shift
  if "$bench" "$@" >"$work/out" 2>"$work/err"; then
    echo "onellm-bench $* succeeded"; exit 1
  fi
  cat "$work/err"
  [ "$(wc -l <"$work/err")" -eq 1 ] || { echo "expected one line of error"; exit 1; }
  grep -q "^onellm-bench: .*$msg" "$work/err" || { echo "expected '$msg'"; exit 1; }
}
expect_failure "--repeat must be at least 1" ops --quick --repeat 0
expect_failure "no row matches" ops --quick --filter "no such op"
expect_failure "unknown command" frobnicate
