//! DBRX (`DbrxForCausalLM`) as a delta over MPT, as transformers' `modular_dbrx.py`
//! states it: MPT's names (`transformer.wte`, `blocks.N`, fused `Wqkv` clipped to
//! `clip_qkv` as a whole, bias-free LayerNorms, `norm_f`) with grouped key/value
//! heads (`kv_n_heads`), rotary positions instead of ALiBi, and a mixture of experts
//! as its MLP: a softmax router (`ffn.router.layer`) whose top `moe_top_k`
//! probabilities are divided by their `moe_normalize_expert_weights`-norm, over
//! gated experts stored as three `[experts * inner, hidden]` matrices
//! (`ffn.experts.mlp.w1`, `v1`, `w2`; `w2` holds each expert's down projection
//! transposed). Each expert is a view of them.
//!
//! The rotary base: transformers 5.23 reads the top-level `rope_parameters` (10000
//! when absent) and ignores `attn_config.rope_theta`, so the same is done here to
//! match it.

use super::nn::LayerNorm;
use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{self, Decoder, DecoderFile, Layout, Mlp, Moe, Norm, Qkv, Rope};
use super::gpt::{self, Skeleton};
use super::nn::{Linear, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["DbrxForCausalLM", "DbrxModel"],
    load,
    defaults,
};

hf_config! {
    /// `DbrxConfig` (transformers 5.23): the fields the model reads, with its defaults
    /// (and its `attribute_map`'s names as aliases).
    pub(crate) struct DbrxConfig {
        #[serde(alias = "hidden_size")]
        d_model: usize = 2048,
        #[serde(alias = "num_attention_heads")]
        n_heads: usize = 16,
        #[serde(alias = "num_hidden_layers")]
        n_layers: usize = 24,
        #[serde(alias = "max_position_embeddings")]
        max_seq_len: usize = 2048,
        vocab_size: usize = 32000,
        tie_word_embeddings: bool = false,
    }
}

hf_config! {
    /// `DbrxAttentionConfig` (transformers 5.23), `attn_config` of a `DbrxConfig`.
    pub(crate) struct DbrxAttentionConfig {
        clip_qkv: Option<f64> = None,
        kv_n_heads: usize = 1,
    }
}

hf_config! {
    /// `DbrxFFNConfig` (transformers 5.23), `ffn_config` of a `DbrxConfig`.
    pub(crate) struct DbrxFfnConfig {
        /// `{"name": "silu"}` when absent; only `name` is read.
        #[serde(skip_serializing)]
        ffn_act_fn: Option<serde_json::Value> = None,
        ffn_hidden_size: usize = 3584,
        moe_num_experts: usize = 4,
        moe_top_k: usize = 1,
        moe_normalize_expert_weights: Option<f64> = Some(1.0),
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: DbrxConfig = config.typed()?;
    let sub = |key: &str| match config.value.get(key) {
        Some(v) if v.is_object() => config.sub(key).map(Some),
        _ => Ok(None),
    };
    let a: DbrxAttentionConfig = match sub("attn_config")? {
        Some(c) => c.typed()?,
        None => DbrxAttentionConfig::default(),
    };
    let f: DbrxFfnConfig = match sub("ffn_config")? {
        Some(c) => c.typed()?,
        None => DbrxFfnConfig::default(),
    };
    if g.tie_word_embeddings {
        return Err(config.invalid(
            "tie_word_embeddings",
            "is true: DBRX has no tied head (transformers refuses it too)".into(),
        ));
    }
    let act_name = match &f.ffn_act_fn {
        None => "silu".to_string(),
        Some(v) => v
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or_else(|| config.invalid("ffn_config.ffn_act_fn", "has no `name`".into()))?
            .to_string(),
    };
    let act = config.activation_named("ffn_config.ffn_act_fn.name", &act_name)?;
    let (h, heads) = (g.d_model, g.n_heads);
    let (heads, kv, hd) = decoder::heads(config, h, heads, Some(a.kv_n_heads), None)?;
    let (n, top_k, inner) = (f.moe_num_experts, f.moe_top_k, f.ffn_hidden_size);
    if n == 0 || top_k == 0 || top_k > n {
        return Err(config.invalid(
            "ffn_config.moe_top_k",
            format!("is {top_k}: it must be 1 to moe_num_experts ({n})"),
        ));
    }
    let norm_topk_prob = match f.moe_normalize_expert_weights {
        None => false,
        Some(1.0) => true,
        Some(p) => {
            return Err(config.invalid(
                "ffn_config.moe_normalize_expert_weights",
                format!("is {p}: only 1 (divide by the sum) or null is supported"),
            ))
        }
    };
    let mut layout = Layout::new(heads, kv, hd, act);
    layout.rope = Some(Rope {
        freqs: decoder::rope_freqs(config, None, hd, 10000.0, g.max_seq_len)?,
        dim: hd,
        interleaved: false,
    });
    layout.clip_qkv = a.clip_qkv;
    layout.max_positions = g.max_seq_len;
    let skeleton = Skeleton {
        positions: None,
        blocks: "blocks",
        final_norm: None,
        ..Skeleton::gpt2(g.vocab_size, h, g.max_seq_len, g.n_layers, 1e-5, false)
    };
    // `nn.LayerNorm(bias=False)` with its default epsilon.
    let ln = |w: &Weights, name: &str| -> Result<Norm> {
        Ok(Norm::Layer(LayerNorm::new_no_bias(
            w.pp(name).get(h, "weight")?,
            1e-5,
        )))
    };
    let layer = |w: &Weights, _| {
        let a = w.pp("norm_attn_norm");
        let attn = (
            Qkv::Fused(a.linear_no_bias(h, (heads + 2 * kv) * hd, "attn.Wqkv")?),
            a.linear_no_bias(heads * hd, h, "attn.out_proj")?,
        );
        let e = w.pp("ffn.experts.mlp");
        let stacked = |name: &str| -> Result<candle_core::Tensor> {
            Ok(e.get((n * inner, h), name)?.reshape((n, inner, h))?)
        };
        let (w1, v1, w2) = (stacked("w1")?, stacked("v1")?, stacked("w2")?);
        let experts = (0..n)
            .map(|i| {
                Ok(Mlp::Gated {
                    gate: Linear::new(w1.get(i)?, None),
                    up: Linear::new(v1.get(i)?, None),
                    down: Linear::new(w2.get(i)?.t()?, None),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let moe = Moe {
            router: w.linear_no_bias(h, n, "ffn.router.layer")?,
            experts,
            top_k,
            norm_topk_prob,
            softmax_after_topk: false,
            weights_in_dtype: true,
            selection_bias: None,
            norm_min: 0.0,
            sigmoid: false,
            groups: None,
            routed_scaling: 1.0,
            shared: None,
            average_shared: false,
            sparsemixer: None,
        };
        Ok(gpt::block(
            ln(&a, "norm_1")?,
            Some(ln(&a, "norm_2")?),
            attn,
            Mlp::Moe(Box::new(moe)),
            false,
        ))
    };
    let mut decoder = gpt::assemble(&skeleton, weights, layout, layer, dtype, device)?;
    let body = if weights.contains("transformer.wte.weight") {
        weights.pp("transformer")
    } else {
        weights.clone()
    };
    decoder.final_norm = Some(ln(&body, "norm_f")?);
    Ok(decoder)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        ("DbrxConfig", serde_json::json!(DbrxConfig::default())),
        (
            "DbrxAttentionConfig",
            serde_json::json!(DbrxAttentionConfig::default()),
        ),
        ("DbrxFFNConfig", serde_json::json!(DbrxFfnConfig::default())),
    ]
}
