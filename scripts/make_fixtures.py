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


def gpt1_vocab(size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """OpenAI GPT's BPE: lowercased, accents stripped and split by BERT's normalizer and
    pre-tokenizer, `</w>` ending each word."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=["<unk>"], end_of_word_suffix="</w>", show_progress=False)
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


LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
# Llama 3's pre-tokenizer split (tiktoken's cl100k pattern).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_tokenizer():
    """A tokenizer shaped like Llama 3's: byte-level BPE behind Llama 3's regex split, its
    special tokens appended after the vocabulary, and a post-processor that adds
    `<|begin_of_text|>` (ByteLevel, then a template), loaded by the generic
    `PreTrainedTokenizerFast` class as Meta's checkpoints are."""
    from tokenizers import AddedToken, Regex, processors
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=440, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in LLAMA3_SPECIALS])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
            special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
        clean_up_tokenization_spaces=True, model_max_length=131072)


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
    if kind == "albert":
        # ALBERT's sentencepiece unigram: <pad> <unk> [CLS] [SEP] [MASK] first, lowercased.
        return transformers.AlbertTokenizer(
            vocab=unigram_vocab(380, specials=("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")))
    if kind == "rembert":
        # RemBERT's sentencepiece unigram: <pad> <unk> [CLS] [SEP] [MASK] first, cased.
        return transformers.RemBertTokenizer(
            vocab=unigram_vocab(380, specials=("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")))
    if kind == "bert-generation":
        # BERT-Generation's sentencepiece unigram (<pad> </s> <s> <unk> first) adds no
        # special tokens. Its checkpoints ship spiece.model for the slow tokenizer; this is
        # the same model as tokenizer.json, loaded by the generic fast class.
        from tokenizers import Tokenizer as Tk
        vocab = unigram_vocab(380, specials=("<pad>", "</s>", "<s>", "<unk>"))
        tok = Tk(models.Unigram(vocab, unk_id=3, byte_fallback=False))
        tok.normalizer = normalizers.NFKC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    if kind == "mpnet":
        # MPNet's vocabulary: <s> <pad> </s> <unk> before BERT's WordPiece vocabulary
        # ([UNK] its unknown token), <mask> after it, as microsoft/mpnet-base.
        wp = wordpiece_vocab(420)
        vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
        vocab.update({t: i + 4 for t, i in sorted(wp.items(), key=lambda kv: kv[1])})
        vocab["<mask>"] = len(vocab)
        return transformers.MPNetTokenizer(vocab=vocab)
    if kind == "t5":
        vocab = unigram_vocab(300, specials=("<pad>", "</s>", "<unk>"))
        return transformers.T5Tokenizer(vocab=vocab, extra_ids=3)
    if kind == "llama":
        vocab, merges = sp_bpe(400, ["<unk>", "<s>", "</s>"])
        return transformers.LlamaTokenizer(vocab=vocab, merges=merges)
    if kind == "gemma":
        # Gemma's turn markers are special tokens of its vocabulary.
        turns = ["<start_of_turn>", "<end_of_turn>"]
        vocab, merges = sp_bpe(400, ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *turns])
        tok = transformers.GemmaTokenizer(vocab=vocab, merges=merges)
        tok.add_special_tokens({"additional_special_tokens": turns})
        return tok
    if kind == "phi3":
        # Llama's sentencepiece BPE with Phi-3's chat tokens appended after the vocabulary.
        vocab, merges = sp_bpe(400, ["<unk>", "<s>", "</s>"])
        tok = transformers.LlamaTokenizer(vocab=vocab, merges=merges)
        tok.add_special_tokens({"additional_special_tokens": ["<|endoftext|>", "<|assistant|>", "<|system|>",
                                                            "<|end|>", "<|user|>"]})
        tok.eos_token = "<|endoftext|>"
        return tok
    if kind == "opt":
        # OPT's byte-level BPE: <s> <pad> </s> <unk> first, `</s>` as BOS and EOS.
        vocab, merges = bpe_vocab(460, ["<s>", "<pad>", "</s>", "<unk>"])
        return transformers.GPT2Tokenizer(vocab=vocab, merges=merges, bos_token="</s>", eos_token="</s>",
                                          pad_token="<pad>", unk_token="<unk>")
    if kind == "llama3":
        return llama3_tokenizer()
    if kind == "qwen2":
        vocab, merges = bpe_vocab(480, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        return transformers.Qwen2Tokenizer(vocab=vocab, merges=merges)
    if kind == "gpt2":
        vocab, merges = bpe_vocab(460, ["<|endoftext|>"])
        return transformers.GPT2Tokenizer(vocab=vocab, merges=merges)
    if kind == "openai-gpt":
        # GPT-1's lowercasing BPE with `</w>` word ends, no BOS, EOS or pad.
        vocab, merges = gpt1_vocab(420)
        return transformers.OpenAIGPTTokenizer(vocab=vocab, merges=merges)
    if kind == "bloom":
        # BLOOM's byte-level BPE: <unk> <s> </s> <pad> first, no BOS added.
        vocab, merges = bpe_vocab(460, ["<unk>", "<s>", "</s>", "<pad>"])
        return transformers.GPT2Tokenizer(vocab=vocab, merges=merges, bos_token="<s>", eos_token="</s>",
                                          pad_token="<pad>", unk_token="<unk>")
    if kind == "xglm":
        # XGLM's sentencepiece unigram (<s> <pad> </s> <unk> first, its made-up words
        # after the vocabulary); its post-processor puts `</s>` before every text.
        return transformers.XGLMTokenizer(vocab=unigram_vocab(380, specials=("<s>", "<pad>", "</s>", "<unk>")))
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
    # A sentence-transformers directory pools by default: ask for the tokens.
    options = {"pooling": "none"} if (model_dir / "modules.json").exists() else {}
    return {"task": "feature-extraction", "inputs": inputs, "options": options, "outputs": to_py(outputs)}


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
    """The gap between the best and second-best logit at each greedy step (`scores`:
    `generate`'s per-step tuple of `[1, vocab]`, or the pipeline's `[steps, vocab]`)."""
    out = []
    for s in scores:
        s = torch.as_tensor(s)
        top2 = (s[0] if s.dim() == 2 else s).float().topk(2).values
        out.append((top2[0] - top2[1]).item())
    return out


def with_margins(name: str, record: dict, scores, gen: dict, what: str) -> dict:
    """A greedy generation's per-step margins: they must be clear when the reference is
    made (else float rounding could change the path), and are recorded with recomputed
    half-precision references. A beam search's scores are per beam: no margins."""
    if gen.get("num_beams", 1) == 1:
        margins = step_margins(scores)
        if STRICT_MARGINS and min(margins) < 1e-3:
            sys.exit(f"{name}: near tie at step {margins.index(min(margins))} of {what!r}: pick another seed")
        if not STRICT_MARGINS:
            record["step_margins"] = margins
    return record


def text_generation(name: str, model_dir: Path, prompts: list[str], max_new_tokens: int, **gen) -> dict:
    """Greedy continuation of each prompt, alone (batch 1), exactly as transformers'
    text-generation pipeline loaded from the saved directory gives it: the prompt is
    encoded by the pipeline's own preprocessing (the tokenizer's defaults, so a
    post-processor's BOS is there), `generated_text` is the pipeline's, and the new
    token ids are the pipeline's `generated_token_ids` after the prompt. The prompt ids
    are recorded (`input_ids`) so that the Rust side checks its encoding too."""
    pipe = pipeline("text-generation", model=str(model_dir), device=DEVICE, dtype=DTYPE)
    outputs, input_ids = [], []
    kwargs = {"do_sample": False, **gen}
    if max_new_tokens is not None:  # else the checkpoint's max_length limits it
        kwargs["max_new_tokens"] = max_new_tokens
    for prompt in prompts:
        prompt_ids = pipe.preprocess(prompt)["input_ids"][0].tolist()
        with_scores = pipe(prompt, output_scores=True, return_dict_in_generate=True, **kwargs)[0]
        text = with_scores["generated_text"]
        sequence = pipe(prompt, return_tensors=True, **kwargs)[0]["generated_token_ids"]
        assert sequence[: len(prompt_ids)] == prompt_ids, (prompt, sequence, prompt_ids)
        new = sequence[len(prompt_ids):]
        record = {"generated_text": text, "token_ids": new}
        outputs.append(with_margins(name, record, with_scores.get("scores"), gen, prompt))
        input_ids.append(prompt_ids)
    options = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    options.update(gen)
    return {"task": "text-generation", "inputs": prompts, "options": options, "outputs": outputs,
            "input_ids": input_ids}


def text2text_generation(name: str, model_dir: Path, inputs: list[str], max_new_tokens: int, **gen) -> dict:
    """Greedy output of an encoder-decoder for each input alone. transformers 5 has no
    text2text pipeline: these are the steps of the last 4.x `Text2TextGenerationPipeline`
    (the config's `prefix` prepended, the tokenizer's defaults without truncation,
    `token_type_ids` dropped, `generate` with the model's generation config, the output
    decoded with special tokens skipped)."""
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(model_dir, dtype=DTYPE).to(DEVICE).eval()
    prefix = getattr(model.config, "prefix", None) or ""
    outputs, input_ids = [], []
    for text in inputs:
        enc = tok(prefix + text, padding=False, truncation=False, return_tensors="pt").to(DEVICE)
        enc.pop("token_type_ids", None)
        limit = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
        with torch.no_grad():
            out = model.generate(
                **enc, **limit, do_sample=False, output_scores=True, return_dict_in_generate=True, **gen,
            )
        sequence = out.sequences[0].tolist()
        new = sequence[1:]  # after the decoder start token
        record = {"generated_text": tok.decode(sequence, skip_special_tokens=True), "token_ids": new}
        outputs.append(with_margins(name, record, out.scores, gen, text))
        input_ids.append(enc["input_ids"][0].tolist())
    options = {} if max_new_tokens is None else {"max_new_tokens": max_new_tokens}
    options.update(gen)
    return {"task": "text2text-generation", "inputs": inputs, "options": options, "outputs": outputs,
            "input_ids": input_ids}


# ---------------------------------------------------------------------------
# Chat templates, written in the shapes of the real families' (Jinja as transformers'
# apply_chat_template renders it: trim_blocks, lstrip_blocks, loop controls,
# raise_exception, strftime_now, tojson, namespace, Python string methods).
# ---------------------------------------------------------------------------

CHAT_TEMPLATES = {
    # Llama 3.1's shape: BOS in the template, a dated system header (strftime_now),
    # `| trim`, tools as indented JSON.
    "llama3": """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- The system message goes in the system header. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none %}
    {{- "You have access to the following functions:\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if message.role == 'ipython' or message.role == 'tool' %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable and message.content is not string %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- else %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
""",
    # Qwen's shape: ChatML with a default system prompt, a namespace and a reversed
    # loop to find the last user query, reasoning cut with str.split / lstrip.
    "qwen2": """{%- if messages[0]['role'] == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
{%- else %}
    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(last_query_index=messages|length - 1, found=false) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if not ns.found and message.role == "user" and not message.content.startswith('<tool_response>') %}
        {%- set ns.last_query_index = index %}
        {%- set ns.found = true %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.role == "user" or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- if loop.index0 < ns.last_query_index and '</think>' in content %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
""",
    # Gemma's shape: no system role (raise_exception), roles must alternate, `model`
    # for the assistant, `| trim` binding tighter than `+`.
    "gemma": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
    # Mistral's shape: [INST] blocks, the system prompt folded into the last user turn,
    # alternation enforced, EOS after each answer.
    "mistral": """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.last and system_message is defined %}
            {{- '[INST] ' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}
        {%- else %}
            {{- '[INST] ' + message['content'] + '[/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content']|trim + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
""",
    # Phi-3's shape: <|role|> markers, <|end|> after each turn, EOS when no
    # generation prompt is asked for.
    "phi3": "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
}

CHATS = {
    "user": [{"role": "user", "content": "What is the capital of France?"}],
    "system": [
        {"role": "system", "content": "  You answer in one word.  "},
        {"role": "user", "content": "Le café est délicieux à Paris?"},
    ],
    "turns": [
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "<think>greet back</think>\n\nHi, how can I help?"},
        {"role": "user", "content": " Tell me about Berlin. "},
    ],
    "prefill": [
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "The colour is"},
    ],
    "not-alternating": [
        {"role": "user", "content": "One."},
        {"role": "user", "content": "Two."},
    ],
}

# Chats are longer than the other prompts: the chat fixtures (all rotary, so no weight
# depends on it) get more positions.
CHAT_POSITIONS = {"max_position_embeddings": 256}

# The clock `strftime_now` reads while references are recorded (the Rust side renders
# with the same time).
CHAT_NOW = "2026-11-30T12:34:56"


def chat_checks(name: str, model_dir: Path, conversations: list[str], max_new_tokens: int) -> list[dict]:
    """What transformers does with each conversation: `apply_chat_template` rendered
    string and ids (a generation prompt added unless the last message is the
    assistant's, which is then continued, as the text-generation pipeline does), and
    the pipeline's greedy output for the chat (the conversation with the new assistant
    message) with its new token ids; or the template's error."""
    import datetime as _dt
    from transformers.utils import chat_template_utils

    class FrozenClock(_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls.fromisoformat(CHAT_NOW)

    chat_template_utils.datetime = FrozenClock
    pipe = pipeline("text-generation", model=str(model_dir), device=DEVICE, dtype=DTYPE)
    tok = pipe.tokenizer
    out = []
    for key in conversations:
        messages = CHATS[key]
        continue_final = messages[-1]["role"] == "assistant"
        record = {"name": key, "messages": messages, "now": CHAT_NOW}
        try:
            rendered = tok.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=not continue_final,
                continue_final_message=continue_final)
        except Exception as e:  # the template's raise_exception
            record["error"] = str(e)
            out.append(record)
            continue
        ids = tok.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=not continue_final,
            continue_final_message=continue_final, return_dict=True)["input_ids"]
        kwargs = {"max_new_tokens": max_new_tokens, "do_sample": False}
        result = pipe(messages, output_scores=True, return_dict_in_generate=True, **kwargs)[0]
        sequence = pipe(messages, return_tensors=True, **kwargs)[0]["generated_token_ids"]
        assert sequence[: len(ids)] == ids, (key, sequence, ids)
        output = {"generated_text": result["generated_text"], "token_ids": sequence[len(ids):]}
        with_margins(name, output, result.get("scores"), {}, key)
        record.update({"rendered": rendered, "input_ids": ids, "max_new_tokens": max_new_tokens,
                       "output": output})
        out.append(record)
    return out


