//! StarCoder2 (`Starcoder2ForCausalLM`) as a delta over Mistral, as transformers'
//! `modular_starcoder2.py` states it: LayerNorms with biases (`norm_epsilon`), biases
//! on every projection (`use_bias`) and a plain GELU (tanh) MLP (`c_fc`, `c_proj`),
//! with Mistral's optional sliding window over every layer.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Mlp, Norm};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Starcoder2ForCausalLM",
        "Starcoder2Model",
        "Starcoder2ForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Starcoder2Config`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Starcoder2Config",
    vocab_size: 49152,
    hidden_size: 3072,
    intermediate_size: 12288,
    num_hidden_layers: 30,
    num_attention_heads: 24,
    num_key_value_heads: Some(2),
    hidden_act: "gelu_pytorch_tanh",
    max_position_embeddings: 4096,
    rms_norm_eps: None,
    tie_word_embeddings: true,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Starcoder2Config`'s own fields (transformers 5.23).
    pub(crate) struct Starcoder2Fields {
        norm_epsilon: f64 = 1e-5,
        use_bias: bool = true,
        sliding_window: Option<usize> = None,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DEFAULTS)?;
    let f: Starcoder2Fields = config.typed()?;
    let eps = config.check_eps("norm_epsilon", f.norm_epsilon)?;
    c.sliding_window = f.sliding_window;
    llama::check_layer_types(config, c.sliding_window)?;
    let norm = |w: &Weights, n: usize, name: &str| Norm::layer(w, n, eps, name);
    let final_norm = norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, f.use_bias, f.use_bias)?;
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mlp = Mlp::plain(&w.pp("mlp"), h, i, "c_fc", "c_proj", f.use_bias)?;
        llama::layer(w, &c, norm, attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (DEFAULTS.class, serde_json::json!(DEFAULTS)),
        (
            DEFAULTS.class,
            serde_json::json!(Starcoder2Fields::default()),
        ),
    ]
}
