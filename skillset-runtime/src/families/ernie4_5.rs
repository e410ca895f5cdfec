//! ERNIE 4.5 (`Ernie4_5ForCausalLM`, the dense models) as a delta over Llama, as
//! transformers' `modular_ernie4_5.py` states it: rotary positions on interleaved
//! channel pairs, and one `use_bias` for every projection.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile};
use super::glm;
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Ernie4_5ForCausalLM", "Ernie4_5Model"],
    load,
    defaults,
};

/// `Ernie4_5Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Ernie4_5Config",
    vocab_size: 103424,
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 18,
    num_attention_heads: 16,
    num_key_value_heads: Some(2),
    head_dim: Some(128),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    rope_theta: 500000.0,
    tie_word_embeddings: true,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Ernie4_5Config`'s bias switch (transformers 5.23).
    pub(crate) struct Ernie4_5Fields {
        use_bias: bool = false,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    let bias = config.typed::<Ernie4_5Fields>()?.use_bias;
    c.mlp_bias = bias;
    llama::check_layer_types(config, None)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, bias, bias)?;
        let mlp = llama::mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
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
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(Ernie4_5Fields::default())),
    ]
}
