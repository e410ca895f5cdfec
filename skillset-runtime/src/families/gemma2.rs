//! Gemma 2 (`Gemma2ForCausalLM`) as a delta over Gemma, as transformers'
//! `modular_gemma2.py` states it: "sandwich" norms (RMSNorms before and after both
//! attention and MLP), soft-capped attention scores and final logits
//! (`attn_logit_softcapping`, `final_logit_softcapping`: `cap * tanh(x / cap)`), scores
//! scaled by `query_pre_attn_scalar ** -0.5`, and sliding-window layers alternating with
//! global ones (`layer_types`; absent: even layers within the window).

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layer, Layout, Norm};
use super::gemma;
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Gemma2ForCausalLM",
        "Gemma2Model",
        "Gemma2ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Gemma2Config`'s defaults (its activation field is `hidden_activation`, read
/// through [`Gemma2Fields`]).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Gemma2Config",
    hidden_size: 2304,
    intermediate_size: 9216,
    num_hidden_layers: 26,
    num_attention_heads: 8,
    num_key_value_heads: Some(4),
    ..gemma::DEFAULTS
};

hf_config! {
    /// The fields `Gemma2Config` adds to Gemma's (transformers 5.23); Gemma 3's text
    /// config has them too, with other defaults.
    pub(crate) struct Gemma2Fields {
        hidden_activation: String = "gelu_pytorch_tanh".into(),
        query_pre_attn_scalar: f64 = 256.0,
        sliding_window: Option<usize> = Some(4096),
        attn_logit_softcapping: Option<f64> = Some(50.0),
        final_logit_softcapping: Option<f64> = Some(30.0),
    }
}

/// Config, layout and norm maker shared by Gemma 2 and its successors: the activation
/// from `hidden_activation`, the window over the layers `layer_types` (or
/// `default_windowed`) marks, the score scale and the soft-caps.
pub(crate) fn read(
    config: &ConfigReader,
    d: &Defaults,
    f: &Gemma2Fields,
    default_windowed: impl Fn(usize) -> bool,
) -> Result<(llama::Config, Layout)> {
    let mut c = llama::Config::read(config, d)?;
    c.act = config.activation_named("hidden_activation", &f.hidden_activation)?;
    c.sliding_window = f.sliding_window;
    c.window_layers(config, default_windowed)?;
    let mut layout = c.layout();
    layout.embed_sqrt_scale = Some(c.hidden_size);
    if f.query_pre_attn_scalar.is_nan() || f.query_pre_attn_scalar <= 0.0 {
        return Err(config.invalid(
            "query_pre_attn_scalar",
            format!("is {}; it must be positive", f.query_pre_attn_scalar),
        ));
    }
    layout.scale = f.query_pre_attn_scalar.powf(-0.5);
    for (key, cap) in [
        ("attn_logit_softcapping", f.attn_logit_softcapping),
        ("final_logit_softcapping", f.final_logit_softcapping),
    ] {
        if cap.is_some_and(|x| !(x > 0.0 && x.is_finite())) {
            return Err(config.invalid(key, "must be positive and finite".into()));
        }
    }
    layout.attn_softcap = f.attn_logit_softcapping;
    layout.final_softcap = f.final_logit_softcapping;
    Ok((c, layout))
}

/// Gemma 2's layer: Gemma's attention and MLP between four (1 + weight) RMSNorms.
pub(crate) fn layer(w: &Weights, c: &llama::Config) -> Result<Layer> {
    let norm = |name: &str| Norm::rms_f32(w, c.hidden_size, c.eps, name, 1.0);
    let attn = llama::attention(&w.pp("self_attn"), c, c.attention_bias, c.attention_bias)?;
    let mut layer = llama::layer(
        w,
        c,
        |w, n, name| Norm::rms_f32(w, n, c.eps, name, 1.0),
        attn,
        llama::mlp(&w.pp("mlp"), c)?,
    )?;
    layer.attn_out_norm = Some(norm("post_attention_layernorm")?);
    layer.mlp_norm = Some(norm("pre_feedforward_layernorm")?);
    layer.mlp_out_norm = Some(norm("post_feedforward_layernorm")?);
    Ok(layer)
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let f: Gemma2Fields = config.typed()?;
    let (c, layout) = read(config, &DEFAULTS, &f, |i| (i + 1) % 2 != 0)?;
    let final_norm = Norm::rms_f32(&weights.pp("model"), c.hidden_size, c.eps, "norm", 1.0)?;
    let layers = |w: &Weights| layer(w, &c);
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// `Defaults` as config.json fields, the activation under Gemma 2's own name.
pub(crate) fn stated(d: &Defaults) -> serde_json::Value {
    let mut v = serde_json::json!(d);
    if let Some(o) = v.as_object_mut() {
        if let Some(act) = o.remove("hidden_act") {
            o.insert("hidden_activation".into(), act);
        }
    }
    v
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, stated(&DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(Gemma2Fields::default())),
    ]
}
