//! BLOOM (`BloomForCausalLM`) over GPT-2's pieces: ALiBi instead of positions (a bias
//! per head growing with the distance to each key), a LayerNorm on the word
//! embeddings, a fused q/k/v projection laid out per head (`[head: q k v]`, as
//! GPT-NeoX), a tanh-GELU MLP, and its own weight names (`word_embeddings`,
//! `self_attention.query_key_value`). Real checkpoints (bigscience/bloom-560m) keep
//! the body at the root, `save_pretrained` under `transformer.`: both load.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{self, linear, Alibi, Decoder, DecoderFile, Layout, Mlp, Norm, Qkv};
use super::gpt::{self, Skeleton};
use super::nn::{Activation, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["BloomForCausalLM", "BloomModel"],
    load,
    defaults,
};

hf_config! {
    /// `BloomConfig` (transformers 5.23): the fields the model reads, with its defaults
    /// (and its `attribute_map`'s names as aliases; an `n_embed` of older configs wins
    /// over `hidden_size`, as `__post_init__` takes it).
    pub(crate) struct BloomConfig {
        vocab_size: usize = 250880,
        hidden_size: usize = 64,
        #[serde(alias = "num_hidden_layers")]
        n_layer: usize = 2,
        #[serde(alias = "num_attention_heads")]
        n_head: usize = 8,
        layer_norm_epsilon: f64 = 1e-5,
        apply_residual_connection_post_layernorm: bool = false,
        tie_word_embeddings: bool = true,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: BloomConfig = config.typed()?;
    if g.apply_residual_connection_post_layernorm {
        return Err(config.invalid(
            "apply_residual_connection_post_layernorm",
            "true is not supported (no released BLOOM checkpoint sets it)".into(),
        ));
    }
    let h = match config.value.get("n_embed").filter(|v| !v.is_null()) {
        Some(_) => config.usize("n_embed")?,
        None => g.hidden_size,
    };
    let heads = g.n_head;
    let hd = gpt::head_dim(config, "n_head", h, heads)?;
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    // `bloom_gelu_forward`: the tanh approximation.
    let mut layout = Layout::new(heads, heads, hd, Activation::GeluTanh);
    layout.alibi = Some(Alibi {
        slopes: decoder::alibi_slopes(heads),
        falcon_scale: None,
    });
    let skeleton = Skeleton {
        embed: "word_embeddings",
        embed_norm: Some("word_embeddings_layernorm"),
        positions: None,
        ..Skeleton::gpt2(
            g.vocab_size,
            h,
            usize::MAX,
            g.n_layer,
            eps,
            g.tie_word_embeddings,
        )
    };
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let a = w.pp("self_attention");
        let attn = (
            Qkv::FusedPerHead(linear(&a, h, 3 * h, "query_key_value", true)?),
            linear(&a, h, h, "dense", true)?,
        );
        let mlp = Mlp::plain(w, h, 4 * h, "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", true)?;
        let (attn_norm, mlp_norm) = (ln("input_layernorm")?, ln("post_attention_layernorm")?);
        Ok(gpt::block(attn_norm, Some(mlp_norm), attn, mlp, false))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("BloomConfig", serde_json::json!(BloomConfig::default()))]
}
