//! Arcee (`ArceeForCausalLM`) as a delta over Llama, as transformers'
//! `modular_arcee.py` states it: a plain MLP (`down_proj(act(up_proj(x)))`, Nemotron's)
//! with ReLU² instead of the gated one.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Mlp};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "ArceeForCausalLM",
        "ArceeModel",
        "ArceeForSequenceClassification",
    ],
    load,
    defaults,
};

/// `ArceeConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "ArceeConfig",
    hidden_size: 2560,
    intermediate_size: 18432,
    hidden_act: "relu2",
    max_position_embeddings: 4096,
    rms_norm_eps: Some(1e-5),
    ..llama::DEFAULTS
};

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
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mlp = Mlp::plain(&w.pp("mlp"), h, i, "up_proj", "down_proj", c.mlp_bias)?;
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
