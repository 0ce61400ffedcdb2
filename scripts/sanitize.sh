#!/usr/bin/env bash
# ASan+UBSan build (-DVLMD_SANITIZE=ON) of the unit and end-to-end tests in build-asan/, run
# with leak detection. libtorch's known reports are suppressed by the files in
# tests/sanitizers/ (one comment per entry says why). Extra args go to ctest, e.g.
#   scripts/sanitize.sh -L unit          # unit tests only
#   scripts/sanitize.sh -R e2e_infer     # one test
# Exit status: ctest's (any sanitizer report fails the test that triggered it).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
JOBS=${JOBS:-2}
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVLMD_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"
# halt_on_error: a UBSan report fails the test instead of scrolling by. detect_leaks: LSan at
# exit of every test binary and of every vlmd/vlmctl process the e2e tests start.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_odr_violation=${VLMD_ASAN_ODR:-0}:suppressions=$SRC/tests/sanitizers/asan.supp:${ASAN_OPTIONS_EXTRA:-}"
export LSAN_OPTIONS="suppressions=$SRC/tests/sanitizers/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$SRC/tests/sanitizers/ubsan.supp"
cd build-asan
ctest --output-on-failure -j "${CTEST_JOBS:-2}" --timeout "${CTEST_TIMEOUT:-1800}" -LE parity "$@"
