//! Ministral (`MinistralForCausalLM`) as a delta over Mistral, as transformers'
//! `modular_ministral.py` states it: each layer attends within the sliding window or
//! to the whole prefix, as `layer_types` says (absent: every layer within the window
//! when `sliding_window` is set, as `MinistralConfig` fills it in).

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile};
use super::llama::{self, Defaults};
use super::mistral::{self, MistralConfig};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "MinistralForCausalLM",
        "MinistralModel",
        "MinistralForSequenceClassification",
    ],
    load,
    defaults,
};

/// `MinistralConfig`'s defaults: Mistral's.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "MinistralConfig",
    ..mistral::DEFAULTS
};

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    c.sliding_window = config.typed::<MistralConfig>()?.sliding_window;
    c.windowed_layers = llama::sliding_layers(config, c.num_layers)?;
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
