//! Text generation shared by the decoder families: options (with the defaults of the
//! checkpoint's generation_config.json), the logits processors of transformers
//! (repetition penalty, temperature, top-k, top-p), greedy and seeded sampling,
//! stopping on EOS, and a step-by-step [`Generator`] that batches prompts and streams
//! tokens.

use std::ops::ControlFlow;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
pub(crate) use crate::families::stepper::Stepper;
use crate::tokenize::TextTokenizer;

/// How to generate. `Default` is greedy decoding of 20 new tokens; checkpoints'
/// `generation_config.json` values are applied by [`GenerationOptions::from_checkpoint`].
///
/// ```
/// use skillset_runtime::GenerationOptions;
///
/// let greedy = GenerationOptions { max_new_tokens: 8, ..Default::default() };
/// assert!(!greedy.do_sample);
/// // Sampling with transformers' defaults (top-k 50), seeded.
/// let sampled = GenerationOptions { temperature: 0.7, seed: 42, ..greedy.clone().sampling() };
/// assert_eq!(sampled.top_k, Some(50));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationOptions {
    pub max_new_tokens: usize,
    /// Sample instead of taking the most likely token.
    pub do_sample: bool,
    /// Divides the logits before sampling.
    pub temperature: f64,
    /// Sample among the `k` most likely tokens (transformers' default is 50).
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities add up to `p`.
    pub top_p: Option<f64>,
    /// Penalise tokens already in the sequence (CTRL's rule, as transformers applies it,
    /// also in greedy decoding).
    pub repetition_penalty: Option<f64>,
    /// Seed of the sampler: the same seed gives the same tokens.
    pub seed: u64,
    /// Tokens that end a sequence (from the checkpoint; empty = never stop early).
    pub eos_token_ids: Vec<u32>,
    /// Beam search over this many beams (1 = greedy or sampled decoding).
    pub num_beams: usize,
    /// Beam search: hypotheses are scored `log-prob / length ** length_penalty`.
    pub length_penalty: f64,
    /// Beam search: when to stop (transformers' `early_stopping`).
    pub early_stopping: crate::beam::EarlyStopping,
    /// The longest sequence, prompt included (generation_config.json's `max_length`
    /// when it sets no `max_new_tokens`); a second cap beside `max_new_tokens`. Setting
    /// `max_new_tokens` through `skillset run` clears it, as `max_new_tokens` takes
    /// precedence in transformers.
    pub max_length: Option<usize>,
    /// EOS is forbidden until this many new tokens are generated.
    pub min_new_tokens: usize,
    /// EOS is forbidden while the sequence (prompt included) is shorter than this.
    pub min_length: usize,
    /// No n-gram of this size occurs twice in the sequence (0: off).
    pub no_repeat_ngram_size: usize,
    /// Token sequences that are never generated (the last token of one is forbidden
    /// after its prefix; a single EOS token is not banned, as in transformers).
    pub bad_words_ids: Vec<Vec<u32>>,
    /// Tokens never generated.
    pub suppress_tokens: Vec<u32>,
    /// Tokens not generated first.
    pub begin_suppress_tokens: Vec<u32>,
    /// The first token of the decoder's sequence after its start token (mBART's target
    /// language).
    pub forced_bos_token_id: Option<u32>,
    /// The token(s) forced at the last position the length limit allows.
    pub forced_eos_token_ids: Vec<u32>,
    /// Where a prompt that encodes to no token starts (`generate` without input ids).
    pub bos_token_id: Option<u32>,
    /// The encoder-decoder's first decoder token (generation_config.json, else
    /// config.json).
    pub decoder_start_token_id: Option<u32>,
    /// Pads batches (generation_config.json's, else the tokenizer's, else the first
    /// EOS token, as `generate` falls back).
    pub pad_token_id: Option<u32>,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        GenerationOptions {
            max_new_tokens: 20,
            do_sample: false,
            temperature: 1.0,
            top_k: None,
            top_p: None,
            repetition_penalty: None,
            seed: 0,
            eos_token_ids: Vec::new(),
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: crate::beam::EarlyStopping::Heuristic,
            max_length: None,
            min_new_tokens: 0,
            min_length: 0,
            no_repeat_ngram_size: 0,
            bad_words_ids: Vec::new(),
            suppress_tokens: Vec::new(),
            begin_suppress_tokens: Vec::new(),
            forced_bos_token_id: None,
            forced_eos_token_ids: Vec::new(),
            bos_token_id: None,
            decoder_start_token_id: None,
            pad_token_id: None,
        }
    }
}