# ---------------------------------------------------------------------------
# Generation configs whose every entry changes transformers' output.
# ---------------------------------------------------------------------------

def greedy_new_tokens(pipe, prompts, seq2seq=False, **kw):
    """transformers' greedy new tokens for each prompt (the pipeline for a decoder-only
    model; the 4.x text2text steps for an encoder-decoder), with `kw` on top of the
    checkpoint's generation config."""
    out = []
    for p in prompts:
        if seq2seq:
            model, tok = pipe
            enc = tok((getattr(model.config, "prefix", None) or "") + p, return_tensors="pt")
            enc.pop("token_type_ids", None)
            with torch.no_grad():
                out.append(model.generate(**enc, do_sample=False, **kw)[0, 1:].tolist())
        else:
            ids = pipe.preprocess(p)["input_ids"][0].tolist()
            seq = pipe(p, do_sample=False, return_tensors=True, **kw)[0]["generated_token_ids"]
            out.append(seq[len(ids):])
    return out


def tune_generation_config(name: str, d: Path, seq2seq: bool, prompts: list[str], max_new_tokens: int):
    """Write generation_config.json entries picked from transformers' own greedy outputs
    of this checkpoint so that each one changes them, then check that each does:
    transformers' output with the whole config differs from its output with any one
    entry switched off. Decoder-only: begin_suppress_tokens, suppress_tokens,
    bad_words_ids (a token pair), an EOS list with min_new_tokens holding it back,
    no_repeat_ngram_size, forced_eos_token_id; encoder-decoder: decoder_start_token_id,
    forced_bos_token_id, no_repeat_ngram_size, min_new_tokens, forced_eos_token_id."""
    if seq2seq:
        tok = transformers.AutoTokenizer.from_pretrained(d)
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained(d).eval()
        runner = (model, tok)
    else:
        runner = pipeline("text-generation", model=str(d))
        model, tok = runner.model, runner.tokenizer
    base_eos = model.generation_config.eos_token_id
    base_eos = [base_eos] if isinstance(base_eos, int) else list(base_eos or [])

    def run(cfg, **off):
        return greedy_new_tokens(runner, prompts, seq2seq, max_new_tokens=max_new_tokens, **{**cfg, **off})

    def repeats(seq, n):
        grams = [tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)]
        return len(grams) != len(set(grams))

    def sequences(out):  # what the n-gram rule sees: the prompt (decoder-only) and the output
        return out if seq2seq else [runner.preprocess(p)["input_ids"][0].tolist() + o
                                    for p, o in zip(prompts, out)]

    # Each entry's value from transformers' current output `o` (candidate `k` when an
    # earlier candidate turned out not to change the final output).
    pickers = {
        "no_repeat_ngram_size": lambda o, k: [n for n in (1, 2, 3, 4)
                                              if any(repeats(q, n) for q in sequences(o))][k],
    }
    if seq2seq:
        pickers["decoder_start_token_id"] = lambda o, k: [t for t in range(5, 60) if t != tok.pad_token_id][k]
        pickers["forced_bos_token_id"] = lambda o, k: [t for t in range(5, 60) if t != o[0][0]][k]
    else:
        pickers["begin_suppress_tokens"] = lambda o, k: [o[k % len(o)][0]]
        pickers["suppress_tokens"] = lambda o, k: [o[1][2 + k]]
        pickers["bad_words_ids"] = lambda o, k: [o[2][3 + k:5 + k]]
    # An EOS token the output reaches at its third step, held back to the fifth.
    pickers["eos_token_id"] = lambda o, k: base_eos + [o[k % len(o)][2]]
    pickers["min_new_tokens"] = lambda o, k: 5 + k
    pickers["forced_eos_token_id"] = lambda o, k: (base_eos or [0])[0] if k == 0 else 7 + k

    neutral = {
        "begin_suppress_tokens": None, "suppress_tokens": None, "bad_words_ids": None,
        "no_repeat_ngram_size": 0, "min_new_tokens": None, "forced_eos_token_id": None,
        "forced_bos_token_id": None, "decoder_start_token_id": tok.pad_token_id,
        "eos_token_id": base_eos or None,
    }
    tries = dict.fromkeys(pickers, 0)
    cfg: dict = {}
    for key, pick in pickers.items():
        cfg[key] = pick(run(cfg), 0)
    for _ in range(8):
        final = run(cfg)
        idle = []
        for key in cfg:
            off = {key: neutral[key]}
            if key == "eos_token_id":
                off["min_new_tokens"] = None  # without the early EOS it holds nothing back
            if run(cfg, **off) == final:
                idle.append(key)
        if not idle:
            break
        for key in idle:  # another candidate, picked from the output without it
            tries[key] += 1
            without = {k: v for k, v in cfg.items() if k != key}
            cfg[key] = pickers[key](run(without), tries[key])
    else:
        sys.exit(f"{name}: generation_config.json entries {idle} do not change transformers' output")
    patch_json(d / "generation_config.json", cfg)
    print(f"{name}: generation_config.json {cfg}")


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


