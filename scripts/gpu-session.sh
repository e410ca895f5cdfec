#!/usr/bin/env bash
# Everything a GPU session measures, in one device call (each start of the GPU machine
# costs minutes of a 15-minute budget):
#
#   call 1: command "scripts/gpu-session.sh", carry ["dist/skillset-cuda.xz", "dist/wheels"],
#           timeout_s 600                (built here first by scripts/build-cuda.sh)
#   call 2, at once (the machine is kept 30 s): command "scripts/gpu-session.sh --minilm",
#           carry ["dist/skillset-cuda.xz", "dist/minilm"], timeout_s 180
#                                        (scripts/pack-minilm.sh; 62.0 MiB with the tree of 14.4)
#   scripts/gpu-session.sh --dry-run [--minilm]    here, on the CPU (target/release/skillset)
#
# --minilm: scripts/gpu_minilm.py only, the all-MiniLM-L6-v2 check in
# f32/f16/bf16 against sentence-transformers (under $OUT/minilm/). Otherwise:
# 1. scripts/gpu-check.sh: every fixture in f32/f16/bf16 against transformers, the
#    family x backend x dtype table, backend_results.json (under $OUT/check/);
# 2. scripts/gpu-bench.sh, with what is left of BUDGET_S (default 560 s): the GPU rows of
#    BENCHMARKS.md (under $OUT/bench/).
# Prints the tables last. Afterwards, here: scripts/gpu-record.sh DIR (the call's files).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
budget=${BUDGET_S:-560}
started=$(date +%s)
mkdir -p "$out"
[ -f dist/skillset-cuda.commit ] && echo "binary built from: $(cat dist/skillset-cuda.commit)"
minilm=0
args=()
for a in "$@"; do
  if [ "$a" = --minilm ]; then minilm=1; else args+=("$a"); fi
done
set -- "${args[@]}"
if [ "$minilm" = 1 ]; then
  # shellcheck source=scripts/gpu-env.sh
  . scripts/gpu-env.sh "$@"
  OUT="$out" timeout "$budget" python3 scripts/gpu_minilm.py --bin "$bin" --device "$device" \
    > "$out/minilm.txt" 2>&1
  echo "gpu_minilm exit $? after $(( $(date +%s) - started )) s"
  grep -E '^minilm' "$out/minilm.txt" || tail -5 "$out/minilm.txt"
  exit 0
fi
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
