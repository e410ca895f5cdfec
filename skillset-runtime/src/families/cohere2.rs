//! Cohere 2 (`Cohere2ForCausalLM`, Command R7B / Command A) as a delta over Cohere, as
//! transformers' `modular_cohere2.py` states it: three sliding-window layers to each
//! global one (`layer_types`; absent: layer `i` is global when `(i + 1) % 4 == 0`),
//! rotary positions on the sliding layers only (the global ones are NoPE), and no q/k
//! norms.

use candle_core::{DType, Device};

use super::cohere::{self, CohereFields};
use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, LayerRope};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Cohere2ForCausalLM", "Cohere2Model"],
    load,
    defaults,
};

/// `Cohere2Config`'s defaults: Cohere's, with another rotary base.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Cohere2Config",
    rope_theta: 10000.0,
    ..cohere::DEFAULTS
};

hf_config! {
    /// `Cohere2Config`'s window (transformers 5.23).
    pub(crate) struct Cohere2Window {
        sliding_window: Option<usize> = Some(4096),
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let f = CohereFields {
        use_qk_norm: false,
        ..config.typed()?
    };
    let (mut c, mut layout, eps) = cohere::read(config, &DEFAULTS, &f)?;
    // `Cohere2Config` always derives the head size, whatever config.json says.
    if c.head_dim * c.num_heads != c.hidden_size {
        return Err(config.invalid(
            "head_dim",
            format!(
                "is {}, but Cohere 2 derives it as hidden_size / num_attention_heads ({})",
                c.head_dim,
                c.hidden_size / c.num_heads
            ),
        ));
    }
    c.sliding_window = config.typed::<Cohere2Window>()?.sliding_window;
    layout.sliding_window = c.sliding_window;
    c.window_layers(config, |i| (i + 1) % 4 != 0)?;
    c.rope_by_window(LayerRope::Global, LayerRope::NoPe);
    let final_norm = cohere::norm(&weights.pp("model"), c.hidden_size, None, eps, "norm")?;
    let layers = |w: &Weights| cohere::layer(w, &c, eps, false, llama::mlp(&w.pp("mlp"), &c)?);
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    let mut fields = serde_json::json!(CohereFields::default());
    if let Some(o) = fields.as_object_mut() {
        o.remove("use_qk_norm");
    }
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, fields),
        (DEFAULTS.class, serde_json::json!(Cohere2Window::default())),
    ]
}