/// A token id field: a number, or a list of them (`eos_token_id`). An id beyond `u32` or
/// not an integer is an error naming the file and field, never truncated; a negative id
/// (`"pad_token_id": -1` in some converted checkpoints) means none, as in transformers,
/// where it never matches a token.
pub(crate) fn ids_of(
    v: Option<&serde_json::Value>,
    path: &std::path::Path,
    key: &str,
) -> Result<Vec<u32>> {
    let id = |x: &serde_json::Value| -> Result<Option<u32>> {
        if x.as_i64().is_some_and(|n| n < 0) {
            tracing::debug!("{}: `{key}` {x} is negative: no such token", path.display());
            return Ok(None);
        }
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Error::invalid_file(path, format!("`{key}`: {x} is not a token id")))
    };
    let ids: Vec<Option<u32>> = match v {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(a)) => a.iter().map(id).collect::<Result<_>>()?,
        Some(x) => vec![id(x)?],
    };
    Ok(ids.into_iter().flatten().collect())
}

/// A count field (`max_new_tokens`, `min_new_tokens`, ...).
fn count_of(v: &serde_json::Value, path: &std::path::Path, key: &str) -> Result<usize> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::invalid_file(path, format!("`{key}`: {v} is not a count")))
}

impl GenerationOptions {
    /// The defaults a checkpoint sets in generation_config.json (falling back to
    /// config.json for the special tokens), as transformers' `GenerationConfig` applies
    /// them in `generate`: EOS lists, the pad token's fallback to the first EOS,
    /// `max_length` / `max_new_tokens`, and the logits processors
    /// (`min_new_tokens`, `min_length`, `no_repeat_ngram_size`, `bad_words_ids`,
    /// `suppress_tokens`, `begin_suppress_tokens`, `forced_bos_token_id`,
    /// `forced_eos_token_id`).
    pub fn from_checkpoint(ckpt: &Checkpoint) -> Result<Self> {
        let gen = ckpt.json("generation_config.json")?.unwrap_or_default();
        let path = ckpt.dir.join("generation_config.json");
        let cfg = &ckpt.config;
        let cfg_path = ckpt.config_path();
        let mut o = GenerationOptions::default();
        let get = |k: &str| gen.get(k).filter(|v| !v.is_null());
        // A special token: generation_config.json, else config.json, else its text config.
        let token = |k: &str| -> Result<Vec<u32>> {
            let ids = ids_of(get(k), &path, k)?;
            if !ids.is_empty() {
                return Ok(ids);
            }
            let ids = ids_of(cfg.get(k), &cfg_path, k)?;
            if !ids.is_empty() {
                return Ok(ids);
            }
            ids_of(cfg.get("text_config").and_then(|t| t.get(k)), &cfg_path, k)
        };
        if let Some(v) = get("max_new_tokens") {
            o.max_new_tokens = count_of(v, &path, "max_new_tokens")?;
        } else if let Some(v) = get("max_length") {
            let n = count_of(v, &path, "max_length")?;
            o.max_length = Some(n);
            o.max_new_tokens = n;
        }
        o.do_sample = get("do_sample").and_then(|v| v.as_bool()).unwrap_or(false);
        if let Some(t) = get("temperature").and_then(|v| v.as_f64()) {
            o.temperature = t;
        }
        o.top_k = get("top_k").and_then(|v| v.as_u64()).map(|k| k as usize);
        o.top_p = get("top_p").and_then(|v| v.as_f64());
        o.repetition_penalty = get("repetition_penalty")
            .and_then(|v| v.as_f64())
            .filter(|p| *p != 1.0);
        if let Some(v) = get("num_beams") {
            o.num_beams = count_of(v, &path, "num_beams")?.max(1);
        }
        if let Some(p) = get("length_penalty").and_then(|v| v.as_f64()) {
            o.length_penalty = p;
        }
        if let Some(e) = get("early_stopping").and_then(crate::beam::EarlyStopping::from_json) {
            o.early_stopping = e;
        }
        if let Some(v) = get("min_new_tokens") {
            o.min_new_tokens = count_of(v, &path, "min_new_tokens")?;
        }
        if let Some(v) = get("min_length") {
            o.min_length = count_of(v, &path, "min_length")?;
        }
        if let Some(v) = get("no_repeat_ngram_size") {
            o.no_repeat_ngram_size = count_of(v, &path, "no_repeat_ngram_size")?;
        }
        if let Some(v) = get("bad_words_ids") {
            let bad = || {
                Error::invalid_file(
                    &path,
                    "`bad_words_ids` must be a list of lists of token ids",
                )
            };
            o.bad_words_ids = v
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|w| match w {
                    serde_json::Value::Array(_) => ids_of(Some(w), &path, "bad_words_ids"),
                    _ => Err(bad()),
                })
                .collect::<Result<_>>()?;
            if o.bad_words_ids.iter().any(|w| w.is_empty()) {
                return Err(bad());
            }
        }
        o.suppress_tokens = ids_of(get("suppress_tokens"), &path, "suppress_tokens")?;
        o.begin_suppress_tokens =
            ids_of(get("begin_suppress_tokens"), &path, "begin_suppress_tokens")?;
        o.forced_bos_token_id = token("forced_bos_token_id")?.first().copied();
        o.forced_eos_token_ids = token("forced_eos_token_id")?;
        o.eos_token_ids = token("eos_token_id")?;
        o.bos_token_id = token("bos_token_id")?.first().copied();
        o.decoder_start_token_id = token("decoder_start_token_id")?.first().copied();
        o.pad_token_id = token("pad_token_id")?
            .first()
            .copied()
            .or_else(|| o.eos_token_ids.first().copied());
        Ok(o)
    }

    /// The token ids that index the model's embeddings or logits directly
    /// (`decoder_start_token_id`, `forced_bos_token_id`, `forced_eos_token_id`) within a
    /// vocabulary of `vocab` tokens: one beyond it is an error naming the field at load,
    /// not an index error mid-generation.
    pub(crate) fn check_ids(&self, vocab: usize, path: &std::path::Path) -> Result<()> {
        let fields = [
            (
                "decoder_start_token_id",
                self.decoder_start_token_id.into_iter().collect::<Vec<_>>(),
            ),
            (
                "forced_bos_token_id",
                self.forced_bos_token_id.into_iter().collect(),
            ),
            ("forced_eos_token_id", self.forced_eos_token_ids.clone()),
        ];
        for (field, ids) in fields {
            if let Some(id) = ids.into_iter().find(|&id| id as usize >= vocab) {
                return Err(Error::invalid_file(
                    path,
                    format!("`{field}`: token id {id} is beyond the model's vocabulary of {vocab} tokens"),
                ));
            }
        }
        Ok(())
    }

    /// Whether any logits processor besides sampling is on (the greedy path then
    /// reads every logit back instead of an argmax on the device).
    pub(crate) fn has_processors(&self) -> bool {
        self.repetition_penalty.is_some()
            || self.min_new_tokens > 0
            || self.min_length > 0
            || self.no_repeat_ngram_size > 0
            || !self.bad_words_ids.is_empty()
            || !self.suppress_tokens.is_empty()
            || !self.begin_suppress_tokens.is_empty()
            || self.forced_bos_token_id.is_some()
            || !self.forced_eos_token_ids.is_empty()
    }

    /// The new tokens a prompt of `prompt_len` tokens may get: `max_new_tokens`, and no
    /// more than `max_length` allows. Zero room is an error that says which limit.
    pub(crate) fn new_token_limit(&self, prompt_len: usize) -> Result<usize> {
        match self.max_length {
            Some(max) => {
                if prompt_len >= max {
                    return Err(Error::InvalidInput(format!(
                        "the prompt has {prompt_len} tokens, and generation_config.json's max_length is {max} (prompt included): no room for a new token; pass max_new_tokens"
                    )));
                }
                Ok(self.max_new_tokens.min(max - prompt_len))
            }
            None => Ok(self.max_new_tokens),
        }
    }

    /// Turn on sampling with transformers' defaults for what is not set (top-k 50).
    pub fn sampling(mut self) -> Self {
        self.do_sample = true;
        if self.top_k.is_none() {
            self.top_k = Some(50);
        }
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.do_sample && !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::InvalidOption(format!(
                "temperature must be a positive number, got {}",
                self.temperature
            )));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::InvalidOption(format!(
                    "top-p must be in (0, 1], got {p}"
                )));
            }
        }
        if self.num_beams == 0 {
            return Err(Error::InvalidOption("num_beams must be at least 1".into()));
        }
        if self.num_beams > 1 && self.do_sample {
            return Err(Error::InvalidOption(
                "beam sampling (num_beams > 1 with sampling) is not implemented: use beam search without sampling options, or sample with num_beams 1".into(),
            ));
        }
        if !self.length_penalty.is_finite() {
            return Err(Error::InvalidOption(format!(
                "length penalty must be a number, got {}",
                self.length_penalty
            )));
        }
        if self.top_k == Some(0) {
            return Err(Error::InvalidOption("top-k must be at least 1".into()));
        }
        if let Some(r) = self.repetition_penalty {
            if !(r > 0.0 && r.is_finite()) {
                return Err(Error::InvalidOption(format!(
                    "repetition penalty must be a positive number, got {r}"
                )));
            }
        }
        Ok(())
    }
}

