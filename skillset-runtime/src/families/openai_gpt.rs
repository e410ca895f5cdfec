//! OpenAI GPT (`OpenAIGPTLMHeadModel`, GPT-1) as a delta over GPT-2, as transformers'
//! `modeling_openai.py` states it: GPT-2's `Conv1D` weights and learned positions under
//! other names (`tokens_embed`, `positions_embed`), post-norm blocks
//! (`ln_1(x + attn(x))`, then `ln_2(n + mlp(n))`), no final LayerNorm, a tied head
//! without bias, and its own activation names (`afn`: "gelu" is the tanh
//! approximation). transformers runs it without a KV cache, recomputing the whole
//! sequence at every step; the cache here gives the same logits.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layout, Mlp, Norm, Qkv, Residual};
use super::gpt::{self, conv1d, Skeleton};
use super::nn::{Activation, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["OpenAIGPTLMHeadModel", "OpenAIGPTModel"],
    load,
    defaults,
};

hf_config! {
    /// `OpenAIGPTConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults (and its `attribute_map`'s names as aliases).
    pub(crate) struct OpenAIGPTConfig {
        vocab_size: usize = 40478,
        #[serde(alias = "max_position_embeddings")]
        n_positions: usize = 512,
        #[serde(alias = "hidden_size")]
        n_embd: usize = 768,
        #[serde(alias = "num_hidden_layers")]
        n_layer: usize = 12,
        #[serde(alias = "num_attention_heads")]
        n_head: usize = 12,
        afn: String = "gelu".into(),
        layer_norm_epsilon: f64 = 1e-5,
        tie_word_embeddings: bool = true,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: OpenAIGPTConfig = config.typed()?;
    let (h, heads) = (g.n_embd, g.n_head);
    let hd = gpt::head_dim(config, "n_head", h, heads)?;
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    // The model's own `ACT_FNS`, not transformers' `ACT2FN`.
    let act = match g.afn.as_str() {
        "gelu" => Activation::GeluTanh,
        "relu" => Activation::Relu,
        "silu" | "swish" => Activation::Silu,
        other => {
            return Err(config.invalid(
                "afn",
                format!(
                    "`{other}` is not one of OpenAI GPT's activations (gelu, relu, silu, swish)"
                ),
            ))
        }
    };
    let mut layout = Layout::new(heads, heads, hd, act);
    layout.residual = Residual::PostNorm;
    let skeleton = Skeleton {
        embed: "tokens_embed",
        positions: Some(("positions_embed", 0)),
        final_norm: None,
        ..Skeleton::gpt2(
            g.vocab_size,
            h,
            g.n_positions,
            g.n_layer,
            eps,
            g.tie_word_embeddings,
        )
    };
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let attn = (
            Qkv::Fused(conv1d(w, h, 3 * h, "attn.c_attn")?),
            conv1d(w, h, h, "attn.c_proj")?,
        );
        let mlp = Mlp::Plain {
            fc_in: conv1d(w, h, 4 * h, "mlp.c_fc")?,
            fc_out: conv1d(w, 4 * h, h, "mlp.c_proj")?,
        };
        Ok(gpt::block(ln("ln_1")?, Some(ln("ln_2")?), attn, mlp, false))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(
        "OpenAIGPTConfig",
        serde_json::json!(OpenAIGPTConfig::default()),
    )]
}
