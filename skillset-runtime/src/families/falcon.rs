//! Falcon (`FalconForCausalLM`) over GPT-2's pieces, in both of its decoder layouts:
//! the first (Falcon-7B/40B's RW layout, `new_decoder_architecture: false`) with one
//! LayerNorm feeding attention and MLP in parallel (or two norms in sequence when
//! `parallel_attn` is false), multi-query (`[q | k | v]`, one key/value head) or
//! per-head fused q/k/v; and the new one (Falcon-40B/180B, Falcon 2) with grouped
//! q/k/v (`[group: q.. k v]`, `num_kv_heads` groups) and two LayerNorms (`ln_attn`,
//! `ln_mlp`). Positions are rotary on the whole head, or ALiBi (`alibi`, Falcon-RW)
//! in Falcon's own rounding ([`Alibi::falcon_scale`]).

use candle_core::{DType, Device, Tensor};

use super::config::{hf_config, ConfigReader};
use super::decoder::{
    self, linear, Alibi, Decoder, DecoderFile, Layout, Mlp, Norm, Qkv, Residual, Rope,
};
use super::gpt::{self, Skeleton};
use super::nn::{Linear, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["FalconForCausalLM", "FalconModel"],
    load,
    defaults,
};

hf_config! {
    /// `FalconConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults (an `n_embed` of older configs wins over `hidden_size`, as
    /// `__post_init__` takes it).
    pub(crate) struct FalconConfig {
        vocab_size: usize = 65024,
        hidden_size: usize = 4544,
        num_hidden_layers: usize = 32,
        num_attention_heads: usize = 71,
        num_ln_in_parallel_attn: Option<usize> = None,
        layer_norm_epsilon: f64 = 1e-5,
        num_kv_heads: Option<usize> = None,
        alibi: bool = false,
        new_decoder_architecture: bool = false,
        multi_query: bool = true,
        parallel_attn: bool = true,
        bias: bool = false,
        max_position_embeddings: usize = 2048,
        ffn_hidden_size: Option<usize> = None,
        activation: String = "gelu".into(),
        tie_word_embeddings: bool = true,
    }
}

/// The new layout's grouped projection `[group: q (heads / groups) k v]` reordered as
/// `[q | k | v]` (rows of the weight and bias), so that it runs as one fused
/// projection with grouped keys and values.
fn ungroup(p: Linear, heads: usize, groups: usize, hd: usize) -> Result<Linear> {
    let per = heads / groups + 2;
    let mut rows: Vec<u32> = Vec::with_capacity((heads + 2 * groups) * hd);
    let head_rows =
        |g: usize, j: usize| (((g * per + j) * hd) as u32)..(((g * per + j + 1) * hd) as u32);
    for g in 0..groups {
        for j in 0..per - 2 {
            rows.extend(head_rows(g, j));
        }
    }
    for extra in [per - 2, per - 1] {
        for g in 0..groups {
            rows.extend(head_rows(g, extra));
        }
    }
    let index = Tensor::new(rows.as_slice(), p.weight().device())?;
    let weight = p.weight().index_select(&index, 0)?;
    let bias = p.bias().map(|b| b.index_select(&index, 0)).transpose()?;
    Ok(Linear::new(weight, bias))
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: FalconConfig = config.typed()?;
    let h = match config.value.get("n_embed").filter(|v| !v.is_null()) {
        Some(_) => config.usize("n_embed")?,
        None => g.hidden_size,
    };
    let heads = g.num_attention_heads;
    let hd = gpt::head_dim(config, "num_attention_heads", h, heads)?;
    let new = g.new_decoder_architecture;
    let kv_heads = if new {
        let kv = g.num_kv_heads.unwrap_or(heads);
        if kv == 0 || heads % kv != 0 {
            return Err(config.invalid(
                "num_kv_heads",
                format!("{kv} does not divide num_attention_heads {heads}"),
            ));
        }
        kv
    } else if g.multi_query {
        1
    } else {
        heads
    };
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    let act = config.activation_named("activation", &g.activation)?;
    let mut layout = Layout::new(heads, kv_heads, hd, act);
    let mut max_positions = usize::MAX;
    if g.alibi {
        layout.alibi = Some(Alibi {
            slopes: decoder::alibi_slopes(heads),
            falcon_scale: Some(layout.scale),
        });
    } else {
        max_positions = g.max_position_embeddings;
        layout.rope = Some(Rope {
            freqs: decoder::rope_freqs(config, None, hd, 10000.0, max_positions)?,
            dim: hd,
            interleaved: false,
        });
    }
    // The new layout always runs attention and MLP in parallel, with two norms unless
    // `num_ln_in_parallel_attn` says one.
    let two_norms = new && g.num_ln_in_parallel_attn.unwrap_or(2) == 2;
    let parallel = new || g.parallel_attn;
    if parallel {
        layout.residual = Residual::Parallel;
    }
    let skeleton = Skeleton {
        embed: "word_embeddings",
        positions: None,
        ..Skeleton::gpt2(
            g.vocab_size,
            h,
            max_positions,
            g.num_hidden_layers,
            eps,
            g.tie_word_embeddings,
        )
    };
    let inner = g.ffn_hidden_size.unwrap_or(4 * h);
    let bias = g.bias;
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let a = w.pp("self_attention");
        let fused = linear(&a, h, (heads + 2 * kv_heads) * hd, "query_key_value", bias)?;
        let qkv = if new {
            Qkv::Fused(ungroup(fused, heads, kv_heads, hd)?)
        } else if g.multi_query {
            Qkv::Fused(fused)
        } else {
            Qkv::FusedPerHead(fused)
        };
        let attn = (qkv, linear(&a, h, h, "dense", bias)?);
        let mlp = Mlp::plain(w, h, inner, "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", bias)?;
        let (attn_norm, mlp_norm) = if two_norms {
            (ln("ln_attn")?, Some(ln("ln_mlp")?))
        } else if parallel {
            (ln("input_layernorm")?, None)
        } else {
            (
                ln("input_layernorm")?,
                Some(ln("post_attention_layernorm")?),
            )
        };
        Ok(gpt::block(attn_norm, mlp_norm, attn, mlp, false))
    };
    gpt::assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("FalconConfig", serde_json::json!(FalconConfig::default()))]
}
