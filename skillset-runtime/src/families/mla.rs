//! Multi-head latent attention (DeepSeek-V2/V3, GLM-4-MoE-Lite, MiniCPM3), as
//! transformers' `DeepseekV3Attention` computes it: the config fields, the softmax
//! scale and the projections of [`Qkv::Mla`]. The members that use it read their
//! config with [`mla_config`] and build each layer's attention with
//! [`mla_attention`].

use super::config::{hf_config, ConfigReader};
use super::decoder::{linear, rope_freqs, Layout, Mla, MlaQuery, Norm, Qkv};
use super::llama::{self, Defaults};
use super::nn::{Linear, Weights};
use crate::error::Result;

hf_config! {
    /// The multi-head latent attention fields of the DeepSeek configs (transformers
    /// 5.23, `DeepseekV3Config`'s defaults).
    pub(crate) struct MlaFields {
        kv_lora_rank: usize = 512,
        q_lora_rank: Option<usize> = Some(1536),
        qk_rope_head_dim: usize = 64,
        v_head_dim: usize = 128,
        qk_nope_head_dim: usize = 128,
        rope_interleave: bool = true,
    }
}

/// The softmax scale of a latent attention: `qk_head_dim ** -0.5`, times
/// `yarn_get_mscale(factor, mscale_all_dim)²` when the rotary type scales and
/// `mscale_all_dim` is set (transformers' `yarn_apply_mscale`).
pub(crate) fn mla_scale(config: &ConfigReader, qk_head_dim: usize) -> f64 {
    let params = ["rope_parameters", "rope_scaling"]
        .iter()
        .find_map(|k| config.value.get(*k).filter(|v| v.is_object()));
    let get = |k: &str| params.and_then(|p| p.get(k)).and_then(|v| v.as_f64());
    let rope_type = params
        .and_then(|p| p.get("rope_type").or_else(|| p.get("type")))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let mut scale = 1.0 / (qk_head_dim as f64).sqrt();
    if rope_type != "default" {
        if let (Some(all), Some(factor)) = (get("mscale_all_dim"), get("factor")) {
            if all != 0.0 && factor > 1.0 {
                let m = 0.1 * all * factor.ln() + 1.0;
                scale *= m * m;
            }
        }
    }
    scale
}

/// Llama's config read for a latent-attention member whose fields are `f`: the
/// rotary positions on `qk_rope_head_dim` channels (interleaved pairs when
/// `rope_interleave`), the softmax scale of [`mla_scale`], and the layout's head size
/// that of the queries and keys.
pub(crate) fn mla_config(
    config: &ConfigReader,
    d: &Defaults,
    f: &MlaFields,
) -> Result<(llama::Config, Layout)> {
    let mut c = llama::Config::read(config, d)?;
    for (field, x) in [
        ("kv_lora_rank", f.kv_lora_rank),
        ("qk_rope_head_dim", f.qk_rope_head_dim),
        ("v_head_dim", f.v_head_dim),
    ] {
        if x == 0 {
            return Err(config.invalid(field, "is 0".into()));
        }
    }
    if f.qk_rope_head_dim % 2 != 0 {
        return Err(config.invalid(
            "qk_rope_head_dim",
            "is odd: rotary pairs need an even size".into(),
        ));
    }
    // transformers' rotary tables are `head_dim * partial_rotary_factor` wide, where
    // `head_dim` is `qk_rope_head_dim` unless config.json states another (Mistral 4:
    // the whole query/key head, half of it rotary); they must cover the rotary
    // channels exactly.
    let head_dim = config
        .value
        .get("head_dim")
        .and_then(|v| v.as_u64())
        .map_or(f.qk_rope_head_dim, |h| h as usize);
    if super::decoder::partial_rotary_dim(config, head_dim, 1.0)? != f.qk_rope_head_dim {
        return Err(config.invalid(
            "partial_rotary_factor",
            format!(
                "makes rotary tables that do not cover the qk_rope_head_dim ({}) rotary channels",
                f.qk_rope_head_dim
            ),
        ));
    }
    c.rotary_dim = f.qk_rope_head_dim;
    c.rope = rope_freqs(
        config,
        None,
        f.qk_rope_head_dim,
        d.rope_theta,
        c.max_positions,
    )?;
    let qk = f.qk_nope_head_dim + f.qk_rope_head_dim;
    let mut layout = c.layout();
    layout.head_dim = qk;
    layout.kv_heads = layout.heads;
    layout.scale = mla_scale(config, qk);
    if let Some(r) = layout.rope.as_mut() {
        r.interleaved = f.rope_interleave;
    }
    Ok((c, layout))
}

/// The epsilon of the latent attention's own RMSNorms: transformers builds them with
/// the class default whatever `rms_norm_eps` says.
const MLA_NORM_EPS: f64 = 1e-6;

/// A latent attention's projections under `a` (`self_attn`) and its output
/// projection: `q_proj`, or `q_a_proj` / `q_a_layernorm` / `q_b_proj` with
/// `q_lora_rank`; `kv_a_proj_with_mqa`, `kv_a_layernorm`, `kv_b_proj`; `o_proj`.
/// `bias`: on `q_a_proj`, `kv_a_proj_with_mqa` and `o_proj` (`attention_bias`).
pub(crate) fn mla_attention(
    a: &Weights,
    c: &llama::Config,
    f: &MlaFields,
    bias: bool,
) -> Result<(Qkv, Linear)> {
    let (h, heads) = (c.hidden_size, c.num_heads);
    let qk = f.qk_nope_head_dim + f.qk_rope_head_dim;
    let q = match f.q_lora_rank {
        None => MlaQuery::Direct(a.linear_no_bias(h, heads * qk, "q_proj")?),
        Some(r) => MlaQuery::LowRank {
            a: linear(a, h, r, "q_a_proj", bias)?,
            norm: Norm::rms(a, r, MLA_NORM_EPS, "q_a_layernorm")?,
            b: a.linear_no_bias(r, heads * qk, "q_b_proj")?,
        },
    };
    let mla = Mla {
        q,
        kv_a: linear(
            a,
            h,
            f.kv_lora_rank + f.qk_rope_head_dim,
            "kv_a_proj_with_mqa",
            bias,
        )?,
        kv_norm: Norm::rms(a, f.kv_lora_rank, MLA_NORM_EPS, "kv_a_layernorm")?,
        kv_b: a.linear_no_bias(
            f.kv_lora_rank,
            heads * (f.qk_nope_head_dim + f.v_head_dim),
            "kv_b_proj",
        )?,
        lora: f.kv_lora_rank,
        nope: f.qk_nope_head_dim,
        rope: f.qk_rope_head_dim,
        v: f.v_head_dim,
    };
    Ok((
        Qkv::Mla(Box::new(mla)),
        linear(a, heads * f.v_head_dim, h, "o_proj", bias)?,
    ))
}