/// text-generation / text2text-generation output, as transformers' pipeline gives it
/// plus the ids of the new tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// text-generation: the prompt followed by the generated text (the pipeline's
    /// `return_full_text=True`); text2text-generation: the generated text.
    pub generated_text: String,
    /// The new tokens only (no prompt, no padding after EOS).
    pub token_ids: Vec<u32>,
}

/// One generated token, as streamed.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    /// Which input of the batch it belongs to.
    pub sequence: usize,
    pub token_id: u32,
    /// Text this token adds to the sequence's decoded output (may be empty while a
    /// multi-token character is incomplete).
    pub text: String,
    /// Whether it ended the sequence (an EOS token or the length limit).
    pub last: bool,
}

/// A callback receiving each generated token; `Break` stops generation.
pub type OnToken<'a> = &'a mut dyn FnMut(&TokenEvent) -> ControlFlow<()>;

/// A [`Stepper`] over `num_beams` copies of one prompt, as beam search drives it.
struct StepperBeams<S: Stepper>(S);

/// Beam search with `stepper` over `opts.num_beams` copies of one prompt: the best
/// hypothesis' new tokens. `before`: the tokens the repetition penalty sees ahead of
/// the new ones (the prompt, or T5's decoder start token); the penalty applies to
/// log-probabilities, as transformers' beam search applies its logits processors.
pub(crate) fn beam_generate<S: Stepper>(
    stepper: S,
    before: &[u32],
    opts: &GenerationOptions,
) -> Result<Vec<u32>> {
    let limit = opts.new_token_limit(before.len())?;
    let settings = crate::beam::BeamSettings {
        num_beams: opts.num_beams,
        max_new_tokens: limit,
        eos: opts.eos_token_ids.clone(),
        length_penalty: opts.length_penalty,
        early_stopping: opts.early_stopping,
    };
    let max_len = before.len() + limit;
    crate::beam::beam_search(&mut StepperBeams(stepper), &settings, |lp, generated| {
        if opts.has_processors() {
            let sequence: Vec<u32> = before.iter().chain(generated).copied().collect();
            let row = RowState {
                sequence: &sequence,
                prompt_len: before.len(),
                max_len,
            };
            process_logits(lp, row, opts);
        }
    })
}

