#!/usr/bin/env bash
# The GPU check, run on the GPU machine in one call (device tool), from the repository
# root, with dist/skillset-cuda.xz and dist/wheels (scripts/build-cuda.sh) carried along
# (`carry: ["dist/skillset-cuda.xz", "dist/wheels"]`):
#
#   scripts/gpu-check.sh [BINARY]          on the GPU machine
#   scripts/gpu-check.sh --dry-run         here, on the CPU, with target/release/skillset
#
# 1. transformers' own f16/bf16 outputs on the device for every fixture (the GPU machine
#    has PyTorch and transformers; text fixtures by scripts/make_fixtures.py, image/audio
#    ones by scripts/make_media_fixtures.py): what half precision is compared with;
# 2. every fixture through `skillset --run-tests --backends cuda` (cpu in the dry run), in
#    f32, f16 and bf16 (f32: the CPU tolerances; f16/bf16: max abs diff under 1e-2,
#    greedy tokens identical up to the reference's first near tie; both counted also
#    against transformers' own half-precision error);
# 3. `skillset run` on the device for each kind of task, and the error for an ordinal
#    that does not exist;
# then a compact family x backend x dtype table. Logs and backend_results.json go to
# $OUT (default gpu-out/). The all-MiniLM-L6-v2 check is scripts/gpu_minilm.py
# (`gpu-session.sh --minilm`, a second call: the packed model does not fit beside the
# wheels in one).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh "$@"
out=${OUT:-gpu-out}
mkdir -p "$out"
started=$(date +%s)
if [ "$device" = cuda ]; then
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader \
    > "$out/card.txt" 2>&1
fi
# transformers of the fixtures' version, carried as a wheel (scripts/gpu-wheels.sh): the
# GPU machine's own is older and lacks classes some fixtures use. If it does not import
# there (a requirement the image does not meet), the machine's own is used and the
# fixtures it cannot run are listed in references.log.
if ls dist/wheels/*.whl > /dev/null 2>&1; then
  site_dir=$(mktemp -d /tmp/skillset-site.XXXX)
  if python3 -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile \
      --no-cache-dir --target "$site_dir" dist/wheels/*.whl > "$out/wheels.log" 2>&1 &&
    PYTHONPATH="$site_dir${PYTHONPATH:+:$PYTHONPATH}" python3 -c 'import transformers.models' >> "$out/wheels.log" 2>&1; then
    export PYTHONPATH="$site_dir${PYTHONPATH:+:$PYTHONPATH}"
  else
    echo "the carried wheels do not install or import (see $out/wheels.log): using the machine's own transformers"
  fi
fi
python3 -c 'import torch, transformers; print(f"python: torch {torch.__version__}, transformers {transformers.__version__}")' 2>&1 |
  tee "$out/python.txt"
if ! "$bin" --version > "$out/version.txt" 2>&1; then
  cat "$out/version.txt"
  echo "$bin does not start (for the CUDA build: are libcuda and the CUDA 13 libraries on LD_LIBRARY_PATH?)"
  exit 1
fi

# (REFERENCES_DIR: elsewhere than $OUT, whose file count a device call limits)
refs=${REFERENCES_DIR:-$out/references}
echo "::: transformers' half-precision references on $device"
python3 scripts/make_fixtures.py --recompute tests/fixtures/*/ --device "$device" --dtype f16 bf16 \
  --out "$refs" > "$out/references.log" 2>&1 || echo "recomputing the references failed: see $out/references.log"
# The image/audio fixtures (make_fixtures.py skips them) by their own script.
python3 scripts/make_media_fixtures.py --recompute tests/fixtures/*/ --device "$device" --dtype f16 bf16 \
  --out "$refs" > "$out/references-media.log" 2>&1 ||
  echo "recomputing the media references failed: see $out/references-media.log"
export SKILLSET_REFERENCES="$refs"

echo "::: skillset --run-tests"
families=$(python3 -c 'import json; print(" ".join("--family " + f["name"] for f in json.load(open("model_types.json"))["families"]))')
# shellcheck disable=SC2086
"$bin" $families --run-tests --backends "$device" --dtypes f32,f16,bf16 --results "$out/backend_results.json" \
  --output-dir "$(mktemp -d /tmp/skillset-generated.XXXX)" > "$out/run-tests.log" 2>&1
echo "run-tests exit $?" >> "$out/run-tests.log"

echo "::: skillset run --device $device"
{
  "$bin" run --device "$device" --task fill-mask --model-dir tests/fixtures/bert-tiny-mlm --input "Paris is the [MASK] of France." --json
  "$bin" run --device "$device" --dtype f16 --task feature-extraction --pooling mean --model-dir tests/fixtures/bert-tiny-mlm --input "hello" --json
  "$bin" run --device "$device" --dtype bf16 --task text-generation --max-new-tokens 8 --model-dir tests/fixtures/llama-tiny --input "Paris is" --json
  "$bin" run --device "$device" --task text2text-generation --max-new-tokens 8 --model-dir tests/fixtures/t5-tiny --input "summarize: a b c" --json
  if [ "$device" = cuda ]; then
    # auto must choose the GPU (and say so in "device"), with nothing passed over.
    "$bin" run --device auto --task fill-mask --model-dir tests/fixtures/bert-tiny-mlm --input "a [MASK]" --json
    "$bin" run --device cuda:99 --task fill-mask --model-dir tests/fixtures/bert-tiny-mlm --input "a [MASK]" --json
    echo "missing ordinal exit $? (expected 1)"
  fi
} > "$out/run.log" 2>&1
grep -c '"outputs"' "$out/run.log" | sed 's/^/skillset run outputs: /'

python3 scripts/gpu_table.py "$out/backend_results.json" --backend "$device"
echo "gpu-check took $(( $(date +%s) - started )) s; logs in $out/"
