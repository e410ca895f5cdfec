//! EXAONE 4 (`Exaone4ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_exaone4.py` states it: OLMo-2's layer (norms after the attention and MLP
//! outputs, none before), per-head RMS norms on queries and keys, and sliding-window
//! layers (`layer_types`; absent: layer `i` is global when `(i + 1)` is a multiple of
//! `sliding_window_pattern`) where only the sliding layers take rotary positions.
//! Without a `sliding_window` every layer is global and rotary.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layer, LayerRope, QkNorm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Exaone4ForCausalLM",
        "Exaone4Model",
        "Exaone4ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Exaone4Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Exaone4Config",
    vocab_size: 102400,
    intermediate_size: 16384,
    num_key_value_heads: Some(32),
    rms_norm_eps: Some(1e-5),
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Exaone4Config`'s window (transformers 5.23). `sliding_window_pattern` is read
    /// as the number its `__post_init__` divides by (a string pattern fails there too).
    pub(crate) struct Exaone4Window {
        sliding_window: Option<usize> = Some(4096),
        sliding_window_pattern: Option<usize> = Some(4),
    }
}

fn layer(w: &Weights, c: &llama::Config) -> Result<Layer> {
    let a = w.pp("self_attn");
    let (qkv, out) = llama::attention(&a, c, false, false)?;
    Ok(Layer {
        attn_norm: None,
        qkv,
        qk_norm: Some(QkNorm::PerHead(
            c.norm(&a, c.head_dim, "q_norm")?,
            c.norm(&a, c.head_dim, "k_norm")?,
        )),
        out,
        attn_out_norm: Some(c.norm(w, c.hidden_size, "post_attention_layernorm")?),
        mlp_norm: None,
        mlp: llama::mlp(&w.pp("mlp"), c)?,
        mlp_out_norm: Some(c.norm(w, c.hidden_size, "post_feedforward_layernorm")?),
        windowed: true,
        rope: LayerRope::Global,
        sinks: None,
        out_gate: None,
        differential: None,
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    windows(config, &mut c)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| layer(w, &c);
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// EXAONE 4's windows (EXAONE-MoE's too): with a `sliding_window`, the layers that
/// `layer_types` (or `sliding_window_pattern`) makes sliding attend within it and take
/// rotary positions, the others are global and NoPE; without one, every layer is
/// global and rotary.
pub(crate) fn windows(config: &ConfigReader, c: &mut llama::Config) -> Result<()> {
    let f: Exaone4Window = config.typed()?;
    if f.sliding_window.is_some() {
        c.sliding_window = f.sliding_window;
        let pattern = f.sliding_window_pattern;
        if config.value.get("layer_types").is_none() && matches!(pattern, None | Some(0)) {
            return Err(config.invalid(
                "sliding_window_pattern",
                "must be a positive number of layers when layer_types is absent".into(),
            ));
        }
        let pattern = pattern.unwrap_or(1).max(1);
        c.window_layers(config, |i| (i + 1) % pattern != 0)?;
        c.rope_by_window(LayerRope::Global, LayerRope::NoPe);
    } else {
        llama::check_layer_types(config, None)?;
    }
    Ok(())
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(Exaone4Window::default())),
    ]
}
