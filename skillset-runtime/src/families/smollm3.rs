//! SmolLM3 (`SmolLM3ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_smollm3.py` states it: every fourth layer takes no rotary positions (NoPE;
//! `no_rope_layers` says which: 1 with rotary, 0 without, absent: layer `i` has none
//! when `(i + 1) % no_rope_layer_interval == 0`), and with `use_sliding_window` the
//! NoPE layers attend within `sliding_window` (or as `layer_types` says).

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, LayerRope};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "SmolLM3ForCausalLM",
        "SmolLM3Model",
        "SmolLM3ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `SmolLM3Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "SmolLM3Config",
    vocab_size: 128256,
    hidden_size: 2048,
    num_hidden_layers: 36,
    num_attention_heads: 16,
    num_key_value_heads: Some(4),
    max_position_embeddings: 32768,
    rope_theta: 2e6,
    tie_word_embeddings: true,
    ..llama::DEFAULTS
};

hf_config! {
    /// `SmolLM3Config`'s NoPE and window fields (transformers 5.23).
    pub(crate) struct SmolLM3Fields {
        use_sliding_window: bool = false,
        sliding_window: Option<usize> = None,
        /// Filled in from the interval by `__post_init__` (so not a stated default).
        #[serde(skip_serializing)]
        no_rope_layers: Option<Vec<u8>> = None,
        no_rope_layer_interval: usize = 4,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    let f: SmolLM3Fields = config.typed()?;
    let n = c.num_layers;
    let has_rope: Vec<bool> = match f.no_rope_layers {
        Some(l) if l.len() != n => {
            return Err(config.invalid(
                "no_rope_layers",
                format!("has {} entries for {n} layers", l.len()),
            ))
        }
        Some(l) => l.iter().map(|&r| r != 0).collect(),
        None if f.no_rope_layer_interval == 0 => {
            return Err(config.invalid("no_rope_layer_interval", "is 0".into()))
        }
        None => (0..n)
            .map(|i| (i + 1) % f.no_rope_layer_interval != 0)
            .collect(),
    };
    let windowed = f.use_sliding_window && f.sliding_window.is_some();
    c.sliding_window = f.sliding_window.filter(|_| f.use_sliding_window);
    c.window_layers(config, |i| windowed && has_rope.get(i) == Some(&false))?;
    c.rope_layers = Some(
        has_rope
            .iter()
            .map(|&r| {
                if r {
                    LayerRope::Global
                } else {
                    LayerRope::NoPe
                }
            })
            .collect(),
    );
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| llama::plain_layer(w, &c);
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(SmolLM3Fields::default())),
    ]
}
