//! VaultGemma (`VaultGemmaForCausalLM`) as a delta over Gemma 2, as transformers'
//! `modular_vaultgemma.py` states it: no norms after the sublayers
//! (`post_attention_layernorm`, `post_feedforward_layernorm` are deleted), only the two
//! before them.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Layer, LayerRope, Norm};
use super::gemma2::{self, Gemma2Fields};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["VaultGemmaForCausalLM", "VaultGemmaModel"],
    load,
    defaults,
};

/// `VaultGemmaConfig`'s defaults: Gemma 2's.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "VaultGemmaConfig",
    ..gemma2::DEFAULTS
};

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let f: Gemma2Fields = config.typed()?;
    let (c, layout) = gemma2::read(config, &DEFAULTS, &f, |i| (i + 1) % 2 != 0)?;
    let final_norm = Norm::rms_f32(&weights.pp("model"), c.hidden_size, c.eps, "norm", 1.0)?;
    let layers = |w: &Weights| {
        let norm = |name: &str| Norm::rms_f32(w, c.hidden_size, c.eps, name, 1.0);
        let (qkv, out) =
            llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        Ok(Layer {
            attn_norm: Some(norm("input_layernorm")?),
            qkv,
            qk_norm: None,
            out,
            attn_out_norm: None,
            mlp_norm: Some(norm("pre_feedforward_layernorm")?),
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
        (DEFAULTS.class, gemma2::stated(&DEFAULTS)),
        (DEFAULTS.class, serde_json::json!(Gemma2Fields::default())),
    ]
}