# RoBERTa-like configs: (config class, whether BOS/EOS ids are stated).
ROBERTA_LIKE = {
    "roberta": ("RobertaConfig", True),
    "xlm-roberta": ("XLMRobertaConfig", False),
    "camembert": ("CamembertConfig", False),
    "roberta-prelayernorm": ("RobertaPreLayerNormConfig", True),
    "xlm-roberta-xl": ("XLMRobertaXLConfig", False),
    "ibert": ("IBertConfig", True),
}


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
    elif kind in ROBERTA_LIKE:
        # Positions from the padding index + 1, one token type; some state BOS/EOS.
        cls, bos_eos = ROBERTA_LIKE[kind]
        ids = dict(bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id) if bos_eos else {}
        cfg = getattr(transformers, cls)(
            **{**base, "max_position_embeddings": 64 + 2},
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
            **ids,
        )
    elif kind == "rembert":
        cfg = transformers.RemBertConfig(
            **base, input_embedding_size=16, output_embedding_size=20, pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        )
    elif kind == "bert-generation":
        cfg = transformers.BertGenerationConfig(
            **base, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    elif kind == "albert":
        cfg = transformers.AlbertConfig(
            **{**base, "num_hidden_layers": 3}, embedding_size=16, num_hidden_groups=2, inner_group_num=2,
            hidden_act="gelu_new", pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        )
    elif kind == "layoutlm":
        cfg = transformers.LayoutLMConfig(**base, max_2d_position_embeddings=50, pad_token_id=tokenizer.pad_token_id)
    elif kind == "megatron-bert":
        cfg = transformers.MegatronBertConfig(**base, pad_token_id=tokenizer.pad_token_id)
    elif kind == "mpnet":
        cfg = transformers.MPNetConfig(
            **{**base, "max_position_embeddings": 64 + 2},
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
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
    "phi": lambda tok, **kw: transformers.PhiConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=40, max_position_embeddings=64, initializer_range=0.3,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "persimmon": lambda tok, **kw: transformers.PersimmonConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=44, max_position_embeddings=64, initializer_range=0.3, qk_layernorm=True,
        tie_word_embeddings=False, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "codegen": lambda tok, **kw: transformers.CodeGenConfig(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=64, rotary_dim=4, n_inner=40,
        initializer_range=0.3, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    # 6 heads: ALiBi's slopes for a head count that is not a power of two.
    "bloom": lambda tok, **kw: transformers.BloomConfig(
        vocab_size=len(tok), hidden_size=48, n_layer=2, n_head=6, initializer_range=0.3,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "mpt": lambda tok, **kw: transformers.MptConfig(
        vocab_size=len(tok), d_model=48, n_heads=6, n_layers=2, max_seq_len=64, initializer_range=0.3,
        attn_config={"alibi_bias_max": 8, "clip_qkv": 0.6}, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    # DBRX's real configs keep a `rope_theta` in attn_config, which transformers 5.23 ignores.
    "dbrx": lambda tok, **kw: transformers.DbrxConfig(
        vocab_size=len(tok), d_model=32, n_heads=4, n_layers=2, max_seq_len=64, initializer_range=0.3,
        attn_config={"clip_qkv": 0.6, "kv_n_heads": 2, "rope_theta": 500000},
        ffn_config={"ffn_hidden_size": 20, "moe_num_experts": 6, "moe_top_k": 2,
                    "ffn_act_fn": {"name": "silu"}},
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "openai-gpt": lambda tok, **kw: transformers.OpenAIGPTConfig(
        vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=64, initializer_range=0.3, **kw),
    "falcon": lambda tok, **kw: transformers.FalconConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=64, ffn_hidden_size=40, initializer_range=0.3,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
    "xglm": lambda tok, **kw: transformers.XGLMConfig(
        vocab_size=len(tok), d_model=32, ffn_dim=40, num_layers=2, attention_heads=4,
        max_position_embeddings=64, init_std=0.3, dropout=0.0, attention_dropout=0.0,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **kw),
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
        "olmo2": "Olmo2Config",
        # Model types that transformers maps to the Llama classes with a config of their own.
        "internlm3": "InternLM3Config",
        "iquestcoder": "IQuestCoderConfig",
        # Model types stated as delta files (issue 16).
        "ministral": "MinistralConfig",
        "cwm": "CwmConfig",
        "smollm3": "SmolLM3Config",
        "helium": "HeliumConfig",
        "arcee": "ArceeConfig",
        "seed_oss": "SeedOssConfig",
        "olmo3": "Olmo3Config",
        "starcoder2": "Starcoder2Config",
        "glm": "GlmConfig",
        "glm4": "Glm4Config",
        "ernie4_5": "Ernie4_5Config",
        "gemma2": "Gemma2Config",
        "gemma3_text": "Gemma3TextConfig",
        "vaultgemma": "VaultGemmaConfig",
        "cohere": "CohereConfig",
        "cohere2": "Cohere2Config",
        "nemotron": "NemotronConfig",
        "hunyuan_v1_dense": "HunYuanDenseV1Config",
        "stablelm": "StableLmConfig",
        "exaone4": "Exaone4Config",
        "ministral3": "Ministral3Config",
        "granite_swa": "GraniteSWAConfig",
        "granitemoe_swa": "GraniteMoeSWAConfig",
        "ernie4_5_moe": "Ernie4_5_MoeConfig",
        "glm4_moe": "Glm4MoeConfig",
        "dots1": "Dots1Config",
        "solar_open": "SolarOpenConfig",
        "exaone_moe": "ExaoneMoeConfig",
        "mellum": "MellumConfig",
        "mixtral": "MixtralConfig",
        "qwen2_moe": "Qwen2MoeConfig",
        "qwen3_moe": "Qwen3MoeConfig",
        "olmoe": "OlmoeConfig",
        "flex_olmo": "FlexOlmoConfig",
        "granitemoe": "GraniteMoeConfig",
        "granitemoeshared": "GraniteMoeSharedConfig",
        "hunyuan_v1_moe": "HunYuanMoEV1Config",
        "jais2": "Jais2Config",
        "nanochat": "NanoChatConfig",
        "hyperclovax": "HyperCLOVAXConfig",
        "afmoe": "AfmoeConfig",
        "cohere2_moe": "Cohere2MoeConfig",
        "apertus": "ApertusConfig",
        "phimoe": "PhimoeConfig",
        "gpt_oss": "GptOssConfig",
        "deepseek_v3": "DeepseekV3Config",
        "glm4_moe_lite": "Glm4MoeLiteConfig",
        "deepseek_v2": "DeepseekV2Config",
        "minicpm3": "MiniCPM3Config",
        "diffllama": "DiffLlamaConfig",
        "youtu": "YoutuConfig",
        "minimax_m2": "MiniMaxM2Config",
    }.items()
}


def save(name: str, model, tokenizer, description: str, original_format: bool = True) -> Path:
    """`original_format` False: weights under transformers 5's own names (e.g. fused
    MoE experts) instead of those of the released checkpoints."""
    d = FIXTURES / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    model.eval()
    model.save_pretrained(d, save_original_format=original_format)
    tokenizer.save_pretrained(d)
    (d / "README.md").write_text(
        f"# {name}\n\n{description}\n\nRandom weights, made by `scripts/make_fixtures.py` with "
        f"transformers {transformers.__version__}. `reference.json` holds transformers' outputs.\n"
    )
    return d


def write_reference(d: Path, model_type: str, description: str, checks: list[dict], chats=None):
    ref = {
        "model_type": model_type,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "generated_by": "scripts/make_fixtures.py",
        "description": description,
        "checks": checks,
    }
    if chats:
        ref["chats"] = chats
    (d / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")


REFERENCES_ONLY = False  # --references-only: keep the committed checkpoint, redo reference.json


def patch_json(path: Path, updates: dict):
    """Set (or, for None, remove) keys of a JSON file of a fixture."""
    doc = json.loads(path.read_text()) if path.exists() else {}
    for k, v in updates.items():
        if v is None:
            doc.pop(k, None)
        else:
            doc[k] = v
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def token_ids(d: Path, entries: dict) -> dict:
    """generation_config.json entries with token strings replaced by their ids."""
    tok = transformers.AutoTokenizer.from_pretrained(d)
    def ids(v):
        if isinstance(v, str):
            assert v in tok.get_vocab(), f"{d.name}: no token {v}"
            return tok.convert_tokens_to_ids(v)
        if isinstance(v, list):
            return [ids(x) for x in v]
        return v
    return {k: ids(v) for k, v in entries.items()}


def shape_tokenizer(d: Path, tokenizer, setup):
    """Give a saved fixture's tokenizer the shape of its family's real ones: `setup`
    changes the tokenizer (BOS-adding post-processor, chat template) and returns the
    tokenizer_config.json entries the real checkpoints carry beside it."""
    config_extra = setup(tokenizer) or {}
    tokenizer.save_pretrained(d)
    # Keys a reload adds that no real checkpoint has.
    patch_json(d / "tokenizer_config.json", {"is_local": None, "local_files_only": None, **config_extra})


def bos_template(config_says=True):
    """The tokenizer adds its BOS token (`<s>`, `<bos>`, `</s>`, ...) through
    tokenizer.json's post-processor, as Llama 2, Mistral, Gemma, Phi-3 and OPT
    tokenizers do. `config_says`: the `add_bos_token` tokenizer_config.json carries
    (real Phi-3 files say false while tokenizer.json adds it; transformers 5 follows
    tokenizer.json)."""
    def setup(tok):
        tok.add_bos_token = True
        return {"add_bos_token": config_says, "add_eos_token": False}
    return setup


def glm_prefix(tok):
    """GLM-4's tokenizer shape: `[gMASK]<sop>` put before every text by tokenizer.json's
    post-processor (no BOS token of its own), under the generic fast class."""
    from tokenizers import processors
    tok.add_special_tokens({"additional_special_tokens": ["[gMASK]", "<sop>"]})
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("[gMASK]", "<sop>")}
    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="[gMASK] <sop> $A", pair="[gMASK] <sop> $A $B", special_tokens=list(ids.items()))
    return {"tokenizer_class": "PreTrainedTokenizerFast"}


def chat_template(kind: str):
    def setup(tok):
        tok.chat_template = CHAT_TEMPLATES[kind]
        return {}
    return setup


def both(*setups):
    def setup(tok):
        extra = {}
        for s in setups:
            extra.update(s(tok) or {})
        return extra
    return setup


def fixture(name, model_type, cls, tok_kind, description, checks, seed, untie_head=False, post=None,
            tokenizer_setup=None, generation=None, after_save=None, chats=None, original_format=True,
            **config):
    """Build (or with --references-only, keep) a fixture checkpoint and record transformers'
    outputs. `tokenizer_setup`: see `shape_tokenizer`; `generation`: generation_config.json
    entries (None removes one); `after_save(name, d)`: changes to the saved checkpoint
    that depend on transformers' outputs (generation configs chosen so that each entry
    changes them), run before the references are recorded."""
    d = FIXTURES / name
    if REFERENCES_ONLY:
        # The committed checkpoint and tokenizer as they are (the Unigram trainer is not
        # bit-reproducible across runs): only the tokenizer's shape, the generation
        # config and transformers' outputs are redone.
        if tokenizer_setup:
            shape_tokenizer(d, transformers.AutoTokenizer.from_pretrained(d), tokenizer_setup)
        if generation:
            patch_json(d / "generation_config.json", token_ids(d, generation))
        if after_save:
            after_save(name, d)
        write_reference(d, model_type, description, [c(name, d) for c in checks],
                        chats and chat_checks(name, d, *chats))
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
    d = save(name, model, tokenizer, description, original_format)
    if tokenizer_setup:
        shape_tokenizer(d, transformers.AutoTokenizer.from_pretrained(d), tokenizer_setup)
    if generation:
        patch_json(d / "generation_config.json", token_ids(d, generation))
    if after_save:
        after_save(name, d)
    write_reference(d, model_type, description, [c(name, d) for c in checks],
                    chats and chat_checks(name, d, *chats))
    print(f"wrote {d.relative_to(ROOT)}")


def bin_twin(src: str, name: str, shards: int = 1, legacy_layer_norm_names: bool = False,
             fused_views: bool = False):
    """A twin of fixture `src` whose weights are PyTorch pickles (`torch.save`, as
    checkpoints were saved before safetensors) instead of model.safetensors: one
    `pytorch_model.bin`, or `shards` files named by `pytorch_model.bin.index.json`.
    `legacy_layer_norm_names`: LayerNorm weights under the old TF names `gamma`/`beta`
    (transformers renames them on load); `fused_views`: each layer's q/k/v weights are
    views into one storage (non-zero storage offsets, one storage shared by three
    tensors). References: transformers loading the twin's directory; they must equal
    the safetensors twin's."""
    from safetensors.torch import load_file
    src_dir, d = FIXTURES / src, FIXTURES / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    for f in src_dir.iterdir():
        if f.name in ("model.safetensors", "README.md") or f.name.startswith("reference"):
            continue
        shutil.copy(f, d / f.name)
    state = load_file(src_dir / "model.safetensors")
    if legacy_layer_norm_names:
        state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
                 for k, v in state.items()}
        assert any(k.endswith("LayerNorm.gamma") for k in state)
    if fused_views:
        for q in [k for k in state if k.endswith("q_proj.weight")]:
            names = [q, q.replace("q_proj", "k_proj"), q.replace("q_proj", "v_proj")]
            fused = torch.cat([state[n] for n in names])
            at = 0
            for n in names:
                rows = state[n].shape[0]
                state[n] = fused[at:at + rows]
                at += rows
    description = f"{src} with its weights in PyTorch's pickle format ({shards} pytorch_model*.bin file(s)" + (
        ", LayerNorm weights named gamma/beta" if legacy_layer_norm_names else "") + (
        ", q/k/v weights as views into one storage per layer" if fused_views else "") + ")."
    if shards == 1:
        torch.save(state, d / "pytorch_model.bin")
    else:
        keys = sorted(state)
        weight_map = {}
        for i in range(shards):
            file = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
            part = {k: state[k] for k in keys[i::shards]}
            torch.save(part, d / file)
            weight_map.update(dict.fromkeys(part, file))
        total = sum(v.numel() * v.element_size() for v in state.values())
        (d / "pytorch_model.bin.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")
    (d / "README.md").write_text(
        f"# {name}\n\n{description}\n\nMade by `scripts/make_fixtures.py` from `{src}` with transformers "
        f"{transformers.__version__}. `reference.json` holds transformers' outputs for this directory.\n")
    ref = json.loads((src_dir / "reference.json").read_text())
    checks = [RECOMPUTE[c["task"]](name, d, c) for c in ref["checks"]]
    def close(a, b):
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
        if isinstance(a, float):
            return abs(a - b) <= 1e-5
        return a == b
    for mine, theirs in zip(checks, ref["checks"]):
        assert close(mine["outputs"], theirs["outputs"]), f"{name}: differs from {src}: {mine} {theirs}"
    write_reference(d, ref["model_type"], description, checks)
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
        "untied lm_head, sentencepiece-style BPE whose post-processor adds `<s>` as Llama 2's does.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS, 12, num_beams=3),
        ],
        seed=11,
        tokenizer_setup=bos_template(),
        rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
        },
    ),
    "mistral-tiny": lambda: fixture(
        "mistral-tiny", "mistral", transformers.MistralForCausalLM, "llama",
        "MistralForCausalLM: sliding-window attention over 5 positions (shorter than the "
        "sequences), 4 heads sharing 1 KV head; `<s>` added by the tokenizer and a "
        "Mistral-shaped chat template ([INST], system prompt in the last turn, alternation enforced).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=12,
        tokenizer_setup=both(bos_template(), chat_template("mistral")),
        after_save=lambda n, d: patch_json(d / "config.json", CHAT_POSITIONS),
        chats=(["user", "system", "turns", "prefill", "not-alternating"], 8),
        sliding_window=5,
        num_key_value_heads=1,
    ),
    "qwen2-tiny": lambda: fixture(
        "qwen2-tiny", "qwen2", transformers.Qwen2ForCausalLM, "qwen2",
        "Qwen2ForCausalLM: q/k/v biases, tied embeddings, byte-level BPE without a BOS, a "
        "Qwen-shaped ChatML template, EOS list [<|im_end|>, <|endoftext|>].",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=13,
        tokenizer_setup=chat_template("qwen2"),
        after_save=lambda n, d: patch_json(d / "config.json", CHAT_POSITIONS),
        generation={"eos_token_id": ["<|im_end|>", "<|endoftext|>"], "pad_token_id": "<|endoftext|>"},
        chats=(["user", "system", "turns", "prefill"], 8),
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
        "phi3-tiny", "phi3", transformers.Phi3ForCausalLM, "phi3",
        "Phi3ForCausalLM: fused qkv and gate/up projections, partial rotary (half the head), "
        "sliding-window attention over 5 positions (Phi-3-mini-4k's config sets 2047); "
        "Phi-3's tokenizer shape (`<s>` added by tokenizer.json while tokenizer_config.json "
        "says add_bos_token false, chat tokens after the vocabulary, a Phi-3-shaped template, "
        "EOS list [<|endoftext|>, <|assistant|>, <|end|>]).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=15,
        tokenizer_setup=both(bos_template(config_says=False), chat_template("phi3")),
        after_save=lambda n, d: patch_json(d / "config.json", CHAT_POSITIONS),
        generation={"eos_token_id": ["<|endoftext|>", "<|assistant|>", "<|end|>"]},
        chats=(["user", "system", "turns"], 8),
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        sliding_window=5,
    ),
    "gemma-tiny": lambda: fixture(
        "gemma-tiny", "gemma", transformers.GemmaForCausalLM, "gemma",
        "GemmaForCausalLM: (1 + weight) RMSNorm, sqrt(hidden)-scaled embeddings, tanh GELU, "
        "head_dim 16, tied embeddings; `<bos>` added by the tokenizer, turn markers as special "
        "tokens and a Gemma-shaped chat template (no system role, alternation enforced).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=16,
        tokenizer_setup=both(bos_template(), chat_template("gemma")),
        after_save=lambda n, d: patch_json(d / "config.json", CHAT_POSITIONS),
        generation={"eos_token_id": ["<eos>", "<end_of_turn>"]},
        chats=(["user", "system", "turns", "not-alternating"], 8),
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
    # One checkpoint per (model type, head) the registry lists, so that every
    # architecture the bert family claims is verified (tests/conformance.rs:
    # every_registry_architecture_has_a_fixture).
    "camembert-tiny-mlm": lambda: fixture(
        "camembert-tiny-mlm", "camembert", transformers.CamembertForMaskedLM, "camembert",
        "CamembertForMaskedLM: CamemBERT's sentencepiece tokenizer, RoBERTa's layout under `roberta.`.",
        [lambda n, d: fill_mask(n, d, MASKED["<mask>"], top_k=3)],
        seed=70,
    ),
    "camembert-tiny-cls": lambda: fixture(
        "camembert-tiny-cls", "camembert", transformers.CamembertForSequenceClassification, "camembert",
        "CamembertForSequenceClassification: RoBERTa's classification head (dense, tanh, out_proj), 3 labels.",
        [lambda n, d: text_classification(n, d, TEXTS, "all")],
        seed=71,
        id2label={0: "neg", 1: "neu", 2: "pos"},
        label2id={"neg": 0, "neu": 1, "pos": 2},
    ),
    "camembert-tiny-ner": lambda: fixture(
        "camembert-tiny-ner", "camembert", transformers.CamembertForTokenClassification, "camembert",
        "CamembertForTokenClassification: 4 BIO labels over sentencepiece words.",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=72,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3},
    ),
    "data2vec-text-tiny-cls": lambda: fixture(
        "data2vec-text-tiny-cls", "data2vec-text", transformers.Data2VecTextForSequenceClassification, "bpe",
        "Data2VecTextForSequenceClassification: the RoBERTa head over `data2vec_text.`, 2 labels.",
        [lambda n, d: text_classification(n, d, TEXTS, "all")],
        seed=73,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    ),
    "data2vec-text-tiny-ner": lambda: fixture(
        "data2vec-text-tiny-ner", "data2vec-text", transformers.Data2VecTextForTokenClassification, "bpe",
        "Data2VecTextForTokenClassification: byte-level BPE words (offsets through the `Ġ` prefix), 4 labels.",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=74,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3},
    ),
    "distilbert-tiny-ner": lambda: fixture(
        "distilbert-tiny-ner", "distilbert", transformers.DistilBertForTokenClassification, "wordpiece",
        "DistilBertForTokenClassification: the classifier on DistilBERT's `transformer.layer` stack, 4 labels.",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=75,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3},
    ),
    "electra-tiny-ner": lambda: fixture(
        "electra-tiny-ner", "electra", transformers.ElectraForTokenClassification, "wordpiece",
        "ElectraForTokenClassification: 24-wide embeddings projected to the encoder, 4 labels.",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=76,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3},
    ),
    "ernie-tiny-mlm": lambda: fixture(
        "ernie-tiny-mlm", "ernie", transformers.ErnieForMaskedLM, "wordpiece",
        "ErnieForMaskedLM: task-type embeddings (use_task_id) and BERT's prediction head.",
        [lambda n, d: fill_mask(n, d, MASKED["[MASK]"], top_k=3)],
        seed=77,
    ),
    "ernie-tiny-ner": lambda: fixture(
        "ernie-tiny-ner", "ernie", transformers.ErnieForTokenClassification, "wordpiece",
        "ErnieForTokenClassification: task-type embeddings, 4 labels.",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=78,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3},
    ),
    "roberta-tiny-ner": lambda: fixture(
        "roberta-tiny-ner", "roberta", transformers.RobertaForTokenClassification, "bpe",
        "RobertaForTokenClassification: byte-level BPE words, 4 labels.",
        [lambda n, d: token_classification(n, d, NER_TEXTS)],
        seed=79,
        id2label={0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
        label2id={"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3},
    ),
    "xlm-roberta-tiny-mlm": lambda: fixture(
        "xlm-roberta-tiny-mlm", "xlm-roberta", transformers.XLMRobertaForMaskedLM, "unigram",
        "XLMRobertaForMaskedLM: Unigram tokenizer, tied decoder.",
        [
            lambda n, d: fill_mask(n, d, MASKED["<mask>"], top_k=3),
            lambda n, d: feature_extraction(d, TEXTS),
        ],
        seed=80,
    ),
    "xlm-roberta-tiny-cls": lambda: fixture(
        "xlm-roberta-tiny-cls", "xlm-roberta", transformers.XLMRobertaForSequenceClassification, "unigram",
        "XLMRobertaForSequenceClassification: single-label softmax, 3 labels.",
        [lambda n, d: text_classification(n, d, TEXTS, "all")],
        seed=81,
        id2label={0: "a", 1: "b", 2: "c"},
        label2id={"a": 0, "b": 1, "c": 2},
    ),
    "xlm-roberta-tiny": lambda: fixture(
        "xlm-roberta-tiny", "xlm-roberta", transformers.XLMRobertaModel, "unigram",
        "XLMRobertaModel (bare encoder, weights at the root): feature-extraction and mean pooling.",
        [
            lambda n, d: feature_extraction(d, TEXTS),
            lambda n, d: pooled_embeddings(d, TEXTS, "mean", True),
        ],
        seed=82,
    ),
    "gpt-bigcode-tiny": lambda: fixture(
        "gpt-bigcode-tiny", "gpt_bigcode", transformers.GPTBigCodeForCausalLM, "gpt2",
        "GPTBigCodeForCausalLM: multi-query attention (one key/value head), tanh GELU.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=25,
    ),
    "opt-tiny": lambda: fixture(
        "opt-tiny", "opt", transformers.OPTForCausalLM, "opt",
        "OPTForCausalLM like opt-350m: post-LayerNorm, 24-wide embeddings projected to 32, "
        "positions offset by 2, ReLU; OPT's tokenizer shape (`</s>` added first as BOS).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=26,
        tokenizer_setup=bos_template(),
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
    # Model types stated as one delta file over the shared decoder
    # (skillset-runtime/src/families/olmo2.rs, phi.rs).
    "olmo2-tiny": lambda: fixture(
        "olmo2-tiny", "olmo2", transformers.Olmo2ForCausalLM, "gpt2",
        "Olmo2ForCausalLM: RMS norms after attention and MLP outputs, RMS q/k norms over the whole "
        "projections, grouped-query attention (4 heads, 2 KV heads); byte-level BPE that adds no BOS "
        "(OLMo-2's GPT-2-style tokenizer).",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=84,
        post=spread_norms,
    ),
    "phi-tiny": lambda: fixture(
        "phi-tiny", "phi", transformers.PhiForCausalLM, "gpt2",
        "PhiForCausalLM like phi-2: one LayerNorm feeding attention and MLP in parallel, biases on "
        "every projection, rotary on half of each head (rotate-half), gelu_new, lm_head with bias; "
        "CodeGen's GPT-2 BPE (no BOS).",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=85,
        post=spread_norms,
    ),
    "persimmon-tiny": lambda: fixture(
        "persimmon-tiny", "persimmon", transformers.PersimmonForCausalLM, "llama",
        "PersimmonForCausalLM: per-head fused query_key_value with a bias, LayerNorms over each "
        "head of the queries and keys, rotary on half of each head, a relu² MLP with biases; "
        "a sentencepiece BPE whose post-processor adds the BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=131,
        post=spread_biases,
        tokenizer_setup=bos_template(),
    ),
    "codegen-tiny": lambda: fixture(
        "codegen-tiny", "codegen", transformers.CodeGenForCausalLM, "gpt2",
        "CodeGenForCausalLM: q/k/v fused in four model-parallel blocks of `[q v k]`, interleaved "
        "rotary on 4 of 8 head dims, attention and MLP in parallel, lm_head with a bias; GPT-2 BPE "
        "without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=132,
        post=spread_norms,
    ),
    "bloom-tiny": lambda: fixture(
        "bloom-tiny", "bloom", transformers.BloomForCausalLM, "bloom",
        "BloomForCausalLM: ALiBi over 6 heads (slopes for a head count that is not a power of "
        "two), a LayerNorm on the word embeddings, per-head fused query_key_value, tanh GELU, "
        "tied embeddings; BLOOM's BPE (<unk> <s> </s> <pad>, no BOS added).",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=133,
        post=spread_biases,
    ),
    "mpt-tiny": lambda: fixture(
        "mpt-tiny", "mpt", transformers.MptForCausalLM, "gpt2",
        "MptForCausalLM: ALiBi with MPT's slopes over 6 heads (alibi_bias_max 8), LayerNorms "
        "without biases, no projection biases, fused Wqkv clamped by clip_qkv, exact GELU; "
        "GPT-NeoX-style BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=134,
        post=spread_norms,
    ),
    "dbrx-tiny": lambda: fixture(
        "dbrx-tiny", "dbrx", transformers.DbrxForCausalLM, "gpt2",
        "DbrxForCausalLM: MPT's names with fused Wqkv clamped by clip_qkv 0.6, 2 key/value "
        "heads for 4, rotary positions (attn_config's rope_theta ignored, as transformers "
        "ignores it), bias-free LayerNorms; 6 experts stored as stacked w1/v1/w2 matrices, "
        "top-2 divided by their sum; BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=175,
        post=spread_norms,
    ),
    "openai-gpt-tiny": lambda: fixture(
        "openai-gpt-tiny", "openai-gpt", transformers.OpenAIGPTLMHeadModel, "openai-gpt",
        "OpenAIGPTLMHeadModel: GPT-2's Conv1D weights under tokens_embed/positions_embed, "
        "post-norm blocks, no final LayerNorm, `afn` gelu (the tanh approximation), a tied head; "
        "GPT-1's lowercasing BPE with `</w>` word ends and no special tokens.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=178,
        post=quiet_embeddings,
    ),
    "falcon-tiny": lambda: fixture(
        "falcon-tiny", "falcon", transformers.FalconForCausalLM, "gpt2",
        "FalconForCausalLM in the new decoder layout (Falcon-40B/180B, Falcon 2): q/k/v fused in "
        "2 groups of `[q q k v]`, ln_attn and ln_mlp feeding attention and MLP in parallel, "
        "rotary on whole heads, biases, tied embeddings; BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=135,
        post=spread_biases,
        new_decoder_architecture=True,
        num_kv_heads=2,
        bias=True,
    ),
    "falcon-tiny-rw": lambda: fixture(
        "falcon-tiny-rw", "falcon", transformers.FalconForCausalLM, "gpt2",
        "FalconForCausalLM in Falcon-RW's layout: ALiBi over 5 heads (Falcon's bf16 rounding), "
        "per-head fused query_key_value, input and post-attention LayerNorms in sequence, biases; "
        "BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=136,
        post=spread_biases,
        hidden_size=40,
        num_attention_heads=5,
        num_kv_heads=5,
        alibi=True,
        multi_query=False,
        parallel_attn=False,
        bias=True,
    ),
    "falcon-tiny-7b": lambda: fixture(
        "falcon-tiny-7b", "falcon", transformers.FalconForCausalLM, "gpt2",
        "FalconForCausalLM in Falcon-7B's layout: multi-query `[q | k | v]` with one key/value "
        "head, one LayerNorm feeding attention and MLP in parallel, rotary, no biases; BPE "
        "without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=137,
        post=spread_norms,
    ),
    "xglm-tiny": lambda: fixture(
        "xglm-tiny", "xglm", transformers.XGLMForCausalLM, "xglm",
        "XGLMForCausalLM: sinusoidal positions at position + 2, embeddings scaled by sqrt(d_model), "
        "pre-LayerNorm blocks with biases; XGLM's unigram tokenizer, which puts `</s>` before "
        "every text.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=140,
        post=quiet_embeddings,
    ),
    "stablelm-tiny": lambda: fixture(
        "stablelm-tiny", "stablelm", transformers.StableLmForCausalLM, "gpt2",
        "StableLmForCausalLM like StableLM 2 12B: LayerNorms with biases, q/k/v biases, per-head "
        "q/k LayerNorms (one weight per head), attention and MLP in parallel, rotary on a quarter "
        "of each head; GPT-style BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=141,
        post=spread_biases,
        use_qkv_bias=True,
        qk_layernorm=True,
        use_parallel_residual=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
    ),
    "exaone4-tiny": lambda: fixture(
        "exaone4-tiny", "exaone4", transformers.Exaone4ForCausalLM, "gpt2",
        "Exaone4ForCausalLM: norms after attention and MLP (none before), per-head q/k RMS "
        "norms; sliding_window_pattern 2 with 4 layers: layers 0 and 2 attend within a window "
        "of 5 positions with rotary positions, layers 1 and 3 to the whole prefix without "
        "them (NoPE); BPE without a BOS, as EXAONE 4's.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=157,
        post=spread_norms,
        num_hidden_layers=4,
        sliding_window=5,
        sliding_window_pattern=2,
        layer_types=["sliding_attention", "full_attention"] * 2,
    ),
    "ministral3-tiny": lambda: fixture(
        "ministral3-tiny", "ministral3", transformers.Ministral3ForCausalLM, "llama",
        "Ministral3ForCausalLM: queries scaled by 1 + 0.5 * ln(1 + floor(position / 4)) after "
        "YaRN rotary positions (factor 4 over 4 original positions, the shape of Ministral 3's "
        "rope_parameters); `<s>` added by the tokenizer as Mistral's does.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=159,
        tokenizer_setup=bos_template(),
        head_dim=8,
        rope_parameters={
            "rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
            "original_max_position_embeddings": 4, "max_position_embeddings": 64,
            "beta_fast": 32.0, "beta_slow": 1.0, "mscale_all_dim": 1.0, "mscale": 1.0,
            "llama_4_scaling_beta": 0.5,
        },
    ),
    "granite-swa-tiny": lambda: fixture(
        "granite-swa-tiny", "granite_swa", transformers.GraniteSWAForCausalLM, "gpt2",
        "GraniteSWAForCausalLM: a learned attention sink per head (spread around the scores' "
        "log-sum-exp), layer 0 global without rotary positions (layer_rope_theta 0), layer 1 "
        "within a sliding window of 4 positions; Granite's multipliers; BPE without a BOS.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=160,
        post=spread_sinks,
        sliding_window=4,
        layer_rope_theta=[0.0, 10000.0],
        embedding_multiplier=2.0,
        residual_multiplier=0.6,
        attention_multiplier=0.25,
        logits_scaling=1.5,
    ),
    # Mixtures of experts (skillset-runtime/src/families/moe.rs).
    "mixtral-tiny": lambda: fixture(
        "mixtral-tiny", "mixtral", transformers.MixtralForCausalLM, "llama",
        "MixtralForCausalLM: 4 experts, top-2 renormalized, under the released checkpoints' "
        "names (block_sparse_moe.gate, block_sparse_moe.experts.N.w1/w2/w3); attention "
        "within a sliding window of 5 positions; `<s>` added by the tokenizer as Mixtral's "
        "does.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=150,
        tokenizer_setup=bos_template(),
        num_local_experts=4,
        num_experts_per_tok=2,
        sliding_window=5,
    ),
    "qwen2-moe-tiny": lambda: fixture(
        "qwen2-moe-tiny", "qwen2_moe", transformers.Qwen2MoeForCausalLM, "qwen2",
        "Qwen2MoeForCausalLM: 4 routed experts (top-2, probabilities not renormalized) plus a "
        "shared expert scaled by sigmoid(shared_expert_gate) in layer 0; layer 1 dense "
        "(mlp_only_layers [1]); q/k/v biases; Qwen's BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=151,
        post=spread_biases,
        num_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=20,
        shared_expert_intermediate_size=24,
        norm_topk_prob=False,
        mlp_only_layers=[1],
    ),
    "qwen3-moe-tiny": lambda: fixture(
        "qwen3-moe-tiny", "qwen3_moe", transformers.Qwen3MoeForCausalLM, "qwen2",
        "Qwen3MoeForCausalLM: 6 experts, top-3 renormalized (norm_topk_prob), per-head q/k "
        "RMSNorm, head_dim 12; the experts saved fused as transformers 5 holds them "
        "(mlp.experts.gate_up_proj, mlp.experts.down_proj), not one by one.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=152,
        post=spread_norms,
        original_format=False,
        head_dim=12,
        num_experts=6,
        num_experts_per_tok=3,
        moe_intermediate_size=20,
        norm_topk_prob=True,
    ),
    "olmoe-tiny": lambda: fixture(
        "olmoe-tiny", "olmoe", transformers.OlmoeForCausalLM, "gpt2",
        "OlmoeForCausalLM: 8 experts, top-2 not renormalized, RMS norms over the whole query "
        "and key projections with clip_qkv 0.9 after them (it binds); GPT-NeoX-style BPE "
        "without a BOS, as OLMoE's.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=153,
        post=spread_norms,
        num_experts=8,
        num_experts_per_tok=2,
        clip_qkv=0.9,
    ),
    "flex-olmo-tiny": lambda: fixture(
        "flex-olmo-tiny", "flex_olmo", transformers.FlexOlmoForCausalLM, "gpt2",
        "FlexOlmoForCausalLM: OLMo-2's layer (norms after attention and MLP, RMS norms over "
        "the whole query and key projections) with 7 experts, top-3 not renormalized; "
        "GPT-style BPE without a BOS, as FlexOlmo's (Dolma 2) tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=154,
        post=spread_norms,
        num_experts=7,
        num_experts_per_tok=3,
    ),
    "granitemoe-tiny": lambda: fixture(
        "granitemoe-tiny", "granitemoe", transformers.GraniteMoeForCausalLM, "gpt2",
        "GraniteMoeForCausalLM: 5 experts, top-2 by the softmax of the picked logits, under the "
        "released checkpoints' names (block_sparse_moe.input_linear, output_linear, "
        "router.layer); Granite's embedding, residual and attention multipliers and logits "
        "scaling; GPT-style BPE without a BOS, as Granite's.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=155,
        num_local_experts=5,
        num_experts_per_tok=2,
        embedding_multiplier=3.0,
        residual_multiplier=0.5,
        attention_multiplier=0.2,
        logits_scaling=2.0,
    ),
    "granitemoeshared-tiny": lambda: fixture(
        "granitemoeshared-tiny", "granitemoeshared", transformers.GraniteMoeSharedForCausalLM,
        "gpt2",
        "GraniteMoeSharedForCausalLM: 4 routed experts (top-2) plus a shared expert of width "
        "24 (shared_mlp, fused gate-then-up) every token takes; the experts saved fused as "
        "transformers 5 holds them (block_sparse_moe.experts.gate_up_proj, down_proj, "
        "router.weight); Granite's multipliers.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=156,
        original_format=False,
        num_local_experts=4,
        num_experts_per_tok=2,
        shared_intermediate_size=24,
        embedding_multiplier=2.0,
        residual_multiplier=0.7,
        attention_multiplier=0.3,
        logits_scaling=1.5,
    ),
    "hunyuan-v1-moe-tiny": lambda: fixture(
        "hunyuan-v1-moe-tiny", "hunyuan_v1_moe", transformers.HunYuanMoEV1ForCausalLM, "qwen2",
        "HunYuanMoEV1ForCausalLM: 5 experts routed top-2 in layer 0 and top-3 in layer 1 "
        "(moe_topk per layer, renormalized, router mlp.gate.wg) plus a shared MLP every token "
        "takes; RMSNorms on each query and key head after the rotary positions, NTK-alpha "
        "rotary base; byte-level BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=158,
        post=spread_norms,
        head_dim=8,
        num_experts=5,
        moe_topk=[2, 3],
        rope_parameters={"rope_type": "dynamic", "alpha": 1000.0, "factor": 1.0, "rope_theta": 10000.0},
    ),
    "granitemoe-swa-tiny": lambda: fixture(
        "granitemoe-swa-tiny", "granitemoe_swa", transformers.GraniteMoeSWAForCausalLM, "gpt2",
        "GraniteMoeSWAForCausalLM: Granite-SWA's attention (sinks per head; layers 0 and 2 within "
        "a sliding window of 4 positions with rotary bases 10000 and 1000, layer 1 global and "
        "NoPE) over 4 experts (top-2 by the softmax of the picked logits) and a shared expert "
        "of width 16; BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=161,
        post=spread_sinks,
        num_hidden_layers=3,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        sliding_window=4,
        layer_rope_theta=[10000.0, 0.0, 1000.0],
        num_local_experts=4,
        num_experts_per_tok=2,
        shared_intermediate_size=16,
        embedding_multiplier=2.0,
        residual_multiplier=0.6,
        attention_multiplier=0.25,
    ),
    "ernie4_5-moe-tiny": lambda: fixture(
        "ernie4_5-moe-tiny", "ernie4_5_moe", transformers.Ernie4_5_MoeForCausalLM, "llama",
        "Ernie4_5_MoeForCausalLM: layer 0 dense, layers 1 and 2 with 6 experts (top-2 chosen by "
        "the softmax probabilities plus e_score_correction_bias, weighed by the probabilities "
        "alone) and a shared expert; biases on every projection, interleaved rotary pairs, "
        "tied embeddings; `<s>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=162,
        post=spread_correction,
        tokenizer_setup=bos_template(),
        num_hidden_layers=3,
        moe_layer_end_index=2,
        moe_num_experts=6,
        moe_k=2,
        moe_intermediate_size=20,
        moe_num_shared_experts=1,
        use_bias=True,
        tie_word_embeddings=True,
    ),
    "glm4-moe-tiny": lambda: fixture(
        "glm4-moe-tiny", "glm4_moe", transformers.Glm4MoeForCausalLM, "qwen2",
        "Glm4MoeForCausalLM: layer 0 dense, layers 1 and 2 with DeepSeek-V3's router over 8 "
        "experts in 4 groups (sigmoid scores plus e_score_correction_bias choose the best 2 "
        "groups, then the top 3 experts; weights renormalized and times routed_scaling_factor "
        "2.5) and a shared expert; per-head q/k RMSNorms, q/k/v biases, rotary on half of each "
        "head; GLM-4's `[gMASK]<sop>` prefix.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=163,
        post=spread_correction,
        tokenizer_setup=glm_prefix,
        vocab_size=482,
        num_hidden_layers=3,
        head_dim=8,
        attention_bias=True,
        use_qk_norm=True,
        n_routed_experts=8,
        n_group=4,
        topk_group=2,
        num_experts_per_tok=3,
        moe_intermediate_size=20,
        n_shared_experts=1,
        routed_scaling_factor=2.5,
        first_k_dense_replace=1,
    ),
    "dots1-tiny": lambda: fixture(
        "dots1-tiny", "dots1", transformers.Dots1ForCausalLM, "qwen2",
        "Dots1ForCausalLM: Qwen3's attention (per-head q/k RMSNorms) over DeepSeek-V3's router: "
        "6 experts in 2 groups (the best group chosen), top-2 not renormalized, "
        "e_score_correction_bias, a shared expert of twice the expert width; layer 1 within a "
        "sliding window of 4 positions (max_window_layers 1); Qwen's BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=164,
        post=spread_correction,
        num_hidden_layers=2,
        head_dim=8,
        n_routed_experts=6,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        moe_intermediate_size=20,
        n_shared_experts=2,
        norm_topk_prob=False,
        first_k_dense_replace=0,
        sliding_window=4,
        max_window_layers=1,
        layer_types=["full_attention", "sliding_attention"],
    ),
    "solar-open-tiny": lambda: fixture(
        "solar-open-tiny", "solar_open", transformers.SolarOpenForCausalLM, "gpt2",
        "SolarOpenForCausalLM: Llama's layers, each with GLM-4-MoE's block: 6 experts in 3 "
        "groups (the best 2 chosen by sigmoid scores plus e_score_correction_bias), top-2 "
        "renormalized and times routed_scaling_factor 1.8, a shared expert; q/k/v biases; "
        "BPE without a BOS.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=165,
        post=spread_correction,
        head_dim=8,
        attention_bias=True,
        n_routed_experts=6,
        n_group=3,
        topk_group=2,
        num_experts_per_tok=2,
        moe_intermediate_size=20,
        n_shared_experts=1,
        routed_scaling_factor=1.8,
    ),
    "exaone-moe-tiny": lambda: fixture(
        "exaone-moe-tiny", "exaone_moe", transformers.ExaoneMoeForCausalLM, "gpt2",
        "ExaoneMoeForCausalLM: EXAONE 4's attention (per-head q/k RMSNorms; layers 0 and 2 "
        "within a sliding window of 5 positions with rotary positions, layer 1 global and NoPE) "
        "in pre-norm layers; layer 0 dense, layers 1 and 2 with 8 experts in 2 groups (the best "
        "group by sigmoid scores plus e_score_correction_bias), top-3 renormalized times 2.5, "
        "and a shared expert; the experts saved fused as transformers 5 holds them; BPE "
        "without a BOS, as EXAONE's.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=167,
        post=spread_correction,
        original_format=False,
        num_hidden_layers=3,
        head_dim=8,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        mlp_layer_types=["dense", "sparse", "sparse"],
        num_experts=8,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=3,
        moe_intermediate_size=20,
        num_shared_experts=1,
    ),
    "mellum-tiny": lambda: fixture(
        "mellum-tiny", "mellum", transformers.MellumForCausalLM, "gpt2",
        "MellumForCausalLM: Qwen3-MoE's attention (per-head q/k RMSNorms) with layer 0 within a "
        "sliding window of 4 positions (rotary base 10000) and layers 1 and 2 global (base "
        "500000); layer 1 dense, layers 0 and 2 with 6 experts, top-2 renormalized; BPE "
        "without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=168,
        post=spread_norms,
        num_hidden_layers=3,
        head_dim=8,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention", "full_attention"],
        mlp_layer_types=["sparse", "dense", "sparse"],
        num_local_experts=6,
        num_experts_per_tok=2,
        moe_intermediate_size=20,
    ),
    "jais2-tiny": lambda: fixture(
        "jais2-tiny", "jais2", transformers.Jais2ForCausalLM, "gpt2",
        "Jais2ForCausalLM: LayerNorms with biases (`layer_norm_eps`), a plain ReLU² MLP "
        "(up_proj, down_proj) with biases, biases on q/k/v and the output; byte-level BPE "
        "without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=169,
        post=spread_biases,
        layer_norm_eps=1e-4,
    ),
    "nanochat-tiny": lambda: fixture(
        "nanochat-tiny", "nanochat", transformers.NanoChatForCausalLM, "gpt2",
        "NanoChatForCausalLM: RMSNorms without weights, one more on the embeddings; q/k "
        "norms after rotary positions that turn the other way (`rotate_half` gives (x2, -x1)); "
        "a plain ReLU² MLP (fc1, fc2); final logits soft-capped at 3; byte-level BPE without "
        "a BOS.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            # Beams: their scores see the logits' scale, which greedy choices do not.
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=170,
        final_logit_softcapping=3.0,
    ),
    "hyperclovax-tiny": lambda: fixture(
        "hyperclovax-tiny", "hyperclovax", transformers.HyperCLOVAXForCausalLM, "gpt2",
        "HyperCLOVAXForCausalLM: Granite's embedding and residual multipliers, RMSNorms on "
        "each sublayer's output (Peri-LN `post_norm1`, `post_norm2`), head_dim 12 with the "
        "default attention multiplier head_dim ** -0.5 (not in config.json), logits multiplied by 4; byte-level "
        "BPE without a BOS.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            # Beams: their scores see the logits' scale, which greedy choices do not.
            lambda n, d: text_generation(n, d, PROMPTS, 12, num_beams=3),
        ],
        seed=171,
        post=spread_norms,
        # The multiplier `__post_init__` derives, left to the reader to derive again.
        after_save=lambda n, d: patch_json(d / "config.json", {"attention_multiplier": None}),
        head_dim=12,
        embedding_multiplier=3.0,
        residual_multiplier=0.5,
        logits_scaling=4.0,
    ),
    "afmoe-tiny": lambda: fixture(
        "afmoe-tiny", "afmoe", transformers.AfmoeForCausalLM, "gpt2",
        "AfmoeForCausalLM: pre- and post-norms around attention and MLP, per-head q/k norms, "
        "the attention output gated by sigmoid(gate_proj(h)); layers 0 and 2 within a sliding "
        "window of 4 positions with rotary positions, layers 1 and 3 global without (NoPE); "
        "muP's embedding scale; layer 0 dense, layers 1-3 with 6 sigmoid-scored experts chosen "
        "with `expert_bias`, top-2 renormalized times route_scale 2.5, plus a shared expert; "
        "per-expert weights as the released checkpoints store them; BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=172,
        post=spread_expert_bias,
        num_hidden_layers=4,
        head_dim=8,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
        global_attn_every_n_layers=2,
        num_dense_layers=1,
        num_experts=6,
        num_experts_per_tok=2,
        num_shared_experts=1,
        moe_intermediate_size=20,
        route_scale=2.5,
        mup_enabled=True,
    ),
    "cohere2-moe-tiny": lambda: fixture(
        "cohere2-moe-tiny", "cohere2_moe", transformers.Cohere2MoeForCausalLM, "llama",
        "Cohere2MoeForCausalLM with the class's routing: Cohere's parallel layer with one "
        "LayerNorm; layer 0 dense and global with rotary positions (`force_rope`), layers 1 and "
        "2 within a sliding window of 4 positions, layer 3 global without any (NoPE); 6 experts "
        "weighted by the softmax of the top-2 logits, averaged with a shared expert; per-expert "
        "weights as released; tied head; BOS added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=173,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        num_hidden_layers=4,
        head_dim=8,
        sliding_window=4,
        layer_types=["full_attention", "sliding_attention", "sliding_attention", "full_attention"],
        mlp_layer_types=["dense", "sparse", "sparse", "sparse"],
        sliding_window_pattern=3,
        prefix_dense_intermediate_size=30,
        num_experts=6,
        num_experts_per_tok=2,
        num_shared_experts=1,
        logit_scale=0.5,
        tie_word_embeddings=True,
    ),
    "cohere2-moe-tiny-sigmoid": lambda: fixture(
        "cohere2-moe-tiny-sigmoid", "cohere2_moe", transformers.Cohere2MoeForCausalLM, "llama",
        "Cohere2MoeForCausalLM shaped like the released North checkpoints: RMSNorms "
        "(`rms_norm_eps` set), 6 experts weighted by the sigmoids of the top-2 logits without "
        "renormalization (`norm_topk_prob` false), no shared expert; layer 0 dense, layers 1-2 "
        "windowed (4 positions), layer 3 NoPE; untied head; BOS added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=174,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        num_hidden_layers=4,
        head_dim=8,
        sliding_window=4,
        layer_types=["full_attention", "sliding_attention", "sliding_attention", "full_attention"],
        mlp_layer_types=["dense", "sparse", "sparse", "sparse"],
        sliding_window_pattern=3,
        num_experts=6,
        num_experts_per_tok=2,
        expert_selection_fn="sigmoid",
        norm_topk_prob=False,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        logit_scale=1.0,
    ),
    "apertus-tiny": lambda: fixture(
        "apertus-tiny", "apertus", transformers.ApertusForCausalLM, "llama",
        "ApertusForCausalLM: norms named attention_layernorm and feedforward_layernorm, per-head "
        "q/k RMSNorms before the rotary positions, a plain MLP with xIELU whose parameters differ "
        "per layer, the class's llama3-scaled rotary base 12e6; `<s>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=176,
        post=spread_xielu,
        tokenizer_setup=bos_template(),
        head_dim=8,
    ),
    "phimoe-tiny": lambda: fixture(
        "phimoe-tiny", "phimoe", transformers.PhimoeForCausalLM, "phi3",
        "PhimoeForCausalLM shaped like Phi-3.5-MoE: LayerNorms with biases, biases on q/k/v/o and "
        "on the head; 6 experts under the released names (block_sparse_moe.experts.N.w1/w3/w2, "
        "gate), picked by the sparsemixer with threshold 0.1 (router_jitter_noise); longrope "
        "with equal short and long mscales over original_max_position_embeddings 16; Phi-3's "
        "tokenizer shape (`<s>` added by tokenizer.json, add_bos_token false in "
        "tokenizer_config.json).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=177,
        post=spread_biases,
        tokenizer_setup=bos_template(config_says=False),
        hidden_size=32,
        num_key_value_heads=2,
        num_local_experts=6,
        router_jitter_noise=0.1,
        attention_bias=True,
        lm_head_bias=True,
        rope_parameters={
            "rope_type": "longrope", "rope_theta": 10000.0,
            "short_factor": [1.0, 1.3, 2.1, 3.7], "long_factor": [1.1, 2.5, 6.0, 11.0],
            "short_mscale": 1.2431, "long_mscale": 1.2431, "original_max_position_embeddings": 16,
        },
    ),
    "gpt-oss-tiny": lambda: fixture(
        "gpt-oss-tiny", "gpt_oss", transformers.GptOssForCausalLM, "gpt2",
        "GptOssForCausalLM: biases on q/k/v/o, learned attention sinks, layer 0 within a sliding "
        "window of 4 positions and layer 1 global; YaRN (factor 4 over 16 positions, bounds not "
        "rounded) with its attention factor; a router with a bias weighted by the softmax of the "
        "top-2 logits over 6 experts with biases, the clamped SwiGLU (limit 0.5 binds, alpha "
        "1.702, up + 1), stored transposed with gate and up interleaved; BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=179,
        post=spread_gpt_oss,
        head_dim=8,
        num_key_value_heads=2,
        num_local_experts=6,
        num_experts_per_tok=2,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"],
        swiglu_limit=0.5,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "beta_fast": 32.0,
                         "beta_slow": 1.0, "truncate": False, "original_max_position_embeddings": 16},
    ),
    "deepseek-v3-tiny": lambda: fixture(
        "deepseek-v3-tiny", "deepseek_v3", transformers.DeepseekV3ForCausalLM, "llama",
        "DeepseekV3ForCausalLM: multi-head latent attention (q through q_a_proj/q_a_layernorm/"
        "q_b_proj, keys and values from kv_a_proj_with_mqa's normalized latent through kv_b_proj, "
        "one rotary key of 4 channels shared by the heads, interleaved pairs, value heads of 5 "
        "channels for query/key heads of 10); YaRN (factor 4 over 16 positions) with mscale_all_dim "
        "scaling the softmax; layer 0 dense, layers 1-2 with 8 experts in 2 groups: sigmoid "
        "scores, the choice corrected by e_score_correction_bias and limited to the best group, "
        "top-2 renormalized times 2.5, plus a shared expert; `<s>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=180,
        post=spread_correction,
        tokenizer_setup=bos_template(),
        hidden_size=32,
        num_hidden_layers=3,
        num_key_value_heads=4,
        q_lora_rank=16,
        kv_lora_rank=12,
        qk_rope_head_dim=4,
        qk_nope_head_dim=6,
        v_head_dim=5,
        # What `__post_init__` derives, set again after the overrides.
        head_dim=4,
        qk_head_dim=10,
        n_routed_experts=8,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        moe_intermediate_size=20,
        first_k_dense_replace=1,
        n_shared_experts=1,
        routed_scaling_factor=2.5,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                         "original_max_position_embeddings": 16, "mscale": 1.0, "mscale_all_dim": 1.0,
                         "beta_fast": 32.0, "beta_slow": 1.0},
    ),
    "glm4-moe-lite-tiny": lambda: fixture(
        "glm4-moe-lite-tiny", "glm4_moe_lite", transformers.Glm4MoeLiteForCausalLM, "qwen2",
        "Glm4MoeLiteForCausalLM: DeepSeek-V3's latent attention without a query low-rank pair "
        "(q_proj), value heads of 5 channels for query/key heads of 10, interleaved rotary pairs; "
        "layer 0 dense (`mlp_layer_types`), layers 1-2 with GLM-4-MoE's block (8 experts in 2 groups, "
        "sigmoid scores corrected for the choice, top-2 renormalized times 1.8, a shared expert); "
        "GLM-4's tokenizer shape (`[gMASK]<sop>` put before the text).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=181,
        post=spread_correction,
        tokenizer_setup=glm_prefix,
        vocab_size=482,  # room for `[gMASK]` and `<sop>`
        hidden_size=32,
        num_hidden_layers=3,
        num_key_value_heads=4,
        q_lora_rank=None,
        kv_lora_rank=12,
        qk_rope_head_dim=4,
        qk_nope_head_dim=6,
        v_head_dim=5,
        qk_head_dim=10,
        n_routed_experts=8,
        n_group=2,
        topk_group=1,
        num_experts_per_tok=2,
        moe_intermediate_size=20,
        n_shared_experts=1,
        mlp_layer_types=["dense", "sparse", "sparse"],
    ),
    "deepseek-v2-tiny": lambda: fixture(
        "deepseek-v2-tiny", "deepseek_v2", transformers.DeepseekV2ForCausalLM, "llama",
        "DeepseekV2ForCausalLM shaped like V2-Lite: latent attention with q_proj (no query "
        "low-rank pair), rotary pairs interleaved (complex multiply), YaRN with mscale = "
        "mscale_all_dim 0.707 (factor 4 over 16 positions) scaling the softmax; layer 0 dense, "
        "layers 1-2 with a softmax router over 8 experts in 2 groups (group_limited_greedy: the "
        "best group by its best expert), top-2 times routed_scaling_factor 2 without "
        "renormalization, plus a shared expert; `<s>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=182,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        hidden_size=32,
        num_hidden_layers=3,
        num_key_value_heads=4,
        q_lora_rank=None,
        kv_lora_rank=12,
        qk_rope_head_dim=4,
        qk_nope_head_dim=6,
        v_head_dim=5,
        head_dim=4,
        qk_head_dim=10,
        n_routed_experts=8,
        n_shared_experts=1,
        num_experts_per_tok=2,
        moe_intermediate_size=20,
        topk_method="group_limited_greedy",
        n_group=2,
        topk_group=1,
        routed_scaling_factor=2.0,
        first_k_dense_replace=1,
        rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                         "original_max_position_embeddings": 16, "mscale": 0.707, "mscale_all_dim": 0.707,
                         "beta_fast": 32.0, "beta_slow": 1.0},
    ),
    "minicpm3-tiny": lambda: fixture(
        "minicpm3-tiny", "minicpm3", transformers.MiniCPM3ForCausalLM, "llama",
        "MiniCPM3ForCausalLM: DeepSeek's latent attention (low-rank queries, value heads of 5 "
        "channels) with rotary halves, longrope crossing original_max_position_embeddings 16 "
        "(short and long factors, attention factor sqrt(1 + ln 4 / ln 16)); dense gated MLPs; "
        "embeddings times scale_emb 12, sublayer outputs times scale_depth 0.7 / sqrt(2), the final "
        "hidden state divided by hidden_size / dim_model_base = 2 before the tied head; `<s>` "
        "added by the tokenizer.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            # Beams: their scores see the logits' scale, which greedy choices do not.
            lambda n, d: text_generation(n, d, PROMPTS, 12, num_beams=3),
        ],
        seed=183,
        post=quiet_embeddings,
        tokenizer_setup=bos_template(),
        hidden_size=32,
        num_key_value_heads=4,
        q_lora_rank=16,
        kv_lora_rank=12,
        qk_rope_head_dim=4,
        qk_nope_head_dim=6,
        v_head_dim=5,
        head_dim=4,
        qk_head_dim=10,
        scale_emb=12.0,
        scale_depth=0.7,
        dim_model_base=16,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": [1.0, 1.7],
                         "long_factor": [1.3, 5.0], "original_max_position_embeddings": 16},
    ),
    "diffllama-tiny": lambda: fixture(
        "diffllama-tiny", "diffllama", transformers.DiffLlamaForCausalLM, "llama",
        "DiffLlamaForCausalLM: differential attention over 3 layers (each lambda from its learned "
        "vectors and lambda_init by layer), 4 heads paired (j, j + 2) over 2 key/value heads whose "
        "values sit side by side, the weightless RMSNorm of the difference; `<s>` added by the "
        "tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=187,
        post=spread_lambdas,
        tokenizer_setup=bos_template(),
        hidden_size=32,
        num_hidden_layers=3,
        num_key_value_heads=2,
    ),
    "youtu-tiny": lambda: fixture(
        "youtu-tiny", "youtu", transformers.YoutuForCausalLM, "llama3",
        "YoutuForCausalLM: Llama's layer with DeepSeek-V3's latent attention (low-rank queries, "
        "value heads of 5 channels for query/key heads of 10, interleaved rotary pairs) and dense "
        "gated MLPs, tied embeddings; a Llama-3-shaped tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=188,
        post=quiet_embeddings,
        tokenizer_setup=lambda t: {"tokenizer_class": "PreTrainedTokenizerFast"},
        hidden_size=32,
        num_key_value_heads=4,
        q_lora_rank=16,
        kv_lora_rank=12,
        qk_rope_head_dim=4,
        qk_nope_head_dim=6,
        v_head_dim=5,
        head_dim=4,
        qk_head_dim=10,
        tie_word_embeddings=True,
    ),
    "minimax-m2-tiny": lambda: fixture(
        "minimax-m2-tiny", "minimax_m2", transformers.MiniMaxM2ForCausalLM, "gpt2",
        "MiniMaxM2ForCausalLM: Mixtral's layer with RMSNorms over the whole query and key "
        "projections, rotary positions on half of each head; 6 experts under the released names "
        "(block_sparse_moe.experts.N.w1/w3/w2, gate, e_score_correction_bias), sigmoid scores "
        "whose choice the correction bias shifts, top-2 renormalized; BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=190,
        post=spread_correction,
        hidden_size=32,
        num_key_value_heads=2,
        head_dim=8,
        num_local_experts=6,
        num_experts_per_tok=2,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
    ),
    "ministral-tiny": lambda: fixture(
        "ministral-tiny", "ministral", transformers.MinistralForCausalLM, "llama",
        "MinistralForCausalLM: layer 0 attends within a sliding window of 5 positions (shorter "
        "than the sequences), layer 1 to the whole prefix (`layer_types`); `<s>` added by the "
        "tokenizer as Ministral's does.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=86,
        tokenizer_setup=bos_template(),
        head_dim=8,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention"],
    ),
    "cwm-tiny": lambda: fixture(
        "cwm-tiny", "cwm", transformers.CwmForCausalLM, "llama3",
        "CwmForCausalLM: CwmConfig's layer pattern (layer 0 global, layer 1 within a sliding "
        "window of 5 positions) and its llama3 rope scaling; a Llama-3-shaped tokenizer "
        "(`<|begin_of_text|>` added by the post-processor), as CWM's is.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=87,
        tokenizer_setup=lambda t: {"tokenizer_class": "PreTrainedTokenizerFast"},
        head_dim=8,
        sliding_window=5,
    ),
    "smollm3-tiny": lambda: fixture(
        "smollm3-tiny", "smollm3", transformers.SmolLM3ForCausalLM, "qwen2",
        "SmolLM3ForCausalLM: layer 1 without rotary positions (NoPE, `no_rope_layer_interval` 2) "
        "and, with `use_sliding_window`, attending within 5 positions; tied embeddings; "
        "byte-level BPE without a BOS.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=88,
        no_rope_layer_interval=2,
        no_rope_layers=[1, 0],
        use_sliding_window=True,
        sliding_window=5,
        layer_types=["full_attention", "sliding_attention"],
        tie_word_embeddings=True,
    ),
    "helium-tiny": lambda: fixture(
        "helium-tiny", "helium", transformers.HeliumForCausalLM, "llama",
        "HeliumForCausalLM: rotary positions on interleaved channel pairs, q/k/v biases "
        "(`attention_bias`) with none on the output; `<s>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=89,
        post=spread_biases,
        tokenizer_setup=bos_template(),
        head_dim=8,
        attention_bias=True,
    ),
    "arcee-tiny": lambda: fixture(
        "arcee-tiny", "arcee", transformers.ArceeForCausalLM, "llama3",
        "ArceeForCausalLM: a plain ReLU² MLP (up_proj, down_proj); a Llama-3-shaped tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=90,
        tokenizer_setup=lambda t: {"tokenizer_class": "PreTrainedTokenizerFast"},
    ),
    "seed-oss-tiny": lambda: fixture(
        "seed-oss-tiny", "seed_oss", transformers.SeedOssForCausalLM, "qwen2",
        "SeedOssForCausalLM: q/k/v biases and an output-projection bias of its own "
        "(`attention_out_bias`), head_dim 12; byte-level BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=91,
        post=spread_biases,
        head_dim=12,
        attention_out_bias=True,
    ),
    "olmo3-tiny": lambda: fixture(
        "olmo3-tiny", "olmo3", transformers.Olmo3ForCausalLM, "gpt2",
        "Olmo3ForCausalLM: OLMo-2's post-sublayer norms, layer 0 within a sliding window of 5 "
        "positions and layer 1 global, each layer type with its own rotary base "
        "(`rope_parameters` keyed by layer type); GPT-2-style BPE without a BOS.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=92,
        post=spread_norms,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention"],
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "default", "rope_theta": 500.0},
        },
    ),
    "starcoder2-tiny": lambda: fixture(
        "starcoder2-tiny", "starcoder2", transformers.Starcoder2ForCausalLM, "gpt2",
        "Starcoder2ForCausalLM: LayerNorms with biases, biases on every projection, a plain "
        "GELU (tanh) MLP (c_fc, c_proj), a sliding window of 5 positions, tied embeddings; "
        "GPT-2-style BPE without a BOS.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=93,
        post=spread_biases,
        sliding_window=5,
        tie_word_embeddings=True,
    ),
    "glm-tiny": lambda: fixture(
        "glm-tiny", "glm", transformers.GlmForCausalLM, "qwen2",
        "GlmForCausalLM: rotary positions on interleaved pairs of the first half of each head, "
        "q/k/v biases, a fused gate_up_proj; GLM-4's tokenizer shape (`[gMASK]<sop>` put before "
        "the text by tokenizer.json's post-processor).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=94,
        post=spread_biases,
        tokenizer_setup=glm_prefix,
        head_dim=8,
        vocab_size=482,  # the two prefix tokens after the trained vocabulary
    ),
    "glm4-tiny": lambda: fixture(
        "glm4-tiny", "glm4", transformers.Glm4ForCausalLM, "qwen2",
        "Glm4ForCausalLM: GLM's layers with RMSNorms on the attention and MLP outputs too "
        "(post_self_attn_layernorm, post_mlp_layernorm); GLM-4's `[gMASK]<sop>` prefix.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=95,
        post=spread_biases,
        tokenizer_setup=glm_prefix,
        head_dim=8,
        vocab_size=482,  # the two prefix tokens after the trained vocabulary
    ),
    "ernie4_5-tiny": lambda: fixture(
        "ernie4_5-tiny", "ernie4_5", transformers.Ernie4_5ForCausalLM, "llama",
        "Ernie4_5ForCausalLM: rotary positions on interleaved channel pairs, biases on every "
        "projection (`use_bias`), tied embeddings; `<s>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=96,
        post=spread_biases,
        tokenizer_setup=bos_template(),
        head_dim=8,
        use_bias=True,
        tie_word_embeddings=True,
    ),
    "gemma2-tiny": lambda: fixture(
        "gemma2-tiny", "gemma2", transformers.Gemma2ForCausalLM, "gemma",
        "Gemma2ForCausalLM: sandwich norms, attention scores and final logits soft-capped at "
        "values that bind (2 and 5), scores scaled by query_pre_attn_scalar 6 (not head_dim), "
        "layer 0 within a sliding window of 5 positions and layer 1 global; `<bos>` added by the "
        "tokenizer.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=100,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        generation={"eos_token_id": ["<eos>", "<end_of_turn>"]},
        head_dim=8,
        query_pre_attn_scalar=6,
        attn_logit_softcapping=2.0,
        final_logit_softcapping=5.0,
        sliding_window=5,
        tie_word_embeddings=True,
    ),
    "gemma3-text-tiny": lambda: fixture(
        "gemma3-text-tiny", "gemma3_text", transformers.Gemma3ForCausalLM, "gemma",
        "Gemma3ForCausalLM: per-head q/k norms, layer 0 within a sliding window of 5 positions "
        "with its own rotary base (10000), layer 1 global with linear rope scaling (factor 4, "
        "base 1e6); `<bos>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=98,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        generation={"eos_token_id": ["<eos>", "<end_of_turn>"]},
        head_dim=8,
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention"],
        rope_parameters={
            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 1000000.0},
        },
        tie_word_embeddings=True,
    ),
    "vaultgemma-tiny": lambda: fixture(
        "vaultgemma-tiny", "vaultgemma", transformers.VaultGemmaForCausalLM, "gemma",
        "VaultGemmaForCausalLM: Gemma 2 without the norms after the sublayers, soft-caps that "
        "bind (2 and 5), alternating sliding (5 positions) and global layers; `<bos>` added by "
        "the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=101,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        head_dim=8,
        query_pre_attn_scalar=8,
        attn_logit_softcapping=2.0,
        final_logit_softcapping=5.0,
        sliding_window=5,
        tie_word_embeddings=True,
    ),
    "cohere-tiny": lambda: fixture(
        "cohere-tiny", "cohere", transformers.CohereForCausalLM, "llama",
        "CohereForCausalLM: one bias-free LayerNorm feeding attention and MLP in parallel, "
        "rotary positions on interleaved pairs, LayerNorms on queries and keys with a weight per "
        "head (`use_qk_norm`), logits times `logit_scale` 0.25, tied embeddings; BOS added by the "
        "tokenizer.",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:1], 12, num_beams=3),
        ],
        seed=102,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        use_qk_norm=True,
        logit_scale=0.25,
        tie_word_embeddings=True,
    ),
    "cohere2-tiny": lambda: fixture(
        "cohere2-tiny", "cohere2", transformers.Cohere2ForCausalLM, "llama",
        "Cohere2ForCausalLM: Cohere's parallel layer, layer 0 within a sliding window of 5 "
        "positions with rotary positions, layer 1 global without any (NoPE); BOS added by the "
        "tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=103,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        sliding_window=5,
        layer_types=["sliding_attention", "full_attention"],
        logit_scale=0.5,
        tie_word_embeddings=True,
    ),
    "nemotron-tiny": lambda: fixture(
        "nemotron-tiny", "nemotron", transformers.NemotronForCausalLM, "llama",
        "NemotronForCausalLM: LayerNorms scaling by 1 + weight, a plain ReLU² MLP, rotary "
        "positions on half of each head; `<s>` added by the tokenizer.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=104,
        post=spread_norms,
        tokenizer_setup=bos_template(),
        head_dim=8,
    ),
    "hunyuan-v1-dense-tiny": lambda: fixture(
        "hunyuan-v1-dense-tiny", "hunyuan_v1_dense", transformers.HunYuanDenseV1ForCausalLM, "qwen2",
        "HunYuanDenseV1ForCausalLM: RMSNorms on each query and key head after the rotary "
        "positions, NTK-alpha rotary base (dynamic with alpha 1000); byte-level BPE without a BOS.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=105,
        post=spread_norms,
        head_dim=8,
        rope_parameters={"rope_type": "dynamic", "alpha": 1000.0, "factor": 1.0, "rope_theta": 10000.0},
    ),
    # One fixture per rope type that scales with the sequence, each crossing its threshold.
    "llama-tiny-rope-dynamic": lambda: fixture(
        "llama-tiny-rope-dynamic", "llama", transformers.LlamaForCausalLM, "llama",
        "LlamaForCausalLM with dynamic NTK rope scaling (factor 4) over max_position_embeddings 18: "
        "the longest prompt plus its new tokens run past 18 positions, where the base grows at every "
        "step. (transformers keeps the grown base between calls until a prompt shorter than 18 "
        "resets it; every prompt here is, so each reference is the prompt's own.)",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=106,
        tokenizer_setup=bos_template(),
        max_position_embeddings=18,
        rope_parameters={"rope_type": "dynamic", "factor": 4.0, "rope_theta": 10000.0},
    ),
    "qwen2-tiny-rope-yarn": lambda: fixture(
        "qwen2-tiny-rope-yarn", "qwen2", transformers.Qwen2ForCausalLM, "qwen2",
        "Qwen2ForCausalLM with YaRN rope scaling as Qwen2.5's long-context configs state it "
        "(factor 4 over original_max_position_embeddings 8, max 32: interpolated low frequencies, "
        "cos/sin scaled by the attention factor 0.1 ln 4 + 1).",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=107,
        max_position_embeddings=32,
        rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8,
                         "rope_theta": 10000.0},
    ),
    "phi3-tiny-rope-longrope": lambda: fixture(
        "phi3-tiny-rope-longrope", "phi3", transformers.Phi3ForCausalLM, "phi3",
        "Phi3ForCausalLM with longrope scaling as Phi-3-mini-128k states it (short and long "
        "factors, original_max_position_embeddings 8 at the top of config.json, max 64): the "
        "prompt runs on the short factors, the steps past 8 positions on the long ones.",
        [lambda n, d: text_generation(n, d, PROMPTS, 12)],
        seed=108,
        tokenizer_setup=bos_template(config_says=False),
        generation={"eos_token_id": ["<|endoftext|>", "<|assistant|>", "<|end|>"]},
        original_max_position_embeddings=8,
        rope_parameters={
            "rope_type": "longrope", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
            "short_factor": [1.0, 1.3], "long_factor": [1.5, 7.0],
            "original_max_position_embeddings": 8,
        },
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
    "llama3-tiny": lambda: fixture(
        "llama3-tiny", "llama", transformers.LlamaForCausalLM, "llama3",
        "LlamaForCausalLM with a tokenizer shaped like Llama 3.1's: byte-level BPE behind "
        "Llama 3's regex split, `<|begin_of_text|>` added by a ByteLevel + template "
        "post-processor, special tokens after the vocabulary, no pad token, three EOS tokens "
        "(<|end_of_text|>, <|eom_id|>, <|eot_id|>; the lm_head row of <|eom_id|> scaled so "
        "that greedy generation reaches it), and a Llama-3.1-shaped chat template "
        "(strftime_now, | trim, tools as JSON).",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            lambda n, d: text_generation(n, d, PROMPTS[:2], 12, num_beams=2),
        ],
        seed=18,
        post=lambda m, t: make_reachable(m, t, "<|eom_id|>", PROMPTS[0]),
        # Meta's files name the generic class.
        tokenizer_setup=both(chat_template("llama3"), lambda t: {"tokenizer_class": "PreTrainedTokenizerFast"}),
        after_save=lambda n, d: [patch_json(d / f, token_ids(d, {
            "eos_token_id": ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"],
            "bos_token_id": "<|begin_of_text|>", "pad_token_id": None}))
            for f in ("generation_config.json", "config.json")] + [patch_json(d / "config.json", CHAT_POSITIONS)],
        chats=(["user", "system", "turns", "prefill"], 8),
        rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
        },
    ),
    "gpt2-tiny-generation-config": lambda: fixture(
        "gpt2-tiny-generation-config", "gpt2", transformers.GPT2LMHeadModel, "gpt2",
        "GPT2LMHeadModel whose generation_config.json sets begin_suppress_tokens, "
        "suppress_tokens, bad_words_ids, no_repeat_ngram_size, an EOS list held back by "
        "min_new_tokens, forced_eos_token_id and max_length, each picked from transformers' "
        "own outputs so that it changes them (the script checks that switching any one off "
        "changes transformers' output).",
        [
            lambda n, d: text_generation(n, d, PROMPTS, 12),
            # No max_new_tokens: generation_config.json's max_length limits it.
            lambda n, d: text_generation(n, d, PROMPTS, None),
        ],
        seed=33,
        after_save=lambda n, d: (
            tune_generation_config(n, d, False, PROMPTS, 12),
            patch_json(d / "generation_config.json", {"max_length": 26}),
        ),
    ),
    "t5-tiny-generation-config": lambda: fixture(
        "t5-tiny-generation-config", "t5", transformers.T5ForConditionalGeneration, "t5",
        "T5ForConditionalGeneration whose generation_config.json sets decoder_start_token_id "
        "(not the pad token), forced_bos_token_id, no_repeat_ngram_size, an EOS list held "
        "back by min_new_tokens, forced_eos_token_id and max_length, each picked from "
        "transformers' own outputs so that it changes them; config.json has a `prefix`.",
        [
            lambda n, d: text2text_generation(n, d, T2T_INPUTS, 12),
            lambda n, d: text2text_generation(n, d, T2T_INPUTS, None),
        ],
        seed=44,
        after_save=lambda n, d: (
            patch_json(d / "config.json", {"prefix": "summarize: "}),
            tune_generation_config(n, d, True, T2T_INPUTS, 12),
            patch_json(d / "generation_config.json", {"max_length": 9}),
        ),
    ),
    "bert-tiny-cls-bin": lambda: bin_twin("bert-tiny-cls", "bert-tiny-cls-bin", legacy_layer_norm_names=True),
    "llama-tiny-bin-sharded": lambda: bin_twin("llama-tiny", "llama-tiny-bin-sharded", shards=2, fused_views=True),
    # Decoder heads (issue 16): sequence classifiers pooling the last token that is not
    # `pad_token_id`, and sentence-transformers embedding directories pooling the last
    # token (Qwen3-Embedding, gte-Qwen2, e5-mistral layouts).
    "llama-tiny-cls": lambda: fixture(
        "llama-tiny-cls", "llama", transformers.LlamaForSequenceClassification, "llama3",
        "LlamaForSequenceClassification: `score` on the last token; Llama 3's tokenizer "
        "(`<|begin_of_text|>` added), no pad token in the config (transformers pools the "
        "last position: one text at a time in its pipeline).",
        [
            lambda n, d: text_classification(n, d, TEXTS, "all"),
            lambda n, d: text_classification(n, d, TEXTS, 1),
        ],
        seed=191,
        tokenizer_setup=lambda t: {"tokenizer_class": "PreTrainedTokenizerFast"},
        pad_token_id=None,
        **LABELS3,
    ),
    "mistral-tiny-cls": lambda: fixture(
        "mistral-tiny-cls", "mistral", transformers.MistralForSequenceClassification, "llama",
        "MistralForSequenceClassification: a tokenizer that adds `<s>` and `</s>` (as "
        "e5-mistral's does) and `pad_token_id` = `</s>`, so transformers pools the token "
        "before the final `</s>` (the last one that is not the pad id); sliding window 5.",
        [lambda n, d: text_classification(n, d, TEXTS, "all")],
        seed=192,
        tokenizer_setup=bos_eos_template,
        after_save=pad_token_is("</s>"),
        sliding_window=5,
        **LABELS3,
    ),
    "qwen2-tiny-cls": lambda: fixture(
        "qwen2-tiny-cls", "qwen2", transformers.Qwen2ForSequenceClassification, "qwen2",
        "Qwen2ForSequenceClassification: no BOS, `pad_token_id` = `<|endoftext|>` (the "
        "texts hold none, so the last token is pooled).",
        [lambda n, d: text_classification(n, d, TEXTS[:4], "all")],
        seed=193,
        after_save=pad_token_is("<|endoftext|>"),
        **LABELS3,
    ),
    "qwen3-tiny-cls": lambda: fixture(
        "qwen3-tiny-cls", "qwen3", transformers.Qwen3ForSequenceClassification, "qwen2",
        "Qwen3ForSequenceClassification (a reranker's layout): per-head q/k norms, head_dim "
        "12, `pad_token_id` = `<|endoftext|>`, 2 labels.",
        [lambda n, d: text_classification(n, d, TEXTS[:4], "all")],
        seed=194,
        after_save=pad_token_is("<|endoftext|>"),
        head_dim=12,
        id2label={0: "no", 1: "yes"},
        label2id={"no": 0, "yes": 1},
    ),
    "gpt2-tiny-cls": lambda: fixture(
        "gpt2-tiny-cls", "gpt2", transformers.GPT2ForSequenceClassification, "gpt2",
        "GPT2ForSequenceClassification: `transformer.*` and `score`, `pad_token_id` = "
        "`<|endoftext|>` as GPT-2 classifiers set it.",
        [lambda n, d: text_classification(n, d, TEXTS[:4], "all")],
        seed=195,
        after_save=pad_token_is("<|endoftext|>"),
        **LABELS3,
    ),
    "qwen3-embedding-tiny": lambda: fixture(
        "qwen3-embedding-tiny", "qwen3", transformers.Qwen3Model, "qwen2",
        "Qwen3-Embedding's layout: the base model saved alone (no `model.` prefix, no head) "
        "under a config naming Qwen3ForCausalLM; `<|endoftext|>` appended by tokenizer.json's "
        "post-processor, left padding; sentence-transformers modules (last-token pooling, "
        "Normalize) and its `query` instruction prompt.",
        [
            lambda n, d: feature_extraction(d, TEXTS),
            lambda n, d: st_embeddings(d, TEXTS),
            lambda n, d: st_embeddings(d, QUERIES, "query"),
        ],
        seed=196,
        tokenizer_setup=eos_suffix("<|endoftext|>"),
        after_save=lambda n, d: [
            patch_json(d / "config.json", {"architectures": ["Qwen3ForCausalLM"]}),
            st_directory(d, prompts={"query": QWEN3_QUERY, "document": ""}),
        ],
        head_dim=12,
        tie_word_embeddings=True,
    ),
    "qwen2-embedding-tiny": lambda: fixture(
        "qwen2-embedding-tiny", "qwen2", transformers.Qwen2ForCausalLM, "qwen2",
        "gte-Qwen2's layout: a whole causal LM checkpoint (`model.*` and `lm_head`) read as its "
        "base model; `<|endoftext|>` appended, sentence-transformers last-token pooling and "
        "Normalize, a `query` prompt and max_seq_length 12 (the longer texts are cut).",
        [
            lambda n, d: st_embeddings(d, TEXTS),
            lambda n, d: st_embeddings(d, QUERIES, "query"),
        ],
        seed=197,
        tokenizer_setup=eos_suffix("<|endoftext|>"),
        after_save=lambda n, d: st_directory(d, prompts={"query": QWEN3_QUERY}, max_seq_length=12),
    ),
    "mistral-embedding-tiny": lambda: fixture(
        "mistral-embedding-tiny", "mistral", transformers.MistralModel, "llama",
        "e5-mistral's layout: MistralModel saved alone, a tokenizer that adds `<s>` and "
        "`</s>`, sentence-transformers last-token pooling and Normalize, a default prompt "
        "(`web_search_query`) that every text gets.",
        [
            lambda n, d: feature_extraction(d, TEXTS[:3]),
            lambda n, d: st_embeddings(d, TEXTS),
        ],
        seed=198,
        # e5-mistral's tokenizer pads with `</s>`.
        tokenizer_setup=both(bos_eos_template, lambda t: setattr(t, "pad_token", "</s>")),
        after_save=lambda n, d: st_directory(
            d, prompts={"web_search_query": E5_QUERY}, default_prompt_name="web_search_query"),
        sliding_window=5,
    ),
}

