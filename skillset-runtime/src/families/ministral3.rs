//! Ministral 3 (`Ministral3ForCausalLM`, the text model of Mistral's Ministral 3 and
//! Mistral Large 3) as a delta over Mistral, as transformers' `modular_ministral3.py`
//! states it: after the rotary positions the queries are scaled by Llama 4's
//! `1 + llama_4_scaling_beta * ln(1 + floor(position / original_max_position_embeddings))`
//! (both read from `rope_parameters`), and the config class's rotary default is YaRN
//! (factor 16 over 16384 positions, base 1e6).

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, QueryScale};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Ministral3ForCausalLM", "Ministral3Model"],
    load,
    defaults,
};

/// `Ministral3Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Ministral3Config",
    vocab_size: 131072,
    intermediate_size: 14336,
    num_hidden_layers: 34,
    num_key_value_heads: Some(8),
    head_dim: Some(128),
    max_position_embeddings: 262144,
    rms_norm_eps: Some(1e-5),
    rope_theta: 1e6,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Ministral3Config`'s window (transformers 5.23): none unless stated.
    pub(crate) struct Ministral3Window {
        sliding_window: Option<usize> = None,
    }
}

/// `Ministral3Config.__post_init__`'s rotary parameters when config.json has none.
fn default_rope(max_positions: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "type": "yarn",
        "rope_theta": 1000000.0,
        "factor": 16.0,
        "original_max_position_embeddings": 16384,
        "max_position_embeddings": max_positions,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "mscale_all_dim": 1.0,
        "mscale": 1.0,
        "llama_4_scaling_beta": 0.1,
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let max = config
        .value
        .get("max_position_embeddings")
        .cloned()
        .unwrap_or_else(|| serde_json::json!(DEFAULTS.max_position_embeddings));
    let filled = llama::with_default_rope(config, default_rope(&max));
    let filled_reader = filled.as_ref().map(|v| config.with_value(v));
    let config = filled_reader.as_ref().unwrap_or(config);
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    c.sliding_window = config.typed::<Ministral3Window>()?.sliding_window;
    llama::check_layer_types(config, c.sliding_window)?;
    let rope = config
        .value
        .get("rope_parameters")
        .or_else(|| config.value.get("rope_scaling"));
    let field = |k: &str| rope.and_then(|r| r.get(k)).filter(|v| !v.is_null());
    let beta = field("llama_4_scaling_beta")
        .and_then(|v| v.as_f64())
        .filter(|b| b.is_finite())
        .ok_or_else(|| {
            config.invalid(
                "rope_parameters",
                "needs a numeric `llama_4_scaling_beta` (Ministral 3 scales its queries by it)"
                    .into(),
            )
        })?;
    let original = field("original_max_position_embeddings")
        .and_then(|v| v.as_u64())
        .and_then(|v| usize::try_from(v).ok())
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            config.invalid(
                "rope_parameters",
                "needs a positive `original_max_position_embeddings` (the query scale's period)"
                    .into(),
            )
        })?;
    let mut layout = c.layout();
    layout.query_scale = Some(QueryScale { beta, original });
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| llama::plain_layer(w, &c);
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (
            DEFAULTS.class,
            serde_json::json!(Ministral3Window::default()),
        ),
    ]
}
