//! Granite (`GraniteForCausalLM`) as a delta over Llama, as transformers'
//! `modular_granite.py` states it: multipliers on the embeddings, on each residual
//! branch and on the attention scores (instead of `1/sqrt(head_dim)`), and logits
//! divided by `logits_scaling`.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["GraniteForCausalLM", "GraniteModel"],
    load,
    defaults,
};

/// `GraniteConfig`'s defaults (Llama's).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "GraniteConfig",
    ..llama::DEFAULTS
};

hf_config! {
    /// `GraniteConfig`'s multipliers (transformers 5.23).
    pub(crate) struct GraniteConfig {
        embedding_multiplier: f64 = 1.0,
        residual_multiplier: f64 = 1.0,
        attention_multiplier: f64 = 1.0,
        logits_scaling: f64 = 1.0,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let g: GraniteConfig = config.typed()?;
    let mut layout = c.layout();
    layout.scale = g.attention_multiplier;
    layout.embedding_multiplier = g.embedding_multiplier;
    layout.residual_multiplier = g.residual_multiplier;
    layout.logits_scaling = g.logits_scaling;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| llama::plain_layer(w, &c);
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(GraniteConfig::default())),
    ]
}
