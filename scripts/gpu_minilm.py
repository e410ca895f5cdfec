#!/usr/bin/env python3
"""The all-MiniLM-L6-v2 real-model check on a device: skillsets against
sentence-transformers, in f32, f16 and bf16, on the same checkpoint and sentences.

    scripts/gpu_minilm.py [--bin dist/skillset-cuda] [--device cuda]     on the GPU machine
    scripts/gpu_minilm.py --bin target/release/skillset --device cpu     here (dry run)

The checkpoint comes from dist/minilm (scripts/pack-minilm.sh: the weights in f16,
xz-compressed, widened back to f32 here), the sentences from
tests/reference/all-minilm-l6-v2.json (short, empty, non-ASCII, past max_seq_length).
Per dtype: the largest difference and the smallest cosine between our embeddings and
sentence-transformers' in that dtype, and how far each is from sentence-transformers' f32
embeddings. f32 passes within 1e-4; f16/bf16 within 1e-2, or no farther from the f32
embeddings than twice sentence-transformers' own half-precision run. Writes
OUT/minilm.json and prints one line per dtype; exits 1 if a dtype fails.
"""

import argparse
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parent.parent
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def unpack(pack: Path, dest: Path):
    """dist/minilm -> a loadable checkpoint with f32 weights."""
    shutil.copytree(pack, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.xz"))
    with lzma.open(pack / "model.f16.safetensors.xz") as f:
        weights = load_safetensors(f.read())
    save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in weights.items()},
              str(dest / "model.safetensors"))


def ours(binary: str, device: str, dtype: str, model: Path, sentences: list[str]) -> np.ndarray:
    cmd = [binary, "run", "--device", device, "--dtype", dtype, "--task", "feature-extraction",
           "--model-dir", str(model), "--json"]
    for s in sentences:
        cmd += ["--input", s]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:8])} ...: exit {done.returncode}: {done.stderr.strip()[-400:]}")
    return np.array(json.loads(done.stdout)["outputs"], dtype=np.float64)


def theirs(model: Path, device: str, dtype: str, sentences: list[str]) -> np.ndarray:
    st = SentenceTransformer(str(model), device=device)
    if dtype != "f32":
        st = st.to(DTYPES[dtype])
    with torch.inference_mode():
        emb = st.encode(sentences, convert_to_tensor=True, normalize_embeddings=False, batch_size=4)
    return emb.float().cpu().numpy().astype(np.float64)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main():
    import transformers
    transformers.utils.logging.disable_progress_bar()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default="dist/skillset-cuda")
    p.add_argument("--device", default="cuda")
    p.add_argument("--pack", type=Path, default=ROOT / "dist/minilm")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")) / "minilm")
    args = p.parse_args()
    if not (args.pack / "model.f16.safetensors.xz").is_file():
        sys.exit(f"no {args.pack}/model.f16.safetensors.xz: run scripts/pack-minilm.sh here and carry dist/minilm")
    sentences = json.loads((ROOT / "tests/reference/all-minilm-l6-v2.json").read_text())["sentences"]
    args.out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "all-minilm-l6-v2"
        unpack(args.pack, model)
        reference_f32 = theirs(model, args.device, "f32", sentences)
        for dtype in DTYPES:
            ref = reference_f32 if dtype == "f32" else theirs(model, args.device, dtype, sentences)
            try:
                mine = ours(args.bin, args.device, dtype, model, sentences)
            except RuntimeError as e:
                rows.append({"dtype": dtype, "passed": False, "error": str(e)})
                failed = True
                print(f"minilm {dtype}: FAILED: {e}")
                continue
            diff = float(np.abs(mine - ref).max())
            ours_vs_f32 = float(np.abs(mine - reference_f32).max())
            theirs_vs_f32 = float(np.abs(ref - reference_f32).max())
            bar = 1e-4 if dtype == "f32" else 1e-2
            within = dtype != "f32" and bool(np.isfinite(mine).all()) and ours_vs_f32 <= max(2 * theirs_vs_f32, bar)
            passed = bool(np.isfinite(mine).all()) and (diff <= bar or within)
            failed |= not passed
            row = {"dtype": dtype, "passed": passed, "max_abs_diff": diff,
                   "min_cosine": float(cosines(mine, ref).min()),
                   "ours_vs_f32": ours_vs_f32, "sentence_transformers_vs_f32": theirs_vs_f32,
                   "sentences": len(sentences), "dim": int(mine.shape[1])}
            rows.append(row)
            print(f"minilm {args.device} {dtype}: {'pass' if passed else 'FAIL'}  max|diff| {diff:.2e} "
                  f"(bar {bar:.0e}), min cosine {row['min_cosine']:.6f}; vs f32: ours {ours_vs_f32:.2e}, "
                  f"sentence-transformers {theirs_vs_f32:.2e}")
    import sentence_transformers
    (args.out / "minilm.json").write_text(json.dumps({
        "model": "sentence-transformers/all-MiniLM-L6-v2, weights rounded to f16 (scripts/pack-minilm.sh)",
        "device": args.device, "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__, "runs": rows}, indent=1) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
