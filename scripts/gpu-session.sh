#!/usr/bin/env bash
# Everything a GPU session measures, in one device call (each start of the GPU machine
# costs minutes of a 15-minute budget):
#
#   device run: command "scripts/gpu-session.sh", carry ["dist/skillset-cuda.xz", "dist/wheels"],
#               timeout_s 600          (build both here first: scripts/build-cuda.sh)
#   scripts/gpu-session.sh --dry-run   here, on the CPU (target/release/skillset)
#
# 1. scripts/gpu-check.sh: every fixture in f32/f16/bf16 against transformers, the
#    family x backend x dtype table, backend_results.json (under $OUT/check/);
# 2. scripts/gpu-bench.sh, with what is left of BUDGET_S (default 560 s): the GPU rows of
#    BENCHMARKS.md (under $OUT/bench/).
# Prints both tables last. Afterwards, here: merge $OUT/check/backend_results.json into
# backend_results.json and fill in BENCHMARKS.md's GPU table (see the closing notes).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
budget=${BUDGET_S:-560}
started=$(date +%s)
mkdir -p "$out"
[ -f dist/skillset-cuda.commit ] && echo "binary built from: $(cat dist/skillset-cuda.commit)"
OUT="$out/check" timeout $((budget - 60)) scripts/gpu-check.sh "$@" > "$out/check.txt" 2>&1
echo "gpu-check exit $? after $(( $(date +%s) - started )) s"
left=$((budget - ($(date +%s) - started)))
if [ "$left" -gt 90 ]; then
  OUT="$out/bench" timeout "$left" scripts/gpu-bench.sh "$@" > "$out/bench.txt" 2>&1
  echo "gpu-bench exit $? after $(( $(date +%s) - started )) s"
else
  echo "no time left for the benchmark ($left s)"
fi
echo "== check"
sed -n '/^family /,$p' "$out/check.txt"
grep '^FAIL' "$out/check.txt" | head -15
echo "== bench"
sed -n '/^== table/,$p' "$out/bench.txt" 2>/dev/null
