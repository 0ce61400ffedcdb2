#!/usr/bin/env bash
# The test command: setup (Debian packages, tokenizer) + configure + build (-j2) + ctest, then
# a short smoke run of every fuzz target (clang build in build-fuzz/, FUZZ_SMOKE_SECONDS each,
# default 15; FUZZ_SMOKE_SECONDS=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
(cd build && ctest --output-on-failure -j "${CTEST_JOBS:-2}" --timeout "${CTEST_TIMEOUT:-900}" "$@")
if [ "${FUZZ_SMOKE_SECONDS:-15}" != 0 ]; then
  ./scripts/fuzz.sh all "${FUZZ_SMOKE_SECONDS:-15}"
fi
