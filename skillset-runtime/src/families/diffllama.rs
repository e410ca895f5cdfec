//! DiffLlama (`DiffLlamaForCausalLM`) as a delta over Llama, as transformers'
//! `modular_diffllama.py` states it: Llama's layer with differential attention
//! ([`Differential`]): each layer's `lambda` from its learned `lambda_q1`, `lambda_k1`,
//! `lambda_q2`, `lambda_k2` and `lambda_init = 0.8 - 0.6 * exp(-0.3 * layer)`.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Differential};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "DiffLlamaForCausalLM",
        "DiffLlamaModel",
        "DiffLlamaForSequenceClassification",
    ],
    load,
    defaults,
};

/// `DiffLlamaConfig`'s defaults (no `mlp_bias`).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "DiffLlamaConfig",
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    rms_norm_eps: Some(1e-5),
    mlp_bias: None,
    ..llama::DEFAULTS
};

/// `exp(a · b)`, the product and sum in f32 as transformers takes them.
fn exp_dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>().exp()
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    if c.num_kv_heads % 2 != 0 || c.num_heads % 2 != 0 {
        return Err(config.invalid(
            "num_key_value_heads",
            format!(
                "is {}: differential attention pairs the heads, so it must be even (transformers refuses it too)",
                c.num_kv_heads
            ),
        ));
    }
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let lambda_init = 0.8 - 0.6 * (-0.3 * i as f64).exp();
        i += 1;
        let mut layer = llama::plain_layer(w, &c)?;
        let a = w.pp("self_attn");
        let vector = |name: &str| -> Result<Vec<f32>> {
            Ok(a.get(c.head_dim, name)?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?)
        };
        let l1 = exp_dot(&vector("lambda_q1")?, &vector("lambda_k1")?);
        let l2 = exp_dot(&vector("lambda_q2")?, &vector("lambda_k2")?);
        // In f32, as the activations take it.
        let lambda = (l1 - l2) + lambda_init as f32;
        layer.differential = Some(Differential {
            lambda: lambda as f64,
            lambda_init,
            eps: c.eps,
        });
        Ok(layer)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
