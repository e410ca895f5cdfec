//! Persimmon (`PersimmonForCausalLM`: Persimmon-8B, Fuyu's language model), stated on
//! the layer library alone: LayerNorms with biases, a fused q/k/v projection laid out
//! per head (`[head: q k v]`, as GPT-NeoX) with a bias, LayerNorms over each head of
//! the queries and keys (`qk_layernorm`, one weight shared by the heads), rotary
//! positions on half of each head (rotate-half), a plain relu² MLP with biases, and
//! an output head without bias.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{
    self, Decoder, DecoderFile, Layer, LayerRope, Layout, Mlp, Norm, QkNorm, Qkv, Rope,
};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &[
        "PersimmonForCausalLM",
        "PersimmonModel",
        "PersimmonForSequenceClassification",
    ],
    load,
    defaults,
};

hf_config! {
    /// `PersimmonConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults (the rotary ones are read from `rope_parameters`).
    pub(crate) struct PersimmonConfig {
        vocab_size: usize = 262144,
        hidden_size: usize = 4096,
        intermediate_size: usize = 16384,
        num_hidden_layers: usize = 36,
        num_attention_heads: usize = 64,
        hidden_act: String = "relu2".into(),
        max_position_embeddings: usize = 16384,
        layer_norm_eps: f64 = 1e-5,
        tie_word_embeddings: bool = false,
        qk_layernorm: bool = true,
    }
}

pub(crate) fn load(
    c: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let p: PersimmonConfig = c.typed()?;
    let hidden = p.hidden_size;
    let (heads, _, hd) = decoder::heads(c, hidden, p.num_attention_heads, None, None)?;
    let eps = c.check_eps("layer_norm_eps", p.layer_norm_eps)?;
    let act = c.activation_named("hidden_act", &p.hidden_act)?;
    let rotary = decoder::partial_rotary_dim(c, hd, 0.5)?;
    let mut layout = Layout::new(heads, heads, hd, act);
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
            let qk_norm = if p.qk_layernorm {
                Some(QkNorm::PerHead(
                    Norm::layer(&a, hd, eps, "q_layernorm")?,
                    Norm::layer(&a, hd, eps, "k_layernorm")?,
                ))
            } else {
                None
            };
            Ok(Layer {
                attn_norm: Some(Norm::layer(&w, hidden, eps, "input_layernorm")?),
                qkv: Qkv::FusedPerHead(a.linear(hidden, 3 * hidden, "query_key_value")?),
                qk_norm,
                out: a.linear(hidden, hidden, "dense")?,
                attn_out_norm: None,
                mlp_norm: Some(Norm::layer(&w, hidden, eps, "post_attention_layernorm")?),
                mlp: Mlp::plain(
                    &w,
                    hidden,
                    p.intermediate_size,
                    "mlp.dense_h_to_4h",
                    "mlp.dense_4h_to_h",
                    true,
                )?,
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
        false,
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
    vec![(
        "PersimmonConfig",
        serde_json::json!(PersimmonConfig::default()),
    )]
}
