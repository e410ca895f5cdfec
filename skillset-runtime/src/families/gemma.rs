//! Gemma (`GemmaForCausalLM`) as a delta over Llama, as transformers'
//! `modular_gemma.py` states it: RMSNorms that scale by `1 + weight` in f32, embeddings
//! scaled by `sqrt(hidden_size)`, a GELU (tanh) MLP (the legacy `hidden_act: "gelu"`
//! of the first releases means tanh too, as `GemmaConfig` rewrites it) and a head tied
//! to the embeddings by default.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Norm};
use super::llama::{self, Defaults};
use super::nn::{Activation, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "GemmaForCausalLM",
        "GemmaModel",
        "GemmaForSequenceClassification",
    ],
    load,
    defaults,
};

/// `GemmaConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "GemmaConfig",
    vocab_size: 256000,
    hidden_size: 3072,
    intermediate_size: 24576,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    head_dim: Some(256),
    hidden_act: "gelu_pytorch_tanh",
    max_position_embeddings: 8192,
    tie_word_embeddings: true,
    mlp_bias: None,
    ..llama::DEFAULTS
};

/// `GemmaRMSNorm`: `normalize(x) * (1 + weight)` in f32, then cast back.
fn norm(c: &llama::Config, w: &Weights, size: usize, name: &str) -> Result<Norm> {
    Norm::rms_f32(w, size, c.eps, name, 1.0)
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    if c.act == Activation::Gelu {
        c.act = Activation::GeluTanh;
    }
    llama::check_layer_types(config, None)?;
    let final_norm = norm(&c, &weights.pp("model"), c.hidden_size, "norm")?;
    let mut layout = c.layout();
    layout.embed_sqrt_scale = Some(c.hidden_size);
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        let mlp = llama::mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| norm(&c, w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