# More sequence classifiers: transformers' `GenericForSequenceClassification` (or its
# own copy of it) over each decoder, with the tokenizer of that model type's other
# fixture, 3 labels and `pad_token_id` as the tokenizer has it.
GENERIC_CLASSIFIERS = {
    # model type: (class, tokenizer, seed, config overrides)
    "arcee": ("ArceeForSequenceClassification", "llama3", 201, {}),
    "exaone4": ("Exaone4ForSequenceClassification", "gpt2", 202, {"sliding_window": 5}),
    "gemma": ("GemmaForSequenceClassification", "gemma", 203, {"head_dim": 8}),
    "gemma2": ("Gemma2ForSequenceClassification", "gemma", 204,
               {"head_dim": 8, "sliding_window": 5, "attn_logit_softcapping": 2.0}),
    "gemma3_text": ("Gemma3TextForSequenceClassification", "gemma", 205,
                    {"head_dim": 8, "sliding_window": 5, "layer_types": ["sliding_attention", "full_attention"]}),
    "glm": ("GlmForSequenceClassification", "qwen2", 206, {}),
    "glm4": ("Glm4ForSequenceClassification", "qwen2", 207, {}),
    "helium": ("HeliumForSequenceClassification", "llama", 208, {"head_dim": 8}),
    "hunyuan_v1_dense": ("HunYuanDenseV1ForSequenceClassification", "qwen2", 209, {
        "head_dim": 8,
        "rope_parameters": {"rope_type": "dynamic", "alpha": 1000.0, "factor": 1.0, "rope_theta": 10000.0}}),
    "ministral": ("MinistralForSequenceClassification", "llama", 210, {
        "head_dim": 8, "sliding_window": 5, "layer_types": ["sliding_attention", "full_attention"]}),
    "nemotron": ("NemotronForSequenceClassification", "llama", 211, {}),
    "olmo": ("OlmoForSequenceClassification", "llama", 212, {}),
    "olmo2": ("Olmo2ForSequenceClassification", "gpt2", 213, {}),
    "olmo3": ("Olmo3ForSequenceClassification", "gpt2", 214, {}),
    "phi3": ("Phi3ForSequenceClassification", "phi3", 215, {}),
    "seed_oss": ("SeedOssForSequenceClassification", "qwen2", 216, {}),
    "smollm3": ("SmolLM3ForSequenceClassification", "qwen2", 217, {}),
    "stablelm": ("StableLmForSequenceClassification", "gpt2", 218, {}),
    "starcoder2": ("Starcoder2ForSequenceClassification", "gpt2", 224, {}),
    "mixtral": ("MixtralForSequenceClassification", "llama", 220, {"num_local_experts": 4}),
    "diffllama": ("DiffLlamaForSequenceClassification", "llama", 221, {}),
    "persimmon": ("PersimmonForSequenceClassification", "llama", 222, {}),
    "phi": ("PhiForSequenceClassification", "gpt2", 223, {}),
}


