//! OPT (`OPTForCausalLM`) over GPT-2's pieces: learned positions offset by 2, ReLU,
//! biases where `enable_bias` says, LayerNorms before the sublayers or after them
//! (`do_layer_norm_before: false`, OPT-350m, which has no final LayerNorm), and
//! projections between the embedding width (`word_embed_proj_dim`) and the hidden
//! size where they differ.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{linear, Decoder, DecoderFile, Layout, Mlp, Norm, Qkv, Residual};
use super::gpt::{self, Skeleton};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["OPTForCausalLM", "OPTModel"],
    load,
    defaults,
};

hf_config! {
    /// `OPTConfig` (transformers 5.23): the fields the model reads, with its defaults.
    pub(crate) struct OPTConfig {
        vocab_size: usize = 50272,
        hidden_size: usize = 768,
        num_hidden_layers: usize = 12,
        ffn_dim: usize = 3072,
        max_position_embeddings: usize = 2048,
        do_layer_norm_before: bool = true,
        _remove_final_layer_norm: bool = false,
        /// `None`: `hidden_size`.
        word_embed_proj_dim: Option<usize> = None,
        num_attention_heads: usize = 12,
        activation_function: String = "relu".into(),
        enable_bias: bool = true,
        layer_norm_elementwise_affine: bool = true,
        tie_word_embeddings: bool = true,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: OPTConfig = config.typed()?;
    let (h, heads, i) = (g.hidden_size, g.num_attention_heads, g.ffn_dim);
    let hd = gpt::head_dim(config, "num_attention_heads", h, heads)?;
    if !g.layer_norm_elementwise_affine {
        return Err(config.invalid(
            "layer_norm_elementwise_affine",
            "OPT LayerNorms without weights are not supported".into(),
        ));
    }
    // OPT's LayerNorms take PyTorch's default epsilon.
    let eps = 1e-5;
    let act = config.activation_named("activation_function", &g.activation_function)?;
    let mut layout = Layout::new(heads, heads, hd, act);
    if !g.do_layer_norm_before {
        layout.residual = Residual::PostNorm;
    }
    let skeleton = Skeleton {
        prefix: "model.decoder",
        bare: Some("decoder"),
        embed: "embed_tokens",
        positions: Some(("embed_positions", 2)),
        blocks: "layers",
        final_norm: (g.do_layer_norm_before && !g._remove_final_layer_norm)
            .then_some("final_layer_norm"),
        embed_dim: g.word_embed_proj_dim.unwrap_or(h),
        ..Skeleton::gpt2(
            g.vocab_size,
            h,
            g.max_position_embeddings,
            g.num_hidden_layers,
            eps,
            g.tie_word_embeddings,
        )
    };
    let bias = g.enable_bias;
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let a = w.pp("self_attn");
        let attn = (
            Qkv::separate(&a, h, h, h, bias)?,
            linear(&a, h, h, "out_proj", bias)?,
        );
        let mlp = Mlp::plain(w, h, i, "fc1", "fc2", bias)?;
        let (attn_norm, mlp_norm) = (ln("self_attn_layer_norm")?, ln("final_layer_norm")?);
        Ok(gpt::block(attn_norm, Some(mlp_norm), attn, mlp, false))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("OPTConfig", serde_json::json!(OPTConfig::default()))]
}
