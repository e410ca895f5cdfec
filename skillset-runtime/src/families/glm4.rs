//! GLM-4 (`Glm4ForCausalLM`, GLM-4-0414) as a delta over GLM, as transformers'
//! `modular_glm4.py` states it: "sandwich" norms, an RMSNorm on the attention output
//! (`post_self_attn_layernorm`) and on the MLP output (`post_mlp_layernorm`), each
//! before its residual, besides the pre-norms.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile};
use super::glm;
use super::llama::{self, Defaults};
use super::nn::Weights;
use super::phi3;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Glm4ForCausalLM",
        "Glm4Model",
        "Glm4ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Glm4Config`'s defaults: GLM's.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Glm4Config",
    ..glm::DEFAULTS
};

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, false)?;
        let mlp = phi3::mlp(&w.pp("mlp"), &c)?;
        let mut layer = llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)?;
        layer.attn_out_norm = Some(c.norm(w, c.hidden_size, "post_self_attn_layernorm")?);
        layer.mlp_out_norm = Some(c.norm(w, c.hidden_size, "post_mlp_layernorm")?);
        Ok(layer)
    };
    llama::assemble(
        &c,
        weights,
        glm::layout(&c),
        layers,
        final_norm,
        dtype,
        device,
    )
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
