//! Qwen2 (`Qwen2ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_qwen2.py` states it: biases on the q/k/v projections (always; the config
//! has no `attention_bias`), none on the output, and an optional sliding window
//! (`use_sliding_window`) over every layer.

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
        "Qwen2ForCausalLM",
        "Qwen2Model",
        "Qwen2ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Qwen2Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Qwen2Config",
    vocab_size: 151936,
    intermediate_size: 22016,
    max_position_embeddings: 32768,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// The sliding window fields of `Qwen2Config` and `Qwen3Config` (transformers 5.23).
    pub(crate) struct QwenWindow {
        use_sliding_window: bool = false,
        sliding_window: Option<usize> = None,
    }
}

/// The sliding window of a Qwen config: `sliding_window` over every layer when
/// `use_sliding_window` (layers mixing windowed and full attention are an error).
pub(crate) fn window(c: &ConfigReader) -> Result<Option<usize>> {
    let w: QwenWindow = c.typed()?;
    let window = if w.use_sliding_window {
        let mixed = c
            .value
            .get("layer_types")
            .and_then(|v| v.as_array())
            .is_some_and(|l| l.iter().any(|t| t.as_str() == Some("full_attention")));
        if mixed {
            return Err(c.invalid(
                "layer_types",
                "mixing sliding-window and full-attention layers is not supported".into(),
            ));
        }
        w.sliding_window
    } else {
        None
    };
    llama::check_layer_types(c, window)?;
    Ok(window)
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    c.sliding_window = window(config)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, true, false)?;
        let mlp = llama::mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(QwenWindow::default())),
    ]
}
