//! Phi (`PhiForCausalLM`: Phi-1, Phi-1.5, Phi-2), a GPT-style decoder stated on the
//! layer library alone: one LayerNorm feeding attention and MLP in parallel (GPT-J's
//! residual), q/k/v and output projections with biases, rotary positions on the first
//! half of each head (rotate-half, as GPT-NeoX), a GELU MLP (`fc1`, `fc2`), a final
//! LayerNorm and an output head with a bias. transformers' `modeling_phi.py`; the
//! config is read as a typed `PhiConfig` with transformers' defaults.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{
    self, Decoder, DecoderFile, Layer, LayerRope, Layout, Mlp, Norm, Qkv, Residual, Rope,
};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["PhiForCausalLM", "PhiModel", "PhiForSequenceClassification"],
    load,
    defaults,
};

hf_config! {
    /// `PhiConfig` (transformers 5.23): the fields the model reads, with its defaults.
    pub(crate) struct PhiConfig {
        vocab_size: usize = 51200,
        hidden_size: usize = 2048,
        intermediate_size: usize = 8192,
        num_hidden_layers: usize = 24,
        num_attention_heads: usize = 32,
        num_key_value_heads: Option<usize> = None,
        head_dim: Option<usize> = None,
        hidden_act: String = "gelu_new".into(),
        max_position_embeddings: usize = 2048,
        layer_norm_eps: f64 = 1e-5,
        tie_word_embeddings: bool = false,
        qk_layernorm: bool = false,
    }
}

pub(crate) fn load(
    c: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let p: PhiConfig = c.typed()?;
    let hidden = p.hidden_size;
    let (heads, kv_heads, hd) = decoder::heads(
        c,
        hidden,
        p.num_attention_heads,
        p.num_key_value_heads,
        p.head_dim,
    )?;
    let (inner, eps) = (p.intermediate_size, p.layer_norm_eps);
    if p.qk_layernorm {
        return Err(c.invalid(
            "qk_layernorm",
            "q/k LayerNorms are not supported (no Phi checkpoint uses them)".into(),
        ));
    }
    let act = c.activation_named("hidden_act", &p.hidden_act)?;
    let rotary = decoder::partial_rotary_dim(c, hd, 0.5)?;
    let mut layout = Layout::new(heads, kv_heads, hd, act);
    layout.residual = Residual::Parallel;
    layout.rope = Some(Rope {
        freqs: decoder::rope_freqs(c, None, rotary, 10000.0, p.max_position_embeddings)?,
        dim: rotary,
        interleaved: false,
    });
    layout.max_positions = p.max_position_embeddings;

    let m = weights.pp("model");
    let embed = m.embedding(p.vocab_size, hidden, "embed_tokens")?;
    let layers = (0..p.num_hidden_layers)
        .map(|i| {
            let w = m.pp(format!("layers.{i}"));
            let a = w.pp("self_attn");
            Ok(Layer {
                attn_norm: Some(Norm::layer(&w, hidden, eps, "input_layernorm")?),
                qkv: Qkv::separate(&a, hidden, heads * hd, kv_heads * hd, true)?,
                qk_norm: None,
                out: a.linear(heads * hd, hidden, "dense")?,
                attn_out_norm: None,
                // Parallel: the MLP reads the attention's normalized input.
                mlp_norm: None,
                mlp: Mlp::plain(&w, hidden, inner, "mlp.fc1", "mlp.fc2", true)?,
                mlp_out_norm: None,
                windowed: false,
                rope: LayerRope::Global,
                sinks: None,
                out_gate: None,
                differential: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let lm_head = decoder::lm_head(
        weights,
        &embed,
        p.tie_word_embeddings,
        "lm_head",
        hidden,
        p.vocab_size,
        true,
    )?;
    Ok(Decoder {
        layout,
        embed,
        embed_norm: None,
        positions: None,
        project_in: None,
        project_out: None,
        layers,
        final_norm: Some(Norm::layer(&m, hidden, eps, "final_layernorm")?),
        lm_head,
        dtype,
        device: device.clone(),
    })
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("PhiConfig", serde_json::json!(PhiConfig::default()))]
}
