//! OLMo (`OlmoForCausalLM`) as a delta over Llama, as transformers' `modular_olmo.py`
//! states it: LayerNorms without parameters (eps 1e-5) instead of RMSNorms, and
//! queries, keys and values clipped to `[-clip_qkv, clip_qkv]` where the config sets it.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Norm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "OlmoForCausalLM",
        "OlmoModel",
        "OlmoForSequenceClassification",
    ],
    load,
    defaults,
};

/// `OlmoConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "OlmoConfig",
    vocab_size: 50304,
    rms_norm_eps: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `OlmoConfig`'s clipping (transformers 5.23).
    pub(crate) struct OlmoConfig {
        clip_qkv: Option<f64> = None,
    }
}

/// `OlmoLayerNorm`: a LayerNorm without weight or bias.
fn norm(_: &Weights, _: usize, _: &str) -> Result<Norm> {
    Ok(Norm::Plain { eps: 1e-5 })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let mut layout = c.layout();
    layout.clip_qkv = config.typed::<OlmoConfig>()?.clip_qkv;
    let final_norm = norm(weights, c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        llama::layer(w, &c, norm, attn, llama::mlp(&w.pp("mlp"), &c)?)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(OlmoConfig::default())),
    ]
}
