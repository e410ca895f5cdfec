//! StableLM (`StableLmForCausalLM`: StableLM-3B-4E1T, StableLM 2) as a delta over
//! Llama: LayerNorms with biases instead of RMSNorms, rotary positions on a quarter of
//! each head (`partial_rotary_factor`), q/k/v biases when `use_qkv_bias`, no bias on
//! the output projection, optional per-head LayerNorms without bias on queries and
//! keys (`qk_layernorm`: one norm per head, `q_layernorm.norms.N`), and attention and
//! MLP in parallel from the one input norm when `use_parallel_residual`.

use candle_core::{DType, Device, Tensor};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layer, LayerRope, Norm, QkNorm, Residual};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "StableLmForCausalLM",
        "StableLmModel",
        "StableLmForSequenceClassification",
    ],
    load,
    defaults,
};

/// `StableLmConfig`'s defaults (its epsilon and biases are in [`StableLmFields`]).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "StableLmConfig",
    vocab_size: 50304,
    hidden_size: 2560,
    intermediate_size: 6912,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: Some(32),
    max_position_embeddings: 4096,
    rms_norm_eps: None,
    partial_rotary_factor: 0.25,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// The fields `StableLmConfig` adds (transformers 5.23).
    pub(crate) struct StableLmFields {
        layer_norm_eps: f64 = 1e-5,
        use_qkv_bias: bool = false,
        qk_layernorm: bool = false,
        use_parallel_residual: bool = false,
    }
}

/// `StableLmLayerNormPerHead` `name`: one LayerNorm without bias per head, stacked as
/// `[heads, 1, head_dim]` to broadcast over `[batch, heads, t, head_dim]`.
fn per_head(w: &Weights, heads: usize, hd: usize, eps: f64, name: &str) -> Result<Norm> {
    let norms = w.pp(name).pp("norms");
    let weights = (0..heads)
        .map(|i| norms.pp(i.to_string()).get(hd, "weight"))
        .collect::<Result<Vec<_>>>()?;
    Ok(Norm::Centered {
        weight: Tensor::stack(&weights, 0)?
            .reshape((heads, 1, hd))?
            .to_dtype(DType::F32)?,
        eps,
    })
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let f: StableLmFields = config.typed()?;
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let eps = config.check_eps("layer_norm_eps", f.layer_norm_eps)?;
    let h = c.hidden_size;
    let final_norm = Norm::layer(&weights.pp("model"), h, eps, "norm")?;
    let mut layout = c.layout();
    if f.use_parallel_residual {
        layout.residual = Residual::Parallel;
    }
    let layers = |w: &Weights| {
        let a = w.pp("self_attn");
        let (qkv, out) = llama::attention(&a, &c, f.use_qkv_bias, false)?;
        let qk_norm = if f.qk_layernorm {
            let hd = c.head_dim;
            Some(QkNorm::PerHead(
                per_head(&a, c.num_heads, hd, eps, "q_layernorm")?,
                per_head(&a, c.num_kv_heads, hd, eps, "k_layernorm")?,
            ))
        } else {
            None
        };
        // In parallel, the MLP reads the input norm (no `post_attention_layernorm`).
        let mlp_norm = if f.use_parallel_residual {
            None
        } else {
            Some(Norm::layer(w, h, eps, "post_attention_layernorm")?)
        };
        Ok(Layer {
            attn_norm: Some(Norm::layer(w, h, eps, "input_layernorm")?),
            qkv,
            qk_norm,
            out,
            attn_out_norm: None,
            mlp_norm,
            mlp: llama::mlp(&w.pp("mlp"), &c)?,
            mlp_out_norm: None,
            windowed: true,
            rope: LayerRope::Global,
            sinks: None,
            out_gate: None,
            differential: None,
        })
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(StableLmFields::default())),
    ]
}