def generic_classifier(model_type):
    cls, tok, seed, over = GENERIC_CLASSIFIERS[model_type]
    name = model_type.replace("_", "-") + "-tiny-cls"
    return name, lambda: fixture(
        name, model_type, getattr(transformers, cls), tok,
        f"{cls}: `score` on the last token that is not `pad_token_id` (3 labels).",
        [lambda n, d: text_classification(n, d, TEXTS[:4], "all")],
        seed=seed, **over, **LABELS3,
    )


FIXTURE_SPECS.update(generic_classifier(t) for t in GENERIC_CLASSIFIERS)

# BERT variants (issue 17): each model type's masked LM (fill-mask and the encoder's
# states), a sequence classifier and a token classifier, norms spread so that a norm in
# the wrong place changes the outputs.
BERT_VARIANTS = {
    # model type: (class prefix, tokenizer, mask marker, first seed, what it adds[, config])
    "roberta-prelayernorm": ("RobertaPreLayerNorm", "bpe", "<mask>", 225,
                             "RoBERTa with layer norms before each branch and after the last layer"),
    "xlm-roberta-xl": ("XLMRobertaXL", "unigram", "<mask>", 228,
                       "pre-norm XLM-RoBERTa without an embedding norm"),
    "megatron-bert": ("MegatronBert", "wordpiece", "[MASK]", 231,
                      "pre-norm BERT without an embedding norm (norms named `ln`)"),
    "ibert": ("IBert", "bpe", "<mask>", 238,
              "RoBERTa's float path (`quant_mode: false`), its quantization buffers in the checkpoint"),
    "layoutlm": ("LayoutLM", "wordpiece", "[MASK]", 241,
                 "BERT with 2-D box embeddings; text without boxes, as a call without `bbox` (the zero box)"),
    "albert": ("Albert", "albert", "[MASK]", 247,
               "factorised embeddings (16 wide) projected up, 3 layers run by 2 groups of 2 shared layers, "
               "gelu_new"),
    "rembert": ("RemBert", "rembert", "[MASK]", 253,
                "embeddings 16 wide projected up, a masked-LM head 20 wide with its own decoder"),
    "mpnet": ("MPNet", "mpnet", "<mask>", 234,
              "a relative position bias (32 buckets) shared by every layer, no token types"),
}
MPNET_MASKED = [t.replace("[MASK]", "<mask>") for t in MASKED["[MASK]"]]