fn rows_f32(logits: Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(logits
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .to_vec2()?)
}

impl<S: Stepper> crate::beam::Beams for StepperBeams<S> {
    fn prefill(&mut self) -> Result<Vec<Vec<f32>>> {
        rows_f32(self.0.prefill()?)
    }
    fn advance(&mut self, sources: &[usize], tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.0.reorder(sources)?;
        rows_f32(self.0.feed(tokens)?)
    }
}

/// A small, fast, seedable PRNG (xoshiro256**), so samples do not depend on another
/// crate's stream staying the same across versions.
#[derive(Debug, Clone)]
pub(crate) struct Rng([u64; 4]);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Where one row of a generation stands, as transformers' logits processors see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowState<'a> {
    /// The sequence so far (`input_ids`): the prompt (a decoder-only model) or the
    /// decoder's start token (an encoder-decoder), then the generated tokens.
    pub sequence: &'a [u32],
    /// How many tokens of `sequence` came before generation.
    pub prompt_len: usize,
    /// The length the sequence may reach (`max_length` as `generate` computes it:
    /// `prompt_len + max_new_tokens`, or the configured total).
    pub max_len: usize,
}

/// Apply transformers' logits processors to one row of logits, in place, in the order
/// of `GenerationMixin._get_logits_processor`: repetition penalty, no-repeat n-grams,
/// bad words, minimum length, minimum new tokens, forced BOS, forced EOS, suppressed
/// tokens, tokens suppressed at the beginning; then, when sampling, temperature, top-k
/// and top-p.
pub(crate) fn process_logits(logits: &mut [f32], row: RowState<'_>, opts: &GenerationOptions) {
    let seq = row.sequence;
    let cur_len = seq.len();
    let ban = |logits: &mut [f32], t: u32| {
        if let Some(l) = logits.get_mut(t as usize) {
            *l = f32::NEG_INFINITY;
        }
    };
    if let Some(p) = opts.repetition_penalty {
        let p = p as f32;
        let mut done = std::collections::HashSet::new();
        for &t in seq {
            if done.insert(t) {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l < 0.0 { *l * p } else { *l / p };
                }
            }
        }
    }
    let n = opts.no_repeat_ngram_size;
    if n > 0 && cur_len + 1 >= n {
        // Every token that followed the current (n-1)-token suffix before is banned.
        let prefix = &seq[cur_len + 1 - n..];
        for w in seq.windows(n) {
            if &w[..n - 1] == prefix {
                ban(logits, w[n - 1]);
            }
        }
    }
    for word in &opts.bad_words_ids {
        if word.len() == 1 && opts.eos_token_ids.contains(&word[0]) {
            continue; // transformers filters single-token EOS bad words out
        }
        let (last, prefix) = word.split_last().expect("bad words are not empty");
        if prefix.len() <= cur_len && seq.ends_with(prefix) {
            ban(logits, *last);
        }
    }
    if cur_len < opts.min_length || cur_len.saturating_sub(row.prompt_len) < opts.min_new_tokens {
        for &t in &opts.eos_token_ids {
            ban(logits, t);
        }
    }
    let force = |logits: &mut [f32], tokens: &[u32]| {
        logits.iter_mut().for_each(|l| *l = f32::NEG_INFINITY);
        for &t in tokens {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = 0.0;
            }
        }
    };
    if let Some(bos) = opts.forced_bos_token_id {
        if cur_len == 1 {
            force(logits, &[bos]);
        }
    }
    if !opts.forced_eos_token_ids.is_empty() && cur_len + 1 == row.max_len {
        force(logits, &opts.forced_eos_token_ids);
    }
    for &t in &opts.suppress_tokens {
        ban(logits, t);
    }
    if !opts.begin_suppress_tokens.is_empty() {
        let begin = if row.prompt_len > 1 || opts.forced_bos_token_id.is_none() {
            row.prompt_len
        } else {
            row.prompt_len + 1
        };
        if cur_len == begin {
            for &t in &opts.begin_suppress_tokens {
                ban(logits, t);
            }
        }
    }
    if !opts.do_sample {
        return;
    }
    if opts.temperature != 1.0 {
        let t = opts.temperature as f32;
        logits.iter_mut().for_each(|l| *l /= t);
    }
    if let Some(k) = opts.top_k {
        if k < logits.len() {
            let mut sorted: Vec<f32> = logits.to_vec();
            sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            let kth = sorted[k - 1];
            logits.iter_mut().for_each(|l| {
                if *l < kth {
                    *l = f32::NEG_INFINITY
                }
            });
        }
    }
    if let Some(p) = opts.top_p {
        if p < 1.0 {
            // Sort ascending, drop the low tail whose cumulative probability is <= 1 - p,
            // always keeping the most likely token.
            let probs = crate::ops::softmax(logits);
            let mut order: Vec<usize> = (0..logits.len()).collect();
            order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
            let mut cum = 0.0f32;
            let last = order.len() - 1;
            for (rank, &i) in order.iter().enumerate() {
                cum += probs[i];
                if cum <= (1.0 - p as f32) && rank != last {
                    logits[i] = f32::NEG_INFINITY;
                }
            }
        }
    }
}

