//! MPT (`MptForCausalLM`) over GPT-2's pieces: ALiBi with MPT's own slopes
//! (`alibi_bias_max`), LayerNorms without biases, no bias on any projection, a fused
//! `[q | k | v]` projection (`Wqkv`, optionally clamped by `clip_qkv`), an exact-GELU
//! MLP (`up_proj`, `down_proj`), and its weight names (`transformer.blocks.N.norm_1`,
//! `norm_f`). The attention settings sit in the nested `attn_config`.

use super::nn::LayerNorm;
use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{self, Alibi, Decoder, DecoderFile, Layout, Mlp, Norm, Qkv};
use super::gpt::{self, Skeleton};
use super::nn::{Activation, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["MptForCausalLM", "MptModel"],
    load,
    defaults,
};

hf_config! {
    /// `MptConfig` (transformers 5.23): the fields the model reads, with its defaults
    /// (and its `attribute_map`'s names as aliases).
    pub(crate) struct MptConfig {
        #[serde(alias = "hidden_size")]
        d_model: usize = 2048,
        #[serde(alias = "num_attention_heads")]
        n_heads: usize = 16,
        #[serde(alias = "num_hidden_layers")]
        n_layers: usize = 24,
        expansion_ratio: usize = 4,
        max_seq_len: usize = 2048,
        vocab_size: usize = 50368,
        layer_norm_epsilon: f64 = 1e-5,
        no_bias: bool = true,
        tie_word_embeddings: bool = true,
    }
}

hf_config! {
    /// `MptAttentionConfig` (transformers 5.23), `attn_config` of an `MptConfig`.
    pub(crate) struct MptAttentionConfig {
        clip_qkv: Option<f64> = None,
        softmax_scale: Option<f64> = None,
        qk_ln: bool = false,
        alibi: bool = true,
        alibi_bias_max: f64 = 8.0,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: MptConfig = config.typed()?;
    let a: MptAttentionConfig = match config.value.get("attn_config") {
        Some(v) if v.is_object() => config.sub("attn_config")?.typed()?,
        _ => MptAttentionConfig::default(),
    };
    // transformers' MPT runs without these whatever the config says; a checkpoint
    // that sets them would be run wrongly, so it is refused.
    for (field, set) in [
        ("attn_config.qk_ln", a.qk_ln),
        ("attn_config.alibi", !a.alibi),
        ("no_bias", !g.no_bias),
    ] {
        if set {
            return Err(config.invalid(
                field,
                "is not supported: transformers' MPT has no such layers (ALiBi, no biases, no q/k norms)".into(),
            ));
        }
    }
    let (h, heads) = (g.d_model, g.n_heads);
    let hd = gpt::head_dim(config, "n_heads", h, heads)?;
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    let mut layout = Layout::new(heads, heads, hd, Activation::Gelu);
    if let Some(s) = a.softmax_scale {
        layout.scale = s;
    }
    if a.alibi_bias_max <= 0.0 || !a.alibi_bias_max.is_finite() {
        return Err(config.invalid(
            "attn_config.alibi_bias_max",
            format!("{} is not a positive number", a.alibi_bias_max),
        ));
    }
    layout.alibi = Some(Alibi {
        slopes: decoder::mpt_alibi_slopes(heads, a.alibi_bias_max),
        falcon_scale: None,
    });
    layout.clip_qkv = a.clip_qkv;
    let skeleton = Skeleton {
        positions: None,
        blocks: "blocks",
        final_norm: None,
        ..Skeleton::gpt2(
            g.vocab_size,
            h,
            g.max_seq_len,
            g.n_layers,
            eps,
            g.tie_word_embeddings,
        )
    };
    let i = g.expansion_ratio * h;
    let ln = |w: &Weights, name: &str| -> Result<Norm> {
        Ok(Norm::Layer(LayerNorm::new_no_bias(
            w.pp(name).get(h, "weight")?,
            eps,
        )))
    };
    let layer = |w: &Weights, _| {
        let attn = (
            Qkv::Fused(w.linear_no_bias(h, 3 * h, "attn.Wqkv")?),
            w.linear_no_bias(h, h, "attn.out_proj")?,
        );
        let mlp = Mlp::plain(w, h, i, "ffn.up_proj", "ffn.down_proj", false)?;
        Ok(gpt::block(
            ln(w, "norm_1")?,
            Some(ln(w, "norm_2")?),
            attn,
            mlp,
            false,
        ))
    };
    let mut decoder = gpt::assemble(&skeleton, weights, layout, layer, dtype, device)?;
    let body = if weights.contains("transformer.wte.weight") {
        weights.pp("transformer")
    } else {
        weights.clone()
    };
    decoder.final_norm = Some(ln(&body, "norm_f")?);
    Ok(decoder)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("MptConfig", serde_json::json!(MptConfig::default())),
        (
            "MptAttentionConfig",
            serde_json::json!(MptAttentionConfig::default()),
        ),
    ]
}
