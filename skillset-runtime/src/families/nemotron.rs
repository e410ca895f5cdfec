//! Nemotron (`NemotronForCausalLM`, Nemotron-4 and Minitron) as a delta over Llama:
//! LayerNorms that scale by `1 + weight` (`NemotronLayerNorm1P`, with a bias), a plain
//! ReLU² MLP (`up_proj`, `down_proj`), and rotary positions on the first half of each
//! head (`partial_rotary_factor` 0.5). transformers has no modular file for it; this
//! follows `modeling_nemotron.py`.

use super::nn::LayerNorm;
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
    classes: &[
        "NemotronForCausalLM",
        "NemotronModel",
        "NemotronForSequenceClassification",
    ],
    load,
    defaults,
};

/// `NemotronConfig`'s defaults (its epsilon is `norm_eps`, in [`NemotronFields`]).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "NemotronConfig",
    vocab_size: 256000,
    hidden_size: 6144,
    intermediate_size: 24576,
    num_attention_heads: 48,
    head_dim: Some(128),
    hidden_act: "relu2",
    max_position_embeddings: 4096,
    rms_norm_eps: None,
    partial_rotary_factor: 0.5,
    ..llama::DEFAULTS
};

hf_config! {
    /// `NemotronConfig`'s epsilon (transformers 5.23).
    pub(crate) struct NemotronFields {
        norm_eps: f64 = 1e-5,
    }
}

/// `NemotronLayerNorm1P`: a LayerNorm whose scale is `1 + weight`.
fn norm(w: &Weights, size: usize, eps: f64, name: &str) -> Result<Norm> {
    let p = w.pp(name);
    let weight = (p.get(size, "weight")? + 1.0)?;
    Ok(Norm::Layer(LayerNorm::new(
        weight,
        p.get(size, "bias")?,
        eps,
    )))
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    let eps = config.check_eps("norm_eps", config.typed::<NemotronFields>()?.norm_eps)?;
    llama::check_layer_types(config, None)?;
    let final_norm = norm(&weights.pp("model"), c.hidden_size, eps, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mlp = Mlp::plain(&w.pp("mlp"), h, i, "up_proj", "down_proj", c.mlp_bias)?;
        llama::layer(w, &c, |w, n, name| norm(w, n, eps, name), attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(NemotronFields::default())),
    ]
}
