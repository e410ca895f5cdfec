# Sourced by the GPU scripts (gpu-check.sh, gpu-bench.sh, gpu-session.sh) with their
# arguments: sets `bin` and `device` (`--dry-run`: target/release/skillset on the CPU;
# else dist/skillset-cuda, or the binary named, on CUDA), unpacks the binary from its
# .xz copy if only that was carried, and for CUDA puts the CUDA 13 libraries of the
# machine's Python (site-packages/nvidia/cu13/lib) and the driver on LD_LIBRARY_PATH.
# shellcheck shell=bash
device=cuda
bin=dist/skillset-cuda
if [ "${1:-}" = "--dry-run" ]; then
  device=cpu
  bin=target/release/skillset
elif [ -n "${1:-}" ]; then
  bin=$1
fi
if [ ! -x "$bin" ] && [ -f "$bin.xz" ]; then
  xz -d -k -f "$bin.xz" 2>/dev/null ||
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$bin.xz" "$bin"
  chmod +x "$bin"
fi
if [ "$device" = cuda ]; then
  site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
  export LD_LIBRARY_PATH="$site/nvidia/cu13/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
fi
