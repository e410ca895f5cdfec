//! Phi (`PhiForCausalLM`: Phi-1, Phi-1.5, Phi-2), a GPT-style decoder stated on the
//! layer library alone: one LayerNorm feeding attention and MLP in parallel (GPT-J's
//! residual), q/k/v and output projections with biases, rotary positions on the first
//! half of each head (rotate-half, as GPT-NeoX), a GELU MLP (`fc1`, `fc2`), a final
//! LayerNorm and an output head with a bias. transformers' `modeling_phi.py`.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{self, Decoder, Layer, Layout, Mlp, Norm, Qkv, Residual, Rope};
use super::nn::Weights;
use crate::error::Result;

/// The architecture classes this file loads.
pub(crate) const CLASSES: &[&str] = &["PhiForCausalLM", "PhiModel"];

pub(crate) fn load(
    c: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    // PhiConfig's defaults.
    let hidden = c.usize("hidden_size")?;
    let heads = c.heads("num_attention_heads", hidden)?;
    let kv_heads = c.usize_or("num_key_value_heads", heads)?;
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(c.invalid(
            "num_key_value_heads",
            format!("{kv_heads} does not divide num_attention_heads {heads}"),
        ));
    }
    let hd = c.usize_or("head_dim", hidden / heads)?;
    let inner = c.usize("intermediate_size")?;
    let eps = c.f64_or("layer_norm_eps", 1e-5)?;
    if c.bool_or("qk_layernorm", false) {
        return Err(c.invalid(
            "qk_layernorm",
            "q/k LayerNorms are not supported (no Phi checkpoint uses them)".into(),
        ));
    }
    let rotary = decoder::partial_rotary_dim(c, hd, 0.5)?;
    let mut layout = Layout::new(heads, kv_heads, hd, c.activation("hidden_act", "gelu_new")?);
    layout.residual = Residual::Parallel;
    layout.rope = Some(Rope {
        inv_freq: decoder::rope_inv_freq(c, rotary, 10000.0)?,
        dim: rotary,
        interleaved: false,
    });
    layout.max_positions = c.usize_or("max_position_embeddings", 2048)?;

    let m = weights.pp("model");
    let embed = m.embedding(c.usize("vocab_size")?, hidden, "embed_tokens")?;
    let layers = (0..c.usize("num_hidden_layers")?)
        .map(|i| {
            let w = m.pp(format!("layers.{i}"));
            let a = w.pp("self_attn");
            Ok(Layer {
                attn_norm: Some(Norm::layer(&w, hidden, eps, "input_layernorm")?),
                qkv: Qkv::Separate(
                    a.linear(hidden, heads * hd, "q_proj")?,
                    a.linear(hidden, kv_heads * hd, "k_proj")?,
                    a.linear(hidden, kv_heads * hd, "v_proj")?,
                ),
                qk_norm: None,
                out: a.linear(heads * hd, hidden, "dense")?,
                attn_out_norm: None,
                // Parallel: the MLP reads the attention's normalized input.
                mlp_norm: None,
                mlp: Mlp::Plain {
                    fc_in: w.linear(hidden, inner, "mlp.fc1")?,
                    fc_out: w.linear(inner, hidden, "mlp.fc2")?,
                },
                mlp_out_norm: None,
                windowed: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let lm_head = decoder::lm_head(
        weights,
        &embed,
        c.bool_or("tie_word_embeddings", false),
        "lm_head",
        hidden,
        embed.embeddings().dim(0)?,
        true,
    )?;
    Ok(Decoder {
        layout,
        embed,
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
