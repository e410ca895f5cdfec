#!/usr/bin/env bash
# Build the web backend: skillset-web compiled to wasm32-unknown-unknown with SIMD128,
# post-processed by wasm-bindgen into web/pkg/ (what web/skillsets.js imports).
#
#   scripts/build-web.sh            # release build (the demo, the browser tests)
#
# Installs what it needs once (scripts/setup-web.sh --build-only): the wasm32 target and
# wasm-bindgen-cli at the version web/skillset-web pins.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir="$root/target/web"

scripts/setup-web.sh --build-only
bindgen="$HOME/.cargo/bin/wasm-bindgen"

RUSTFLAGS="-C target-feature=+simd128" CARGO_TARGET_DIR="$target_dir" \
    cargo build --release --target wasm32-unknown-unknown \
    --manifest-path web/skillset-web/Cargo.toml
rm -rf web/pkg
"$bindgen" --target web --no-typescript --out-dir web/pkg \
    "$target_dir/wasm32-unknown-unknown/release/skillset_web.wasm"
wasm=web/pkg/skillset_web_bg.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
awk -v w="$wasm" -v r="$raw" -v g="$gz" \
    'BEGIN { printf "web/pkg: %s (%.2f MiB, %.2f MiB gzip -9)\n", w, r / 1048576, g / 1048576 }'
