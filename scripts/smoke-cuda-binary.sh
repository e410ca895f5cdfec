#!/usr/bin/env bash
# Smoke-test the CUDA binary here, without a GPU, before spending GPU time on it
# (scripts/build-cuda.sh runs it last). The real libcuda comes with a driver; in its place
# a stand-in whose every entry point answers CUDA_ERROR_NO_DEVICE (100) — what a machine
# with the driver and no GPU answers. Checks that the binary:
#   - starts (its shared libraries and symbol versions resolve: CUDA 13 wheels, glibc);
#   - answers `--device cuda` with a typed error naming the device, exit 1, no panic;
#   - falls back from `--device auto` to the CPU, saying why;
#   - passes every family's checks on its CPU path (`--run-tests --backends cpu`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-dist/skillset-cuda}
stub_src=target/cuda13-link/cuda_stub.c
[ -x "$bin" ] || { echo "no $bin: run scripts/build-cuda.sh" >&2; exit 1; }
[ -f "$stub_src" ] || { echo "no $stub_src: run scripts/build-cuda.sh" >&2; exit 1; }
work=$(mktemp -d /tmp/cuda-smoke.XXXX)
fail=0
trap '[ "$fail" = 0 ] && rm -rf "$work"; [ "$fail" = 0 ] || echo "logs in $work"' EXIT
sed 's/^void \(.*\)(void) {}/int \1(void) { return 100; }/' "$stub_src" > "$work/nodev.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$work/libcuda.so.1" "$work/nodev.c"
export LD_LIBRARY_PATH="$work:$(pwd)/target/cuda13/nvidia/cu13/lib"
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }
run=(run --task fill-mask --model-dir tests/fixtures/bert-tiny-mlm --input "a [MASK]" --json)

"$bin" --version > "$work/version" 2>&1 || true
check "starts: $(head -n 1 "$work/version")" 'grep -q "^skillset " "$work/version"'

set +e
"$bin" "${run[@]}" --device cuda > "$work/cuda.out" 2> "$work/cuda.err"; code=$?
set -e
check "--device cuda without a GPU: exit $code, $(head -n 1 "$work/cuda.err")" \
  '[ $code = 1 ] && grep -q "device .cuda:0. is not available" "$work/cuda.err" && ! grep -q panicked "$work/cuda.err"'

"$bin" "${run[@]}" --device auto > "$work/auto.out" 2> "$work/auto.err" || true
check "--device auto falls back to the CPU and says why" \
  'grep -q "\"device\":\"cpu\"" "$work/auto.out" && grep -q "not using cuda:0" "$work/auto.err"'

families=$(python3 -c 'import json; print(" ".join("--family " + f["name"] for f in json.load(open("model_types.json"))["families"]))')
# shellcheck disable=SC2086
"$bin" $families --run-tests --backends cpu --results "$work/results.json" --output-dir "$work/gen" \
  > "$work/run-tests.log" 2>&1 || true
check "every family on the CPU path: $(grep -c ' pass ' "$work/run-tests.log") model types pass" \
  '! grep -q " fail " "$work/run-tests.log" && grep -q " pass " "$work/run-tests.log"'
exit $fail
