//! Decoder-only generation: the interface a causal LM family implements, and the
//! stepper that feeds it a left-padded batch with a KV cache.

use candle_core::{DType, Device, Tensor};
use candle_nn::kv_cache::KvCache;

use super::nn::mask_value;
use super::stepper::Stepper;
use crate::error::{Error, Result};

/// A decoder-only language model.
pub(crate) trait CausalLm: Send + Sync {
    fn num_layers(&self) -> usize;
    /// The longest sequence (prompt + new tokens) it has positions for.
    fn max_positions(&self) -> usize;
    /// Keys further back than this many positions are not attended to.
    fn sliding_window(&self) -> Option<usize>;
    /// When a step makes a row's sequence longer than this (it held at most this many
    /// tokens before), the stepper runs the whole sequence again on an empty cache
    /// instead of the one token (Phi-3's generation).
    fn recompute_past_after(&self) -> Option<usize> {
        None
    }
    /// Run `input_ids [batch, t]` at `positions` (per row), attending to the cached
    /// keys plus themselves under `masks`; append to `cache` (one per layer) and return
    /// the logits of the last position, `[batch, vocab]` f32.
    fn forward(
        &self,
        input_ids: &Tensor,
        positions: &[Vec<u32>],
        masks: &Masks,
        cache: &mut [KvCache],
    ) -> Result<Tensor>;
    /// The input embeddings `[batch, t, hidden]` of `input_ids` (what `forward` starts
    /// from), for models that splice other embeddings in (LLaVA's image features).
    fn embed(&self, _input_ids: &Tensor) -> Result<Tensor> {
        Err(Error::InvalidOption(
            "this decoder takes token ids only".into(),
        ))
    }
    /// `forward` from input embeddings.
    fn forward_embeds(
        &self,
        _x: Tensor,
        _positions: &[Vec<u32>],
        _masks: &Masks,
        _cache: &mut [KvCache],
    ) -> Result<Tensor> {
        Err(Error::InvalidOption(
            "this decoder takes token ids only".into(),
        ))
    }
}

/// Additive attention biases `[batch, 1, t, cached + t]` for one forward pass, built
/// once and shared by every layer.
pub(crate) struct Masks {
    /// Causal + padding.
    pub full: Tensor,
    /// Causal + padding + the model's sliding window, when it has one.
    pub window: Option<Tensor>,
}

/// Per row: its tokens and their positions.
type History = (Vec<Vec<u32>>, Vec<Vec<u32>>);

/// Feeds a causal LM a batch of prompts, left-padded, and then one token per row per
/// step. Position ids count real tokens only (like transformers' `generate`), so a
/// padded row gives the same tokens as the prompt alone.
pub(crate) struct CausalStepper<'m> {
    model: &'m dyn CausalLm,
    cache: Vec<KvCache>,
    /// Per row, per cached key: whether it is a real token (not left padding).
    valid: Vec<Vec<bool>>,
    /// Per row: the position id of the next token.
    next_pos: Vec<u32>,
    prompt: Option<Tensor>,
    prompt_positions: Vec<Vec<u32>>,
    /// Per row, every token fed so far (padding included) and its position, kept only
    /// for a model that may run the whole sequence again.
    history: Option<History>,
    dtype: DType,
    device: Device,
}

