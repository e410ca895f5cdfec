//! Cohere (`CohereForCausalLM`, Command-R) as a delta over Llama, as transformers'
//! `modular_cohere.py` states it: one LayerNorm without bias (`CohereLayerNorm`, in
//! f32) feeding attention and MLP in parallel, rotary positions on interleaved channel
//! pairs, optional LayerNorms on the queries and keys with a weight per head
//! (`use_qk_norm`), and logits multiplied by `logit_scale`.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layer, LayerRope, Layout, Mlp, Norm, QkNorm, Residual};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["CohereForCausalLM", "CohereModel"],
    load,
    defaults,
};

/// `CohereConfig`'s defaults (its epsilon is `layer_norm_eps`, in [`CohereFields`]).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "CohereConfig",
    vocab_size: 256000,
    hidden_size: 8192,
    intermediate_size: 22528,
    num_hidden_layers: 40,
    num_attention_heads: 64,
    max_position_embeddings: 8192,
    rms_norm_eps: None,
    rope_theta: 500000.0,
    tie_word_embeddings: true,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// The fields `CohereConfig` adds (transformers 5.23); Cohere 2 has them too.
    pub(crate) struct CohereFields {
        layer_norm_eps: f64 = 1e-5,
        logit_scale: f64 = 0.0625,
        use_qk_norm: bool = false,
    }
}

/// `CohereLayerNorm` `name` of `size` (`[heads, head_dim]` per head when `heads`).
pub(crate) fn norm(
    w: &Weights,
    size: usize,
    heads: Option<usize>,
    eps: f64,
    name: &str,
) -> Result<Norm> {
    let w = w.pp(name);
    let weight = match heads {
        Some(h) => w.get((h, size), "weight")?.reshape((h, 1, size))?,
        None => w.get(size, "weight")?,
    };
    Ok(Norm::Centered {
        weight: weight.to_dtype(DType::F32)?,
        eps,
    })
}

/// Cohere's config and parallel layout, with interleaved rotary pairs and the logit
/// scale.
pub(crate) fn read(
    config: &ConfigReader,
    d: &Defaults,
    f: &CohereFields,
) -> Result<(llama::Config, Layout, f64)> {
    let c = llama::Config::read(config, d)?;
    let eps = config.check_eps("layer_norm_eps", f.layer_norm_eps)?;
    if !f.logit_scale.is_finite() {
        return Err(config.invalid("logit_scale", "is not finite".into()));
    }
    let mut layout = c.layout();
    layout.residual = Residual::Parallel;
    layout.logit_scale = f.logit_scale;
    if let Some(rope) = layout.rope.as_mut() {
        rope.interleaved = true;
    }
    Ok((c, layout, eps))
}

/// Cohere's parallel layer: one input norm, Llama's attention and MLP.
pub(crate) fn layer(
    w: &Weights,
    c: &llama::Config,
    eps: f64,
    qk_norm: bool,
    mlp: Mlp,
) -> Result<Layer> {
    let a = w.pp("self_attn");
    let (qkv, out) = llama::attention(&a, c, c.attention_bias, c.attention_bias)?;
    let qk_norm = if qk_norm {
        Some(QkNorm::PerHead(
            norm(&a, c.head_dim, Some(c.num_heads), eps, "q_norm")?,
            norm(&a, c.head_dim, Some(c.num_kv_heads), eps, "k_norm")?,
        ))
    } else {
        None
    };
    Ok(Layer {
        attn_norm: Some(norm(w, c.hidden_size, None, eps, "input_layernorm")?),
        qkv,
        qk_norm,
        out,
        attn_out_norm: None,
        mlp_norm: None,
        mlp,
        mlp_out_norm: None,
        windowed: true,
        rope: LayerRope::Global,
        sinks: None,
        out_gate: None,
        differential: None,
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let f: CohereFields = config.typed()?;
    let (c, layout, eps) = read(config, &DEFAULTS, &f)?;
    llama::check_layer_types(config, None)?;
    let final_norm = norm(&weights.pp("model"), c.hidden_size, None, eps, "norm")?;
    let layers = |w: &Weights| layer(w, &c, eps, f.use_qk_norm, llama::mlp(&w.pp("mlp"), &c)?);
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(CohereFields::default())),
    ]
}
