//! XGLM (`XGLMForCausalLM`) over GPT-2's pieces: fixed sinusoidal positions looked up
//! at `position + 2` (fairseq's offset; the table's row `pad_token_id` is zeros),
//! token embeddings scaled by `sqrt(d_model)` (`scale_embedding`), pre-LayerNorm
//! blocks with separate biased q/k/v projections, and its weight names
//! (`model.layers.N.self_attn_layer_norm`, `fc1`, `final_layer_norm`).

use candle_core::{DType, Device, Tensor};
use candle_nn::Embedding;

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layout, LearnedPositions, Mlp, Norm, Qkv};
use super::gpt::{self, Skeleton};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["XGLMForCausalLM", "XGLMModel"],
    load,
    defaults,
};

hf_config! {
    /// `XGLMConfig` (transformers 5.23): the fields the model reads, with its defaults
    /// (and its `attribute_map`'s names as aliases).
    pub(crate) struct XGLMConfig {
        vocab_size: usize = 256008,
        max_position_embeddings: usize = 2048,
        #[serde(alias = "hidden_size")]
        d_model: usize = 1024,
        ffn_dim: usize = 4096,
        #[serde(alias = "num_hidden_layers")]
        num_layers: usize = 24,
        #[serde(alias = "num_attention_heads")]
        attention_heads: usize = 16,
        activation_function: String = "gelu".into(),
        scale_embedding: bool = true,
        pad_token_id: Option<usize> = Some(1),
        tie_word_embeddings: bool = true,
    }
}

/// The fairseq offset of XGLM's positions.
const OFFSET: usize = 2;

/// The most values a computed position table may hold (1 GiB in f32).
const MAX_TABLE: usize = 1 << 28;

/// `XGLMSinusoidalPositionalEmbedding.get_embedding`: `rows` positions of `dim`
/// channels, `[sin | cos]` of `position * exp(-i * ln(10000) / (dim/2 - 1))`, a zero
/// channel appended when `dim` is odd, row `pad` zeroed; in f32 as torch computes it.
pub(crate) fn sinusoids(
    rows: usize,
    dim: usize,
    pad: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let half = dim / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|i| (i as f32 * -step).exp()).collect();
    let mut table = Vec::with_capacity(rows * dim);
    for p in 0..rows {
        let angles = freqs.iter().map(|f| p as f32 * f);
        if Some(p) == pad {
            table.extend(std::iter::repeat_n(0f32, dim));
            continue;
        }
        table.extend(angles.clone().map(f32::sin));
        table.extend(angles.map(f32::cos));
        if dim % 2 == 1 {
            table.push(0.0);
        }
    }
    Ok(Tensor::from_vec(table, (rows, dim), device)?)
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: XGLMConfig = config.typed()?;
    let (h, heads) = (g.d_model, g.attention_heads);
    let hd = gpt::head_dim(config, "attention_heads", h, heads)?;
    if h < 4 {
        return Err(config.invalid(
            "d_model",
            format!("{h} is too small for sinusoidal positions"),
        ));
    }
    let act = config.activation_named("activation_function", &g.activation_function)?;
    let mut layout = Layout::new(heads, heads, hd, act);
    if g.scale_embedding {
        layout.embed_sqrt_scale = Some(h);
    }
    // `nn.LayerNorm`'s default epsilon.
    let eps = 1e-5;
    let skeleton = Skeleton {
        prefix: "model",
        embed: "embed_tokens",
        positions: None,
        blocks: "layers",
        final_norm: Some("layer_norm"),
        ..Skeleton::gpt2(
            g.vocab_size,
            h,
            g.max_position_embeddings,
            g.num_layers,
            eps,
            g.tie_word_embeddings,
        )
    };
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let a = w.pp("self_attn");
        let attn = (
            Qkv::separate(&a, h, h, h, true)?,
            a.linear(h, h, "out_proj")?,
        );
        let mlp = Mlp::plain(w, h, g.ffn_dim, "fc1", "fc2", true)?;
        let (attn_norm, mlp_norm) = (ln("self_attn_layer_norm")?, ln("final_layer_norm")?);
        Ok(gpt::block(attn_norm, Some(mlp_norm), attn, mlp, false))
    };
    let mut decoder = gpt::assemble(&skeleton, weights, layout, layer, dtype, device)?;
    let rows = g
        .max_position_embeddings
        .checked_add(OFFSET)
        .filter(|rows| rows.checked_mul(h).is_some_and(|n| n <= MAX_TABLE))
        .ok_or_else(|| {
            config.invalid(
                "max_position_embeddings",
                format!(
                    "{} positions of {h} channels is more than a position table may hold ({MAX_TABLE} values)",
                    g.max_position_embeddings
                ),
            )
        })?;
    let table = sinusoids(rows, h, g.pad_token_id, device)?.to_dtype(dtype)?;
    decoder.positions = Some(LearnedPositions {
        table: Embedding::new(table, h),
        offset: OFFSET as u32,
    });
    Ok(decoder)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("XGLMConfig", serde_json::json!(XGLMConfig::default()))]
}
