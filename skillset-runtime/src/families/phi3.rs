//! Phi-3 (`Phi3ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_phi3.py` states it: one fused `qkv_proj` and one fused `gate_up_proj`
//! (split here into Llama's projections), no biases, partial rotary positions where the
//! config says, and Mistral's sliding window (`sliding_window`, `null` by default).

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{linear, Decoder, DecoderFile, Mlp, Qkv};
use super::llama::{self, Defaults};
use super::nn::{Linear, Weights};
use crate::error::{Error, Result};
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Phi3ForCausalLM",
        "Phi3Model",
        "Phi3ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Phi3Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Phi3Config",
    vocab_size: 32064,
    hidden_size: 3072,
    intermediate_size: 8192,
    max_position_embeddings: 4096,
    rms_norm_eps: Some(1e-5),
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Phi3Config`'s window and original context (transformers 5.23).
    pub(crate) struct Phi3Fields {
        sliding_window: Option<usize> = None,
        original_max_position_embeddings: usize = 4096,
    }
}

/// Split a fused projection's weight `[a + b + ..., in]` (and bias) into its parts.
pub(crate) fn split_rows<const N: usize>(l: &Linear, sizes: [usize; N]) -> Result<[Linear; N]> {
    let mut parts = Vec::with_capacity(N);
    let mut start = 0;
    for n in sizes {
        let w = l.weight().narrow(0, start, n)?.contiguous()?;
        let b = l.bias().map(|b| b.narrow(0, start, n)).transpose()?;
        parts.push(Linear::new(w, b));
        start += n;
    }
    parts
        .try_into()
        .map_err(|_| Error::InvalidInput("internal: a split of the wrong count".into()))
}

/// Phi-3's gated MLP with the gate and up projections fused (`gate_up_proj`, no
/// biases), split at load.
pub(crate) fn mlp(m: &Weights, c: &llama::Config) -> Result<Mlp> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let fused = linear(m, h, 2 * i, "gate_up_proj", false)?;
    let [gate, up] = split_rows(&fused, [i, i])?;
    Ok(Mlp::Gated {
        gate,
        up,
        down: linear(m, i, h, "down_proj", false)?,
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    let f: Phi3Fields = config.typed()?;
    c.sliding_window = f.sliding_window;
    llama::check_layer_types(config, c.sliding_window)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let (h, hd) = (c.hidden_size, c.head_dim);
    let (qn, kvn) = (c.num_heads * hd, c.num_kv_heads * hd);
    let layers = |w: &Weights| {
        let a = w.pp("self_attn");
        let fused = linear(&a, h, qn + 2 * kvn, "qkv_proj", false)?;
        let [q, k, v] = split_rows(&fused, [qn, kvn, kvn])?;
        let attn = (Qkv::Separate(q, k, v), linear(&a, qn, h, "o_proj", false)?);
        let mlp = mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    let mut layout = c.layout();
    layout.recompute_past_after = Some(f.original_max_position_embeddings);
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(Phi3Fields::default())),
    ]
}
