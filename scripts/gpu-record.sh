#!/usr/bin/env bash
# After a GPU session, here: record what scripts/gpu-session.sh measured there.
#
#   scripts/gpu-record.sh DIR [DIR2]   the files of the device calls (one holding check/,
#                                      and the --minilm call's, holding minilm/)
#
# Copies the cuda runs of check/backend_results.json into backend_results.json
# (`skillset --merge-results`; the cpu, metal and wasm runs stay as recorded), so that
# the generated skillsets and docs say which model types are verified on CUDA, and
# writes GPU_RESULTS.md: the family x dtype table with the card it ran on, and the
# all-MiniLM-L6-v2 rows. Then fill in BENCHMARKS.md's GPU rows from bench/table.txt
# and commit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/gpu-record.sh DIR [DIR2]" >&2; exit 2; }
check="" minilm="" bench=""
for d in "$@"; do
  [ -f "$d/check/backend_results.json" ] && check=$d/check
  [ -f "$d/minilm/minilm.json" ] && minilm=$d/minilm/minilm.json
  [ -f "$d/bench/table.txt" ] && bench=$d/bench/table.txt
done
[ -n "$check" ] || { echo "no check/backend_results.json under $*: did gpu-check.sh run?" >&2; exit 1; }
card=$(head -n 1 "$check/card.txt" 2>/dev/null || echo "a GPU")
cargo build --release --quiet
target/release/skillset --merge-results "$check/backend_results.json" --backends cuda --results backend_results.json
python3 scripts/gpu_table.py "$check/backend_results.json" --backend cuda --markdown GPU_RESULTS.md \
  --card "$card ($(date -u +%F))"
if [ -n "$minilm" ]; then
  python3 - "$minilm" >> GPU_RESULTS.md <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"\n## all-MiniLM-L6-v2 against sentence-transformers ({d['sentence_transformers']}, torch {d['torch']}, {d['device']})\n")
print("| dtype | result | max abs diff | min cosine | ours vs f32 | sentence-transformers vs f32 |")
print("| --- | --- | --- | --- | --- | --- |")
for r in d["runs"]:
    if "error" in r:
        print(f"| {r['dtype']} | error: {r['error'][:80]} | | | | |")
    else:
        print(f"| {r['dtype']} | {'pass' if r['passed'] else 'FAIL'} | {r['max_abs_diff']:.2e} | {r['min_cosine']:.6f} "
              f"| {r['ours_vs_f32']:.2e} | {r['sentence_transformers_vs_f32']:.2e} |")
print(f"\n{d['model']}; `scripts/gpu_minilm.py`.")
PY
fi
echo "wrote GPU_RESULTS.md"
[ -z "$bench" ] || { echo "benchmark rows (for BENCHMARKS.md):"; cat "$bench"; }
