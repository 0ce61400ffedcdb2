#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz: one or all, each for SECONDS, one process each.
#   scripts/fuzz.sh [--bin-dir DIR] [--runs N] TARGET|all SECONDS [libFuzzer flags...]
# Without --bin-dir it first configures and builds build-fuzz/ (clang-14, -DVLMD_FUZZ=ON: only
# the torch-free libraries, ASan+UBSan). Seeds come from tests/fuzz/corpus/<target>/ (read
# only); what the fuzzer finds goes to <bin-dir>/corpus/<target>/, crashes to
# <bin-dir>/artifacts/<target>/. --runs N stops after N executions instead (long runs:
# `--runs 10000000 TARGET 0`). Exit status: non-zero when a target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BIN=""
RUNS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
TARGET=$1
SECONDS_EACH=$2
shift 2
TARGETS=(image safetensors config tokenizer dataset job_spec paths convert)
if [ "$TARGET" != all ]; then TARGETS=("$TARGET"); fi

if [ -z "$BIN" ]; then
  CC=${FUZZ_CC:-clang-14} CXX=${FUZZ_CXX:-clang++-14} cmake -S . -B build-fuzz -G Ninja \
    -DVLMD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build-fuzz -j "${JOBS:-2}" --target "${TARGETS[@]/#/fuzz_}"
  BIN=build-fuzz/tests/fuzz
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for t in "${TARGETS[@]}"; do
  work="$BIN/corpus/$t"
  artifacts="$BIN/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  args=(-timeout=25 -rss_limit_mb=2560 -print_final_stats=1 "-artifact_prefix=$artifacts/")
  if [ -n "$RUNS" ]; then args+=("-runs=$RUNS"); else args+=("-max_total_time=$SECONDS_EACH"); fi
  [ -f "$SRC/tests/fuzz/$t.dict" ] && args+=("-dict=$SRC/tests/fuzz/$t.dict")
  # Text formats: long inputs only slow the search down (JSON parsing is linear, BPE is not).
  case "$t" in dataset|tokenizer) args+=(-max_len=2048) ;; config|job_spec) args+=(-max_len=4096) ;; esac
  if [ -n "$RUNS" ]; then echo "== fuzz $t ($RUNS runs)"; else echo "== fuzz $t (${SECONDS_EACH}s)"; fi
  log="$BIN/fuzz_$t.log"
  if "$BIN/fuzz_$t" "${args[@]}" "$@" "$work" "$SRC/tests/fuzz/corpus/$t" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^Done " "$log" || true
  else
    status=1
    echo "fuzz $t FAILED (log: $log); last lines:"
    tail -40 "$log"
  fi
done
exit $status
