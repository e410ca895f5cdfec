#!/usr/bin/env bash
# Keep the GPU backends compiling on a machine without a GPU (CI runs this):
#   cuda   `cargo check --features cuda` with nvcc from PyPI wheels pinned to CUDA 13.0
#          (the GPU machines' driver); nothing is linked, so no CUDA libraries are needed.
#   metal  `cargo check --target aarch64-apple-darwin --features metal`, with the pure-Rust
#          regex engine of tokenizers (Oniguruma is C and needs Apple's toolchain).
# Usage: scripts/check-backends.sh [cuda] [metal]   (both by default)
set -euo pipefail
cd "$(dirname "$0")/.."
which=("$@")
[ ${#which[@]} -gt 0 ] || which=(cuda metal)

for backend in "${which[@]}"; do
  case "$backend" in
    cuda)
      cuda_dir=target/cuda13
      if [ ! -x "$cuda_dir/nvidia/cu13/bin/nvcc" ]; then
        python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$cuda_dir" \
          "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" \
          "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*"
      fi
      root="$(pwd)/$cuda_dir/nvidia/cu13"
      CUDA_ROOT="$root" CUDA_HOME="$root" CUDA_PATH="$root" PATH="$root/bin:$PATH" NVCC="$root/bin/nvcc" \
        CUDA_COMPUTE_CAP=90 CUDARC_CUDA_VERSION=13000 CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}" \
        cargo check --workspace --all-targets --features cuda
      ;;
    metal)
      rustup target add aarch64-apple-darwin
      cargo check --workspace --all-targets --target aarch64-apple-darwin \
        --no-default-features --features metal,fancy-regex
      ;;
    *)
      echo "unknown backend $backend (cuda, metal)" >&2
      exit 2
      ;;
  esac
done
