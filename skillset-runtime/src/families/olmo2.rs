//! OLMo-2 (`Olmo2ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_olmo2.py` states it: the norms move after the attention and MLP outputs
//! (`post_attention_layernorm`, `post_feedforward_layernorm`; no input norm), queries
//! and keys get RMS norms over the whole projection (`q_norm`, `k_norm`, before the
//! split into heads), and every RMSNorm scales in f32 before casting back
//! (`Olmo2RMSNorm`). Config, projections, MLP, rotary positions, embeddings and head
//! are Llama's.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Layer, LayerRope, Mlp, Norm, QkNorm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Olmo2ForCausalLM",
        "Olmo2Model",
        "Olmo2ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Olmo2Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Olmo2Config",
    vocab_size: 50304,
    rms_norm_eps: Some(1e-5),
    mlp_bias: None,
    ..llama::DEFAULTS
};

/// `Olmo2RMSNorm`: `(weight * normalize(x)).to(dtype)`, the product in f32.
pub(crate) fn norm(w: &Weights, size: usize, c: &llama::Config, name: &str) -> Result<Norm> {
    Norm::rms_f32(w, size, c.eps, name, 0.0)
}

/// OLMo-2's layer with `mlp` (Llama's, or FlexOlmo's experts).
pub(crate) fn layer(w: &Weights, c: &llama::Config, mlp: Mlp) -> Result<Layer> {
    let a = w.pp("self_attn");
    let (qkv, out) = llama::attention(&a, c, c.attention_bias, c.attention_bias)?;
    let hd = c.head_dim;
    Ok(Layer {
        attn_norm: None,
        qkv,
        qk_norm: Some(QkNorm::Whole(
            norm(&a, c.num_heads * hd, c, "q_norm")?,
            norm(&a, c.num_kv_heads * hd, c, "k_norm")?,
        )),
        out,
        attn_out_norm: Some(norm(w, c.hidden_size, c, "post_attention_layernorm")?),
        mlp_norm: None,
        mlp,
        mlp_out_norm: Some(norm(w, c.hidden_size, c, "post_feedforward_layernorm")?),
        windowed: true,
        rope: LayerRope::Global,
        sinks: None,
        out_gate: None,
        differential: None,
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let final_norm = norm(&weights.pp("model"), c.hidden_size, &c, "norm")?;
    let layers = |w: &Weights| layer(w, &c, llama::mlp(&w.pp("mlp"), &c)?);
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
