//! Youtu-LLM (`YoutuForCausalLM`) as a delta over Llama, as transformers'
//! `modular_youtu.py` states it: Llama's layer with DeepSeek-V3's latent attention
//! ([`super::mla`], interleaved rotary pairs by default) and a dense gated MLP in
//! every layer, tied embeddings.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile};
use super::llama::{self, Defaults};
use super::mla::{mla_attention, mla_config, MlaFields};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["YoutuForCausalLM", "YoutuModel"],
    load,
    defaults,
};

/// `YoutuConfig`'s defaults (`head_dim` is `qk_rope_head_dim`; the latent attention's
/// fields are DeepSeek-V3's, [`MlaFields`]).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "YoutuConfig",
    vocab_size: 128256,
    hidden_size: 2048,
    intermediate_size: 6144,
    num_attention_heads: 16,
    num_key_value_heads: Some(16),
    head_dim: Some(64),
    max_position_embeddings: 131072,
    tie_word_embeddings: true,
    mlp_bias: None,
    ..llama::DEFAULTS
};

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let f: MlaFields = config.typed()?;
    let (c, layout) = mla_config(config, &DEFAULTS, &f)?;
    llama::check_layer_types(config, None)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = mla_attention(&w.pp("self_attn"), &c, &f, c.attention_bias)?;
        let mlp = llama::mlp(&w.pp("mlp"), &c)?;
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(MlaFields::default())),
    ]
}
