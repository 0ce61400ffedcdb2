#!/usr/bin/env bash
# Downloads (here, on Debian 12) the packages scripts/gpu-build.sh unpacks on the GPU machine,
# into .gpu/debs (git-ignored; carried to the device with the `carry` option).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/debs && cd .gpu/debs
for p in libgrpc++1.51 libgrpc29 libgrpc++-dev libgrpc-dev libprotobuf32 libprotobuf-dev \
  libprotoc32 protobuf-compiler protobuf-compiler-grpc libabsl20220623 libabsl-dev libre2-9 \
  libre2-dev libc-ares2 libc-ares-dev libyaml-cpp0.7 libyaml-cpp-dev libprometheus-cpp-core1.0 \
  libprometheus-cpp-pull1.0 libprometheus-cpp-push1.0 prometheus-cpp-dev libcivetweb1 \
  libcivetweb-dev libstb0 libstb-dev libjpeg62-turbo libjpeg62-turbo-dev nlohmann-json3-dev libssl-dev libssl3 zlib1g-dev libupb0 \
  libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libutf8proc2 \
  libutf8proc-dev libsqlite3-dev libsqlite3-0 libcli11-dev libgtest-dev libgmock-dev \
  libbenchmark-dev libbenchmark1debian; do
  apt-get download "$p" >/dev/null
done
ls | wc -l
