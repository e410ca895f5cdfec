//! Apertus (`ApertusForCausalLM`) as a delta over Llama, as transformers'
//! `modular_apertus.py` states it: norms named `attention_layernorm` and
//! `feedforward_layernorm`, per-head q/k RMSNorms before the rotary positions,
//! Nemotron's plain MLP (`down_proj(act(up_proj(x)))`, no biases) with xIELU, whose
//! parameters each layer learns (`mlp.act_fn.alpha_p`, `alpha_n`, `beta`, `eps`), and
//! llama3-scaled rotary positions with base 12e6 by default.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{linear, Decoder, DecoderFile, Mlp, QkNorm, Xielu};
use super::llama::{self, Defaults};
use super::nn::{Activation, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["ApertusForCausalLM", "ApertusModel"],
    load,
    defaults,
};

/// `ApertusConfig`'s defaults (no `mlp_bias`: the MLP has no biases).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "ApertusConfig",
    vocab_size: 131072,
    intermediate_size: 14336,
    hidden_act: "xielu",
    max_position_embeddings: 65536,
    rms_norm_eps: Some(1e-5),
    rope_theta: 12_000_000.0,
    mlp_bias: None,
    ..llama::DEFAULTS
};

/// The rotary parameters `ApertusConfig.__post_init__` fills in when config.json has
/// none.
fn default_rope() -> serde_json::Value {
    serde_json::json!({
        "rope_type": "llama3",
        "rope_theta": DEFAULTS.rope_theta,
        "factor": 8.0,
        "original_max_position_embeddings": 8192,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let filled = llama::with_default_rope(config, default_rope());
    let filled_reader = filled.as_ref().map(|v| config.with_value(v));
    let config = filled_reader.as_ref().unwrap_or(config);
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    // Another `hidden_act` takes the usual activation, as transformers' `ACT2FN`.
    let xielu = c.act == Activation::Xielu;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, c.attention_bias)?;
        let m = w.pp("mlp");
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mlp = if xielu {
            Mlp::Xielu {
                fc_in: linear(&m, h, i, "up_proj", false)?,
                fc_out: linear(&m, i, h, "down_proj", false)?,
                act: Xielu::read(&m.pp("act_fn"))?,
            }
        } else {
            Mlp::plain(&m, h, i, "up_proj", "down_proj", false)?
        };
        let norm = |w: &Weights, n: usize, name: &str| {
            let name = match name {
                "input_layernorm" => "attention_layernorm",
                _ => "feedforward_layernorm",
            };
            c.norm(w, n, name)
        };
        let mut layer = llama::layer(w, &c, norm, attn, mlp)?;
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
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
