//! GPTBigCode (`GPTBigCodeForCausalLM`: StarCoder 1, SantaCoder) over GPT-2's pieces:
//! `Linear` layers instead of `Conv1D`, and multi-query attention (`multi_query`: one
//! key/value head shared by every query head).

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layout, Mlp, Norm, Qkv};
use super::gpt::{self, Skeleton};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["GPTBigCodeForCausalLM", "GPTBigCodeModel"],
    load,
    defaults,
};

hf_config! {
    /// `GPTBigCodeConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults.
    pub(crate) struct GPTBigCodeConfig {
        vocab_size: usize = 50257,
        #[serde(alias = "max_position_embeddings")]
        n_positions: usize = 1024,
        #[serde(alias = "hidden_size")]
        n_embd: usize = 768,
        #[serde(alias = "num_hidden_layers")]
        n_layer: usize = 12,
        #[serde(alias = "num_attention_heads")]
        n_head: usize = 12,
        n_inner: Option<usize> = None,
        activation_function: String = "gelu_pytorch_tanh".into(),
        layer_norm_epsilon: f64 = 1e-5,
        scale_attn_weights: bool = true,
        multi_query: bool = true,
        tie_word_embeddings: bool = true,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: GPTBigCodeConfig = config.typed()?;
    let (h, heads) = (g.n_embd, g.n_head);
    let hd = gpt::head_dim(config, "n_head", h, heads)?;
    let i = g.n_inner.unwrap_or(4 * h);
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    let act = config.activation_named("activation_function", &g.activation_function)?;
    let kv_heads = if g.multi_query { 1 } else { heads };
    let mut layout = Layout::new(heads, kv_heads, hd, act);
    if !g.scale_attn_weights {
        layout.scale = 1.0;
    }
    let skeleton = Skeleton::gpt2(
        g.vocab_size,
        h,
        g.n_positions,
        g.n_layer,
        eps,
        g.tie_word_embeddings,
    );
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let c_attn = w.linear(h, h + 2 * kv_heads * hd, "attn.c_attn")?;
        let qkv = if kv_heads == 1 {
            Qkv::Fused(c_attn)
        } else {
            Qkv::FusedPerHead(c_attn)
        };
        let attn = (qkv, w.linear(h, h, "attn.c_proj")?);
        let mlp = Mlp::plain(w, h, i, "mlp.c_fc", "mlp.c_proj", true)?;
        Ok(gpt::block(ln("ln_1")?, Some(ln("ln_2")?), attn, mlp, false))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(
        "GPTBigCodeConfig",
        serde_json::json!(GPTBigCodeConfig::default()),
    )]
}
