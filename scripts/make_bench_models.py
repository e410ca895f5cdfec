#!/usr/bin/env python3
"""Random-weight checkpoints of real model shapes for the benchmarks (BENCHMARKS.md).

Nothing is downloaded: the configs are written out here and the weights drawn with a
fixed seed by transformers; the tokenizer is a committed fixture's (the benchmarks feed
"the the ...", one token per word in it). Needs torch and transformers.

    python scripts/make_bench_models.py --out target/bench            # all of them
    python scripts/make_bench_models.py --out target/bench llama-30m  # one

Shapes:
  llama-30m       llama, hidden 512, 6 layers, 8 heads (4 KV), MLP 1408, vocab 32000,
                  tied embeddings: 34M parameters (the CPU generation row)
  tinyllama-1.1b  TinyLlama-1.1B's shape: hidden 2048, 22 layers, 32 heads (4 KV), MLP 5632,
                  vocab 32000 (the GPU generation rows; 4.4 GB in f32, written as bf16)
  bert-base       BERT-base: hidden 768, 12 layers, 12 heads, MLP 3072, vocab 30522 (the
                  GPU embedding rows)
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
import transformers

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

MODELS = {
    "llama-30m": dict(
        kind="llama",
        tokenizer="llama-tiny",
        config=dict(
            hidden_size=512, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4,
            intermediate_size=1408, vocab_size=32000, max_position_embeddings=2048,
            tie_word_embeddings=True, rms_norm_eps=1e-5, rope_theta=10000.0,
        ),
        dtype=torch.float32,
    ),
    "tinyllama-1.1b": dict(
        kind="llama",
        tokenizer="llama-tiny",
        config=dict(
            hidden_size=2048, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
            intermediate_size=5632, vocab_size=32000, max_position_embeddings=2048,
            tie_word_embeddings=False, rms_norm_eps=1e-5, rope_theta=10000.0,
        ),
        dtype=torch.bfloat16,
    ),
    "bert-base": dict(
        kind="bert",
        tokenizer="bert-tiny-mlm",
        config=dict(
            hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            vocab_size=30522, max_position_embeddings=512,
        ),
        dtype=torch.float32,
    ),
}


def make(name: str, out: Path) -> Path:
    spec = MODELS[name]
    d = out / name
    if (d / "model.safetensors").exists():
        print(f"{d}: already there")
        return d
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if spec["kind"] == "llama":
        # No EOS: every benchmark run generates exactly max_new_tokens, here and in
        # transformers' generate.
        config = transformers.LlamaConfig(bos_token_id=1, eos_token_id=None, pad_token_id=None,
                                          **spec["config"])
        model = transformers.LlamaForCausalLM(config)
    else:
        config = transformers.BertConfig(**spec["config"])
        model = transformers.BertModel(config)
    model = model.to(spec["dtype"]).eval()
    model.save_pretrained(d, safe_serialization=True)
    if spec["kind"] == "llama":
        gen = d / "generation_config.json"
        cfg = json.loads(gen.read_text()) if gen.exists() else {}
        cfg.pop("eos_token_id", None)
        gen.write_text(json.dumps(cfg, indent=2) + "\n")
    for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
        src = FIXTURES / spec["tokenizer"] / f
        if src.exists():
            shutil.copy(src, d / f)
    n = sum(p.numel() for p in model.parameters())
    print(f"{d}: {n / 1e6:.1f}M parameters ({spec['dtype']})")
    return d


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "target" / "bench"))
    p.add_argument("models", nargs="*", choices=[[], *MODELS], default=[])
    a = p.parse_args()
    for name in a.models or MODELS:
        make(name, Path(a.out))


if __name__ == "__main__":
    main()
