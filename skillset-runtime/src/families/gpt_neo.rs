//! GPT-Neo (`GPTNeoForCausalLM`) over GPT-2's pieces: separate q/k/v projections
//! without biases, unscaled attention scores, and layers alternating global and local
//! attention (`attention_types`, expanded to one kind per layer as `GPTNeoConfig`
//! does; local layers attend within `window_size`).

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
    classes: &["GPTNeoForCausalLM", "GPTNeoModel"],
    load,
    defaults,
};

hf_config! {
    /// `GPTNeoConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults.
    pub(crate) struct GPTNeoConfig {
        vocab_size: usize = 50257,
        max_position_embeddings: usize = 2048,
        hidden_size: usize = 2048,
        #[serde(alias = "num_hidden_layers")]
        num_layers: usize = 24,
        /// Kinds of attention and how often each pattern repeats.
        attention_types: Vec<(Vec<String>, usize)> =
            vec![(vec!["global".into(), "local".into()], 12)],
        #[serde(alias = "num_attention_heads")]
        num_heads: usize = 16,
        intermediate_size: Option<usize> = None,
        window_size: usize = 256,
        activation_function: String = "gelu_new".into(),
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
    let g: GPTNeoConfig = config.typed()?;
    let (h, heads) = (g.hidden_size, g.num_heads);
    let hd = gpt::head_dim(config, "num_heads", h, heads)?;
    let i = g.intermediate_size.unwrap_or(4 * h);
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    // `expand_attention_types_params`: each pattern repeated its count of times.
    let mut local = Vec::new();
    for (kinds, times) in &g.attention_types {
        for _ in 0..*times {
            if local.len() > g.num_layers {
                break;
            }
            local.extend(kinds.iter().map(|k| k == "local"));
        }
    }
    if local.len() != g.num_layers {
        return Err(config.invalid(
            "attention_types",
            format!(
                "gives {} layers, the model has num_layers {}",
                local.len(),
                g.num_layers
            ),
        ));
    }
    let act = config.activation_named("activation_function", &g.activation_function)?;
    let mut layout = Layout::new(heads, heads, hd, act);
    // GPT-Neo does not scale its attention scores.
    layout.scale = 1.0;
    layout.sliding_window = Some(g.window_size);
    let skeleton = Skeleton::gpt2(
        g.vocab_size,
        h,
        g.max_position_embeddings,
        g.num_layers,
        eps,
        g.tie_word_embeddings,
    );
    let layer = |w: &Weights, index: usize| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let a = w.pp("attn.attention");
        let attn = (
            Qkv::separate(&a, h, h, h, false)?,
            a.linear(h, h, "out_proj")?,
        );
        let mlp = Mlp::plain(w, h, i, "mlp.c_fc", "mlp.c_proj", true)?;
        Ok(gpt::block(
            ln("ln_1")?,
            Some(ln("ln_2")?),
            attn,
            mlp,
            local[index],
        ))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("GPTNeoConfig", serde_json::json!(GPTNeoConfig::default()))]
}
