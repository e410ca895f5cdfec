#!/usr/bin/env bash
# skillsets vs PyTorch on the same workload, in one run, on the same machine:
#   scripts/bench.sh MODEL_DIR [TASK] [BATCH] [SEQ] [THREADS]
# Environment: DEVICE (cpu|cuda, default cpu), DTYPE (f32|f16|bf16, default f32),
# MAX_NEW_TOKENS (text-generation, default 32), ITERS (default 10), WARMUP (default 2),
# BIN (default target/release/skillset; dist/skillset-cuda on a GPU machine).
# Prints both JSON lines and the ratio (ours / PyTorch, higher is better). Needs torch
# and transformers (+ sentence-transformers for feature-extraction on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?model dir}; task=${2:-feature-extraction}; batch=${3:-32}; seq=${4:-128}; threads=${5:-2}
device=${DEVICE:-cpu}; dtype=${DTYPE:-f32}; new=${MAX_NEW_TOKENS:-32}
iters=${ITERS:-10}; warmup=${WARMUP:-2}; bin=${BIN:-./target/release/skillset}
ours=$(RAYON_NUM_THREADS=$threads "$bin" bench --model-dir "$dir" --task "$task" \
  --device "$device" --dtype "$dtype" --batch "$batch" --seq "$seq" --max-new-tokens "$new" \
  --iters "$iters" --warmup "$warmup" --json)
peer=$(python3 scripts/bench_peer.py --model-dir "$dir" --task "$task" --device "$device" \
  --dtype "$dtype" --batch "$batch" --seq "$seq" --max-new-tokens "$new" --threads "$threads" \
  --iters "$iters" --warmup "$warmup")
echo "skillsets: $ours"
echo "pytorch:   $peer"
python3 - "$ours" "$peer" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
key = "tokens_per_s" if o.get("tokens_per_s") else "items_per_s"
print(f"{o['task']} {o['device']} {o['dtype']} batch {o['batch']} x {o['seq']}: "
      f"{o[key]:.1f} vs {p[key]:.1f} {key} -> {o[key] / p[key]:.2f}x")
PY
