//! Mistral (`MistralForCausalLM`) as a delta over Llama, as transformers'
//! `modular_mistral.py` states it: attention within a sliding window
//! (`sliding_window`, 4096 by default; `null` attends to the whole prefix) and no
//! `attention_bias` / `mlp_bias` fields (the projections have no biases).

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
        "MistralForCausalLM",
        "MistralModel",
        "MistralForSequenceClassification",
    ],
    load,
    defaults,
};

/// `MistralConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "MistralConfig",
    intermediate_size: 14336,
    num_key_value_heads: Some(8),
    max_position_embeddings: 131072,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `MistralConfig`'s window (transformers 5.23).
    pub(crate) struct MistralConfig {
        sliding_window: Option<usize> = Some(4096),
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    c.sliding_window = config.typed::<MistralConfig>()?.sliding_window;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| llama::plain_layer(w, &c);
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(MistralConfig::default())),
    ]
}
