#!/usr/bin/env bash
# Build a CUDA binary of `skillset` on a machine without a GPU, for the GPU machines
# (H100/H200, sm_90, CUDA 13.0 driver). Recipe: DESIGN.md, "CUDA without a GPU".
#   - nvcc, headers and the CUDA libraries the linker needs come from PyPI wheels pinned
#     to CUDA 13.0 (a newer nvcc emits code the 13.0 driver rejects);
#   - libcuda comes only with the driver, so the link uses a stub whose every `cu*`
#     symbol is an empty function; the real driver library is used at run time.
# Output: dist/skillset-cuda (stripped) and dist/skillset-cuda.xz (what to carry to the
# GPU machine: `carry: ["dist/skillset-cuda.xz", "dist/wheels"]`, the wheels by
# scripts/gpu-wheels.sh, which this script runs last). At run time it needs libcuda.so.1 (driver),
# libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13 and
# libcudart.so.13 on LD_LIBRARY_PATH, even for --help (see scripts/gpu-check.sh).
# Takes ~20 minutes on 2 cores, most of it nvcc compiling candle-kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
cuda_dir=target/cuda13
link_dir="$(pwd)/target/cuda13-link"

python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$cuda_dir" \
  "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" \
  "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" \
  "nvidia-cublas==13.0.*" "nvidia-curand>=10.4,<10.5" "nvidia-cuda-nvrtc==13.0.*"
root="$(pwd)/$cuda_dir/nvidia/cu13"

# Unversioned names for the linker.
mkdir -p "$link_dir"
for lib in cublas cublasLt curand nvrtc cudart; do
  real=$(ls "$root"/lib/lib$lib.so.* 2>/dev/null | head -n 1)
  [ -n "$real" ] || { echo "lib$lib.so.* not found under $root/lib" >&2; exit 1; }
  ln -sf "$real" "$link_dir/lib$lib.so"
done

# The libcuda stub: every driver entry point cudarc declares, as an empty function.
cudarc=$(cargo metadata --format-version 1 --features cuda 2>/dev/null |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print(next(p["manifest_path"] for p in d["packages"] if p["name"]=="cudarc"))')
cudarc_dir=$(dirname "$cudarc")
grep -ohE '\bpub (unsafe )?fn cu[A-Za-z0-9_]+' "$cudarc_dir/src/driver/sys/mod.rs" | awk '{print $NF}' | sort -u |
  sed 's/.*/void &(void) {}/' > "$link_dir/cuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link_dir/libcuda.so" "$link_dir/cuda_stub.c"
echo "libcuda stub: $(wc -l < "$link_dir/cuda_stub.c") symbols"

CUDA_ROOT="$root" CUDA_HOME="$root" CUDA_PATH="$root" PATH="$root/bin:$PATH" NVCC="$root/bin/nvcc" \
  CUDA_COMPUTE_CAP=90 CUDARC_CUDA_VERSION=13000 CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}" \
  RUSTFLAGS="-L native=$link_dir" \
  cargo build --release --features cuda --bin skillset --target-dir target/cuda-release
mkdir -p dist
cp target/cuda-release/release/skillset dist/skillset-cuda
strip dist/skillset-cuda
# ~62 MB stripped (33 MB of it sm_90 fatbin), over what a device call carries beside the
# working tree (64 MiB in all): carry the xz copy (~8 MB); gpu-check.sh unpacks it.
xz -T2 -6 -k -f dist/skillset-cuda
# Which commit the binary is (gpu-session.sh prints it there; rebuild when HEAD moved).
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!dist' || echo '-dirty') $(date -u +%FT%TZ)" \
  > dist/skillset-cuda.commit
ls -la dist/skillset-cuda dist/skillset-cuda.xz
# The transformers wheel gpu-check.sh installs there (the machine's own is older), and
# all-MiniLM-L6-v2 packed for gpu-session.sh --minilm.
scripts/gpu-wheels.sh
scripts/pack-minilm.sh
# Before any GPU time is spent on it: the binary starts, errs and falls back as it should
# without a GPU, and its CPU path passes every family's checks.
scripts/smoke-cuda-binary.sh
