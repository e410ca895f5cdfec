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


def bpe_vocab(size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def unigram_vocab(size: int) -> list[tuple[str, float]]:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=size,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        unk_token="<unk>",
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    model = json.loads(tok.to_str())["model"]
    return [(p, s) for p, s in model["vocab"]]


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
    for a, b in zip(ranked, ranked[1:]):
        if abs(a["score"] - b["score"]) < min_gap:
            sys.exit(f"{name}: {what} has near-tied scores {a['score']} / {b['score']}: pick another seed")


# ---------------------------------------------------------------------------
# Checks: each returns {"task", "inputs", "options", "outputs"}.
# ---------------------------------------------------------------------------

def feature_extraction(model_dir: Path, inputs: list[str]) -> dict:
    pipe = pipeline("feature-extraction", model=str(model_dir), device="cpu")
    outputs = [pipe(text)[0] for text in inputs]  # [1, tokens, hidden] -> [tokens, hidden]
    return {"task": "feature-extraction", "inputs": inputs, "options": {}, "outputs": to_py(outputs)}


def pooled_embeddings(model_dir: Path, inputs: list[str], pooling: str, normalize: bool) -> dict:
    """Pooled hidden states of transformers' model, pooled with torch (one text at a time)."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    outputs = []
    with torch.no_grad():
        for text in inputs:
            enc = tok(text, return_tensors="pt")
            hidden = model(**enc).last_hidden_state[0]
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
    pipe = pipeline("fill-mask", model=str(model_dir), device="cpu")
    outputs = []
    for text in inputs:
        out = to_py(pipe(text, top_k=top_k))
        for ranking in (out if isinstance(out[0], list) else [out]):
            check_margins(name, ranking, f"fill-mask of {text!r}")
        outputs.append(out)
    return {"task": "fill-mask", "inputs": inputs, "options": {"top_k": top_k}, "outputs": outputs}


def text_classification(name: str, model_dir: Path, inputs: list[str], top_k) -> dict:
    pipe = pipeline("text-classification", model=str(model_dir), device="cpu")
    outputs = []
    for text in inputs:
        out = to_py(pipe(text, top_k=None if top_k == "all" else top_k))
        full = to_py(pipe(text, top_k=None))
        check_margins(name, full, f"text-classification of {text!r}")
        outputs.append(out)
    options = {} if top_k == 1 else {"top_k": top_k}
    return {"task": "text-classification", "inputs": inputs, "options": options, "outputs": outputs}


def token_classification(name: str, model_dir: Path, inputs: list[str]) -> dict:
    pipe = pipeline("token-classification", model=str(model_dir), device="cpu", aggregation_strategy="none")
    model = pipe.model
    tok = pipe.tokenizer
    outputs = []
    for text in inputs:
        outputs.append(to_py(pipe(text)))
        # Every token's best label must win clearly, or O/non-O could flip.
        with torch.no_grad():
            probs = model(**tok(text, return_tensors="pt")).logits[0].softmax(-1)
        top2 = probs.topk(2, dim=-1).values
        if (top2[:, 0] - top2[:, 1]).min().item() < 2e-4:
            sys.exit(f"{name}: token-classification of {text!r} has a near tie: pick another seed")
    return {"task": "token-classification", "inputs": inputs, "options": {}, "outputs": outputs}


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
    else:
        raise ValueError(kind)
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


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


def fixture(name, model_type, cls, tok_kind, description, checks, seed, **config):
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(tok_kind)
    cfg = config_for(model_type, tokenizer, **config)
    model = cls(cfg)
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
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="fixture names to rebuild")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.only or list(FIXTURE_SPECS)
    for name in names:
        if name not in FIXTURE_SPECS:
            sys.exit(f"unknown fixture {name}; known: {', '.join(FIXTURE_SPECS)}")
        FIXTURE_SPECS[name]()


if __name__ == "__main__":
    main()