/// Pick the next token of one row from processed logits.
pub(crate) fn choose(logits: &[f32], opts: &GenerationOptions, rng: &mut Rng) -> u32 {
    if !opts.do_sample {
        return argmax(logits);
    }
    let probs = crate::ops::softmax(logits);
    let total: f64 = probs.iter().map(|&p| p as f64).sum();
    let mut u = rng.next_f64() * total;
    for (i, &p) in probs.iter().enumerate() {
        u -= p as f64;
        if u < 0.0 {
            return i as u32;
        }
    }
    argmax(logits)
}

fn argmax(row: &[f32]) -> u32 {
    crate::ops::argmax(row).0 as u32
}

/// Streams tokens of a batch of prompts from a [`Stepper`].
pub(crate) struct Generator<'a, S: Stepper> {
    stepper: S,
    tokenizer: &'a TextTokenizer,
    opts: GenerationOptions,
    rng: Rng,
    /// Per row: prompt tokens (for the repetition penalty) and new tokens.
    prompts: Vec<Vec<u32>>,
    new_tokens: Vec<Vec<u32>>,
    /// Per row: decoded text already streamed.
    streamed: Vec<String>,
    finished: Vec<bool>,
    /// Per row: how many new tokens it may get (`max_new_tokens`, within `max_length`).
    limits: Vec<usize>,
    logits: Option<Tensor>,
    step: usize,
    prefilled: bool,
}

