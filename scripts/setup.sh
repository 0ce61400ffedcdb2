#!/usr/bin/env bash
# Installs every Debian package that vlmd's build, tests and demo need, and the tokenizer
# vocabulary used by models that ship without a tokenizer.json (the embedded demo model).
# Idempotent and non-interactive. Runs apt through sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libtorch-dev
  libgloo-dev
  libgrpc++-dev libgrpc-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
  libabsl-dev prometheus-cpp-dev libyaml-cpp-dev nlohmann-json3-dev
  libstb-dev libjpeg62-turbo-dev libpcre2-dev libutf8proc-dev libcli11-dev libsqlite3-dev libssl-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  openssl python3 python3-yaml
  texlive-latex-base texlive-latex-extra texlive-fonts-recommended dvipng
  prometheus
  clang-14 libclang-rt-14-dev
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm may come from another source (e.g. NodeSource); only ask Debian for it when it is absent.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  echo "setup: Debian packages present"
fi

./scripts/fetch_tokenizer.sh
