#!/usr/bin/env bash
# The GPU rows of BENCHMARKS.md, on the GPU machine in one call (device tool), from the
# repository root with dist/skillset-cuda.xz (scripts/build-cuda.sh) carried along:
#
#   scripts/gpu-bench.sh [BINARY]        on the GPU machine (~6 min: making the 1.1B
#                                        random-weight model takes a minute)
#   scripts/gpu-bench.sh --dry-run       here: the same rows, tiny, on the CPU
#
# Makes the random-weight BERT-base and TinyLlama-shaped 1.1B checkpoints with
# transformers (scripts/make_bench_models.py; nothing is downloaded), then runs each
# row through scripts/bench.sh (ours and PyTorch in the same run, medians after
# warm-up) and prints the table last. Logs go to $OUT (default gpu-out/).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh "$@"
models=${MODELS_DIR:-/tmp/skillsets-bench}
out=${OUT:-gpu-out}
mkdir -p "$out"
if [ "$device" = cuda ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/card.txt" 2>&1
fi
if [ "$device" = cuda ]; then
  python3 scripts/make_bench_models.py --out "$models" bert-base tinyllama-1.1b > "$out/models.log" 2>&1
  bert=$models/bert-base; llama=$models/tinyllama-1.1b; new=128; big=128
else
  bert=tests/fixtures/bert-tiny-cls; llama=tests/fixtures/llama-tiny; new=8; big=8
fi
# model task dtype batch seq new-tokens timed-iterations: a generation iteration is
# 128 tokens (about 2 s for HF generate at batch 1), so its rows take 5, not 30 (the
# 2026-11-28 session ran out of device time before the batch-8 row).
rows=(
  "$bert feature-extraction f16 32 128 - 30"
  "$bert feature-extraction f16 $big 128 - 30"
  "$bert feature-extraction f32 $big 128 - 30"
  "$llama text-generation bf16 1 32 $new 5"
  "$llama text-generation bf16 8 32 $new 5"
)
: > "$out/table.txt"
for row in "${rows[@]}"; do
  set -- $row
  log="$out/bench-$2-$3-$4.log"
  if DEVICE=$device DTYPE=$3 BIN=$bin MAX_NEW_TOKENS=${6/-/32} ITERS=${ITERS:-$7} WARMUP=${WARMUP:-$(( $7 < 10 ? 1 : 3 ))} \
      timeout 300 scripts/bench.sh "$1" "$2" "$4" "$5" 16 > "$log" 2>&1; then
    tail -1 "$log" | tee -a "$out/table.txt"
  else
    echo "$2 $3 batch $4: FAILED (see $log)" | tee -a "$out/table.txt"
    tail -5 "$log"
  fi
done
echo; cat "$out/card.txt" 2>/dev/null; echo "== table"; cat "$out/table.txt"
