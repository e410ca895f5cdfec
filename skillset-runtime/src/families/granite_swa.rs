//! Granite-SWA (`GraniteSWAForCausalLM`) as a delta over Granite, as transformers'
//! `modular_granite_swa.py` states it: sliding-window layers (`layer_types`; absent:
//! every fourth layer, from layer 0, is global), a learned attention sink per head
//! (`self_attn.sinks`: each output scaled by `sigmoid(lse - sink)`), and a rotary base
//! per layer (`layer_rope_theta`, 0 for a NoPE layer). Granite-MoE-SWA puts the same
//! attention over Granite-MoE-Shared's experts ([`super::moe`]).

use candle_core::{DType, Device, Tensor};

use super::config::{hf_config, ConfigReader};
use super::decoder::{self, Decoder, DecoderFile, LayerRope, Layout, Rope};
use super::granite::GraniteConfig;
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["GraniteSWAForCausalLM", "GraniteSWAModel"],
    load,
    defaults,
};

/// `GraniteSWAConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "GraniteSWAConfig",
    vocab_size: 100352,
    hidden_size: 2560,
    intermediate_size: 8192,
    num_hidden_layers: 24,
    num_attention_heads: 20,
    num_key_value_heads: Some(4),
    max_position_embeddings: 8192,
    rms_norm_eps: Some(1e-5),
    tie_word_embeddings: true,
    ..llama::DEFAULTS
};

hf_config! {
    /// The window and per-layer rotary bases of `GraniteSWAConfig` and
    /// `GraniteMoeSWAConfig` (transformers 5.23).
    pub(crate) struct SwaFields {
        sliding_window: Option<usize> = Some(128),
        /// Filled in from `rope_parameters` by `__post_init__` (so not a stated default).
        #[serde(skip_serializing)]
        layer_rope_theta: Option<Vec<f64>> = None,
    }
}

/// Granite's multipliers on `layout`.
pub(crate) fn multipliers(config: &ConfigReader, layout: &mut Layout) -> Result<()> {
    let g: GraniteConfig = config.typed()?;
    layout.scale = g.attention_multiplier;
    layout.embedding_multiplier = g.embedding_multiplier;
    layout.residual_multiplier = g.residual_multiplier;
    layout.logits_scaling = g.logits_scaling;
    Ok(())
}

/// The windows and per-layer rotary bases of the SWA members: sets `c`'s windows and
/// rotary kinds and returns the layout with the rotary tables they take.
pub(crate) fn swa_layout(config: &ConfigReader, c: &mut llama::Config) -> Result<Layout> {
    let f: SwaFields = config.typed()?;
    c.sliding_window = f.sliding_window;
    c.window_layers(config, |i| i % 4 != 0)?;
    let mut layout = c.layout();
    let Some(thetas) = f.layer_rope_theta else {
        return Ok(layout);
    };
    if thetas.len() != c.num_layers {
        return Err(config.invalid(
            "layer_rope_theta",
            format!("has {} entries for {} layers", thetas.len(), c.num_layers),
        ));
    }
    let mut bases: Vec<f64> = thetas.iter().copied().filter(|&t| t != 0.0).collect();
    bases.sort_by(f64::total_cmp);
    bases.dedup();
    if bases.len() > 2 {
        return Err(config.invalid(
            "layer_rope_theta",
            format!(
                "holds {} rotary bases; at most two are supported",
                bases.len()
            ),
        ));
    }
    let rope = |theta: f64| -> Result<Rope> {
        let theta = config.check_rope_theta(theta)?;
        let mut value = config.value.clone();
        if let Some(p) = value
            .get_mut("rope_parameters")
            .and_then(|p| p.as_object_mut())
        {
            p.insert("rope_theta".into(), serde_json::json!(theta));
        }
        if let Some(o) = value.as_object_mut() {
            o.insert("rope_theta".into(), serde_json::json!(theta));
        }
        let reader = ConfigReader {
            value: &value,
            path: config.path.clone(),
        };
        Ok(Rope {
            freqs: decoder::rope_freqs(&reader, None, c.rotary_dim, theta, c.max_positions)?,
            dim: c.rotary_dim,
            interleaved: false,
        })
    };
    layout.rope = bases.first().map(|&t| rope(t)).transpose()?;
    layout.local_rope = bases.get(1).map(|&t| rope(t)).transpose()?;
    c.rope_layers = Some(
        thetas
            .iter()
            .map(|&t| match bases.iter().position(|&b| b == t) {
                _ if t == 0.0 => LayerRope::NoPe,
                Some(0) => LayerRope::Global,
                _ => LayerRope::Local,
            })
            .collect(),
    );
    Ok(layout)
}

/// A layer's attention sinks, `self_attn.sinks` (`[heads]`).
pub(crate) fn sinks(w: &Weights, c: &llama::Config) -> Result<Tensor> {
    w.pp("self_attn").get(c.num_heads, "sinks")
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    let mut layout = swa_layout(config, &mut c)?;
    multipliers(config, &mut layout)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let mut layer = llama::plain_layer(w, &c)?;
        layer.sinks = Some(sinks(w, &c)?);
        Ok(layer)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(GraniteConfig::default())),
        (DEFAULTS.class, serde_json::json!(SwaFields::default())),
    ]
}
