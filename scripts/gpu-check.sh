#!/usr/bin/env bash
# The GPU check, run on the GPU machine in one call (device tool), from the repository
# root with dist/skillset-cuda built by scripts/build-cuda.sh carried along:
#
#   scripts/gpu-check.sh [dist/skillset-cuda]
#
# 1. transformers' own f16/bf16 outputs on cuda for every fixture (the machine has
#    PyTorch and transformers; they are what half precision is compared with),
# 2. every fixture through `skillset --run-tests` on cpu and cuda in f32, f16 and bf16
#    (f32: the CPU tolerances; f16/bf16: max abs diff under 1e-2, identical greedy
#    tokens up to the reference's first near tie),
# 3. `skillset run --device cuda` for each task, and errors for a missing ordinal,
# then a compact table. Full logs and backend_results.json go to $OUT.
set -uo pipefail
bin=${1:-dist/skillset-cuda}
out=${OUT:-gpu-out}
mkdir -p "$out"
site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
export LD_LIBRARY_PATH="$site/nvidia/cu13/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
"$bin" --version > "$out/version.txt" 2>&1 || { cat "$out/version.txt"; echo "the CUDA binary does not start: see above"; exit 1; }

fixtures=$(ls -d tests/fixtures/*/)
python3 scripts/make_fixtures.py --recompute $fixtures --device cuda --dtype f16 bf16 > "$out/references.log" 2>&1 ||
  echo "recomputing transformers' half-precision references failed: see $out/references.log"
families=$(python3 -c 'import json; print(" ".join("--family " + f["name"] for f in json.load(open("model_types.json"))["families"]))')
"$bin" $families --run-tests --dtypes f32,f16,bf16 --results "$out/backend_results.json" \
  --output-dir "$out/generated" > "$out/run-tests.log" 2>&1
echo "run-tests exit $?" >> "$out/run-tests.log"

{
  "$bin" run --device cuda --task fill-mask --model-dir tests/fixtures/bert-tiny-mlm --input "Paris is the [MASK] of France." --json
  "$bin" run --device cuda --dtype f16 --task feature-extraction --pooling mean --model-dir tests/fixtures/bert-tiny-mlm --input "hello" --json
  "$bin" run --device cuda --dtype bf16 --task text-generation --model-dir tests/fixtures/llama-tiny --input "Paris is" --json
  "$bin" run --device cuda:99 --task fill-mask --model-dir tests/fixtures/bert-tiny-mlm --input "a [MASK]" --json
  echo "missing ordinal exit $? (expected 1)"
} > "$out/run.log" 2>&1

python3 - "$out/backend_results.json" <<'PY'
import json, sys
from collections import defaultdict
d = json.load(open(sys.argv[1]))
table = defaultdict(lambda: defaultdict(lambda: [0, 0]))
fams = {e["model_type"]: e["family"] for e in json.load(open("model_types.json"))["model_types"]}
for mt, runs in d["results"].items():
    for r in runs:
        for c in r.get("checks", []):
            cell = table[(fams.get(mt), r["backend"])][c["dtype"]]
            cell[0] += c["passed"]
            cell[1] += 1
print(f"{'family':<8} {'backend':<7} {'f32':>9} {'f16':>9} {'bf16':>9}")
for (fam, backend), cells in sorted(table.items(), key=lambda x: (str(x[0][0]), x[0][1])):
    row = [f"{cells[dt][0]}/{cells[dt][1]}" if dt in cells else "-" for dt in ("f32", "f16", "bf16")]
    print(f"{str(fam):<8} {backend:<7} {row[0]:>9} {row[1]:>9} {row[2]:>9}")
PY
