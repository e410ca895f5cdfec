//! Jais 2 (`Jais2ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_jais2.py` states it: LayerNorms with biases (`layer_norm_eps`) instead of
//! RMSNorms, and Nemotron's plain MLP (`down_proj(relu²(up_proj(x)))`), with biases
//! on the attention and MLP projections by default.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Mlp, Norm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Jais2ForCausalLM", "Jais2Model"],
    load,
    defaults,
};

/// `Jais2Config`'s defaults (it has no `rms_norm_eps`).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Jais2Config",
    vocab_size: 150272,
    hidden_size: 3328,
    intermediate_size: 26624,
    num_attention_heads: 26,
    hidden_act: "relu2",
    max_position_embeddings: 8192,
    rms_norm_eps: None,
    attention_bias: Some(true),
    mlp_bias: Some(true),
    ..llama::DEFAULTS
};

hf_config! {
    /// `Jais2Config`'s own field (transformers 5.23).
    pub(crate) struct Jais2Fields {
        layer_norm_eps: f64 = 1e-5,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    let f: Jais2Fields = config.typed()?;
    let eps = config.check_eps("layer_norm_eps", f.layer_norm_eps)?;
    llama::check_layer_types(config, None)?;
    let norm = |w: &Weights, n: usize, name: &str| Norm::layer(w, n, eps, name);
    let final_norm = norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mlp = Mlp::plain(&w.pp("mlp"), h, i, "up_proj", "down_proj", c.mlp_bias)?;
        llama::layer(w, &c, norm, attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(Jais2Fields::default())),
    ]
}
