#!/usr/bin/env bash
# Builds vlmd on the GPU machine (Ubuntu 24.04, CUDA libtorch of the machine's PyTorch), with
# gRPC/protobuf/abseil/prometheus-cpp/yaml-cpp/... taken from Debian 12 packages carried in
# .gpu/debs (download them here with scripts/gpu-debs.sh). Never unpacks into /.
# Usage: scripts/gpu-build.sh [extra cmake args]; then `source scripts/gpu-env.sh` to run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-env.sh
if [ ! -f "$VLMD_DEB/.unpacked" ]; then
  mkdir -p "$VLMD_DEB"
  for f in .gpu/debs/*.deb; do dpkg -x "$f" "$VLMD_DEB"; done
  # prometheus-cpp's CMake config checks that civetweb's binary exists.
  mkdir -p "$VLMD_DEB/usr/bin" && touch "$VLMD_DEB/usr/bin/civetweb"
  touch "$VLMD_DEB/.unpacked"
fi
TORCH_CMAKE=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_CMAKE;$VLMD_DEB/usr;$VLMD_DEB/usr/lib/x86_64-linux-gnu/cmake" \
  -DVLMD_PROTOC="$VLMD_DEB/usr/bin/protoc" -DVLMD_GRPC_PLUGIN="$VLMD_DEB/usr/bin/grpc_cpp_plugin" \
  -DProtobuf_PROTOC_EXECUTABLE="$VLMD_DEB/usr/bin/protoc" \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DTORCH_CUDA_ARCH_LIST=9.0 "$@"
# TARGETS (space-separated) limits what is built; default: everything.
cmake --build build-gpu -j "${JOBS:-16}" ${TARGETS:+--target $TARGETS}
