//! MiniCPM3 (`MiniCPM3ForCausalLM`) as a delta over Llama with DeepSeek's latent
//! attention, as transformers' `modular_minicpm3.py` states it: every layer a dense
//! gated MLP, [`super::mla`]'s attention with rotary halves (not interleaved pairs),
//! and muP's scales: the embeddings times `scale_emb`, each sublayer's output times
//! `scale_depth / sqrt(num_hidden_layers)`, the final hidden state divided by
//! `hidden_size / dim_model_base` before the tied head.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile};
use super::llama::{self, Defaults};
use super::mla::{mla_attention, mla_config, MlaFields};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["MiniCPM3ForCausalLM", "MiniCPM3Model"],
    load,
    defaults,
};

/// `MiniCPM3Config`'s defaults (`head_dim` is `qk_rope_head_dim`).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "MiniCPM3Config",
    vocab_size: 73448,
    hidden_size: 2560,
    intermediate_size: 6400,
    num_hidden_layers: 62,
    num_attention_heads: 40,
    num_key_value_heads: Some(40),
    head_dim: Some(32),
    max_position_embeddings: 32768,
    rms_norm_eps: Some(1e-5),
    tie_word_embeddings: true,
    ..llama::DEFAULTS
};

hf_config! {
    /// `MiniCPM3Config`'s latent attention and scales (transformers 5.23).
    pub(crate) struct MiniCpm3Config {
        kv_lora_rank: usize = 256,
        q_lora_rank: Option<usize> = Some(768),
        qk_nope_head_dim: usize = 64,
        qk_rope_head_dim: usize = 32,
        /// `None`: `hidden_size / num_attention_heads`, filled in by `__post_init__`.
        #[serde(skip_serializing)]
        v_head_dim: Option<usize> = None,
        scale_emb: f64 = 12.0,
        /// `None`: `sqrt(num_hidden_layers)` (a residual scale of 1).
        #[serde(skip_serializing)]
        scale_depth: Option<f64> = Some(1.4),
        /// `None`: `hidden_size` (no logit scale).
        #[serde(skip_serializing)]
        dim_model_base: Option<f64> = Some(256.0),
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let m: MiniCpm3Config = config.typed()?;
    let hidden = config
        .value
        .get("hidden_size")
        .and_then(|v| v.as_u64())
        .map_or(DEFAULTS.hidden_size, |v| v as usize);
    let heads = config
        .value
        .get("num_attention_heads")
        .and_then(|v| v.as_u64())
        .map_or(DEFAULTS.num_attention_heads, |v| v as usize);
    let f = MlaFields {
        kv_lora_rank: m.kv_lora_rank,
        q_lora_rank: m.q_lora_rank,
        qk_rope_head_dim: m.qk_rope_head_dim,
        v_head_dim: m.v_head_dim.unwrap_or(hidden / heads.max(1)),
        qk_nope_head_dim: m.qk_nope_head_dim,
        rope_interleave: false,
    };
    let (c, mut layout) = mla_config(config, &DEFAULTS, &f)?;
    llama::check_layer_types(config, None)?;
    let layers_n = c.num_layers.max(1) as f64;
    let scale_depth = m.scale_depth.unwrap_or(layers_n.sqrt());
    let base = m.dim_model_base.unwrap_or(c.hidden_size as f64);
    for (field, x) in [
        ("scale_emb", m.scale_emb),
        ("scale_depth", scale_depth),
        ("dim_model_base", base),
    ] {
        if !(x.is_finite() && x > 0.0) {
            return Err(config.invalid(field, format!("is {x}: it must be a positive number")));
        }
    }
    layout.embedding_multiplier = m.scale_emb;
    layout.residual_multiplier = scale_depth / layers_n.sqrt();
    // `lm_head(h / s)` = `lm_head(h) / s`: the head has no bias.
    layout.logits_scaling = c.hidden_size as f64 / base;
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
        (DEFAULTS.class, serde_json::json!(MiniCpm3Config::default())),
    ]
}
