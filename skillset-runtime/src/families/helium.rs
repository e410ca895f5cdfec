//! Helium (`HeliumForCausalLM`) as a delta over Llama, as transformers'
//! `modular_helium.py` states it: rotary positions on interleaved pairs of channels
//! (GPT-J's `rotate_every_two`), RMSNorms that scale in f32 before the cast, and no
//! bias on the output projection whatever `attention_bias` says.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Norm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "HeliumForCausalLM",
        "HeliumModel",
        "HeliumForSequenceClassification",
    ],
    load,
    defaults,
};

/// `HeliumConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "HeliumConfig",
    vocab_size: 48000,
    hidden_size: 2560,
    intermediate_size: 7040,
    num_hidden_layers: 24,
    num_attention_heads: 20,
    num_key_value_heads: Some(20),
    head_dim: Some(128),
    max_position_embeddings: 4096,
    rms_norm_eps: Some(1e-8),
    rope_theta: 100000.0,
    ..llama::DEFAULTS
};

/// `HeliumRMSNorm`: `(weight * normalize(x)).to(dtype)`, the product in f32.
fn norm(c: &llama::Config, w: &Weights, size: usize, name: &str) -> Result<Norm> {
    Norm::rms_f32(w, size, c.eps, name, 0.0)
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let final_norm = norm(&c, &weights.pp("model"), c.hidden_size, "norm")?;
    let mut layout = c.layout();
    if let Some(rope) = layout.rope.as_mut() {
        rope.interleaved = true;
    }
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, false)?;
        let mlp = llama::mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| norm(&c, w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
