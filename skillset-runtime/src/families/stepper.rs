//! The interface between the decoders and generation: one decoding step of a model,
//! and the key/value-cache gathering beam search needs. Generation drives a
//! [`Stepper`]; the model families implement it (no family depends on generation).

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

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
