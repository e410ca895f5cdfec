//! OLMo-3 (`Olmo3ForCausalLM`) as a delta over OLMo-2, as transformers'
//! `modular_olmo3.py` states it: three of every four layers attend within a sliding
//! window (`layer_types`; absent: layer `i` is global when `(i + 1) % 4 == 0`), and
//! the rotary parameters may be given per layer type (`rope_parameters` keyed by
//! `full_attention` and `sliding_attention`).

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{self, Decoder, DecoderFile, LayerRope, Layout, Rope};
use super::llama::{self, Defaults};
use super::nn::Weights;
use super::olmo2;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Olmo3ForCausalLM",
        "Olmo3Model",
        "Olmo3ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Olmo3Config`'s defaults: OLMo-2's, with another rotary base (for both layer types).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Olmo3Config",
    rope_theta: 500000.0,
    ..olmo2::DEFAULTS
};

hf_config! {
    /// `Olmo3Config`'s window (transformers 5.23).
    pub(crate) struct Olmo3Window {
        sliding_window: Option<usize> = Some(4096),
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    c.sliding_window = config.typed::<Olmo3Window>()?.sliding_window;
    c.window_layers(config, |i| (i + 1) % 4 != 0)?;
    c.rope_by_window(LayerRope::Local, LayerRope::Global);
    let mut layout = c.layout();
    ropes_by_layer_type(config, &c, &mut layout)?;
    let final_norm = olmo2::norm(&weights.pp("model"), c.hidden_size, &c, "norm")?;
    let layers = |w: &Weights| olmo2::layer(w, &c, llama::mlp(&w.pp("mlp"), &c)?);
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            DEFAULTS.class,
            llama::stated_per_layer_type(serde_json::json!(DEFAULTS), DEFAULTS.rope_theta),
        ),
        (DEFAULTS.class, serde_json::json!(Olmo3Window::default())),
    ]
}

/// The rotary tables of a config whose `rope_parameters` are keyed by layer type: the
/// `full_attention` set as the layout's `rope`, the `sliding_attention` set as its
/// `local_rope` (OLMo-3, Mellum).
pub(crate) fn ropes_by_layer_type(
    config: &ConfigReader,
    c: &llama::Config,
    layout: &mut Layout,
) -> Result<()> {
    let rope = |t: &str| -> Result<Rope> {
        Ok(Rope {
            freqs: decoder::rope_freqs(
                config,
                Some(t),
                c.rotary_dim,
                c.default_theta,
                c.max_positions,
            )?,
            dim: c.rotary_dim,
            interleaved: false,
        })
    };
    layout.rope = Some(rope("full_attention")?);
    layout.local_rope = Some(rope("sliding_attention")?);
    Ok(())
}
