//! GPT-J (`GPTJForCausalLM`) over GPT-2's pieces: one LayerNorm feeding attention and
//! MLP in parallel, q/k/v projections without biases, interleaved rotary positions on
//! the first `rotary_dim` dims of each head, no learned positions, and an output head
//! with a bias.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layout, Mlp, Norm, Qkv, Residual};
use super::gpt::{self, Skeleton};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["GPTJForCausalLM", "GPTJModel"],
    load,
    defaults,
};

hf_config! {
    /// `GPTJConfig` (transformers 5.23): the fields the model reads, with its defaults.
    pub(crate) struct GPTJConfig {
        vocab_size: usize = 50400,
        #[serde(alias = "max_position_embeddings")]
        n_positions: usize = 2048,
        #[serde(alias = "hidden_size")]
        n_embd: usize = 4096,
        #[serde(alias = "num_hidden_layers")]
        n_layer: usize = 28,
        #[serde(alias = "num_attention_heads")]
        n_head: usize = 16,
        rotary_dim: Option<usize> = Some(64),
        n_inner: Option<usize> = None,
        activation_function: String = "gelu_new".into(),
        layer_norm_epsilon: f64 = 1e-5,
        tie_word_embeddings: bool = false,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    build(config, weights, dtype, device, |a, h| {
        Qkv::separate(a, h, h, h, false)
    })
}

/// GPT-J with its q/k/v projections read by `qkv(attn weights, hidden size)`
/// (CodeGen fuses them).
pub(crate) fn build(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
    qkv: impl Fn(&Weights, usize) -> Result<Qkv>,
) -> Result<Decoder> {
    let g: GPTJConfig = config.typed()?;
    let (h, heads) = (g.n_embd, g.n_head);
    let hd = gpt::head_dim(config, "n_head", h, heads)?;
    let i = g.n_inner.unwrap_or(4 * h);
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    let act = config.activation_named("activation_function", &g.activation_function)?;
    let mut layout = Layout::new(heads, heads, hd, act);
    // `rotary_dim: null` rotates the whole head.
    let rotary = g.rotary_dim.unwrap_or(hd);
    layout.rope = Some(gpt::rope(config, hd, rotary, 10000.0, true)?);
    layout.residual = Residual::Parallel;
    let skeleton = Skeleton {
        positions: None,
        head_bias: true,
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
        let a = w.pp("attn");
        let attn = (qkv(&a, h)?, a.linear_no_bias(h, h, "out_proj")?);
        let mlp = Mlp::plain(w, h, i, "mlp.fc_in", "mlp.fc_out", true)?;
        Ok(gpt::block(
            Norm::layer(w, h, eps, "ln_1")?,
            None,
            attn,
            mlp,
            false,
        ))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("GPTJConfig", serde_json::json!(GPTJConfig::default()))]
}
