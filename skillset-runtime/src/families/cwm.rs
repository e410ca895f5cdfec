//! CWM (`CwmForCausalLM`) as a delta over Llama, as transformers' `modular_cwm.py`
//! states it: Llama's layers without attention biases, three of every four layers
//! attending within a sliding window (`layer_types`; absent: layer `i` is global when
//! `i % 4 == 0`, as `CwmConfig` fills it in).

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
    classes: &["CwmForCausalLM", "CwmModel"],
    load,
    defaults,
};

/// `CwmConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "CwmConfig",
    vocab_size: 128256,
    hidden_size: 6144,
    intermediate_size: 21504,
    num_hidden_layers: 64,
    num_attention_heads: 48,
    num_key_value_heads: Some(8),
    head_dim: Some(128),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    rope_theta: 1e6,
    attention_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `CwmConfig`'s window (transformers 5.23).
    pub(crate) struct CwmWindow {
        sliding_window: Option<usize> = Some(8192),
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    // CwmConfig's rotary default is llama3 scaling, which a config.json without rotary
    // parameters would silently lose here.
    if config.value.get("rope_parameters").is_none() && config.value.get("rope_scaling").is_none() {
        return Err(config.invalid(
            "rope_parameters",
            "is missing (CwmConfig's default, llama3 scaling over 8192 positions, must be stated)"
                .into(),
        ));
    }
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    c.sliding_window = config.typed::<CwmWindow>()?.sliding_window;
    c.window_layers(config, |i| i % 4 != 0)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| llama::plain_layer(w, &c);
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(CwmWindow::default())),
    ]
}
