#!/usr/bin/env bash
# skillsets vs PyTorch on the same workload, in one run, on this machine's CPU:
#   scripts/bench.sh MODEL_DIR [TASK] [BATCH] [SEQ] [THREADS]
# Prints both JSON lines and the ratio (ours / PyTorch, higher is better).
# Needs the release binary (cargo build --release) and torch + sentence-transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:?model dir}; task=${2:-feature-extraction}; batch=${3:-32}; seq=${4:-128}; threads=${5:-2}
iters=${ITERS:-10}
ours=$(RAYON_NUM_THREADS=$threads ./target/release/skillset bench --model-dir "$dir" --task "$task" \
  --batch "$batch" --seq "$seq" --iters "$iters" --json)
peer=$(python3 scripts/bench_peer.py --model-dir "$dir" --task "$task" --batch "$batch" --seq "$seq" \
  --threads "$threads" --iters "$iters")
echo "skillsets: $ours"
echo "pytorch:   $peer"
python3 - "$ours" "$peer" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
key = "tokens_per_s" if o.get("tokens_per_s") else "items_per_s"
print(f"{o['task']} batch {o['batch']} x {o['seq']}: {o[key]:.1f} vs {p[key]:.1f} {key} -> {o[key] / p[key]:.2f}x")
PY
