//! Qwen3 (`Qwen3ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_qwen3.py` states it: an RMSNorm on each query and key head (`q_norm`,
//! `k_norm`) before the rotary positions, and Qwen2's optional sliding window.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, QkNorm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use super::qwen2;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Qwen3ForCausalLM",
        "Qwen3Model",
        "Qwen3ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Qwen3Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Qwen3Config",
    vocab_size: 151936,
    intermediate_size: 22016,
    head_dim: Some(128),
    max_position_embeddings: 32768,
    mlp_bias: None,
    ..llama::DEFAULTS
};

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    c.sliding_window = qwen2::window(config)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let mut layer = llama::plain_layer(w, &c)?;
        let a = w.pp("self_attn");
        layer.qk_norm = Some(QkNorm::PerHead(
            c.norm(&a, c.head_dim, "q_norm")?,
            c.norm(&a, c.head_dim, "k_norm")?,
        ));
        Ok(layer)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (
            DEFAULTS.class,
            serde_json::json!(qwen2::QwenWindow::default()),
        ),
    ]
}