def bert_variant(model_type):
    prefix, tok, mask, seed, adds, *over = BERT_VARIANTS[model_type]
    over = over[0] if over else {}
    masked = MPNET_MASKED if model_type == "mpnet" else MASKED[mask]
    ner = {"id2label": {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"},
           "label2id": {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3}}
    return {
        f"{model_type}-tiny-mlm": lambda: fixture(
            f"{model_type}-tiny-mlm", model_type, getattr(transformers, f"{prefix}ForMaskedLM"), tok,
            f"{prefix}ForMaskedLM: {adds}.",
            # transformers gives LayoutLM no feature-extraction pipeline (a multimodal type).
            [lambda n, d: fill_mask(n, d, masked, top_k=3)]
            + ([] if model_type == "layoutlm" else [lambda n, d: feature_extraction(d, TEXTS)]),
            seed=seed, post=spread_norms, **over,
        ),
        f"{model_type}-tiny-cls": lambda: fixture(
            f"{model_type}-tiny-cls", model_type, getattr(transformers, f"{prefix}ForSequenceClassification"),
            tok, f"{prefix}ForSequenceClassification (3 labels): {adds}.",
            [lambda n, d: text_classification(n, d, TEXTS, "all")],
            seed=seed + 1, post=spread_norms, **LABELS3, **over,
        ),
        f"{model_type}-tiny-ner": lambda: fixture(
            f"{model_type}-tiny-ner", model_type, getattr(transformers, f"{prefix}ForTokenClassification"),
            tok, f"{prefix}ForTokenClassification (4 BIO labels): {adds}.",
            [lambda n, d: token_classification(n, d, NER_TEXTS)],
            seed=seed + 2, post=spread_norms, **ner, **over,
        ),
    }


for _t in BERT_VARIANTS:
    FIXTURE_SPECS.update(bert_variant(_t))

FIXTURE_SPECS["bert-generation-tiny"] = lambda: fixture(
    "bert-generation-tiny", "bert-generation", transformers.BertGenerationEncoder, "bert-generation",
    "BertGenerationEncoder: BERT's layers without token types or pooler, weights at the root, "
    "a tokenizer that adds no special tokens (an empty text is no tokens: transformers fails on it).",
    [lambda n, d: feature_extraction(d, TEXTS[:4])],
    seed=256, post=spread_norms,
)

# all-mpnet-base-v2's layout: MPNetModel with mean pooling and normalization.
FIXTURE_SPECS["mpnet-embedding-tiny"] = lambda: fixture(
    "mpnet-embedding-tiny", "mpnet", transformers.MPNetModel, "mpnet",
    "MPNetModel as sentence-transformers' all-mpnet-base-v2 ships it: mean pooling, normalized.",
    [lambda n, d: st_embeddings(d, TEXTS)],
    seed=237, post=spread_norms, after_save=lambda n, d: st_directory(d, pooling="mean", max_seq_length=24),
)

LABELS3 = {"id2label": {0: "negative", 1: "neutral", 2: "positive"},
           "label2id": {"negative": 0, "neutral": 1, "positive": 2}}

QUERIES = ["What is the capital of France?", "a fantastic movie"]
QWEN3_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
E5_QUERY = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "


def pad_token_is(token):
    """config.json's `pad_token_id` set to `token`'s id (what a classifier pools by)."""
    return lambda n, d: patch_json(d / "config.json", token_ids(d, {"pad_token_id": token}))


def bos_eos_template(tok):
    """A Llama tokenizer that adds `<s>` before and `</s>` after every text (e5-mistral's
    `add_eos_token: true`)."""
    tok.add_bos_token = True
    tok.add_eos_token = True
    return {"add_bos_token": True, "add_eos_token": True}


def eos_suffix(token):
    """tokenizer.json's post-processor appends `token` to every text (Qwen3-Embedding's
    and gte-Qwen2's tokenizers)."""
    def setup(tok):
        from tokenizers import processors
        tid = tok.convert_tokens_to_ids(token)
        tok._tokenizer.post_processor = processors.TemplateProcessing(
            single=f"$A {token}", pair=f"$A {token} $B {token}", special_tokens=[(token, tid)])
        return {"padding_side": "left"}
    return setup


def st_directory(d: Path, prompts=None, default_prompt_name=None, max_seq_length=None, pooling="lasttoken"):
    """The sentence-transformers files of an embedding checkpoint: Transformer, Pooling
    (last-token, or `mean` as all-mpnet-base-v2) and Normalize modules, the prompts and
    the maximum length."""
    hidden = json.loads((d / "config.json").read_text())["hidden_size"]
    (d / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2) + "\n")
    (d / "1_Pooling").mkdir(exist_ok=True)
    (d / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": pooling == "lasttoken", "include_prompt": True,
    }, indent=2) + "\n")
    (d / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": prompts or {}, "default_prompt_name": default_prompt_name,
        "similarity_fn_name": "cosine",
    }, indent=2) + "\n")
    (d / "sentence_bert_config.json").write_text(json.dumps({
        "max_seq_length": max_seq_length or 64, "do_lower_case": False,
    }, indent=2) + "\n")