impl<'m> CausalStepper<'m> {
    pub fn new(
        model: &'m dyn CausalLm,
        prompts: &[Vec<u32>],
        pad_id: u32,
        max_new_tokens: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let len = prompts.iter().map(|p| p.len()).max().unwrap_or(0);
        if len == 0 || prompts.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidInput(
                "an empty prompt: the tokenizer adds no start token, so there is nothing to continue".into(),
            ));
        }
        let longest = len
            .checked_add(max_new_tokens)
            .filter(|&l| l <= model.max_positions())
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "prompt of {len} tokens plus {max_new_tokens} new tokens exceeds the model's {} positions",
                    model.max_positions()
                ))
            })?;
        let mut ids = Vec::with_capacity(prompts.len() * len);
        let mut valid = Vec::with_capacity(prompts.len());
        let mut positions = Vec::with_capacity(prompts.len());
        let mut next_pos = Vec::with_capacity(prompts.len());
        for p in prompts {
            let pad = len - p.len();
            ids.extend(std::iter::repeat_n(pad_id, pad));
            ids.extend_from_slice(p);
            valid.push((0..len).map(|j| j >= pad).collect::<Vec<bool>>());
            positions.push(
                (0..len)
                    .map(|j| if j >= pad { (j - pad) as u32 } else { 0 })
                    .collect::<Vec<u32>>(),
            );
            next_pos.push(p.len() as u32);
        }
        let history = model.recompute_past_after().map(|_| {
            let rows = ids.chunks(len.max(1)).map(|r| r.to_vec()).collect();
            (rows, positions.clone())
        });
        let prompt = Tensor::from_vec(ids, (prompts.len(), len), device)?;
        let cache = (0..model.num_layers())
            .map(|_| KvCache::new(2, longest.max(1)))
            .collect();
        Ok(CausalStepper {
            model,
            cache,
            valid,
            next_pos,
            prompt: Some(prompt),
            prompt_positions: positions,
            history,
            dtype,
            device: device.clone(),
        })
    }

    /// Additive bias `[batch, 1, t, keys]` for the last `t` keys as queries: causal,
    /// padding and, with `window`, the sliding window.
    fn bias(&self, t: usize, window: Option<usize>) -> Result<Tensor> {
        let b = self.valid.len();
        let keys = self.valid[0].len();
        let neg = mask_value(self.dtype) as f32;
        let mut data = Vec::with_capacity(b * t * keys);
        for row in &self.valid {
            for qi in keys - t..keys {
                for (kj, &ok) in row.iter().enumerate() {
                    let visible = ok && kj <= qi && window.is_none_or(|w| qi - kj < w);
                    data.push(if visible { 0.0 } else { neg });
                }
            }
        }
        Ok(Tensor::from_vec(data, (b, 1, t, keys), &self.device)?.to_dtype(self.dtype)?)
    }

    fn masks(&self, t: usize) -> Result<Masks> {
        Ok(Masks {
            full: self.bias(t, None)?,
            window: self
                .model
                .sliding_window()
                .map(|w| self.bias(t, Some(w)))
                .transpose()?,
        })
    }
}

impl Stepper for CausalStepper<'_> {
    fn prefill(&mut self) -> Result<Tensor> {
        let ids = self.prompt.take().expect("prefill runs once");
        let t = ids.dims2()?.1;
        let masks = self.masks(t)?;
        let positions = std::mem::take(&mut self.prompt_positions);
        self.model
            .forward(&ids, &positions, &masks, &mut self.cache)
    }

    fn feed(&mut self, tokens: &[u32]) -> Result<Tensor> {
        for v in self.valid.iter_mut() {
            v.push(true);
        }
        let positions: Vec<Vec<u32>> = self.next_pos.iter().map(|&p| vec![p]).collect();
        self.next_pos.iter_mut().for_each(|p| *p += 1);
        if let Some((ids, pos)) = self.history.as_mut() {
            for (row, &t) in ids.iter_mut().zip(tokens) {
                row.push(t);
            }
            for (row, p) in pos.iter_mut().zip(&positions) {
                row.extend_from_slice(p);
            }
        }
        // Per row, as transformers does for a prompt alone: the step that makes the row's
        // own sequence outgrow `n` runs every row's whole sequence again (a row that does
        // not cross gets the same keys again).
        let len = self.valid.first().map_or(0, |v| v.len());
        let restart = self.model.recompute_past_after().is_some_and(|n| {
            self.next_pos
                .iter()
                .any(|&p| p as usize > n && p as usize - 1 <= n)
        });
        if let (true, Some((ids, pos))) = (restart, self.history.as_ref()) {
            let flat: Vec<u32> = ids.iter().flatten().copied().collect();
            let ids = Tensor::from_vec(flat, (ids.len(), len), &self.device)?;
            let masks = self.masks(len)?;
            for c in self.cache.iter_mut() {
                c.reset();
            }
            return self.model.forward(&ids, pos, &masks, &mut self.cache);
        }
        let ids = Tensor::from_vec(tokens.to_vec(), (tokens.len(), 1), &self.device)?;
        let masks = self.masks(1)?;
        self.model
            .forward(&ids, &positions, &masks, &mut self.cache)
    }

    fn reorder(&mut self, sources: &[usize]) -> Result<()> {
        let rows = super::stepper::rows_tensor(sources, &self.device)?;
        for c in self.cache.iter_mut() {
            super::stepper::reorder_cache(c, &rows)?;
        }
        self.valid = sources.iter().map(|&s| self.valid[s].clone()).collect();
        self.next_pos = sources.iter().map(|&s| self.next_pos[s]).collect();
        if let Some((ids, pos)) = self.history.as_mut() {
            *ids = sources.iter().map(|&s| ids[s].clone()).collect();
            *pos = sources.iter().map(|&s| pos[s].clone()).collect();
        }
        Ok(())
    }
}
