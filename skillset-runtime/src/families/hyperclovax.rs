//! HyperCLOVA X (`HyperCLOVAXForCausalLM`) as a delta over Granite, as transformers'
//! `modular_hyperclovax.py` states it: Granite's multipliers, an RMSNorm on each
//! sublayer's output before the residual (Peri-LN: `post_norm1`, `post_norm2`, when
//! `use_post_norm`), `attention_multiplier` defaulting to `head_dim ** -0.5`, and
//! `logits_scaling` as a multiplier of the logits (Granite divides by it).

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
    classes: &["HyperCLOVAXForCausalLM", "HyperCLOVAXModel"],
    load,
    defaults,
};

/// `HyperCLOVAXConfig`'s defaults (Granite's, which are Llama's).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "HyperCLOVAXConfig",
    ..llama::DEFAULTS
};

hf_config! {
    /// `HyperCLOVAXConfig`'s multipliers and post norms (transformers 5.23).
    pub(crate) struct HyperClovaxFields {
        embedding_multiplier: f64 = 1.0,
        residual_multiplier: f64 = 1.0,
        /// `None`: `head_dim ** -0.5`, filled in by `__post_init__` (so not a stated
        /// default).
        #[serde(skip_serializing)]
        attention_multiplier: Option<f64> = None,
        logits_scaling: f64 = 1.0,
        use_post_norm: bool = true,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let f: HyperClovaxFields = config.typed()?;
    let mut layout = c.layout();
    layout.scale = f
        .attention_multiplier
        .unwrap_or(1.0 / (c.head_dim as f64).sqrt());
    layout.embedding_multiplier = f.embedding_multiplier;
    layout.residual_multiplier = f.residual_multiplier;
    layout.logit_scale = f.logits_scaling;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let mut layer = llama::plain_layer(w, &c)?;
        if f.use_post_norm {
            layer.attn_out_norm = Some(c.norm(w, c.hidden_size, "post_norm1")?);
            layer.mlp_out_norm = Some(c.norm(w, c.hidden_size, "post_norm2")?);
        }
        Ok(layer)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (
            DEFAULTS.class,
            serde_json::json!(HyperClovaxFields::default()),
        ),
    ]
}