def st_embeddings(model_dir: Path, inputs: list[str], prompt_name=None) -> dict:
    """What `SentenceTransformer(dir).encode(inputs, prompt_name=...)` returns (its own
    batching: one left-padded batch)."""
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(str(model_dir), device=DEVICE)
    emb = model.encode(inputs, prompt_name=prompt_name, convert_to_numpy=True)
    options = {"pooling": "auto"}
    if prompt_name:
        options["prompt_name"] = prompt_name
    return {"task": "feature-extraction", "inputs": inputs, "options": options,
            "outputs": [[float(x) for x in row] for row in emb]}

def spread_norms(model, tokenizer):
    """Norm weights away from their initial ones (and biases from zeros), so that a norm
    applied in the wrong place, or not at all, changes the outputs. Names are read
    below the base model's prefix (`roberta_prelayernorm.` names no norm); Megatron-BERT
    calls its norms `ln`."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    with torch.no_grad():
        for n, p in model.named_parameters():
            inner = n[len(prefix):] if prefix != "." and n.startswith(prefix) else n
            if "norm" in inner.lower() or ".ln." in f".{inner}":
                if n.endswith("weight"):
                    p.normal_(1.0, 0.3)
                else:
                    p.normal_(0.0, 0.2)


def spread_sinks(model, tokenizer):
    """Attention sinks (zeros at initialisation) spread around the scores' log-sum-exp,
    so that a sink left out, or applied to the wrong head, changes the outputs."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("sinks"):
                p.normal_(1.0, 1.5)


