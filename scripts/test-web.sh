#!/usr/bin/env bash
# The web backend's browser tests: build the wasm package (scripts/build-web.sh) and
# the native `skillset` binary (the outputs the page must equal), then run
# web/test/*.test.mjs in headless Chromium (Debian's /usr/bin/chromium, driven by
# playwright-core from npm; never a browser download).
#
#   scripts/test-web.sh                       # as scripts/test.sh runs it
#   SKILLSET_WEB_RECORD=1 scripts/test-web.sh # also record the wasm results in
#                                             # backend_results.json
# Installs what is missing first (scripts/setup-web.sh): chromium (apt-get, as root),
# web/node_modules (npm ci), the wasm32 target, wasm-bindgen-cli.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-web.sh
scripts/build-web.sh
cargo build --bin skillset
node --test --test-reporter=spec web/test/
