//! NanoChat (`NanoChatForCausalLM`) as a delta over Llama, as transformers'
//! `modular_nanochat.py` states it:
//!
//! - every norm is an RMSNorm without a weight (Llama 4's `L2Norm`), and one more
//!   runs on the embeddings before the first layer;
//! - Qwen3's attention with those norms on the queries and keys after the rotary
//!   positions, which turn the other way (`rotate_half` gives `(x2, -x1)`: the
//!   rotation by minus the angle, so the tables are built from negated frequencies);
//! - CLIP's plain MLP (`fc1`, `fc2`, ReLU² by default, no biases);
//! - Gemma 2's soft-capped logits (`final_logit_softcapping`).

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Mlp, Norm, QkNorm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["NanoChatForCausalLM", "NanoChatModel"],
    load,
    defaults,
};

/// `NanoChatConfig`'s defaults (no `mlp_bias`: the MLP has no biases).
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "NanoChatConfig",
    vocab_size: 50304,
    hidden_size: 768,
    intermediate_size: 8192,
    num_hidden_layers: 12,
    num_attention_heads: 6,
    hidden_act: "relu2",
    max_position_embeddings: 2048,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `NanoChatConfig`'s own field (transformers 5.23).
    pub(crate) struct NanoChatFields {
        final_logit_softcapping: Option<f64> = Some(15.0),
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    let f: NanoChatFields = config.typed()?;
    llama::check_layer_types(config, None)?;
    if let Some(cap) = f.final_logit_softcapping {
        if !(cap.is_finite() && cap > 0.0) {
            return Err(config.invalid(
                "final_logit_softcapping",
                format!("is {cap}: it must be a positive number or null"),
            ));
        }
    }
    // cos(-a) = cos(a) and sin(-a) = -sin(a): the reversed rotation.
    if c.rope.dynamic.is_some() {
        return Err(config.invalid(
            "rope_parameters",
            "dynamic (NTK) scaling is not supported for NanoChat".into(),
        ));
    }
    let negated = |f: &[f32]| f.iter().map(|f| -f).collect::<Vec<f32>>();
    c.rope.inv_freq = negated(&c.rope.inv_freq);
    if let Some((long, _)) = c.rope.long.as_mut() {
        *long = negated(long);
    }
    let eps = c.eps;
    let unit = move |_: &Weights, _: usize, _: &str| Ok(Norm::RmsUnit { eps });
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mlp = Mlp::plain(&w.pp("mlp"), h, i, "fc1", "fc2", false)?;
        let mut layer = llama::layer(w, &c, unit, attn, mlp)?;
        layer.qk_norm = Some(QkNorm::PerHeadAfterRope(
            Norm::RmsUnit { eps },
            Norm::RmsUnit { eps },
        ));
        Ok(layer)
    };
    let mut layout = c.layout();
    layout.final_softcap = f.final_logit_softcapping;
    let mut decoder = llama::assemble(
        &c,
        weights,
        layout,
        layers,
        Norm::RmsUnit { eps },
        dtype,
        device,
    )?;
    decoder.embed_norm = Some(Norm::RmsUnit { eps });
    Ok(decoder)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(NanoChatFields::default())),
    ]
}
