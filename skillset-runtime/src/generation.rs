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
        }
    }
}

fn ids_of(v: Option<&serde_json::Value>) -> Vec<u32> {
    match v {
        Some(serde_json::Value::Number(n)) => {
            n.as_u64().map(|x| vec![x as u32]).unwrap_or_default()
        }
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        _ => Vec::new(),
    }
}

impl GenerationOptions {
    /// The defaults a checkpoint sets in generation_config.json (falling back to
    /// config.json for the EOS token), like transformers' `GenerationConfig`.
    pub fn from_checkpoint(ckpt: &Checkpoint) -> Result<Self> {
        let gen = ckpt.json("generation_config.json")?.unwrap_or_default();
        let mut o = GenerationOptions::default();
        let get = |k: &str| gen.get(k).filter(|v| !v.is_null());
        if let Some(n) = get("max_new_tokens").and_then(|v| v.as_u64()) {
            o.max_new_tokens = n as usize;
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
        if let Some(n) = get("num_beams").and_then(|v| v.as_u64()) {
            o.num_beams = (n as usize).max(1);
        }
        if let Some(p) = get("length_penalty").and_then(|v| v.as_f64()) {
            o.length_penalty = p;
        }
        if let Some(e) = get("early_stopping").and_then(crate::beam::EarlyStopping::from_json) {
            o.early_stopping = e;
        }
        o.eos_token_ids = ids_of(get("eos_token_id"));
        if o.eos_token_ids.is_empty() {
            let cfg = &ckpt.config;
            o.eos_token_ids = ids_of(cfg.get("eos_token_id"));
            if o.eos_token_ids.is_empty() {
                o.eos_token_ids =
                    ids_of(cfg.get("text_config").and_then(|t| t.get("eos_token_id")));
            }
        }
        Ok(o)
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

/// One decoding step of a model: feed one token per row, get the next logits.
pub(crate) trait Stepper {
    /// Logits `[batch, vocab]` for the next token after the prompt (called once).
    fn prefill(&mut self) -> Result<Tensor>;
    /// Feed the chosen tokens (one per row) and return the next logits.
    fn feed(&mut self, tokens: &[u32]) -> Result<Tensor>;
    /// Beam search: row `i` continues old row `sources[i]` (the caches are gathered;
    /// the rows are copies of one input, so per-input state needs no gathering).
    fn reorder(&mut self, _sources: &[usize]) -> Result<()> {
        Err(Error::InvalidOption(
            "this model does not support beam search: use num_beams 1".into(),
        ))
    }
}

impl<S: Stepper + ?Sized> Stepper for Box<S> {
    fn prefill(&mut self) -> Result<Tensor> {
        (**self).prefill()
    }
    fn feed(&mut self, tokens: &[u32]) -> Result<Tensor> {
        (**self).feed(tokens)
    }
    fn reorder(&mut self, sources: &[usize]) -> Result<()> {
        (**self).reorder(sources)
    }
}

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
    crate::beam::beam_search(
        &mut StepperBeams(stepper),
        &crate::beam::BeamSettings::of(opts),
        |lp, generated| {
            if opts.repetition_penalty.is_some() {
                let seen: Vec<u32> = before.iter().chain(generated).copied().collect();
                process_logits(lp, &seen, opts);
            }
        },
    )
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

/// Gather the rows `sources` of a key/value cache (beam search).
pub(crate) fn reorder_cache(
    cache: &mut candle_nn::kv_cache::KvCache,
    sources: &Tensor,
) -> Result<()> {
    let max = cache.k_cache().max_seq_len();
    let mut fresh = candle_nn::kv_cache::KvCache::new(2, max);
    if let (Some(k), Some(v)) = (cache.k()?, cache.v()?) {
        fresh.append(
            &k.contiguous()?.index_select(sources, 0)?,
            &v.contiguous()?.index_select(sources, 0)?,
        )?;
    }
    *cache = fresh;
    Ok(())
}

/// `sources` as a tensor of row indices on `device`.
pub(crate) fn rows_tensor(sources: &[usize], device: &Device) -> Result<Tensor> {
    let ids: Vec<u32> = sources.iter().map(|&s| s as u32).collect();
    Ok(Tensor::from_vec(ids, sources.len(), device)?)
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

/// Apply transformers' processors in its order (repetition penalty, then temperature,
/// top-k and top-p when sampling) to one row of logits, in place.
pub(crate) fn process_logits(logits: &mut [f32], seen: &[u32], opts: &GenerationOptions) {
    if let Some(p) = opts.repetition_penalty {
        let p = p as f32;
        let mut done = std::collections::HashSet::new();
        for &t in seen {
            if done.insert(t) {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l < 0.0 { *l * p } else { *l / p };
                }
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
            let probs = crate::pipeline::softmax(logits);
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
    let probs = crate::pipeline::softmax(logits);
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
    let mut best = 0usize;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
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
        Ok(Generator {
            stepper,
            tokenizer,
            rng: Rng::new(opts.seed),
            opts,
            prompts,
            new_tokens: vec![Vec::new(); n],
            streamed: vec![String::new(); n],
            finished: vec![false; n],
            logits: None,
            step: 0,
            prefilled: false,
        })
    }

    /// Whether every row has stopped.
    pub fn done(&self) -> bool {
        self.finished.iter().all(|f| *f) || self.step >= self.opts.max_new_tokens
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
                self.stepper.prefill()?
            }
            None => unreachable!("logits are kept between steps"),
        };
        let rows = logits.dims2()?.0;
        let greedy_plain = !self.opts.do_sample && self.opts.repetition_penalty.is_none();
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
                let seen: Vec<u32> = self.prompts[i]
                    .iter()
                    .chain(&self.new_tokens[i])
                    .copied()
                    .collect();
                process_logits(&mut row, &seen, &self.opts);
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
            if is_eos {
                self.finished[i] = true;
            }
            let last = is_eos || self.step >= self.opts.max_new_tokens;
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

    #[test]
    fn repetition_penalty_follows_transformers() {
        let mut l = vec![2.0, -2.0, 1.0];
        process_logits(
            &mut l,
            &[0, 1, 1],
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
        process_logits(&mut l, &[], &sampling);
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
        process_logits(&mut l, &[], &nucleus);
        assert!(l[0].is_finite() && l[1].is_finite());
        assert_eq!(l[2], f32::NEG_INFINITY);
        // A tiny top-p still keeps the best token.
        let mut l = vec![2.0, 1.0, 0.0];
        process_logits(
            &mut l,
            &[],
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
