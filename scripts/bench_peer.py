#!/usr/bin/env python3
"""The same workload as `skillset bench`, through PyTorch: sentence-transformers'
`encode` for feature-extraction (tokenization, forward, pooling, normalization), HF
`generate` (greedy) for text-generation. Same checkpoint, same synthetic inputs
("the the ..."), same thread count; warm-up excluded, median of the timed iterations.
Prints the same JSON fields as `skillset bench --json`.

    python scripts/bench_peer.py --model-dir DIR --task feature-extraction --batch 32 --seq 128 --threads 2
"""

import argparse
import json
import statistics
import time

import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--task", default="feature-extraction")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    if a.task == "feature-extraction":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(a.model_dir, device="cpu")
        texts = [" ".join(["the"] * (a.seq - 2))] * a.batch
        seq = len(model.tokenizer(texts[0])["input_ids"])
        run = lambda: model.encode(texts, batch_size=a.batch, convert_to_numpy=True)
        tokenize = lambda: model.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        generated = None
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(a.model_dir)
        model = AutoModelForCausalLM.from_pretrained(a.model_dir).eval()
        texts = [" ".join(["the"] * a.seq)] * a.batch
        enc = tok(texts, add_special_tokens=False, return_tensors="pt")
        seq = enc["input_ids"].shape[1]

        def run():
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=a.max_new_tokens, do_sample=False,
                                     min_new_tokens=a.max_new_tokens)
            return out

        tokenize = lambda: tok(texts, add_special_tokens=False, return_tensors="pt")
        generated = a.batch * a.max_new_tokens

    for _ in range(a.warmup):
        run()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    tok_times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        tokenize()
        tok_times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(json.dumps({
        "task": a.task, "device": "cpu", "dtype": "f32", "batch": a.batch, "seq": seq,
        "items_per_s": a.batch / t, "ms_per_iter": t * 1e3,
        "tokenize_ms": statistics.median(tok_times) * 1e3,
        "tokens_per_s": None if generated is None else generated / t,
        "threads": a.threads, "iters": a.iters, "peer": f"torch {torch.__version__}",
    }))


if __name__ == "__main__":
    main()
