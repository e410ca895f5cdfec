#!/usr/bin/env python3
"""The same workload as `skillset bench`, through PyTorch: sentence-transformers'
`encode` for feature-extraction (tokenization, forward, pooling, normalization; plain
transformers `AutoModel` + mean pooling where sentence-transformers is not installed,
as on the GPU machine), HF `generate` (greedy) for text-generation. Same checkpoint,
same synthetic inputs ("the the ..."), same thread count; warm-up excluded, the device
synchronised before the clock stops, median of the timed iterations. Prints the same
JSON fields as `skillset bench --json`.

    python scripts/bench_peer.py --model-dir DIR --task feature-extraction --batch 32 --seq 128 --threads 2
    python scripts/bench_peer.py --model-dir DIR --task text-generation --device cuda --dtype bf16 --batch 8
"""

import argparse
import json
import statistics
import time

import torch

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model-dir", required=True)
    p.add_argument("--task", default="feature-extraction")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="f32", choices=list(DTYPES))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dtype = DTYPES[a.dtype]
    dev = torch.device(a.device)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if a.task == "feature-extraction":
        texts = [" ".join(["the"] * (a.seq - 2))] * a.batch
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(a.model_dir, device=a.device,
                                        model_kwargs={"dtype": dtype})
            tokenizer = model.tokenizer
            peer = "sentence-transformers encode"

            def run():
                return model.encode(texts, batch_size=a.batch, convert_to_numpy=True)
        except ImportError:
            from transformers import AutoModel, AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(a.model_dir)
            model = AutoModel.from_pretrained(a.model_dir, dtype=dtype).to(dev).eval()
            peer = "transformers AutoModel + mean pooling"

            def run():
                enc = tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(dev)
                with torch.inference_mode():
                    h = model(**enc).last_hidden_state
                    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                    pooled = (h * m).sum(1) / m.sum(1)
                return pooled.float().cpu().numpy()

        seq = len(tokenizer(texts[0])["input_ids"])
        tokenize = lambda: tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        generated = None
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(a.model_dir)
        model = AutoModelForCausalLM.from_pretrained(a.model_dir, dtype=dtype).to(dev).eval()
        texts = [" ".join(["the"] * a.seq)] * a.batch
        enc = tok(texts, add_special_tokens=False, return_tensors="pt").to(dev)
        seq = enc["input_ids"].shape[1]
        peer = "transformers generate (greedy)"

        def run():
            with torch.inference_mode():
                return model.generate(**enc, max_new_tokens=a.max_new_tokens, do_sample=False,
                                      min_new_tokens=a.max_new_tokens)

        tokenize = lambda: tok(texts, add_special_tokens=False, return_tensors="pt")
        generated = a.batch * a.max_new_tokens

    for _ in range(a.warmup):
        run()
    sync()
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - t0)
    tok_times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        tokenize()
        tok_times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(json.dumps({
        "task": a.task, "device": a.device, "dtype": a.dtype, "batch": a.batch, "seq": seq,
        "items_per_s": a.batch / t, "ms_per_iter": t * 1e3,
        "tokenize_ms": statistics.median(tok_times) * 1e3,
        "tokens_per_s": None if generated is None else generated / t,
        "threads": a.threads, "iters": a.iters,
        "peer": f"torch {torch.__version__}, {peer}",
    }))


if __name__ == "__main__":
    main()
