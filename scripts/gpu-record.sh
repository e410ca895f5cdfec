#!/usr/bin/env bash
# After a GPU session, here: record what scripts/gpu-session.sh measured there.
#
#   scripts/gpu-record.sh DIR      DIR: the device call's files (holding check/)
#
# Copies the cuda runs of DIR/check/backend_results.json into backend_results.json
# (`skillset --merge-results`; the cpu, metal and wasm runs stay as recorded), so that
# the generated skillsets and docs say which model types are verified on CUDA, and
# writes GPU_RESULTS.md: the family x dtype table with the card it ran on. Then fill in
# BENCHMARKS.md's GPU rows from DIR/bench/table.txt and commit.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?usage: scripts/gpu-record.sh DIR, the files of the device call, holding check/}
results=$dir/check/backend_results.json
[ -f "$results" ] || { echo "no $results: did gpu-check.sh run?" >&2; exit 1; }
card=$(head -n 1 "$dir/check/card.txt" 2>/dev/null || echo "a GPU")
cargo build --release --quiet
target/release/skillset --merge-results "$results" --backends cuda --results backend_results.json
python3 scripts/gpu_table.py "$results" --backend cuda --markdown GPU_RESULTS.md \
  --card "$card ($(date -u +%F))"
[ -f "$dir/bench/table.txt" ] && { echo "benchmark rows (for BENCHMARKS.md):"; cat "$dir/bench/table.txt"; }
