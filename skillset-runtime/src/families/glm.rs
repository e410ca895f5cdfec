//! GLM (`GlmForCausalLM`, GLM-4 of 2024) as a delta over Llama, as transformers'
//! `modular_glm.py` states it: rotary positions on interleaved channel pairs of the
//! first half of each head (`partial_rotary_factor` 0.5), biases on q/k/v only, and
//! Phi-3's MLP with the gate and up projections fused.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Layout};
use super::llama::{self, Defaults};
use super::nn::Weights;
use super::phi3;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["GlmForCausalLM", "GlmModel", "GlmForSequenceClassification"],
    load,
    defaults,
};

/// `GlmConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "GlmConfig",
    vocab_size: 151552,
    intermediate_size: 13696,
    num_hidden_layers: 40,
    num_key_value_heads: Some(2),
    head_dim: Some(128),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1.5625e-07),
    partial_rotary_factor: 0.5,
    attention_bias: Some(true),
    mlp_bias: None,
    ..llama::DEFAULTS
};

/// GLM's layout: Llama's with interleaved rotary pairs.
pub(crate) fn layout(c: &llama::Config) -> Layout {
    let mut layout = c.layout();
    if let Some(rope) = layout.rope.as_mut() {
        rope.interleaved = true;
    }
    layout
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, false)?;
        let mlp = phi3::mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, layout(&c), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