impl<'a, S: Stepper> Generator<'a, S> {
    pub fn new(
        stepper: S,
        tokenizer: &'a TextTokenizer,
        prompts: Vec<Vec<u32>>,
        opts: GenerationOptions,
    ) -> Result<Self> {
        opts.check()?;
        let n = prompts.len();
        let limits = prompts
            .iter()
            .map(|p| opts.new_token_limit(p.len()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Generator {
            stepper,
            tokenizer,
            rng: Rng::new(opts.seed),
            opts,
            prompts,
            new_tokens: vec![Vec::new(); n],
            streamed: vec![String::new(); n],
            finished: limits.iter().map(|&l| l == 0).collect(),
            limits,
            logits: None,
            step: 0,
            prefilled: false,
        })
    }

    /// Whether every row has stopped.
    pub fn done(&self) -> bool {
        self.finished.iter().all(|f| *f)
    }

    /// Generate one token for every unfinished row; returns their events.
    pub fn step(&mut self) -> Result<Vec<TokenEvent>> {
        if self.done() {
            return Ok(Vec::new());
        }
        let logits = match self.logits.take() {
            Some(l) => l,
            None if !self.prefilled => {
                self.prefilled = true;
                let logits = self.stepper.prefill()?;
                // Once, on the prompt: broken weights or config (NaN tensors, a
                // negative epsilon, rope_theta 0) show here as non-finite logits, which
                // greedy decoding would turn into token 0 after token 0.
                let rows: Vec<Vec<f32>> = logits
                    .to_dtype(DType::F32)?
                    .to_device(&Device::Cpu)?
                    .to_vec2()?;
                crate::ops::ensure_finite(
                    rows.iter().map(Vec::as_slice),
                    "the first next-token logit",
                )?;
                logits
            }
            None => unreachable!("logits are kept between steps"),
        };
        let rows = logits.dims2()?.0;
        let greedy_plain = !self.opts.do_sample && !self.opts.has_processors();
        let chosen: Vec<u32> = if greedy_plain {
            // Only the ids come back from the device.
            logits
                .argmax(candle_core::D::Minus1)?
                .to_device(&Device::Cpu)?
                .to_vec1::<u32>()?
        } else {
            let all: Vec<Vec<f32>> = logits
                .to_dtype(DType::F32)?
                .to_device(&Device::Cpu)?
                .to_vec2()?;
            let mut out = Vec::with_capacity(rows);
            for (i, mut row) in all.into_iter().enumerate() {
                let sequence: Vec<u32> = self.prompts[i]
                    .iter()
                    .chain(&self.new_tokens[i])
                    .copied()
                    .collect();
                let state = RowState {
                    sequence: &sequence,
                    prompt_len: self.prompts[i].len(),
                    max_len: self.prompts[i].len() + self.limits[i],
                };
                process_logits(&mut row, state, &self.opts);
                let broken = row.iter().any(|l| l.is_nan() || *l == f32::INFINITY)
                    || !row.iter().any(|l| l.is_finite());
                if broken {
                    // transformers' sampler refuses such a distribution too.
                    return Err(Error::InvalidInput(format!(
                        "the next-token scores of sequence {i} are not finite (temperature {}): no token can be chosen",
                        self.opts.temperature
                    )));
                }
                out.push(choose(&row, &self.opts, &mut self.rng));
            }
            out
        };
        self.step += 1;
        let mut events = Vec::new();
        let mut feed = Vec::with_capacity(rows);
        for (i, &tok) in chosen.iter().enumerate() {
            if self.finished[i] {
                // Finished rows keep feeding their last token; nothing is recorded.
                feed.push(self.new_tokens[i].last().copied().unwrap_or(tok));
                continue;
            }
            self.new_tokens[i].push(tok);
            feed.push(tok);
            let is_eos = self.opts.eos_token_ids.contains(&tok);
            let last = is_eos || self.new_tokens[i].len() >= self.limits[i];
            if last {
                self.finished[i] = true;
            }
            let text = self.text_delta(i, last)?;
            events.push(TokenEvent {
                sequence: i,
                token_id: tok,
                text,
                last,
            });
        }
        if !self.done() {
            self.logits = Some(self.stepper.feed(&feed)?);
        }
        Ok(events)
    }

    /// The new text of row `i` since the last event; holds back an incomplete UTF-8
    /// character (decoded as U+FFFD) until it completes.
    fn text_delta(&mut self, i: usize, last: bool) -> Result<String> {
        let text = self.tokenizer.decode(&self.new_tokens[i], true)?;
        if !last && text.ends_with('\u{FFFD}') {
            return Ok(String::new());
        }
        let delta = match text.strip_prefix(self.streamed[i].as_str()) {
            Some(rest) => rest.to_string(),
            None => text.clone(),
        };
        self.streamed[i] = text;
        Ok(delta)
    }

    /// Run to the end, calling `on_token` for every token; it can stop early with
    /// `ControlFlow::Break`.
    pub fn run(&mut self, on_token: &mut dyn FnMut(&TokenEvent) -> ControlFlow<()>) -> Result<()> {
        while !self.done() {
            for e in self.step()? {
                if on_token(&e).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The new tokens of each row (EOS included, as transformers returns them).
    pub fn new_tokens(&self) -> &[Vec<u32>] {
        &self.new_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GenerationOptions {
        GenerationOptions::default()
    }

    /// A row whose whole sequence is `seq`, with `prompt` tokens of prompt and room for
    /// `room` more.
    fn row(seq: &[u32], prompt: usize, room: usize) -> RowState<'_> {
        RowState {
            sequence: seq,
            prompt_len: prompt,
            max_len: seq.len() + room,
        }
    }

    /// The banned (-inf) positions after processing 6 zero logits.
    fn banned(seq: &[u32], prompt: usize, room: usize, o: &GenerationOptions) -> Vec<usize> {
        let mut l = vec![0.0f32; 6];
        process_logits(&mut l, row(seq, prompt, room), o);
        (0..6).filter(|&i| l[i] == f32::NEG_INFINITY).collect()
    }

    #[test]
    fn no_repeat_ngram_bans_what_followed_the_suffix() {
        let o = GenerationOptions {
            no_repeat_ngram_size: 2,
            ..opts()
        };
        // bigrams (1,2) (2,3) (3,1): after a 1, 2 is banned.
        assert_eq!(banned(&[1, 2, 3, 1], 4, 5, &o), vec![2]);
        let o3 = GenerationOptions {
            no_repeat_ngram_size: 3,
            ..opts()
        };
        assert_eq!(banned(&[1, 2, 4, 1, 2], 5, 5, &o3), vec![4]);
        assert_eq!(banned(&[1], 1, 5, &o3), Vec::<usize>::new());
    }

    #[test]
    fn bad_words_single_and_sequences() {
        let o = GenerationOptions {
            bad_words_ids: vec![vec![5], vec![1, 2, 3], vec![2]],
            eos_token_ids: vec![2],
            ..opts()
        };
        // [2] is the EOS token: not banned alone. 3 only after 1, 2.
        assert_eq!(banned(&[0, 1, 2], 3, 5, &o), vec![3, 5]);
        assert_eq!(banned(&[0, 2], 2, 5, &o), vec![5]);
    }

    #[test]
    fn min_lengths_forbid_eos() {
        let o = GenerationOptions {
            min_new_tokens: 2,
            eos_token_ids: vec![1, 4],
            ..opts()
        };
        assert_eq!(banned(&[7, 7, 0], 2, 5, &o), vec![1, 4]);
        assert_eq!(banned(&[7, 7, 0, 0], 2, 5, &o), Vec::<usize>::new());
        let o = GenerationOptions {
            min_length: 4,
            eos_token_ids: vec![3],
            ..opts()
        };
        assert_eq!(banned(&[7, 7, 0], 2, 5, &o), vec![3]);
        assert_eq!(banned(&[7, 7, 0, 0], 2, 5, &o), Vec::<usize>::new());
    }

    #[test]
    fn forced_tokens_and_suppression() {
        let o = GenerationOptions {
            forced_bos_token_id: Some(4),
            ..opts()
        };
        assert_eq!(banned(&[0], 1, 5, &o), vec![0, 1, 2, 3, 5]);
        assert_eq!(banned(&[0, 4], 1, 5, &o), Vec::<usize>::new());
        // Forced EOS at the last position the length allows.
        let o = GenerationOptions {
            forced_eos_token_ids: vec![2],
            ..opts()
        };
        assert_eq!(banned(&[0, 1], 1, 1, &o), vec![0, 1, 3, 4, 5]);
        assert_eq!(banned(&[0, 1], 1, 2, &o), Vec::<usize>::new());
        let o = GenerationOptions {
            suppress_tokens: vec![0, 5],
            begin_suppress_tokens: vec![1],
            ..opts()
        };
        assert_eq!(banned(&[3, 3], 2, 5, &o), vec![0, 1, 5]);
        assert_eq!(banned(&[3, 3, 2], 2, 5, &o), vec![0, 5]);
        // With a forced BOS after a one-token decoder prompt, the beginning is one later.
        let o = GenerationOptions {
            begin_suppress_tokens: vec![1],
            forced_bos_token_id: Some(4),
            ..opts()
        };
        assert_eq!(banned(&[0, 4], 1, 5, &o), vec![1]);
    }

    #[test]
    fn repetition_penalty_follows_transformers() {
        let mut l = vec![2.0, -2.0, 1.0];
        process_logits(
            &mut l,
            row(&[0, 1, 1], 3, 5),
            &GenerationOptions {
                repetition_penalty: Some(2.0),
                ..opts()
            },
        );
        assert_eq!(l, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn top_k_and_top_p_filter() {
        let sampling = GenerationOptions {
            do_sample: true,
            top_k: Some(2),
            ..opts()
        };
        let mut l = vec![1.0, 3.0, 2.0, 0.5];
        process_logits(&mut l, row(&[], 0, 5), &sampling);
        assert_eq!(l[0], f32::NEG_INFINITY);
        assert_eq!(l[3], f32::NEG_INFINITY);
        assert_eq!((l[1], l[2]), (3.0, 2.0));

        // probs ~ [0.665, 0.245, 0.090]: top-p 0.7 keeps the first two.
        let nucleus = GenerationOptions {
            do_sample: true,
            top_p: Some(0.7),
            ..opts()
        };
        let mut l = vec![2.0, 1.0, 0.0];
        process_logits(&mut l, row(&[], 0, 5), &nucleus);
        assert!(l[0].is_finite() && l[1].is_finite());
        assert_eq!(l[2], f32::NEG_INFINITY);
        // A tiny top-p still keeps the best token.
        let mut l = vec![2.0, 1.0, 0.0];
        process_logits(
            &mut l,
            row(&[], 0, 5),
            &GenerationOptions {
                do_sample: true,
                top_p: Some(1e-6),
                ..opts()
            },
        );
        assert!(l[0].is_finite());
        assert_eq!(l.iter().filter(|x| x.is_finite()).count(), 1);
    }

    #[test]
    fn sampling_is_seeded_and_follows_the_distribution() {
        let o = GenerationOptions {
            do_sample: true,
            ..opts()
        };
        let logits = vec![0.0f32, (3.0f32).ln(), f32::NEG_INFINITY]; // p = [0.25, 0.75, 0]
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..4000)
                .map(|_| choose(&logits, &o, &mut rng))
                .collect::<Vec<u32>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let d = draw(7);
        assert!(d.iter().all(|&t| t < 2));
        let ones = d.iter().filter(|&&t| t == 1).count() as f64 / d.len() as f64;
        assert!((ones - 0.75).abs() < 0.03, "{ones}");
    }

    #[test]
    fn bad_options_are_errors() {
        assert!(GenerationOptions {
            do_sample: true,
            temperature: 0.0,
            ..opts()
        }
        .check()
        .is_err());
        assert!(GenerationOptions {
            top_p: Some(1.5),
            ..opts()
        }
        .check()
        .is_err());
        assert!(GenerationOptions {
            top_k: Some(0),
            ..opts()
        }
        .check()
        .is_err());
        assert!(GenerationOptions {
            repetition_penalty: Some(-1.0),
            ..opts()
        }
        .check()
        .is_err());
    }
}
