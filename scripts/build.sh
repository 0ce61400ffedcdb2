#!/usr/bin/env bash
# Configures and builds vlmd into ./build (CPU libtorch from Debian). Extra args go to cmake.
# TARGETS (space-separated) limits what is built, e.g. TARGETS="vlmd vlmctl"; default: all.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} "$@" >/dev/null
cmake --build build -j "$JOBS" ${TARGETS:+--target $TARGETS}
