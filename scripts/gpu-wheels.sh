#!/usr/bin/env bash
# The Python wheels scripts/gpu-check.sh needs on the GPU machine beside its own packages:
# transformers of the version the fixtures were made with (tests/fixtures/*/reference.json,
# "transformers_version"). The GPU machine's image has an older transformers (5.17 when
# last read), which lacks model classes the fixtures use (InternLM3, IQuestCoder), so its
# half-precision references would not all be recomputed. Nothing can be fetched there:
# the wheels go to dist/wheels/ here and travel with `carry: ["dist/wheels", ...]`.
# transformers 5.23 needs huggingface-hub >= 1.31 and tokenizers 0.23 (the image has
# 1.33 and 0.23.2), so only transformers itself is carried (13 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(python3 -c '
import collections, glob, json
seen = collections.Counter(json.load(open(p)).get("transformers_version") for p in glob.glob("tests/fixtures/*/reference.json"))
print(seen.most_common(1)[0][0])')
rm -rf dist/wheels
mkdir -p dist/wheels
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  -d dist/wheels "transformers==$version"
ls -la dist/wheels
