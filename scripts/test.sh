#!/usr/bin/env bash
# The test command: setup (Debian packages, tokenizer) + configure + build (-j2) + ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
cd build
ctest --output-on-failure -j "${CTEST_JOBS:-2}" --timeout "${CTEST_TIMEOUT:-900}" "$@"