def spread_correction(model, tokenizer):
    """`spread_biases`, and ERNIE 4.5's expert-choice corrections (zeros at
    initialisation) large enough to change which experts are picked."""
    spread_biases(model, tokenizer)
    with torch.no_grad():
        for n, p in list(model.named_parameters()) + list(model.named_buffers()):
            if n.endswith("e_score_correction_bias"):
                p.normal_(0.0, 0.3)


def spread_expert_bias(model, tokenizer):
    """`spread_norms`, and AFMoE's expert-choice biases (zeros at initialisation) large
    enough to change which experts are picked."""
    spread_norms(model, tokenizer)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("expert_bias"):
                p.normal_(0.0, 0.3)


def spread_xielu(model, tokenizer):
    """`spread_norms`, and each layer's xIELU parameters away from the class's initial
    ones (and from each other), so that a layer read with another layer's, or with the
    defaults, changes the outputs."""
    spread_norms(model, tokenizer)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("act_fn.alpha_p") or n.endswith("act_fn.alpha_n"):
                p.normal_(0.0, 1.0)


def spread_gpt_oss(model, tokenizer):
    """`spread_biases`, `spread_sinks`, and gpt-oss's expert biases (`*_proj_bias`)."""
    spread_biases(model, tokenizer)
    spread_sinks(model, tokenizer)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("_proj_bias"):
                p.normal_(0.0, 0.2)


def spread_lambdas(model, tokenizer):
    """`spread_norms`, and DiffLlama's lambda vectors wide enough that each layer's
    lambda differs from its `lambda_init` by a visible amount."""
    spread_norms(model, tokenizer)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lambda_" in n:
                p.normal_(0.0, 0.5)


def spread_biases(model, tokenizer):
    """`spread_norms`, and every projection bias away from the zeros transformers
    initialises it to, so that a bias left out (or added where there is none) changes
    the outputs."""
    spread_norms(model, tokenizer)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(".bias") and "norm" not in n.lower():
                p.normal_(0.0, 0.2)


def quiet_embeddings(model, tokenizer):
    """`spread_biases`, and token embeddings small enough (XGLM scales them by
    sqrt(d_model)) that the layers, not the tied embedding of the last token, decide the
    next one."""
    spread_biases(model, tokenizer)
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 0.06)


def make_reachable(model, tokenizer, token: str, prompt: str):
    """Scale the lm_head row of `token` (an EOS token that random weights never pick)
    until greedy decoding of `prompt` reaches it after 3 to 9 tokens, so that stopping
    on it is tested."""
    tid = tokenizer.convert_tokens_to_ids(token)
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        row = model.lm_head.weight[tid].clone()
        for factor in [1.0 + 0.03 * i for i in range(100)]:
            model.lm_head.weight[tid] = row * factor
            out = model.generate(**enc, max_new_tokens=12, do_sample=False, eos_token_id=None,
                                 pad_token_id=0)[0, enc["input_ids"].shape[1]:].tolist()
            if tid in out:
                at = out.index(tid)
                if 3 <= at <= 9:
                    print(f"{token}: lm_head row x{factor}, reached after {at} tokens")
                    return
                if at < 3:
                    break
    sys.exit(f"could not make {token} reachable in 3..9 steps: pick another seed")


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
        name, d, c["inputs"], c["options"].get("max_new_tokens"),
        **{k: v for k, v in c["options"].items() if k != "max_new_tokens"}),
    "text2text-generation": lambda name, d, c: text2text_generation(
        name, d, c["inputs"], c["options"].get("max_new_tokens"),
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
