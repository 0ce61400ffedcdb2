#!/usr/bin/env bash
# The test command: setup (Debian packages, tokenizer) + configure + build (-j2) + ctest, and
# a short smoke run of every fuzz target (clang build in build-fuzz/, FUZZ_SMOKE_SECONDS each,
# default 15; FUZZ_SMOKE_SECONDS=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
# The fuzz smoke runs first so that ctest's summary stays the last thing printed.
fuzz_status=0
if [ "${FUZZ_SMOKE_SECONDS:-15}" != 0 ]; then
  ./scripts/fuzz.sh all "${FUZZ_SMOKE_SECONDS:-15}" || fuzz_status=$?
fi
cd build
ctest --output-on-failure -j "${CTEST_JOBS:-2}" --timeout "${CTEST_TIMEOUT:-900}" "$@"
if [ "$fuzz_status" != 0 ]; then
  echo "fuzz smoke failed (see above)"
  exit "$fuzz_status"
fi
