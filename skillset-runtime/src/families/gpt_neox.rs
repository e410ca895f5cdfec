//! GPT-NeoX (`GPTNeoXForCausalLM`: Pythia and others) over GPT-2's pieces: a fused
//! q/k/v projection laid out per head, rotary positions on part of each head
//! (`partial_rotary_factor`, rotate-half), attention and MLP in parallel
//! (`use_parallel_residual`) or in sequence, no learned positions, and its own weight
//! names (`gpt_neox.embed_in`, `embed_out`).

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
    classes: &["GPTNeoXForCausalLM", "GPTNeoXModel"],
    load,
    defaults,
};

hf_config! {
    /// `GPTNeoXConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults (the rotary fields are read from `rope_parameters`).
    pub(crate) struct GPTNeoXConfig {
        vocab_size: usize = 50432,
        hidden_size: usize = 6144,
        num_hidden_layers: usize = 44,
        num_attention_heads: usize = 64,
        intermediate_size: usize = 24576,
        hidden_act: String = "gelu".into(),
        max_position_embeddings: usize = 2048,
        layer_norm_eps: f64 = 1e-5,
        tie_word_embeddings: bool = false,
        use_parallel_residual: bool = true,
        attention_bias: bool = true,
    }
}

/// A rotary field from `rope_parameters`, or at the top under its 4.x names.
fn rope_field(c: &ConfigReader, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| {
        c.value
            .get("rope_parameters")
            .and_then(|p| p.get(*k))
            .or_else(|| c.value.get(*k))
            .and_then(|v| v.as_f64())
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: GPTNeoXConfig = config.typed()?;
    let (h, heads, i) = (g.hidden_size, g.num_attention_heads, g.intermediate_size);
    let hd = gpt::head_dim(config, "num_attention_heads", h, heads)?;
    let eps = config.check_eps("layer_norm_eps", g.layer_norm_eps)?;
    let act = config.activation_named("hidden_act", &g.hidden_act)?;
    let mut layout = Layout::new(heads, heads, hd, act);
    let partial = rope_field(config, &["partial_rotary_factor", "rotary_pct"]).unwrap_or(0.25);
    let theta = rope_field(config, &["rope_theta", "rotary_emb_base"]).unwrap_or(10000.0);
    layout.rope = Some(gpt::rope(
        config,
        hd,
        (hd as f64 * partial) as usize,
        theta,
        false,
    )?);
    if g.use_parallel_residual {
        layout.residual = Residual::Parallel;
    }
    let skeleton = Skeleton {
        prefix: "gpt_neox",
        embed: "embed_in",
        positions: None,
        blocks: "layers",
        final_norm: Some("final_layer_norm"),
        head: "embed_out",
        ..Skeleton::gpt2(
            g.vocab_size,
            h,
            g.max_position_embeddings,
            g.num_hidden_layers,
            eps,
            g.tie_word_embeddings,
        )
    };
    let bias = g.attention_bias;
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let a = w.pp("attention");
        let attn = (
            Qkv::FusedPerHead(linear(&a, h, 3 * h, "query_key_value", bias)?),
            linear(&a, h, h, "dense", bias)?,
        );
        let mlp = Mlp::plain(w, h, i, "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", true)?;
        let (attn_norm, mlp_norm) = (ln("input_layernorm")?, ln("post_attention_layernorm")?);
        Ok(gpt::block(attn_norm, Some(mlp_norm), attn, mlp, false))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("GPTNeoXConfig", serde_json::json!(GPTNeoXConfig::default()))]
}
