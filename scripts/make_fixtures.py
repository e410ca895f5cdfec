#!/usr/bin/env python3
"""Build the tiny random-weight checkpoints under tests/fixtures/ and record what HF
transformers outputs for them.

Every fixture directory is a complete Hugging Face checkpoint (config.json,
tokenizer.json, tokenizer_config.json, model.safetensors) plus `reference.json`: the
inputs of each check and transformers' outputs for them, in the schema of
`pipeline()` (which is also the schema of `skillset run --json`). The Rust tests and
`skillset --run-tests` run the same inputs through skillsets and compare.

Configs vary on purpose: odd hidden and head sizes, several activations, tied and
untied embeddings, RoBERTa's position offset, multi-label heads, three tokenizer
models (WordPiece, byte-level BPE, Unigram). Weights get enough spread
(`initializer_range`) that top-k and argmax decisions do not sit on float-rounding
ties; the script checks the margins and fails otherwise.

Usage:
    pip install torch transformers sentence-transformers
    python scripts/make_fixtures.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import pipeline

ROOT = Path(__file__).resolve().parent.parent

# Where and in which precision transformers runs (`--recompute` changes them).
DEVICE = "cpu"
DTYPE = None  # torch dtype; None = float32
# Whether near ties abort (fixture creation) or are recorded (recomputed references).
STRICT_MARGINS = True
FIXTURES = ROOT / "tests" / "fixtures"

# A small multilingual corpus to train the fixture tokenizers on.
CORPUS = [
    "Paris is the capital of France.",
    "The quick brown fox jumps over the lazy dog.",
    "Rust is a language empowering everyone to build reliable and efficient software.",
    "Hugging Face transformers provides thousands of pretrained models.",
    "Berlin is the capital of Germany, and Madrid is the capital of Spain.",
    "My name is Wolfgang and I live in Berlin.",
    "Sarah works at the hospital in London.",
    "The weather today is sunny with a light breeze.",
    "I love this movie, it was fantastic!",
    "This was the worst meal I have ever eaten.",
    "Machine learning models learn patterns from data.",
    "The cat sat on the mat while the dog slept.",
    "She sells sea shells by the sea shore.",
    "Tokenizers split text into smaller pieces called tokens.",
    "Le café est délicieux à Paris.",
    "Der Zug fährt um acht Uhr nach München.",
    "El niño come una manzana roja.",
    "Ça coûte trois euros, s'il vous plaît.",
    "Naïve résumé café jalapeño façade.",
    "Numbers like 42, 3.14 and 2026 appear in text.",
    "Emails such as someone@example.com are common.",
    "The museum opens at nine and closes at five.",
    "Can you tell me the way to the station?",
    "We're going to the park; they're staying home.",
    "It's not what you said, it's how you said it.",
] * 4


def wordpiece_vocab(size: int) -> dict[str, int]:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=size, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok.get_vocab()


def bpe_vocab(size: int, specials=("<s>", "<pad>", "</s>", "<unk>", "<mask>")) -> tuple[dict[str, int], list[tuple[str, str]]]:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def unigram_vocab(size: int, specials=("<s>", "<pad>", "</s>", "<unk>", "<mask>")) -> list[tuple[str, float]]:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=size,
        special_tokens=list(specials),
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    model = json.loads(tok.to_str())["model"]
    return [(p, s) for p, s in model["vocab"]]


def sp_bpe(size: int, specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A sentencepiece-style BPE (metaspace, as Llama and Gemma use)."""
    tok = Tokenizer(models.BPE(unk_token=specials[0] if "<unk>" in specials[:1] else None))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def build_tokenizer(kind: str):
    if kind == "wordpiece":
        return transformers.BertTokenizer(vocab=wordpiece_vocab(420))
    if kind == "bpe":
        vocab, merges = bpe_vocab(520)
        return transformers.RobertaTokenizer(vocab=vocab, merges=merges)
    if kind == "unigram":
        return transformers.XLMRobertaTokenizer(vocab=unigram_vocab(380))
    if kind == "camembert":
        return transformers.CamembertTokenizer(vocab=unigram_vocab(360))
    if kind == "t5":
        vocab = unigram_vocab(300, specials=("<pad>", "</s>", "<unk>"))
        return transformers.T5Tokenizer(vocab=vocab, extra_ids=3)
    if kind == "llama":
        vocab, merges = sp_bpe(400, ["<unk>", "<s>", "</s>"])
        return transformers.LlamaTokenizer(vocab=vocab, merges=merges)
    if kind == "gemma":
        vocab, merges = sp_bpe(400, ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])
        return transformers.GemmaTokenizer(vocab=vocab, merges=merges)
    if kind == "qwen2":
        vocab, merges = bpe_vocab(480, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        return transformers.Qwen2Tokenizer(vocab=vocab, merges=merges)
    if kind == "gpt2":
        vocab, merges = bpe_vocab(460, ["<|endoftext|>"])
        return transformers.GPT2Tokenizer(vocab=vocab, merges=merges)
    raise ValueError(kind)


def to_py(x):
    """numpy / torch scalars -> plain Python for JSON."""
    if isinstance(x, dict):
        return {k: to_py(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_py(v) for v in x]
    if hasattr(x, "item"):
        return x.item()
    return x


def check_margins(name: str, ranked: list[dict], what: str, min_gap: float = 2e-4):
    """Consecutive scores of a ranking must differ enough that f32 rounding cannot swap them."""
    if not STRICT_MARGINS:
        return
    for a, b in zip(ranked, ranked[1:]):
        gap = abs(a["score"] - b["score"])
        relative = gap / max(abs(a["score"]), abs(b["score"]), 1e-30)
        if gap < min_gap and relative < 1e-2:
            sys.exit(f"{name}: {what} has near-tied scores {a['score']} / {b['score']}: pick another seed")


# ---------------------------------------------------------------------------
# Checks: each returns {"task", "inputs", "options", "outputs"}.
# ---------------------------------------------------------------------------

def feature_extraction(model_dir: Path, inputs: list[str]) -> dict:
    pipe = pipeline("feature-extraction", model=str(model_dir), device=DEVICE, dtype=DTYPE)
    outputs = [pipe(text, return_tensors=True)[0].float().tolist() for text in inputs]  # [tokens, hidden]
    return {"task": "feature-extraction", "inputs": inputs, "options": {}, "outputs": to_py(outputs)}


def pooled_embeddings(model_dir: Path, inputs: list[str], pooling: str, normalize: bool) -> dict:
    """Pooled hidden states of transformers' model, pooled with torch (one text at a time)."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir, dtype=DTYPE).to(DEVICE).eval()
    outputs = []
    with torch.no_grad():
        for text in inputs:
            enc = tok(text, return_tensors="pt").to(DEVICE)
            hidden = model(**enc).last_hidden_state[0].float()
            if pooling == "mean":
                v = hidden.mean(0)
            elif pooling == "cls":
                v = hidden[0]
            elif pooling == "max":
                v = hidden.max(0).values
            else:
                raise ValueError(pooling)
            if normalize:
                v = torch.nn.functional.normalize(v, dim=0)
            outputs.append(v.tolist())
    options = {"pooling": pooling}
    if normalize:
        options["normalize"] = True
    return {"task": "feature-extraction", "inputs": inputs, "options": options, "outputs": outputs}


def fill_mask(name: str, model_dir: Path, inputs: list[str], top_k: int = 5) -> dict:
    pipe = pipeline("fill-mask", model=str(model_dir), device=DEVICE, dtype=DTYPE)
    outputs = []
    for text in inputs:
        out = to_py(pipe(text, top_k=top_k))
        for ranking in (out if isinstance(out[0], list) else [out]):
            check_margins(name, ranking, f"fill-mask of {text!r}")
        outputs.append(out)
    return {"task": "fill-mask", "inputs": inputs, "options": {"top_k": top_k}, "outputs": outputs}


def text_classification(name: str, model_dir: Path, inputs: list[str], top_k) -> dict:
    pipe = pipeline("text-classification", model=str(model_dir), device=DEVICE, dtype=DTYPE)
    outputs = []
    for text in inputs:
        out = to_py(pipe(text, top_k=None if top_k == "all" else top_k))
        full = to_py(pipe(text, top_k=None))
        check_margins(name, full, f"text-classification of {text!r}")
        outputs.append(out)
    options = {} if top_k == 1 else {"top_k": top_k}
    return {"task": "text-classification", "inputs": inputs, "options": options, "outputs": outputs}


def token_classification(name: str, model_dir: Path, inputs: list[str]) -> dict:
    pipe = pipeline(
        "token-classification", model=str(model_dir), device=DEVICE, dtype=DTYPE, aggregation_strategy="none"
    )
    model = pipe.model
    tok = pipe.tokenizer
    outputs = []
    for text in inputs:
        outputs.append(to_py(pipe(text)))
        # Every token's best label must win clearly, or O/non-O could flip.
        with torch.no_grad():
            probs = model(**tok(text, return_tensors="pt").to(DEVICE)).logits[0].float().softmax(-1)
        top2 = probs.topk(2, dim=-1).values
        if STRICT_MARGINS and (top2[:, 0] - top2[:, 1]).min().item() < 2e-4:
            sys.exit(f"{name}: token-classification of {text!r} has a near tie: pick another seed")
    return {"task": "token-classification", "inputs": inputs, "options": {}, "outputs": outputs}


def step_margins(scores) -> list[float]:
    """The gap between the best and second-best logit at each greedy step."""
    out = []
    for s in scores:
        top2 = s[0].float().topk(2).values
        out.append((top2[0] - top2[1]).item())
    return out


def with_margins(name: str, record: dict, out, gen: dict, what: str) -> dict:
    """A greedy generation's per-step margins: they must be clear when the reference is
    made (else float rounding could change the path), and are recorded with recomputed
    half-precision references. A beam search's scores are per beam: no margins."""
    if gen.get("num_beams", 1) == 1:
        margins = step_margins(out.scores)
        if STRICT_MARGINS and min(margins) < 1e-3:
            sys.exit(f"{name}: near tie at step {margins.index(min(margins))} of {what!r}: pick another seed")
        if not STRICT_MARGINS:
            record["step_margins"] = margins
    return record


def text_generation(name: str, model_dir: Path, prompts: list[str], max_new_tokens: int, **gen) -> dict:
    """Greedy continuation of each prompt, alone (batch 1), as transformers' pipeline
    gives it, plus the ids of the new tokens from `generate`."""
    pipe = pipeline("text-generation", model=str(model_dir), device=DEVICE, dtype=DTYPE)
    model, tok = pipe.model, pipe.tokenizer
    outputs = []
    for prompt in prompts:
        text = pipe(prompt, max_new_tokens=max_new_tokens, do_sample=False, **gen)[0]["generated_text"]
        enc = tok(prompt, add_special_tokens=False, return_tensors="pt").to(DEVICE)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, output_scores=True,
                return_dict_in_generate=True, **gen,
            )
        new = out.sequences[0, enc["input_ids"].shape[1]:].tolist()
        assert text == prompt + tok.decode(new, skip_special_tokens=True), (text, new)
        outputs.append(with_margins(name, {"generated_text": text, "token_ids": new}, out, gen, prompt))
    options = {"max_new_tokens": max_new_tokens}
    options.update(gen)
    return {"task": "text-generation", "inputs": prompts, "options": options, "outputs": outputs}


def text2text_generation(name: str, model_dir: Path, inputs: list[str], max_new_tokens: int, **gen) -> dict:
    """Greedy output of an encoder-decoder for each input alone, from `generate`
    (transformers 5 has no text2text pipeline; this is what its 4.x pipeline returned)."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=DTYPE).to(DEVICE).eval()
    outputs = []
    for text in inputs:
        enc = tok(text, return_tensors="pt").to(DEVICE)
        with torch.no_grad():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, output_scores=True,
                return_dict_in_generate=True, **gen,
            )
        new = out.sequences[0, 1:].tolist()  # drop the decoder start token
        record = {"generated_text": tok.decode(new, skip_special_tokens=True), "token_ids": new}
        outputs.append(with_margins(name, record, out, gen, text))
    options = {"max_new_tokens": max_new_tokens}
    options.update(gen)
    return {"task": "text2text-generation", "inputs": inputs, "options": options, "outputs": outputs}


PROMPTS = [
    "Paris is the capital of",
    "The quick brown fox",
    "Le café est délicieux à Paris, et le",
]


# ---------------------------------------------------------------------------
# The fixtures.
# ---------------------------------------------------------------------------

MASKED = {
    "[MASK]": [
        "Paris is the [MASK] of France.",
        "The quick brown [MASK] jumps over the lazy dog.",
        "[MASK] love this movie!",
        "The [MASK] sat on the [MASK].",
    ],
    "<mask>": [
        "Paris is the<mask> of France.",
        "The quick brown<mask> jumps over the lazy dog.",
        "Le café est<mask> à Paris.",
        "The<mask> sat on the<mask>.",
    ],
}

TEXTS = [
    "Paris is the capital of France.",
    "I love this movie, it was fantastic!",
    "Le café est délicieux à Paris, ça coûte trois euros.",
    "A much longer sentence that makes the batch need padding for the shorter inputs around it.",
    "",
]

NER_TEXTS = [
    "My name is Wolfgang and I live in Berlin.",
    "Sarah works at the hospital in London.",
    "Der Zug fährt um acht Uhr nach München.",
]


def config_for(kind: str, tokenizer, **over):
    base = dict(
        vocab_size=len(tokenizer),
        hidden_size=36,
        num_hidden_layers=2,
        num_attention_heads=4,  # head size 9: odd on purpose
        intermediate_size=37,
        max_position_embeddings=64,
        initializer_range=0.35,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    if kind == "bert":
        cfg = transformers.BertConfig(**base, pad_token_id=tokenizer.pad_token_id)
    elif kind == "roberta":
        cfg = transformers.RobertaConfig(
            **{**base, "max_position_embeddings": 64 + 2},
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
    elif kind == "xlm-roberta":
        cfg = transformers.XLMRobertaConfig(
            **{**base, "max_position_embeddings": 64 + 2},
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
        )
    elif kind == "camembert":
        cfg = transformers.CamembertConfig(
            **{**base, "max_position_embeddings": 64 + 2},
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
        )
    elif kind in ("t5", "mt5"):
        cls = transformers.T5Config if kind == "t5" else transformers.MT5Config
        cfg = cls(
            vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=40, num_layers=2, num_decoder_layers=2,
            num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
            initializer_factor=4.0, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
            feed_forward_proj="relu" if kind == "t5" else "gated-gelu",
        )
    elif kind in GPTS:
        cfg = GPTS[kind](tokenizer)
    elif kind in DECODERS:
        cls = DECODERS[kind]
        cfg = cls(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=44,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            initializer_range=0.3,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=False,
        )
    elif kind == "data2vec-text":
        cfg = transformers.Data2VecTextConfig(
            **{**base, "max_position_embeddings": 64 + 2}, type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
        )
    elif kind == "ernie":
        cfg = transformers.ErnieConfig(
            **base, pad_token_id=tokenizer.pad_token_id, use_task_id=True, task_type_vocab_size=3,
        )
    elif kind == "distilbert":
        cfg = transformers.DistilBertConfig(
            vocab_size=len(tokenizer), dim=36, n_layers=2, n_heads=4, hidden_dim=37,
            max_position_embeddings=64, initializer_range=0.35, dropout=0.0, attention_dropout=0.0,
            pad_token_id=tokenizer.pad_token_id,
        )
    elif kind == "electra":
        cfg = transformers.ElectraConfig(
            **{**base, "hidden_size": 36}, embedding_size=24, pad_token_id=tokenizer.pad_token_id,
        )
    else:
        raise ValueError(kind)
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


GPTS = {
    "gpt_bigcode": lambda tok, **kw: transformers.GPTBigCodeConfig(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=64, n_inner=40, multi_query=True,
        initializer_range=0.3, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "opt": lambda tok, **kw: transformers.OPTConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, ffn_dim=40, num_attention_heads=4,
        max_position_embeddings=64, word_embed_proj_dim=24, do_layer_norm_before=False, init_std=0.3,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else 1,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "gpt2": lambda tok, **kw: transformers.GPT2Config(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=64, n_inner=40,
        initializer_range=0.3, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "gpt_neo": lambda tok, **kw: transformers.GPTNeoConfig(
        vocab_size=len(tok), hidden_size=32, num_layers=2, num_heads=4, max_position_embeddings=64,
        attention_types=[[["global", "local"], 1]], window_size=4, intermediate_size=40,
        initializer_range=0.3, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "gptj": lambda tok, **kw: transformers.GPTJConfig(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=64, rotary_dim=4,
        initializer_range=0.3, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "gpt_neox": lambda tok, **kw: transformers.GPTNeoXConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=40, max_position_embeddings=64, initializer_range=0.3,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
}

# By name: an older transformers (the GPU machine's, say) lacks the newest configs, and
# only the fixtures that need them are then skipped, not the whole script.
DECODERS = {
    name: getattr(transformers, cls, None)
    for name, cls in {
        "llama": "LlamaConfig",
        "mistral": "MistralConfig",
        "qwen2": "Qwen2Config",
        "qwen3": "Qwen3Config",
        "phi3": "Phi3Config",
        "gemma": "GemmaConfig",
        "granite": "GraniteConfig",
        "olmo": "OlmoConfig",
        # Model types that transformers maps to the Llama classes with a config of their own.
        "internlm3": "InternLM3Config",
        "iquestcoder": "IQuestCoderConfig",
    }.items()
}


def save(name: str, model, tokenizer, description: str) -> Path:
    d = FIXTURES / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    model.eval()
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    (d / "README.md").write_text(
        f"# {name}\n\n{description}\n\nRandom weights, made by `scripts/make_fixtures.py` with "
        f"transformers {transformers.__version__}. `reference.json` holds transformers' outputs.\n"
    )
    return d


def write_reference(d: Path, model_type: str, description: str, checks: list[dict]):
    ref = {
        "model_type": model_type,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "generated_by": "scripts/make_fixtures.py",
        "description": description,
        "checks": checks,
    }
    (d / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")


REFERENCES_ONLY = False  # --references-only: keep the committed checkpoint, redo reference.json


def fixture(name, model_type, cls, tok_kind, description, checks, seed, untie_head=False, post=None, **config):
    if REFERENCES_ONLY:
        # The committed checkpoint and tokenizer as they are (the Unigram trainer is not
        # bit-reproducible across runs): only transformers' outputs are recomputed.
        d = FIXTURES / name
        write_reference(d, model_type, description, [c(name, d) for c in checks])
        print(f"wrote {d.relative_to(ROOT)}/reference.json")
        return
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(tok_kind)
    cfg = config_for(model_type, tokenizer, **config)
    model = cls(cfg)
    if untie_head:
        # A head of its own, as mT5 and T5 v1.1 checkpoints ship.
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone().normal_(0, 0.5))
    if post:
        post(model, tokenizer)
    d = save(name, model, tokenizer, description)
    write_reference(d, model_type, description, [c(name, d) for c in checks])
    print(f"wrote {d.relative_to(ROOT)}")


FIXTURE_SPECS = {
    "bert-tiny-mlm": lambda: fixture(
        "bert-tiny-mlm", "bert", transformers.BertForMaskedLM, "wordpiece",
        "BertForMaskedLM: hidden 36, 4 heads of 9, intermediate 37, gelu, WordPiece tokenizer.",
        [
            lambda n, d: fill_mask(n, d, MASKED["[MASK]"]),
            lambda n, d: feature_extraction(d, TEXTS),
            lambda n, d: pooled_embeddings(d, TEXTS, "mean", True),
        ],
        seed=1,
    ),
    "bert-tiny-cls": lambda: fixture(
        "bert-tiny-cls", "bert", transformers.BertForSequenceClassification, "wordpiece",
        "BertForSequenceClassification: 3 named labels, gelu_new activation, 3 layers.",
        [
            lambda n, d: text_classification(n, d, TEXTS, "all"),
            lambda n, d: text_classification(n, d, TEXTS, 1),
            lambda n, d: pooled_embeddings(d, TEXTS[:3], "cls", False),
        ],
        seed=2,
        num_hidden_layers=3,
        hidden_act="gelu_new",
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    ),
    "bert-tiny-ner": lambda: fixture(
        "bert-tiny-ner", "bert", transformers.BertForTokenClassification, "wordpiece",
        "BertForTokenClassification: 5 BIO labels, relu activation.",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=3,
        hidden_act="relu",
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4},
    ),
    "roberta-tiny-mlm": lambda: fixture(
        "roberta-tiny-mlm", "roberta", transformers.RobertaForMaskedLM, "bpe",
        "RobertaForMaskedLM: byte-level BPE, positions offset by the padding index, untied decoder.",
        [
            lambda n, d: fill_mask(n, d, MASKED["<mask>"], top_k=3),
            lambda n, d: feature_extraction(d, TEXTS),
        ],
        seed=4,
        tie_word_embeddings=False,
    ),
    "roberta-tiny-cls": lambda: fixture(
        "roberta-tiny-cls", "roberta", transformers.RobertaForSequenceClassification, "bpe",
        "RobertaForSequenceClassification, multi-label (sigmoid scores), 4 labels.",
        [lambda n, d: text_classification(n, d, TEXTS, "all")],
        seed=5,
        problem_type="multi_label_classification",
        id2label={0: "sports", 1: "politics", 2: "science", 3: "food"},
        label2id={"sports": 0, "politics": 1, "science": 2, "food": 3},
    ),
    "xlm-roberta-tiny-ner": lambda: fixture(
        "xlm-roberta-tiny-ner", "xlm-roberta", transformers.XLMRobertaForTokenClassification, "unigram",
        "XLMRobertaForTokenClassification: Unigram tokenizer, non-ASCII text (character offsets).",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=6,
        id2label={0: "O", 1: "B-PER", 2: "B-LOC"},
        label2id={"O": 0, "B-PER": 1, "B-LOC": 2},
    ),
    "camembert-tiny": lambda: fixture(
        "camembert-tiny", "camembert", transformers.CamembertModel, "camembert",
        "CamembertModel (bare encoder, weights at the root), hidden 30 with 5 heads of 6.",
        [
            lambda n, d: feature_extraction(d, TEXTS),
            lambda n, d: pooled_embeddings(d, TEXTS, "max", False),
        ],
        seed=7,
        hidden_size=30,
        num_attention_heads=5,
    ),
    "llama-tiny": lambda: fixture(
        "llama-tiny", "llama", transformers.LlamaForCausalLM, "llama",
        "LlamaForCausalLM: grouped-query attention (4 heads, 2 KV heads), llama3 rope scaling, "
        "untied lm_head, sentencepiece-style BPE.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS, 12, num_beams=3),
        ],
        seed=11,
        rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
        },
    ),
    "mistral-tiny": lambda: fixture(
        "mistral-tiny", "mistral", transformers.MistralForCausalLM, "llama",
        "MistralForCausalLM: sliding-window attention over 5 positions (shorter than the "
        "sequences), 4 heads sharing 1 KV head.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=12,
        sliding_window=5,
        num_key_value_heads=1,
    ),
    "qwen2-tiny": lambda: fixture(
        "qwen2-tiny", "qwen2", transformers.Qwen2ForCausalLM, "qwen2",
        "Qwen2ForCausalLM: q/k/v biases, tied embeddings, byte-level BPE.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=13,
        tie_word_embeddings=True,
    ),
    "qwen3-tiny": lambda: fixture(
        "qwen3-tiny", "qwen3", transformers.Qwen3ForCausalLM, "qwen2",
        "Qwen3ForCausalLM: per-head q/k RMSNorm, head_dim 12 (not hidden/heads), silu; a "
        "repetition penalty that changes the greedy path.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[1:2], 12, repetition_penalty=1.3),
        ],
        seed=14,
        head_dim=12,
    ),
    "phi3-tiny": lambda: fixture(
        "phi3-tiny", "phi3", transformers.Phi3ForCausalLM, "llama",
        "Phi3ForCausalLM: fused qkv and gate/up projections, partial rotary (half the head).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=15,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
    ),
    "gemma-tiny": lambda: fixture(
        "gemma-tiny", "gemma", transformers.GemmaForCausalLM, "gemma",
        "GemmaForCausalLM: (1 + weight) RMSNorm, sqrt(hidden)-scaled embeddings, tanh GELU, "
        "head_dim 16, tied embeddings.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=16,
        head_dim=16,
        tie_word_embeddings=True,
        hidden_act="gelu_pytorch_tanh",
    ),
    "internlm3-tiny": lambda: fixture(
        "internlm3-tiny", "internlm3", transformers.LlamaForCausalLM, "llama",
        "InternLM3Config checkpoint that transformers runs with LlamaForCausalLM: the family "
        "follows the architecture class, not the model type name.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=27,
        head_dim=16,
    ),
    "iquestcoder-tiny": lambda: fixture(
        "iquestcoder-tiny", "iquestcoder", transformers.LlamaForCausalLM, "llama",
        "IQuestCoderConfig checkpoint run by LlamaForCausalLM, with tied embeddings.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=18,
        head_dim=12,
        tie_word_embeddings=True,
    ),
    "gpt2-tiny": lambda: fixture(
        "gpt2-tiny", "gpt2", transformers.GPT2LMHeadModel, "gpt2",
        "GPT2LMHeadModel: Conv1D layers, learned positions, scores scaled by the inverse layer index.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[1:], 12, num_beams=2, repetition_penalty=1.3),
        ],
        seed=31,
        scale_attn_by_inverse_layer_idx=True,
    ),
    "gpt-neo-tiny": lambda: fixture(
        "gpt-neo-tiny", "gpt_neo", transformers.GPTNeoForCausalLM, "gpt2",
        "GPTNeoForCausalLM: a global and a local (window 4) attention layer, unscaled scores.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            # 4 beams over 30 tokens: two prompts end with EOS (at 28 and 3 new tokens).
            lambda n, d: text_generation(n, d, PROMPTS, 30, num_beams=4),
        ],
        seed=22,
    ),
    "gptj-tiny": lambda: fixture(
        "gptj-tiny", "gptj", transformers.GPTJForCausalLM, "gpt2",
        "GPTJForCausalLM: interleaved rotary on 4 of 8 head dims, parallel attention and MLP, "
        "lm_head with bias.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=23,
    ),
    "gpt-neox-tiny": lambda: fixture(
        "gpt-neox-tiny", "gpt_neox", transformers.GPTNeoXForCausalLM, "gpt2",
        "GPTNeoXForCausalLM: per-head fused qkv, rotary on half of each head, parallel residual.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=24,
    ),
    "distilbert-tiny-mlm": lambda: fixture(
        "distilbert-tiny-mlm", "distilbert", transformers.DistilBertForMaskedLM, "wordpiece",
        "DistilBertForMaskedLM: no token types, q_lin/k_lin/v_lin names, vocab_transform head.",
        [
            lambda n, d: fill_mask(n, d, MASKED["[MASK]"]),
            lambda n, d: feature_extraction(d, TEXTS),
        ],
        seed=51,
    ),
    "distilbert-tiny-cls": lambda: fixture(
        "distilbert-tiny-cls", "distilbert", transformers.DistilBertForSequenceClassification, "wordpiece",
        "DistilBertForSequenceClassification: pre_classifier + ReLU head, 2 labels.",
        [lambda n, d: text_classification(n, d, TEXTS, "all")],
        seed=52,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    ),
    "electra-tiny-mlm": lambda: fixture(
        "electra-tiny-mlm", "electra", transformers.ElectraForMaskedLM, "wordpiece",
        "ElectraForMaskedLM (a generator): 24-wide embeddings projected to a 36-wide encoder.",
        [
            lambda n, d: fill_mask(n, d, MASKED["[MASK]"]),
            lambda n, d: feature_extraction(d, TEXTS),
        ],
        seed=63,
    ),
    "electra-tiny-cls": lambda: fixture(
        "electra-tiny-cls", "electra", transformers.ElectraForSequenceClassification, "wordpiece",
        "ElectraForSequenceClassification: GELU classification head, 3 labels.",
        [lambda n, d: text_classification(n, d, TEXTS, "all")],
        seed=54,
        id2label={0: "a", 1: "b", 2: "c"},
        label2id={"a": 0, "b": 1, "c": 2},
    ),
    "data2vec-text-tiny-mlm": lambda: fixture(
        "data2vec-text-tiny-mlm", "data2vec-text", transformers.Data2VecTextForMaskedLM, "bpe",
        "Data2VecTextForMaskedLM: the RoBERTa layout under `data2vec_text.`.",
        [
            lambda n, d: fill_mask(n, d, MASKED["<mask>"], top_k=3),
            lambda n, d: feature_extraction(d, TEXTS),
        ],
        seed=55,
    ),
    "ernie-tiny-cls": lambda: fixture(
        "ernie-tiny-cls", "ernie", transformers.ErnieForSequenceClassification, "wordpiece",
        "ErnieForSequenceClassification: task-type embeddings (use_task_id), 2 labels.",
        [
            lambda n, d: text_classification(n, d, TEXTS, "all"),
            lambda n, d: pooled_embeddings(d, TEXTS[:3], "mean", True),
        ],
        seed=56,
    ),
    "gpt-bigcode-tiny": lambda: fixture(
        "gpt-bigcode-tiny", "gpt_bigcode", transformers.GPTBigCodeForCausalLM, "gpt2",
        "GPTBigCodeForCausalLM: multi-query attention (one key/value head), tanh GELU.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=25,
    ),
    "opt-tiny": lambda: fixture(
        "opt-tiny", "opt", transformers.OPTForCausalLM, "gpt2",
        "OPTForCausalLM like opt-350m: post-LayerNorm, 24-wide embeddings projected to 32, "
        "positions offset by 2, ReLU.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=26,
    ),
    "granite-tiny": lambda: fixture(
        "granite-tiny", "granite", transformers.GraniteForCausalLM, "llama",
        "GraniteForCausalLM: embedding, residual, attention and logit multipliers.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            # 2 beams over 30 tokens: EOS after 2 and 22 new tokens.
            lambda n, d: text_generation(n, d, PROMPTS, 30, num_beams=2),
        ],
        seed=19,
        embedding_multiplier=3.0,
        residual_multiplier=0.5,
        attention_multiplier=0.2,
        logits_scaling=0.7,
    ),
    "olmo-tiny": lambda: fixture(
        "olmo-tiny", "olmo", transformers.OlmoForCausalLM, "llama",
        "OlmoForCausalLM: LayerNorms without parameters, q/k/v clipped to [-1.5, 1.5].",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=20,
        clip_qkv=1.5,
    ),
    "t5-tiny": lambda: fixture(
        "t5-tiny", "t5", transformers.T5ForConditionalGeneration, "t5",
        "T5ForConditionalGeneration: ReLU feed-forward, tied head with decoder-output scaling, "
        "8 relative-position buckets over distance 20 (transformers 5 cannot generate with unequal encoder and decoder depths).",
        [
            lambda n, d: text2text_generation(n, d, T2T_INPUTS, 12),
            lambda n, d: text2text_generation(n, d, T2T_INPUTS[:1], 12, repetition_penalty=1.4),
            lambda n, d: text2text_generation(n, d, T2T_INPUTS, 12, num_beams=4),
            lambda n, d: text2text_generation(n, d, T2T_INPUTS[1:2], 12, num_beams=3, repetition_penalty=1.4),
        ],
        seed=41,
    ),
    "t5-tiny-large-ff": lambda: fixture(
        "t5-tiny-large-ff", "t5", transformers.T5ForConditionalGeneration, "t5",
        "T5ForConditionalGeneration whose feed-forward outputs (`wo` scaled by 3000) take the "
        "residual stream past f16's 65504, as real T5 checkpoints do: transformers keeps `wo` "
        "in f32 in f16 (_keep_in_fp32_modules), so the residual stays f32 and finite. "
        "reference.cpu-f16.json is transformers' own f16 run on the CPU (--recompute).",
        [lambda n, d: text2text_generation(n, d, T2T_INPUTS, 12)],
        seed=43,
        post=scale_t5_feed_forward,
    ),
    "mt5-tiny": lambda: fixture(
        "mt5-tiny", "mt5", transformers.MT5ForConditionalGeneration, "t5",
        "MT5ForConditionalGeneration: gated-GELU feed-forward, untied lm_head, no output scaling.",
        [lambda n, d: text2text_generation(n, d, T2T_INPUTS, 12)],
        seed=42,
        untie_head=True,
    ),
}

def scale_t5_feed_forward(model, tokenizer, factor=3000.0):
    """Scale every feed-forward output projection, and check that the f32 residual
    stream then exceeds f16's range (else the fixture would not test the overflow)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("DenseReluDense.wo.weight"):
                p.mul_(factor)
        enc = tokenizer(T2T_INPUTS, return_tensors="pt", padding=True)
        hidden = model.encoder(**enc, output_hidden_states=True).hidden_states
    peak = max(h.abs().max().item() for h in hidden)
    assert peak > 65504 * 2, f"residual peaks at {peak}: not past f16's range"
    print(f"t5-tiny-large-ff: f32 residual stream peaks at {peak:.0f}")


T2T_INPUTS = [
    "translate English to German: The house is wonderful.",
    "summarize: The quick brown fox jumps over the lazy dog, and the dog sleeps on.",
    "Le café est délicieux à Paris.",
]


RECOMPUTE = {
    "feature-extraction": lambda name, d, c: (
        feature_extraction(d, c["inputs"]) if "pooling" not in c["options"]
        else pooled_embeddings(d, c["inputs"], c["options"]["pooling"], c["options"].get("normalize", False))
    ),
    "fill-mask": lambda name, d, c: fill_mask(name, d, c["inputs"], top_k=c["options"].get("top_k", 5)),
    "text-classification": lambda name, d, c: text_classification(name, d, c["inputs"], c["options"].get("top_k", 1)),
    "token-classification": lambda name, d, c: token_classification(name, d, c["inputs"]),
    "text-generation": lambda name, d, c: text_generation(
        name, d, c["inputs"], c["options"]["max_new_tokens"],
        **{k: v for k, v in c["options"].items() if k != "max_new_tokens"}),
    "text2text-generation": lambda name, d, c: text2text_generation(
        name, d, c["inputs"], c["options"]["max_new_tokens"],
        **{k: v for k, v in c["options"].items() if k != "max_new_tokens"}),
}


def write_recomputed(d: Path, ref: dict, checks: list[dict], device: str, dtype: str, out_dir: Path | None):
    """Write `reference.<backend>-<dtype>.json`: `ref` with the recomputed `checks`,
    beside reference.json or under `out_dir/<fixture>/` (shared with
    make_media_fixtures.py)."""
    backend = "cuda" if device.startswith("cuda") else device
    ref = {
        **ref,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "device": device,
        "dtype": dtype,
        "checks": checks,
    }
    target = d if out_dir is None else out_dir / d.name
    target.mkdir(parents=True, exist_ok=True)
    out = target / f"reference.{backend}-{dtype}.json"
    out.write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


def recompute(dirs: list[Path], device: str, dtype: str, out_dir: Path | None):
    """Run the checks of existing fixtures again with transformers on `device` in
    `dtype`, writing `reference.<backend>-<dtype>.json` beside `reference.json` (or under
    `out_dir/<fixture>/`, which `SKILLSET_REFERENCES=out_dir` points skillsets at): what
    half-precision runs are compared with (skillsets and transformers then round alike,
    and greedy steps record their margins, so that a token after a near tie is not
    held against either)."""
    global DEVICE, DTYPE, STRICT_MARGINS
    DEVICE = device
    DTYPE = {"f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    STRICT_MARGINS = False
    for d in dirs:
        if not (d / "reference.json").is_file():
            continue  # tests/fixtures/media holds inputs, not a checkpoint
        ref = json.loads((d / "reference.json").read_text())
        missing = sorted({c["task"] for c in ref["checks"]} - set(RECOMPUTE))
        if missing:
            # The image/audio fixtures: `scripts/make_media_fixtures.py --recompute`
            # (scripts/gpu-check.sh runs both).
            if ref.get("generated_by") == "scripts/make_media_fixtures.py":
                print(f"skipped {d}: recomputed by scripts/make_media_fixtures.py --recompute")
            else:
                print(f"skipped {d}: no half-precision reference for {', '.join(missing)}")
            continue
        note_version(ref)
        try:
            checks = [RECOMPUTE[c["task"]](d.name, d, c) for c in ref["checks"]]
        except Exception as e:  # one fixture's failure does not cost the others theirs
            FAILED.append(f"{d.name} ({dtype}): {type(e).__name__}: {e}")
            print(f"FAILED {FAILED[-1]}", file=sys.stderr)
            continue
        write_recomputed(d, ref, checks, device, dtype, out_dir)


FAILED: list[str] = []  # fixtures whose recomputation failed (--recompute goes on)
_VERSIONS_NOTED: set[str] = set()


def note_version(ref: dict):
    """Say once when the installed transformers is not the one the fixture was made with:
    an older one may lack a model class or compute something otherwise (carry the wheel
    of the fixtures' version, as scripts/gpu-check.sh does)."""
    made = ref.get("transformers_version")
    if made and made != transformers.__version__ and made not in _VERSIONS_NOTED:
        _VERSIONS_NOTED.add(made)
        print(f"note: fixtures made with transformers {made}, recomputing with {transformers.__version__}",
              file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="fixture names to rebuild")
    parser.add_argument("--recompute", nargs="+", type=Path, metavar="FIXTURE_DIR",
                        help="recompute the references of existing fixtures in --dtype on --device")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", choices=["f16", "bf16"], default=["f16", "bf16"])
    parser.add_argument("--out", type=Path, help="write recomputed references under DIR/<fixture>/")
    parser.add_argument("--references-only", action="store_true",
                        help="keep the committed checkpoints, recompute reference.json (with --only)")
    args = parser.parse_args()
    global REFERENCES_ONLY
    REFERENCES_ONLY = args.references_only
    torch.set_num_threads(1)
    if args.recompute:
        for dtype in args.dtype:
            recompute([Path(d.rstrip("/")) if isinstance(d, str) else d for d in args.recompute], args.device, dtype, args.out)
        if FAILED:
            sys.exit(f"{len(FAILED)} recomputation(s) failed:\n  " + "\n  ".join(FAILED))
        return
    names = args.only or list(FIXTURE_SPECS)
    for name in names:
        if name not in FIXTURE_SPECS:
            sys.exit(f"unknown fixture {name}; known: {', '.join(FIXTURE_SPECS)}")
        FIXTURE_SPECS[name]()


if __name__ == "__main__":
    main()
