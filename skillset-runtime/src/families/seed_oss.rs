//! Seed-OSS (`SeedOssForCausalLM`) as a delta over Llama, as transformers'
//! `modular_seed_oss.py` states it: the output projection's bias has a field of its
//! own (`attention_out_bias`), apart from the q/k/v biases (`attention_bias`).

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
    classes: &[
        "SeedOssForCausalLM",
        "SeedOssModel",
        "SeedOssForSequenceClassification",
    ],
    load,
    defaults,
};

/// `SeedOssConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "SeedOssConfig",
    vocab_size: 155136,
    intermediate_size: 27648,
    num_hidden_layers: 64,
    num_attention_heads: 80,
    num_key_value_heads: Some(8),
    head_dim: Some(128),
    max_position_embeddings: 524288,
    attention_bias: Some(true),
    ..llama::DEFAULTS
};

hf_config! {
    /// `SeedOssConfig`'s output-projection bias (transformers 5.23).
    pub(crate) struct SeedOssFields {
        attention_out_bias: bool = false,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    let out_bias = config.typed::<SeedOssFields>()?.attention_out_bias;
    llama::check_layer_types(config, None)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, out_bias)?;
        let mlp = llama::mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(SeedOssFields::default())),
    ]
}
