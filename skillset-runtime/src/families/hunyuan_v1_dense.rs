//! HunYuan dense (`HunYuanDenseV1ForCausalLM`) as a delta over Llama, as transformers'
//! `modular_hunyuan_v1_dense.py` states it: RMSNorms on each query and key head
//! *after* the rotary positions (`query_layernorm`, `key_layernorm`), an MLP without
//! biases, and the "NTK-alpha" rotary base (`rope_type` dynamic with an `alpha`:
//! `theta * alpha ^ (head_dim / (head_dim - 2))`, fixed, not scaled by the length).

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, QkNorm, RopeFreqs};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "HunYuanDenseV1ForCausalLM",
        "HunYuanDenseV1Model",
        "HunYuanDenseV1ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `HunYuanDenseV1Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "HunYuanDenseV1Config",
    vocab_size: 290943,
    rms_norm_eps: Some(1e-5),
    mlp_bias: None,
    ..llama::DEFAULTS
};

/// The NTK-alpha inverse frequencies, when `rope_parameters` asks for them.
pub(crate) fn ntk_alpha(config: &ConfigReader, c: &llama::Config) -> Result<Option<Vec<f32>>> {
    let p = config
        .value
        .get("rope_parameters")
        .or_else(|| config.value.get("rope_scaling"));
    let get = |k: &str| p.and_then(|p| p.get(k)).filter(|v| !v.is_null());
    let dynamic = get("rope_type")
        .or_else(|| get("type"))
        .and_then(|v| v.as_str())
        == Some("dynamic");
    let Some(alpha) = get("alpha").filter(|_| dynamic) else {
        return Ok(None);
    };
    let alpha = alpha
        .as_f64()
        .filter(|a| *a > 0.0 && a.is_finite())
        .ok_or_else(|| {
            config.invalid(
                "rope_parameters",
                "`alpha` must be a positive number".into(),
            )
        })?;
    let theta = get("rope_theta")
        .or_else(|| config.value.get("rope_theta"))
        .and_then(|v| v.as_f64())
        .unwrap_or(DEFAULTS.rope_theta);
    let dim = c.head_dim as f64;
    if c.head_dim <= 2 {
        return Err(config.invalid(
            "head_dim",
            "must be above 2 for NTK-alpha rotary positions".into(),
        ));
    }
    let base = config.check_rope_theta(theta * alpha.powf(dim / (dim - 2.0)))?;
    Ok(Some(
        (0..c.head_dim / 2)
            .map(|i| (1.0 / base.powf((2 * i) as f64 / dim)) as f32)
            .collect(),
    ))
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    if let Some(inv) = ntk_alpha(config, &c)? {
        c.rope = RopeFreqs::plain(inv);
    }
    llama::check_layer_types(config, None)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let mut layer = llama::plain_layer(w, &c)?;
        let a = w.pp("self_attn");
        layer.qk_norm = Some(QkNorm::PerHeadAfterRope(
            c.norm(&a, c.head_dim, "query_layernorm")?,
            c.norm(&a, c.head_dim, "key_layernorm")?,
        ));
        Ok(layer)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![(DEFAULTS.class, serde_json::json!(DEFAULTS))]
}
