//! The mixture-of-experts members of the llama family, each a delta over Llama as
//! transformers' modular files state it: the MLP of some layers becomes a
//! [`Moe`] (a softmax router choosing `num_experts_per_tok` gated experts per token).
//!
//! - Mixtral (`MixtralForCausalLM`): Mistral with 8 experts under
//!   `block_sparse_moe` (`gate`, `experts.N.w1/w3/w2`), top-2 renormalized.
//! - Qwen2-MoE (`Qwen2MoeForCausalLM`): Qwen2 (q/k/v biases) whose sparse layers add a
//!   shared expert scaled by `sigmoid(shared_expert_gate(x))`; `norm_topk_prob`,
//!   `decoder_sparse_step` and `mlp_only_layers` choose the weights and the layers.
//! - Qwen3-MoE (`Qwen3MoeForCausalLM`): Qwen3 (per-head q/k norms) with routed experts
//!   only.
//! - Mellum (`MellumForCausalLM`): Qwen3-MoE's attention and experts with sliding and
//!   global layers (`layer_types`), a rotary base per layer type, and dense layers
//!   where `mlp_layer_types` says so.
//! - OLMoE (`OlmoeForCausalLM`): Llama with RMS norms over the whole query and key
//!   projections, `clip_qkv` after them, and routed experts in every layer.
//! - FlexOlmo (`FlexOlmoForCausalLM`): OLMo-2's layer (norms after the sublayers,
//!   whole-projection q/k norms, RMS products in f32) with OLMoE's experts.
//! - Granite-MoE (`GraniteMoeForCausalLM`): Granite's multipliers with experts whose
//!   weights are stored fused (`input_linear` gate-then-up, `output_linear`), routed by
//!   the softmax of the top-k logits; Granite-MoE-Shared (`GraniteMoeSharedForCausalLM`)
//!   adds a fused shared expert (`shared_mlp`) without a gate; Granite-MoE-SWA
//!   (`GraniteMoeSWAForCausalLM`) takes Granite-SWA's attention (windows, sinks, a
//!   rotary base per layer).
//! - ERNIE 4.5 MoE (`Ernie4_5_MoeForCausalLM`): ERNIE 4.5 (interleaved rotary, optional
//!   biases) whose layers from `moe_layer_start_index` to `moe_layer_end_index`, every
//!   `moe_layer_interval`, route by softmax probabilities plus a per-expert
//!   `e_score_correction_bias` (for choosing only), with shared experts.
//! - GLM-4-MoE (`Glm4MoeForCausalLM`, GLM-4.5) and dots.llm1 (`Dots1ForCausalLM`):
//!   DeepSeek-V3's router (sigmoid scores; the choice corrected by
//!   `e_score_correction_bias` and limited to the best `topk_group` of `n_group`
//!   groups; weights renormalized and times `routed_scaling_factor`) with shared
//!   experts, dense layers before `first_k_dense_replace`. GLM-4-MoE's attention has
//!   half-rotary heads and optional per-head q/k norms; dots.llm1's is Qwen3's. Solar
//!   Open (`SolarOpenForCausalLM`) is Llama's layer with GLM-4-MoE's block in every
//!   layer. EXAONE-MoE (`ExaoneMoeForCausalLM`) puts the same block (fused experts)
//!   under EXAONE 4's attention (per-head q/k norms, NoPE global layers) in pre-norm
//!   layers, dense where `mlp_layer_types` says so.
//! - HunYuan-MoE (`HunYuanMoEV1ForCausalLM`): HunYuan-Dense (q/k norms after the rotary
//!   positions, NTK-alpha base) whose MLP is routed experts (router `gate.wg`, top-k per
//!   model or per layer, renormalized) plus an ungated shared MLP.
//!
//! - AFMoE (`AfmoeForCausalLM`, Arcee Trinity): pre- and post-norms around both
//!   sublayers, per-head q/k norms, the attention output gated by
//!   `sigmoid(gate_proj(h))`, rotary positions on the sliding layers only (NoPE global
//!   layers), muP's embedding scale; dense layers before `num_dense_layers`, then
//!   sigmoid-scored experts chosen with `expert_bias`, renormalized and times
//!   `route_scale`, plus an ungated shared expert.
//!
//! - Cohere 2 MoE (`Cohere2MoeForCausalLM`): Cohere 2's parallel block (one
//!   LayerNorm, or an RMSNorm when `rms_norm_eps` is set; interleaved rotary on the
//!   sliding layers and the dense prefix, NoPE elsewhere) whose MLP is routed experts,
//!   weighted by the softmax or the sigmoids of the top-k logits, plus ungated shared
//!   experts added or averaged with them.
//!
//! - PhiMoE (`PhimoeForCausalLM`, Phi-3.5-MoE): Mixtral's layer with LayerNorms, biases
//!   on the attention and the head, and the sparsemixer router (two experts, each
//!   weighted by the softmax of the logits near its own); longrope's short factors
//!   with its `short_mscale`.
//!
//! - gpt-oss (`GptOssForCausalLM`): attention with biases and learned sinks, sliding
//!   and global layers in turn, YaRN by default; a router with a bias, weighted by the
//!   softmax of the top-k logits, over experts with biases and the clamped SwiGLU,
//!   stored transposed with gate and up interleaved (MXFP4-quantized experts are a
//!   typed error).
//!
//! - DeepSeek-V3 (`DeepseekV3ForCausalLM`): multi-head latent attention (queries
//!   through a low-rank pair, keys and values expanded from a normalized latent, one
//!   rotary key shared by the heads, interleaved pairs by default) with the DeepSeek-V3
//!   router above, dense layers before `first_k_dense_replace`; GLM-4-MoE-Lite
//!   (`Glm4MoeLiteForCausalLM`, GLM-4.7-Flash) is the same with dense layers where
//!   `mlp_layer_types` says. DeepSeek-V2 (`DeepseekV2ForCausalLM`) has the same
//!   attention (its rotary pairs always interleaved) and a softmax router: the top-k
//!   probabilities, optionally among the best groups by their best expert, times
//!   `routed_scaling_factor`, never renormalized.
//!
//! - MiniMax-M2 (`MiniMaxM2ForCausalLM`): Mixtral's layer and per-expert names with
//!   FlexOlmo's whole-projection q/k norms, partial rotary positions, and sigmoid
//!   scores whose choice `e_score_correction_bias` corrects, renormalized.
//!
//! Checkpoints hold the experts either one by one (as the released ones do, and as
//! `save_pretrained` writes them) or fused as transformers 5 holds them in memory;
//! [`Moe::experts`] reads both.

use candle_core::{DType, Device};

use super::cohere::{self, CohereFields};
use super::config::{hf_config, ConfigReader};
use super::decoder::{Decoder, DecoderFile, Layer, LayerRope, Mlp, Moe, Norm, QkNorm, RopeFreqs};
use super::ernie4_5::{self, Ernie4_5Fields};
use super::granite::GraniteConfig;
use super::llama::{self, Defaults};
use super::mla::{mla_attention, mla_config, MlaFields};
use super::nn::{Linear, Weights};
use super::{exaone4, glm, granite_swa, hunyuan_v1_dense, olmo2, olmo3, qwen2};
use crate::error::Result;
use crate::Family;

pub(crate) const MIXTRAL: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "MixtralForCausalLM",
        "MixtralModel",
        "MixtralForSequenceClassification",
    ],
    load: load_mixtral,
    defaults: mixtral_defaults,
};

pub(crate) const QWEN2_MOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Qwen2MoeForCausalLM", "Qwen2MoeModel"],
    load: load_qwen2_moe,
    defaults: qwen2_moe_defaults,
};

pub(crate) const QWEN3_MOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Qwen3MoeForCausalLM", "Qwen3MoeModel"],
    load: load_qwen3_moe,
    defaults: qwen3_moe_defaults,
};

pub(crate) const OLMOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["OlmoeForCausalLM", "OlmoeModel"],
    load: load_olmoe,
    defaults: olmoe_defaults,
};

pub(crate) const FLEX_OLMO: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["FlexOlmoForCausalLM", "FlexOlmoModel"],
    load: load_flex_olmo,
    defaults: flex_olmo_defaults,
};

pub(crate) const GRANITEMOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["GraniteMoeForCausalLM", "GraniteMoeModel"],
    load: load_granitemoe,
    defaults: granitemoe_defaults,
};

pub(crate) const GRANITEMOESHARED: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["GraniteMoeSharedForCausalLM", "GraniteMoeSharedModel"],
    load: load_granitemoeshared,
    defaults: granitemoeshared_defaults,
};

pub(crate) const GRANITEMOE_SWA: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["GraniteMoeSWAForCausalLM", "GraniteMoeSWAModel"],
    load: load_granitemoe_swa,
    defaults: granitemoe_swa_defaults,
};

pub(crate) const ERNIE4_5_MOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Ernie4_5_MoeForCausalLM", "Ernie4_5_MoeModel"],
    load: load_ernie4_5_moe,
    defaults: ernie4_5_moe_defaults,
};

pub(crate) const GLM4_MOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Glm4MoeForCausalLM", "Glm4MoeModel"],
    load: load_glm4_moe,
    defaults: glm4_moe_defaults,
};

pub(crate) const DOTS1: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Dots1ForCausalLM", "Dots1Model"],
    load: load_dots1,
    defaults: dots1_defaults,
};

pub(crate) const SOLAR_OPEN: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["SolarOpenForCausalLM", "SolarOpenModel"],
    load: load_solar_open,
    defaults: solar_open_defaults,
};

pub(crate) const EXAONE_MOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["ExaoneMoeForCausalLM", "ExaoneMoeModel"],
    load: load_exaone_moe,
    defaults: exaone_moe_defaults,
};

pub(crate) const MELLUM: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["MellumForCausalLM", "MellumModel"],
    load: load_mellum,
    defaults: mellum_defaults,
};

pub(crate) const COHERE2_MOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Cohere2MoeForCausalLM", "Cohere2MoeModel"],
    load: load_cohere2_moe,
    defaults: cohere2_moe_defaults,
};

pub(crate) const PHIMOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["PhimoeForCausalLM", "PhimoeModel"],
    load: load_phimoe,
    defaults: phimoe_defaults,
};

pub(crate) const GPT_OSS: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["GptOssForCausalLM", "GptOssModel"],
    load: load_gpt_oss,
    defaults: gpt_oss_defaults,
};

pub(crate) const DEEPSEEK_V3: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["DeepseekV3ForCausalLM", "DeepseekV3Model"],
    load: load_deepseek_v3,
    defaults: deepseek_v3_defaults,
};

pub(crate) const GLM4_MOE_LITE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["Glm4MoeLiteForCausalLM", "Glm4MoeLiteModel"],
    load: load_glm4_moe_lite,
    defaults: glm4_moe_lite_defaults,
};

pub(crate) const DEEPSEEK_V2: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["DeepseekV2ForCausalLM", "DeepseekV2Model"],
    load: load_deepseek_v2,
    defaults: deepseek_v2_defaults,
};

pub(crate) const MINIMAX_M2: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["MiniMaxM2ForCausalLM", "MiniMaxM2Model"],
    load: load_minimax_m2,
    defaults: minimax_m2_defaults,
};

pub(crate) const AFMOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["AfmoeForCausalLM", "AfmoeModel"],
    load: load_afmoe,
    defaults: afmoe_defaults,
};

pub(crate) const HUNYUAN_V1_MOE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &["HunYuanMoEV1ForCausalLM", "HunYuanMoEV1Model"],
    load: load_hunyuan_v1_moe,
    defaults: hunyuan_v1_moe_defaults,
};

/// How a member routes: `top_k` of `experts`, each `inner` wide.
struct Routing {
    experts: usize,
    top_k: usize,
    inner: usize,
    norm_topk_prob: bool,
    /// The routing weights in the activations' dtype (all but Mixtral).
    weights_in_dtype: bool,
}

impl Routing {
    fn checked(self, c: &ConfigReader, experts_field: &str) -> Result<Self> {
        if self.experts == 0 {
            return Err(c.invalid(experts_field, "is 0".into()));
        }
        if self.top_k == 0 || self.top_k > self.experts {
            return Err(c.invalid(
                "num_experts_per_tok",
                format!(
                    "is {}: it must be 1 to {experts_field} ({})",
                    self.top_k, self.experts
                ),
            ));
        }
        if self.inner == 0 {
            return Err(c.invalid("moe_intermediate_size", "is 0".into()));
        }
        Ok(self)
    }

    /// The routed experts under `w` (the block), named `names` one by one, with the
    /// router `router`.
    fn moe(&self, w: &Weights, hidden: usize, router: &str, names: [&str; 3]) -> Result<Moe> {
        Ok(Moe {
            router: w.linear_no_bias(hidden, self.experts, router)?,
            experts: Moe::experts(w, self.experts, hidden, self.inner, names)?,
            top_k: self.top_k,
            norm_topk_prob: self.norm_topk_prob,
            softmax_after_topk: false,
            weights_in_dtype: self.weights_in_dtype,
            selection_bias: None,
            norm_min: 0.0,
            sigmoid: false,
            groups: None,
            routed_scaling: 1.0,
            shared: None,
            average_shared: false,
            sparsemixer: None,
        })
    }
}

/// Llama's layer over `attn` and `mlp` with per-head q/k RMSNorms (`q_norm`,
/// `k_norm` under `self_attn`), as Qwen3's attention has them.
fn qk_normed_layer(
    w: &Weights,
    c: &llama::Config,
    attn: (super::decoder::Qkv, super::nn::Linear),
    mlp: Mlp,
) -> Result<Layer> {
    let a = w.pp("self_attn");
    let mut layer = llama::layer(w, c, |w, n, name| c.norm(w, n, name), attn, mlp)?;
    layer.qk_norm = Some(QkNorm::PerHead(
        c.norm(&a, c.head_dim, "q_norm")?,
        c.norm(&a, c.head_dim, "k_norm")?,
    ));
    Ok(layer)
}

const QWEN_NAMES: [&str; 3] = ["gate_proj", "up_proj", "down_proj"];

// ---- Mixtral ----

/// `MixtralConfig`'s defaults.
pub(crate) const MIXTRAL_DEFAULTS: Defaults = Defaults {
    class: "MixtralConfig",
    intermediate_size: 14336,
    num_key_value_heads: Some(8),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    rope_theta: 1e6,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `MixtralConfig`'s routing and window (transformers 5.23).
    pub(crate) struct MixtralConfig {
        num_local_experts: usize = 8,
        num_experts_per_tok: usize = 2,
        sliding_window: Option<usize> = None,
    }
}

fn load_mixtral(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &MIXTRAL_DEFAULTS)?;
    let m: MixtralConfig = config.typed()?;
    c.sliding_window = m.sliding_window;
    let routing = Routing {
        experts: m.num_local_experts,
        top_k: m.num_experts_per_tok,
        inner: c.intermediate_size,
        norm_topk_prob: true,
        weights_in_dtype: false,
    }
    .checked(config, "num_local_experts")?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, false, false)?;
        // The released checkpoints' name; transformers 5 renames it `mlp`.
        let block = if w.contains("block_sparse_moe.gate.weight") {
            w.pp("block_sparse_moe")
        } else {
            w.pp("mlp")
        };
        let moe = routing.moe(&block, c.hidden_size, "gate", ["w1", "w3", "w2"])?;
        let mlp = Mlp::Moe(Box::new(moe));
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn mixtral_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (MIXTRAL_DEFAULTS.class, serde_json::json!(MIXTRAL_DEFAULTS)),
        (
            MIXTRAL_DEFAULTS.class,
            serde_json::json!(MixtralConfig::default()),
        ),
    ]
}

// ---- Qwen2-MoE and Qwen3-MoE ----

/// Which layers of a Qwen MoE are sparse: layer `i` unless `i` is in
/// `mlp_only_layers`, when `(i + 1)` is a multiple of `decoder_sparse_step`.
fn qwen_sparse(c: &ConfigReader, i: usize, step: usize, dense: &[usize]) -> Result<bool> {
    if step == 0 {
        return Err(c.invalid("decoder_sparse_step", "is 0".into()));
    }
    Ok(!dense.contains(&i) && (i + 1) % step == 0)
}

/// `Qwen2MoeConfig`'s defaults.
pub(crate) const QWEN2_MOE_DEFAULTS: Defaults = Defaults {
    class: "Qwen2MoeConfig",
    vocab_size: 151936,
    hidden_size: 2048,
    intermediate_size: 5632,
    num_hidden_layers: 24,
    num_attention_heads: 16,
    num_key_value_heads: Some(16),
    max_position_embeddings: 32768,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Qwen2MoeConfig`'s experts (transformers 5.23).
    pub(crate) struct Qwen2MoeConfig {
        num_experts: usize = 60,
        num_experts_per_tok: usize = 4,
        moe_intermediate_size: usize = 1408,
        shared_expert_intermediate_size: usize = 5632,
        norm_topk_prob: bool = false,
        decoder_sparse_step: usize = 1,
        mlp_only_layers: Vec<usize> = Vec::new(),
        qkv_bias: bool = true,
    }
}

fn load_qwen2_moe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &QWEN2_MOE_DEFAULTS)?;
    c.sliding_window = qwen2::window(config)?;
    let q: Qwen2MoeConfig = config.typed()?;
    let routing = Routing {
        experts: q.num_experts,
        top_k: q.num_experts_per_tok,
        inner: q.moe_intermediate_size,
        norm_topk_prob: q.norm_topk_prob,
        weights_in_dtype: true,
    }
    .checked(config, "num_experts")?;
    let dense = q.mlp_only_layers.clone();
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse = qwen_sparse(config, i, q.decoder_sparse_step, &dense)?;
        i += 1;
        let attn = llama::attention(&w.pp("self_attn"), &c, q.qkv_bias, false)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            let mut moe = routing.moe(&m, c.hidden_size, "gate", QWEN_NAMES)?;
            let mut shared = c.clone();
            shared.intermediate_size = q.shared_expert_intermediate_size;
            moe.shared = Some((
                llama::mlp(&m.pp("shared_expert"), &shared)?,
                Some(m.linear_no_bias(c.hidden_size, 1, "shared_expert_gate")?),
            ));
            Mlp::Moe(Box::new(moe))
        } else {
            llama::mlp(&m, &c)?
        };
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn qwen2_moe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            QWEN2_MOE_DEFAULTS.class,
            serde_json::json!(QWEN2_MOE_DEFAULTS),
        ),
        (
            QWEN2_MOE_DEFAULTS.class,
            serde_json::json!(Qwen2MoeConfig::default()),
        ),
        // `Qwen2MoeConfig` turns the window's default into 0 when `use_sliding_window`
        // is false; either way none is read then.
        (
            QWEN2_MOE_DEFAULTS.class,
            serde_json::json!({"use_sliding_window": false}),
        ),
    ]
}

/// `Qwen3MoeConfig`'s defaults.
pub(crate) const QWEN3_MOE_DEFAULTS: Defaults = Defaults {
    class: "Qwen3MoeConfig",
    vocab_size: 151936,
    hidden_size: 2048,
    intermediate_size: 6144,
    num_hidden_layers: 24,
    num_attention_heads: 32,
    num_key_value_heads: Some(4),
    max_position_embeddings: 32768,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Qwen3MoeConfig`'s experts (transformers 5.23). The expert count is
    /// `num_experts` in the released config.json files, `num_local_experts` in those
    /// transformers 5 writes (its `attribute_map`).
    pub(crate) struct Qwen3MoeConfig {
        num_local_experts: usize = 128,
        num_experts: Option<usize> = None,
        num_experts_per_tok: usize = 8,
        moe_intermediate_size: usize = 768,
        norm_topk_prob: bool = false,
        decoder_sparse_step: usize = 1,
        mlp_only_layers: Vec<usize> = Vec::new(),
    }
}

fn load_qwen3_moe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &QWEN3_MOE_DEFAULTS)?;
    c.sliding_window = qwen2::window(config)?;
    let q: Qwen3MoeConfig = config.typed()?;
    let experts = match (q.num_experts, config.value.get("num_local_experts")) {
        (Some(n), Some(_)) if n != q.num_local_experts => {
            return Err(config.invalid(
                "num_experts",
                format!("is {n} while num_local_experts is {}", q.num_local_experts),
            ))
        }
        (Some(n), _) => n,
        (None, _) => q.num_local_experts,
    };
    let routing = Routing {
        experts,
        top_k: q.num_experts_per_tok,
        inner: q.moe_intermediate_size,
        norm_topk_prob: q.norm_topk_prob,
        weights_in_dtype: true,
    }
    .checked(config, "num_experts")?;
    let dense = q.mlp_only_layers.clone();
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse = qwen_sparse(config, i, q.decoder_sparse_step, &dense)?;
        i += 1;
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, c.attention_bias)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            Mlp::Moe(Box::new(routing.moe(
                &m,
                c.hidden_size,
                "gate",
                QWEN_NAMES,
            )?))
        } else {
            llama::mlp(&m, &c)?
        };
        qk_normed_layer(w, &c, attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn qwen3_moe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            QWEN3_MOE_DEFAULTS.class,
            serde_json::json!(QWEN3_MOE_DEFAULTS),
        ),
        (
            QWEN3_MOE_DEFAULTS.class,
            serde_json::json!(Qwen3MoeConfig::default()),
        ),
        (
            QWEN3_MOE_DEFAULTS.class,
            serde_json::json!(qwen2::QwenWindow::default()),
        ),
    ]
}

// ---- OLMoE ----

/// `OlmoeConfig`'s defaults.
pub(crate) const OLMOE_DEFAULTS: Defaults = Defaults {
    class: "OlmoeConfig",
    vocab_size: 50304,
    hidden_size: 2048,
    intermediate_size: 2048,
    num_hidden_layers: 16,
    num_attention_heads: 16,
    max_position_embeddings: 4096,
    rms_norm_eps: Some(1e-5),
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `OlmoeConfig`'s experts and clipping (transformers 5.23).
    pub(crate) struct OlmoeConfig {
        num_experts: usize = 64,
        num_experts_per_tok: usize = 8,
        norm_topk_prob: bool = false,
        clip_qkv: Option<f64> = None,
    }
}

fn load_olmoe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &OLMOE_DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let o: OlmoeConfig = config.typed()?;
    let routing = Routing {
        experts: o.num_experts,
        top_k: o.num_experts_per_tok,
        inner: c.intermediate_size,
        norm_topk_prob: o.norm_topk_prob,
        weights_in_dtype: true,
    }
    .checked(config, "num_experts")?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| -> Result<Layer> {
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, c.attention_bias)?;
        let moe = routing.moe(&w.pp("mlp"), c.hidden_size, "gate", QWEN_NAMES)?;
        let mut layer = llama::layer(
            w,
            &c,
            |w, n, name| c.norm(w, n, name),
            attn,
            Mlp::Moe(Box::new(moe)),
        )?;
        layer.qk_norm = Some(QkNorm::Whole(
            c.norm(&a, c.num_heads * c.head_dim, "q_norm")?,
            c.norm(&a, c.num_kv_heads * c.head_dim, "k_norm")?,
        ));
        Ok(layer)
    };
    let mut layout = c.layout();
    if let Some(clip) = o.clip_qkv {
        layout.clip_qkv = Some(clip);
        layout.clip_after_qk_norm = true;
    }
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn olmoe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (OLMOE_DEFAULTS.class, serde_json::json!(OLMOE_DEFAULTS)),
        (
            OLMOE_DEFAULTS.class,
            serde_json::json!(OlmoeConfig::default()),
        ),
    ]
}

// ---- FlexOlmo ----

/// `FlexOlmoConfig`'s defaults.
pub(crate) const FLEX_OLMO_DEFAULTS: Defaults = Defaults {
    class: "FlexOlmoConfig",
    vocab_size: 100352,
    max_position_embeddings: 4096,
    rope_theta: 500000.0,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `FlexOlmoConfig`'s experts (transformers 5.23; `num_local_experts` is its
    /// alias of `num_experts`).
    pub(crate) struct FlexOlmoConfig {
        num_experts: usize = 7,
        num_experts_per_tok: usize = 5,
        norm_topk_prob: bool = false,
    }
}

fn load_flex_olmo(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &FLEX_OLMO_DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let f: FlexOlmoConfig = config.typed()?;
    let routing = Routing {
        experts: f.num_experts,
        top_k: f.num_experts_per_tok,
        inner: c.intermediate_size,
        norm_topk_prob: f.norm_topk_prob,
        weights_in_dtype: true,
    }
    .checked(config, "num_experts")?;
    let final_norm = olmo2::norm(&weights.pp("model"), c.hidden_size, &c, "norm")?;
    let layers = |w: &Weights| {
        let moe = routing.moe(&w.pp("mlp"), c.hidden_size, "gate", QWEN_NAMES)?;
        olmo2::layer(w, &c, Mlp::Moe(Box::new(moe)))
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn flex_olmo_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (
            FLEX_OLMO_DEFAULTS.class,
            serde_json::json!(FLEX_OLMO_DEFAULTS),
        ),
        (
            FLEX_OLMO_DEFAULTS.class,
            serde_json::json!(FlexOlmoConfig::default()),
        ),
    ]
}

// ---- Granite-MoE and Granite-MoE-Shared ----

/// `GraniteMoeConfig`'s defaults (Llama's).
pub(crate) const GRANITEMOE_DEFAULTS: Defaults = Defaults {
    class: "GraniteMoeConfig",
    mlp_bias: None,
    ..llama::DEFAULTS
};

/// `GraniteMoeSharedConfig`'s defaults (Llama's).
pub(crate) const GRANITEMOESHARED_DEFAULTS: Defaults = Defaults {
    class: "GraniteMoeSharedConfig",
    ..GRANITEMOE_DEFAULTS
};

/// `GraniteMoeSWAConfig`'s defaults (Granite-MoE-Shared's).
pub(crate) const GRANITEMOE_SWA_DEFAULTS: Defaults = Defaults {
    class: "GraniteMoeSWAConfig",
    ..GRANITEMOE_DEFAULTS
};

hf_config! {
    /// `GraniteMoeConfig`'s experts (transformers 5.23).
    pub(crate) struct GraniteMoeConfig {
        num_local_experts: usize = 8,
        num_experts_per_tok: usize = 2,
    }
}

hf_config! {
    /// `GraniteMoeSharedConfig`'s shared expert (0: none).
    pub(crate) struct GraniteMoeSharedConfig {
        shared_intermediate_size: usize = 0,
    }
}

/// A Granite-MoE block under `w` (`block_sparse_moe`): the released checkpoints'
/// `input_linear`, `output_linear` and `router.layer`, or transformers 5's
/// `experts.gate_up_proj`, `experts.down_proj` and `router`.
fn granite_moe(w: &Weights, r: &Routing, hidden: usize) -> Result<Moe> {
    let (experts, router) = if w.contains("input_linear.weight") {
        let experts = Moe::fused(
            &w.get((r.experts, 2 * r.inner, hidden), "input_linear.weight")?,
            &w.get((r.experts, hidden, r.inner), "output_linear.weight")?,
        )?;
        (experts, "router.layer")
    } else {
        (
            Moe::experts(w, r.experts, hidden, r.inner, QWEN_NAMES)?,
            "router",
        )
    };
    Ok(Moe {
        router: w.linear_no_bias(hidden, r.experts, router)?,
        experts,
        top_k: r.top_k,
        norm_topk_prob: r.norm_topk_prob,
        softmax_after_topk: true,
        weights_in_dtype: r.weights_in_dtype,
        selection_bias: None,
        norm_min: 0.0,
        sigmoid: false,
        groups: None,
        routed_scaling: 1.0,
        shared: None,
        average_shared: false,
        sparsemixer: None,
    })
}

/// Which Granite-MoE: its config class, and whether it has the SWA attention.
struct GraniteMoeKind {
    defaults: &'static Defaults,
    /// Reads `shared_intermediate_size` (Granite-MoE-Shared and -SWA).
    shared: bool,
    swa: bool,
}

fn load_granite_moes(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
    kind: GraniteMoeKind,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, kind.defaults)?;
    let mut layout = if kind.swa {
        granite_swa::swa_layout(config, &mut c)?
    } else {
        llama::check_layer_types(config, None)?;
        c.layout()
    };
    granite_swa::multipliers(config, &mut layout)?;
    let shared = if kind.shared {
        config
            .typed::<GraniteMoeSharedConfig>()?
            .shared_intermediate_size
    } else {
        0
    };
    let m: GraniteMoeConfig = config.typed()?;
    let routing = Routing {
        experts: m.num_local_experts,
        top_k: m.num_experts_per_tok,
        inner: c.intermediate_size,
        norm_topk_prob: true,
        weights_in_dtype: true,
    }
    .checked(config, "num_local_experts")?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, c.attention_bias)?;
        let mut moe = granite_moe(&w.pp("block_sparse_moe"), &routing, c.hidden_size)?;
        if shared > 0 {
            let s = w.pp("shared_mlp");
            moe.shared = Some((
                Mlp::gated_fused(
                    s.get((2 * shared, c.hidden_size), "input_linear.weight")?,
                    shared,
                    s.get((c.hidden_size, shared), "output_linear.weight")?,
                )?,
                None,
            ));
        }
        let mlp = Mlp::Moe(Box::new(moe));
        let mut layer = llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)?;
        if kind.swa {
            layer.sinks = Some(granite_swa::sinks(w, &c)?);
        }
        Ok(layer)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn load_granitemoe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let kind = GraniteMoeKind {
        defaults: &GRANITEMOE_DEFAULTS,
        shared: false,
        swa: false,
    };
    load_granite_moes(config, weights, dtype, device, kind)
}

fn load_granitemoeshared(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let kind = GraniteMoeKind {
        defaults: &GRANITEMOESHARED_DEFAULTS,
        shared: true,
        swa: false,
    };
    load_granite_moes(config, weights, dtype, device, kind)
}

fn load_granitemoe_swa(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let kind = GraniteMoeKind {
        defaults: &GRANITEMOE_SWA_DEFAULTS,
        shared: true,
        swa: true,
    };
    load_granite_moes(config, weights, dtype, device, kind)
}

fn granitemoe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = GRANITEMOE_DEFAULTS.class;
    vec![
        (class, serde_json::json!(GRANITEMOE_DEFAULTS)),
        (class, serde_json::json!(GraniteConfig::default())),
        (class, serde_json::json!(GraniteMoeConfig::default())),
    ]
}

fn granitemoe_swa_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = GRANITEMOE_SWA_DEFAULTS.class;
    vec![
        (class, serde_json::json!(GRANITEMOE_SWA_DEFAULTS)),
        (class, serde_json::json!(GraniteConfig::default())),
        (class, serde_json::json!(GraniteMoeConfig::default())),
        (class, serde_json::json!(GraniteMoeSharedConfig::default())),
        (class, serde_json::json!(granite_swa::SwaFields::default())),
    ]
}

fn granitemoeshared_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = GRANITEMOESHARED_DEFAULTS.class;
    vec![
        (class, serde_json::json!(GRANITEMOESHARED_DEFAULTS)),
        (class, serde_json::json!(GraniteConfig::default())),
        (class, serde_json::json!(GraniteMoeConfig::default())),
        (class, serde_json::json!(GraniteMoeSharedConfig::default())),
    ]
}

// ---- HunYuan-MoE ----

/// `HunYuanMoEV1Config`'s defaults.
pub(crate) const HUNYUAN_V1_MOE_DEFAULTS: Defaults = Defaults {
    class: "HunYuanMoEV1Config",
    vocab_size: 290943,
    rms_norm_eps: Some(1e-5),
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `HunYuanMoEV1Config`'s expert count (transformers 5.23); `moe_topk` (1 by
    /// default) is one number or one per layer.
    pub(crate) struct HunYuanMoeConfig {
        num_experts: usize = 1,
    }
}

/// `moe_topk`: one `top_k` for every layer, or a list with one per layer.
fn hunyuan_top_k(config: &ConfigReader, layers: usize) -> Result<Vec<usize>> {
    let bad = |why: String| config.invalid("moe_topk", why);
    match config.value.get("moe_topk") {
        None | Some(serde_json::Value::Null) => Ok(vec![1; layers]),
        Some(serde_json::Value::Array(list)) => {
            if list.len() != layers {
                return Err(bad(format!(
                    "has {} entries for {layers} layers",
                    list.len()
                )));
            }
            list.iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|k| usize::try_from(k).ok())
                        .ok_or_else(|| bad(format!("holds {v}, not a count")))
                })
                .collect()
        }
        Some(v) => v
            .as_u64()
            .and_then(|k| usize::try_from(k).ok())
            .map(|k| vec![k; layers])
            .ok_or_else(|| bad(format!("is {v}: a count or a list of counts"))),
    }
}

fn load_hunyuan_v1_moe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &HUNYUAN_V1_MOE_DEFAULTS)?;
    if let Some(inv) = hunyuan_v1_dense::ntk_alpha(config, &c)? {
        c.rope = RopeFreqs::plain(inv);
    }
    llama::check_layer_types(config, None)?;
    let h: HunYuanMoeConfig = config.typed()?;
    let routings = hunyuan_top_k(config, c.num_layers)?
        .into_iter()
        .map(|top_k| {
            Routing {
                experts: h.num_experts,
                top_k,
                inner: c.intermediate_size,
                norm_topk_prob: true,
                weights_in_dtype: false,
            }
            .checked(config, "num_experts")
        })
        .collect::<Result<Vec<_>>>()?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let routing = &routings[i.min(routings.len() - 1)];
        i += 1;
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, c.attention_bias)?;
        let m = w.pp("mlp");
        let mut moe = routing.moe(&m, c.hidden_size, "gate.wg", QWEN_NAMES)?;
        moe.shared = Some((llama::mlp(&m.pp("shared_mlp"), &c)?, None));
        let mlp = Mlp::Moe(Box::new(moe));
        let mut layer = llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)?;
        layer.qk_norm = Some(QkNorm::PerHeadAfterRope(
            c.norm(&a, c.head_dim, "query_layernorm")?,
            c.norm(&a, c.head_dim, "key_layernorm")?,
        ));
        Ok(layer)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn hunyuan_v1_moe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = HUNYUAN_V1_MOE_DEFAULTS.class;
    vec![
        (class, serde_json::json!(HUNYUAN_V1_MOE_DEFAULTS)),
        (class, serde_json::json!(HunYuanMoeConfig::default())),
        (class, serde_json::json!({"moe_topk": 1})),
    ]
}

// ---- ERNIE 4.5 MoE ----

/// `Ernie4_5_MoeConfig`'s defaults.
pub(crate) const ERNIE4_5_MOE_DEFAULTS: Defaults = Defaults {
    class: "Ernie4_5_MoeConfig",
    hidden_size: 2560,
    intermediate_size: 12288,
    num_hidden_layers: 28,
    num_attention_heads: 20,
    num_key_value_heads: Some(4),
    head_dim: None,
    ..ernie4_5::DEFAULTS
};

hf_config! {
    /// `Ernie4_5_MoeConfig`'s experts (transformers 5.23; `num_experts` and
    /// `num_experts_per_tok` are its aliases of `moe_num_experts` and `moe_k`).
    pub(crate) struct Ernie4_5MoeConfig {
        moe_intermediate_size: usize = 1536,
        moe_k: usize = 6,
        moe_num_experts: usize = 64,
        moe_num_shared_experts: usize = 2,
        moe_layer_start_index: usize = 1,
        /// -1: the last layer (`__post_init__` writes it so; not a stated default).
        #[serde(skip_serializing)]
        moe_layer_end_index: i64 = -1,
        moe_layer_interval: usize = 1,
        moe_norm_min: f64 = 1e-12,
    }
}

fn load_ernie4_5_moe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &ERNIE4_5_MOE_DEFAULTS)?;
    let bias = config.typed::<Ernie4_5Fields>()?.use_bias;
    c.mlp_bias = bias;
    // Unlike ERNIE 4.5's, this head takes `use_bias` too.
    c.lm_head_bias = bias;
    llama::check_layer_types(config, None)?;
    let e: Ernie4_5MoeConfig = config.typed()?;
    if e.moe_layer_interval == 0 {
        return Err(config.invalid("moe_layer_interval", "is 0".into()));
    }
    let end = match e.moe_layer_end_index {
        -1 => c.num_layers.saturating_sub(1),
        n => usize::try_from(n).map_err(|_| {
            config.invalid(
                "moe_layer_end_index",
                format!("is {n}: a layer index or -1"),
            )
        })?,
    };
    let routing = Routing {
        experts: e.moe_num_experts,
        top_k: e.moe_k,
        inner: e.moe_intermediate_size,
        norm_topk_prob: true,
        weights_in_dtype: true,
    }
    .checked(config, "moe_num_experts")?;
    let mut shared = c.clone();
    shared.intermediate_size = e
        .moe_intermediate_size
        .checked_mul(e.moe_num_shared_experts)
        .ok_or_else(|| config.invalid("moe_num_shared_experts", "is too large".into()))?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse =
            (i + 1) % e.moe_layer_interval == 0 && i >= e.moe_layer_start_index && i <= end;
        i += 1;
        let attn = llama::attention(&w.pp("self_attn"), &c, bias, bias)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            let mut moe = routing.moe(&m, c.hidden_size, "gate", QWEN_NAMES)?;
            // The released name, or transformers 5's (under the router).
            let statics = if m.contains("moe_statics.e_score_correction_bias") {
                m.pp("moe_statics")
            } else {
                m.pp("gate").pp("moe_statics")
            };
            let correction = statics
                .get((1, routing.experts), "e_score_correction_bias")?
                .flatten_all()?
                .to_dtype(DType::F32)?
                .to_vec1::<f32>()?;
            moe.selection_bias = Some(correction);
            moe.norm_min = e.moe_norm_min as f32;
            if e.moe_num_shared_experts > 0 {
                moe.shared = Some((llama::mlp(&m.pp("shared_experts"), &shared)?, None));
            }
            Mlp::Moe(Box::new(moe))
        } else {
            llama::mlp(&m, &c)?
        };
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(
        &c,
        weights,
        glm::layout(&c),
        layers,
        final_norm,
        dtype,
        device,
    )
}

fn ernie4_5_moe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = ERNIE4_5_MOE_DEFAULTS.class;
    vec![
        (class, serde_json::json!(ERNIE4_5_MOE_DEFAULTS)),
        (class, serde_json::json!(Ernie4_5Fields::default())),
        (class, serde_json::json!(Ernie4_5MoeConfig::default())),
    ]
}

// ---- GLM-4-MoE and dots.llm1: DeepSeek-V3's router ----

/// A DeepSeek-V3-style block under `m` (`mlp`): router `gate` with its
/// `e_score_correction_bias`, routed experts, and `shared` (the shared experts' width;
/// 0: none) under `shared_experts`.
struct SigmoidRouting {
    routing: Routing,
    n_group: usize,
    topk_group: usize,
    routed_scaling: f64,
    shared: usize,
}

/// The DeepSeek-V3 router's settings, as a member's config names them.
struct SigmoidFields {
    experts: usize,
    top_k: usize,
    inner: usize,
    norm_topk_prob: bool,
    n_group: usize,
    topk_group: usize,
    routed_scaling: f64,
    /// How many shared experts, each `inner` wide.
    shared_experts: usize,
}

impl SigmoidRouting {
    /// The router `f` describes, checked; `[experts_field, shared_field]` name the
    /// member's fields in errors.
    fn read(c: &ConfigReader, f: SigmoidFields, fields: [&str; 2]) -> Result<Self> {
        let [experts_field, shared_field] = fields;
        SigmoidRouting {
            routing: Routing {
                experts: f.experts,
                top_k: f.top_k,
                inner: f.inner,
                norm_topk_prob: f.norm_topk_prob,
                weights_in_dtype: false,
            }
            .checked(c, experts_field)?,
            n_group: f.n_group,
            topk_group: f.topk_group,
            routed_scaling: f.routed_scaling,
            shared: f
                .inner
                .checked_mul(f.shared_experts)
                .ok_or_else(|| c.invalid(shared_field, "is too large".into()))?,
        }
        .checked(c)
    }

    fn checked(self, c: &ConfigReader) -> Result<Self> {
        if self.n_group == 0 || self.routing.experts % self.n_group != 0 {
            return Err(c.invalid(
                "n_group",
                format!(
                    "is {}: it must divide the {} routed experts",
                    self.n_group, self.routing.experts
                ),
            ));
        }
        if self.topk_group == 0 || self.topk_group > self.n_group {
            return Err(c.invalid(
                "topk_group",
                format!(
                    "is {}: it must be 1 to n_group ({})",
                    self.topk_group, self.n_group
                ),
            ));
        }
        Ok(self)
    }

    fn moe(&self, m: &Weights, c: &llama::Config) -> Result<Moe> {
        let r = &self.routing;
        let mut moe = r.moe(m, c.hidden_size, "gate", QWEN_NAMES)?;
        let correction = m
            .pp("gate")
            .get(r.experts, "e_score_correction_bias")?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        moe.selection_bias = Some(correction);
        moe.sigmoid = true;
        moe.groups = Some((self.n_group, self.topk_group, 2));
        moe.routed_scaling = self.routed_scaling as f32;
        if self.shared > 0 {
            let mut shared = c.clone();
            shared.intermediate_size = self.shared;
            moe.shared = Some((llama::mlp(&m.pp("shared_experts"), &shared)?, None));
        }
        Ok(moe)
    }
}

/// `Glm4MoeConfig`'s defaults.
pub(crate) const GLM4_MOE_DEFAULTS: Defaults = Defaults {
    class: "Glm4MoeConfig",
    vocab_size: 151552,
    hidden_size: 4096,
    intermediate_size: 10944,
    num_hidden_layers: 46,
    num_attention_heads: 96,
    num_key_value_heads: Some(8),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    partial_rotary_factor: 0.5,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Glm4MoeConfig`'s experts (transformers 5.23; `num_local_experts` is its alias
    /// of `n_routed_experts`).
    pub(crate) struct Glm4MoeConfig {
        moe_intermediate_size: usize = 1408,
        num_experts_per_tok: usize = 8,
        n_shared_experts: usize = 1,
        n_routed_experts: usize = 128,
        routed_scaling_factor: f64 = 1.0,
        n_group: usize = 1,
        topk_group: usize = 1,
        first_k_dense_replace: usize = 1,
        norm_topk_prob: bool = true,
        use_qk_norm: bool = false,
    }
}

fn load_glm4_moe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &GLM4_MOE_DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let g: Glm4MoeConfig = config.typed()?;
    let router = SigmoidRouting::read(
        config,
        SigmoidFields {
            experts: g.n_routed_experts,
            top_k: g.num_experts_per_tok,
            inner: g.moe_intermediate_size,
            norm_topk_prob: g.norm_topk_prob,
            n_group: g.n_group,
            topk_group: g.topk_group,
            routed_scaling: g.routed_scaling_factor,
            shared_experts: g.n_shared_experts,
        },
        ["n_routed_experts", "n_shared_experts"],
    )?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse = i >= g.first_k_dense_replace;
        i += 1;
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, false)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            Mlp::Moe(Box::new(router.moe(&m, &c)?))
        } else {
            llama::mlp(&m, &c)?
        };
        let mut layer = llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)?;
        if g.use_qk_norm {
            layer.qk_norm = Some(QkNorm::PerHead(
                c.norm(&a, c.head_dim, "q_norm")?,
                c.norm(&a, c.head_dim, "k_norm")?,
            ));
        }
        Ok(layer)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn glm4_moe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = GLM4_MOE_DEFAULTS.class;
    vec![
        (class, serde_json::json!(GLM4_MOE_DEFAULTS)),
        (class, serde_json::json!(Glm4MoeConfig::default())),
    ]
}

/// `Dots1Config`'s defaults.
pub(crate) const DOTS1_DEFAULTS: Defaults = Defaults {
    class: "Dots1Config",
    vocab_size: 152064,
    hidden_size: 4608,
    intermediate_size: 10944,
    num_hidden_layers: 62,
    num_attention_heads: 32,
    num_key_value_heads: Some(32),
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Dots1Config`'s experts and window (transformers 5.23); the expert counts have
    /// no default there (a config without them fails to load).
    pub(crate) struct Dots1Config {
        moe_intermediate_size: usize = 1408,
        n_shared_experts: Option<usize> = None,
        n_routed_experts: Option<usize> = None,
        n_group: usize = 1,
        topk_group: usize = 1,
        num_experts_per_tok: Option<usize> = None,
        first_k_dense_replace: usize = 0,
        norm_topk_prob: bool = false,
        routed_scaling_factor: f64 = 1.0,
        sliding_window: Option<usize> = Some(4096),
        max_window_layers: usize = 62,
    }
}

fn load_dots1(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &DOTS1_DEFAULTS)?;
    let d: Dots1Config = config.typed()?;
    let need = |v: Option<usize>, field: &str| {
        v.ok_or_else(|| config.invalid(field, "is missing (Dots1Config has no default)".into()))
    };
    let router = SigmoidRouting::read(
        config,
        SigmoidFields {
            experts: need(d.n_routed_experts, "n_routed_experts")?,
            top_k: need(d.num_experts_per_tok, "num_experts_per_tok")?,
            inner: d.moe_intermediate_size,
            norm_topk_prob: d.norm_topk_prob,
            n_group: d.n_group,
            topk_group: d.topk_group,
            routed_scaling: d.routed_scaling_factor,
            shared_experts: need(d.n_shared_experts, "n_shared_experts")?,
        },
        ["n_routed_experts", "n_shared_experts"],
    )?;
    c.sliding_window = d.sliding_window;
    let from = d.max_window_layers;
    let windowed = d.sliding_window.is_some();
    c.window_layers(config, |i| windowed && i >= from)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse = i >= d.first_k_dense_replace;
        i += 1;
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, c.attention_bias)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            Mlp::Moe(Box::new(router.moe(&m, &c)?))
        } else {
            llama::mlp(&m, &c)?
        };
        qk_normed_layer(w, &c, attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn dots1_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = DOTS1_DEFAULTS.class;
    vec![
        (class, serde_json::json!(DOTS1_DEFAULTS)),
        (class, serde_json::json!(Dots1Config::default())),
    ]
}

/// `SolarOpenConfig`'s defaults (it has no dense MLP, so no `intermediate_size`).
pub(crate) const SOLAR_OPEN_DEFAULTS: Defaults = Defaults {
    class: "SolarOpenConfig",
    vocab_size: 196608,
    hidden_size: 4096,
    num_hidden_layers: 48,
    num_attention_heads: 64,
    num_key_value_heads: Some(8),
    head_dim: Some(128),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    rope_theta: 1e6,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `SolarOpenConfig`'s experts (transformers 5.23).
    pub(crate) struct SolarOpenConfig {
        moe_intermediate_size: usize = 1280,
        num_experts_per_tok: usize = 8,
        n_shared_experts: usize = 1,
        n_routed_experts: usize = 128,
        routed_scaling_factor: f64 = 1.0,
        n_group: usize = 1,
        topk_group: usize = 1,
        norm_topk_prob: bool = true,
    }
}

fn load_solar_open(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = llama::Config::read(config, &SOLAR_OPEN_DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let g: SolarOpenConfig = config.typed()?;
    let router = SigmoidRouting::read(
        config,
        SigmoidFields {
            experts: g.n_routed_experts,
            top_k: g.num_experts_per_tok,
            inner: g.moe_intermediate_size,
            norm_topk_prob: g.norm_topk_prob,
            n_group: g.n_group,
            topk_group: g.topk_group,
            routed_scaling: g.routed_scaling_factor,
            shared_experts: g.n_shared_experts,
        },
        ["n_routed_experts", "n_shared_experts"],
    )?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, false)?;
        let mlp = Mlp::Moe(Box::new(router.moe(&w.pp("mlp"), &c)?));
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn solar_open_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = SOLAR_OPEN_DEFAULTS.class;
    let mut stated = serde_json::json!(SOLAR_OPEN_DEFAULTS);
    if let Some(o) = stated.as_object_mut() {
        o.remove("intermediate_size");
    }
    vec![
        (class, stated),
        (class, serde_json::json!(SolarOpenConfig::default())),
    ]
}

/// `ExaoneMoeConfig`'s defaults.
pub(crate) const EXAONE_MOE_DEFAULTS: Defaults = Defaults {
    class: "ExaoneMoeConfig",
    ..exaone4::DEFAULTS
};

hf_config! {
    /// `ExaoneMoeConfig`'s experts (transformers 5.23).
    pub(crate) struct ExaoneMoeConfig {
        first_k_dense_replace: usize = 1,
        /// Filled in from `first_k_dense_replace` by `__post_init__`.
        #[serde(skip_serializing)]
        mlp_layer_types: Option<Vec<String>> = None,
        moe_intermediate_size: usize = 1024,
        num_experts: usize = 64,
        num_experts_per_tok: usize = 8,
        num_shared_experts: usize = 1,
        norm_topk_prob: bool = true,
        routed_scaling_factor: f64 = 2.5,
        n_group: usize = 1,
        topk_group: usize = 1,
    }
}

/// Which layers of a member are sparse, from `mlp_layer_types` ("dense" or "sparse"
/// per layer); `default(i)` where it is absent.
fn mlp_layer_types(
    config: &ConfigReader,
    types: Option<&[String]>,
    layers: usize,
    default: impl Fn(usize) -> bool,
) -> Result<Vec<bool>> {
    match types {
        Some(t) if t.len() != layers => Err(config.invalid(
            "mlp_layer_types",
            format!("has {} entries for {layers} layers", t.len()),
        )),
        Some(t) => t
            .iter()
            .map(|k| match k.as_str() {
                "sparse" => Ok(true),
                "dense" => Ok(false),
                other => Err(config.invalid(
                    "mlp_layer_types",
                    format!("holds {other:?}: each entry is \"dense\" or \"sparse\""),
                )),
            })
            .collect(),
        None => Ok((0..layers).map(default).collect()),
    }
}

fn load_exaone_moe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &EXAONE_MOE_DEFAULTS)?;
    exaone4::windows(config, &mut c)?;
    let x: ExaoneMoeConfig = config.typed()?;
    let sparse = mlp_layer_types(config, x.mlp_layer_types.as_deref(), c.num_layers, |i| {
        i >= x.first_k_dense_replace
    })?;
    let router = SigmoidRouting::read(
        config,
        SigmoidFields {
            experts: x.num_experts,
            top_k: x.num_experts_per_tok,
            inner: x.moe_intermediate_size,
            norm_topk_prob: x.norm_topk_prob,
            n_group: x.n_group,
            topk_group: x.topk_group,
            routed_scaling: x.routed_scaling_factor,
            shared_experts: x.num_shared_experts,
        },
        ["num_experts", "num_shared_experts"],
    )?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let is_sparse = sparse.get(i).copied().unwrap_or(true);
        i += 1;
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, false, false)?;
        let m = w.pp("mlp");
        let mlp = if is_sparse {
            Mlp::Moe(Box::new(router.moe(&m, &c)?))
        } else {
            llama::mlp(&m, &c)?
        };
        qk_normed_layer(w, &c, attn, mlp)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn exaone_moe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = EXAONE_MOE_DEFAULTS.class;
    vec![
        (class, serde_json::json!(EXAONE_MOE_DEFAULTS)),
        (class, serde_json::json!(ExaoneMoeConfig::default())),
        (class, serde_json::json!(exaone4::Exaone4Window::default())),
    ]
}

// ---- Mellum ----

/// `MellumConfig`'s defaults.
pub(crate) const MELLUM_DEFAULTS: Defaults = Defaults {
    class: "MellumConfig",
    vocab_size: 98304,
    hidden_size: 2304,
    intermediate_size: 7168,
    num_hidden_layers: 28,
    head_dim: Some(128),
    max_position_embeddings: 131072,
    rope_theta: 500000.0,
    ..QWEN3_MOE_DEFAULTS
};

hf_config! {
    /// `MellumConfig`'s experts and window (transformers 5.23; `num_experts` is its
    /// alias of `num_local_experts`).
    pub(crate) struct MellumConfig {
        num_local_experts: usize = 64,
        num_experts_per_tok: usize = 8,
        moe_intermediate_size: usize = 896,
        norm_topk_prob: bool = true,
        sliding_window: Option<usize> = Some(1024),
        /// Filled in by `__post_init__` (all sparse).
        #[serde(skip_serializing)]
        mlp_layer_types: Option<Vec<String>> = None,
    }
}

fn load_mellum(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &MELLUM_DEFAULTS)?;
    let m: MellumConfig = config.typed()?;
    c.sliding_window = m.sliding_window;
    c.window_layers(config, |_| false)?;
    c.rope_by_window(LayerRope::Local, LayerRope::Global);
    let sparse = mlp_layer_types(config, m.mlp_layer_types.as_deref(), c.num_layers, |_| true)?;
    let routing = Routing {
        experts: m.num_local_experts,
        top_k: m.num_experts_per_tok,
        inner: m.moe_intermediate_size,
        norm_topk_prob: m.norm_topk_prob,
        weights_in_dtype: true,
    }
    .checked(config, "num_local_experts")?;
    let mut layout = c.layout();
    olmo3::ropes_by_layer_type(config, &c, &mut layout)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let is_sparse = sparse.get(i).copied().unwrap_or(true);
        i += 1;
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, c.attention_bias, c.attention_bias)?;
        let mw = w.pp("mlp");
        let mlp = if is_sparse {
            Mlp::Moe(Box::new(routing.moe(
                &mw,
                c.hidden_size,
                "gate",
                QWEN_NAMES,
            )?))
        } else {
            llama::mlp(&mw, &c)?
        };
        qk_normed_layer(w, &c, attn, mlp)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn mellum_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = MELLUM_DEFAULTS.class;
    // `rope_parameters` is keyed by layer type: 500000 for the global layers, 10000
    // for the sliding ones.
    let stated = llama::stated_per_layer_type(serde_json::json!(MELLUM_DEFAULTS), 10000.0);
    vec![
        (class, stated),
        (class, serde_json::json!(MellumConfig::default())),
    ]
}

// ---- AFMoE ----

/// `AfmoeConfig`'s defaults (no `mlp_bias`).
pub(crate) const AFMOE_DEFAULTS: Defaults = Defaults {
    class: "AfmoeConfig",
    vocab_size: 200192,
    hidden_size: 2048,
    intermediate_size: 6144,
    num_attention_heads: 16,
    head_dim: Some(128),
    max_position_embeddings: 16384,
    rms_norm_eps: Some(1e-5),
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `AfmoeConfig`'s experts, windows and muP switch (transformers 5.23).
    pub(crate) struct AfmoeConfig {
        moe_intermediate_size: usize = 1408,
        num_dense_layers: Option<usize> = Some(1),
        num_experts: usize = 64,
        num_experts_per_tok: usize = 6,
        num_shared_experts: usize = 2,
        route_scale: f64 = 1.0,
        global_attn_every_n_layers: usize = 4,
        sliding_window: Option<usize> = Some(1024),
        mup_enabled: bool = false,
    }
}

fn load_afmoe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &AFMOE_DEFAULTS)?;
    let a: AfmoeConfig = config.typed()?;
    let Some(dense_layers) = a.num_dense_layers else {
        return Err(config.invalid(
            "num_dense_layers",
            "is null: it must be a number (transformers fails on null too)".into(),
        ));
    };
    c.sliding_window = a.sliding_window;
    if a.global_attn_every_n_layers == 0 && config.value.get("layer_types").is_none() {
        return Err(config.invalid("global_attn_every_n_layers", "is 0".into()));
    }
    let every = a.global_attn_every_n_layers.max(1);
    c.window_layers(config, |i| (i + 1) % every != 0)?;
    // Rotary positions on the sliding layers only: the global ones are NoPE.
    c.rope_by_window(LayerRope::Global, LayerRope::NoPe);
    let shared = a
        .moe_intermediate_size
        .checked_mul(a.num_shared_experts)
        .ok_or_else(|| config.invalid("num_shared_experts", "is too large".into()))?;
    let routing = Routing {
        experts: a.num_experts,
        top_k: a.num_experts_per_tok,
        inner: a.moe_intermediate_size,
        norm_topk_prob: true,
        weights_in_dtype: false,
    }
    .checked(config, "num_experts")?;
    let mut layout = c.layout();
    if a.mup_enabled {
        layout.embed_sqrt_scale = Some(c.hidden_size);
    }
    // Every norm multiplies its weight in f32 before the cast (`_keep_in_fp32_modules`).
    let norm = |w: &Weights, n: usize, name: &str| Norm::rms_f32(w, n, c.eps, name, 0.0);
    let final_norm = norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse = i >= dense_layers;
        i += 1;
        let sa = w.pp("self_attn");
        let attn = llama::attention(&sa, &c, c.attention_bias, c.attention_bias)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            let mut moe = routing.moe(&m, c.hidden_size, "router.gate", QWEN_NAMES)?;
            let bias = m.get(a.num_experts, "expert_bias")?.to_dtype(DType::F32)?;
            moe.selection_bias = Some(bias.to_vec1::<f32>()?);
            moe.sigmoid = true;
            moe.routed_scaling = a.route_scale as f32;
            if shared > 0 {
                let mut s = c.clone();
                s.intermediate_size = shared;
                moe.shared = Some((llama::mlp(&m.pp("shared_experts"), &s)?, None));
            }
            Mlp::Moe(Box::new(moe))
        } else {
            llama::mlp(&m, &c)?
        };
        let mut layer = llama::layer(w, &c, norm, attn, mlp)?;
        layer.attn_out_norm = Some(norm(w, c.hidden_size, "post_attention_layernorm")?);
        layer.mlp_norm = Some(norm(w, c.hidden_size, "pre_mlp_layernorm")?);
        layer.mlp_out_norm = Some(norm(w, c.hidden_size, "post_mlp_layernorm")?);
        layer.qk_norm = Some(QkNorm::PerHead(
            norm(&sa, c.head_dim, "q_norm")?,
            norm(&sa, c.head_dim, "k_norm")?,
        ));
        let gate_out = c.num_heads * c.head_dim;
        layer.out_gate = Some(sa.linear_no_bias(c.hidden_size, gate_out, "gate_proj")?);
        Ok(layer)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn afmoe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (AFMOE_DEFAULTS.class, serde_json::json!(AFMOE_DEFAULTS)),
        (
            AFMOE_DEFAULTS.class,
            serde_json::json!(AfmoeConfig::default()),
        ),
    ]
}

// ---- Cohere 2 MoE ----

/// `Cohere2MoeConfig`'s defaults (its RMSNorm epsilon is read with its fields).
pub(crate) const COHERE2_MOE_DEFAULTS: Defaults = Defaults {
    class: "Cohere2MoeConfig",
    head_dim: Some(128),
    rope_theta: 10000.0,
    ..cohere::DEFAULTS
};

hf_config! {
    /// `Cohere2MoeConfig`'s own fields (transformers 5.23); `first_k_dense_replace`
    /// is not one, but `__post_init__` reads it when the layer lists are absent.
    pub(crate) struct Cohere2MoeConfig {
        sliding_window: Option<usize> = Some(4096),
        num_experts_per_tok: usize = 2,
        num_experts: usize = 8,
        num_shared_experts: usize = 0,
        shared_expert_combination_strategy: String = "average".into(),
        expert_selection_fn: String = "softmax".into(),
        /// Filled in by `__post_init__`.
        #[serde(skip_serializing)]
        layer_types: Option<Vec<String>> = None,
        /// Filled in by `__post_init__`.
        #[serde(skip_serializing)]
        mlp_layer_types: Option<Vec<String>> = None,
        prefix_dense_sliding_window_pattern: usize = 1,
        norm_topk_prob: bool = true,
        prefix_dense_intermediate_size: Option<usize> = None,
        /// Set: every norm is an RMSNorm with this epsilon instead of Cohere's
        /// LayerNorm.
        rms_norm_eps: Option<f64> = None,
        sliding_window_pattern: usize = 4,
        #[serde(skip_serializing)]
        first_k_dense_replace: usize = 0,
    }
}

fn load_cohere2_moe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    // transformers' Cohere 2 MoE has no q/k norms, whatever config.json says.
    let f = CohereFields {
        use_qk_norm: false,
        ..config.typed()?
    };
    let (mut c, mut layout, ln_eps) = cohere::read(config, &COHERE2_MOE_DEFAULTS, &f)?;
    let m: Cohere2MoeConfig = config.typed()?;
    let (layers_n, k) = (c.num_layers, m.first_k_dense_replace.min(c.num_layers));
    // The lists `__post_init__` derives when config.json has none: the window pattern
    // restarts after the dense prefix.
    let every = |pattern: usize, field: &str| -> Result<usize> {
        if pattern == 0 {
            return Err(config.invalid(field, "is 0".into()));
        }
        Ok(pattern)
    };
    if m.layer_types.is_none() {
        let prefix = every(
            m.prefix_dense_sliding_window_pattern,
            "prefix_dense_sliding_window_pattern",
        )?;
        let rest = every(m.sliding_window_pattern, "sliding_window_pattern")?;
        c.windowed_layers = Some(
            (0..layers_n)
                .map(|i| {
                    if i < k {
                        (i + 1) % prefix != 0
                    } else {
                        (i - k + 1) % rest != 0
                    }
                })
                .collect(),
        );
    } else {
        c.window_layers(config, |_| false)?;
    }
    let sparse = mlp_layer_types(config, m.mlp_layer_types.as_deref(), layers_n, |i| i >= k)?;
    // Rotary positions on the sliding layers, and on the dense layers when the prefix
    // pattern is 1 (`force_rope`); the other global layers are NoPE.
    let force = m.prefix_dense_sliding_window_pattern == 1;
    let windowed = c.windowed_layers.clone().unwrap_or_default();
    c.rope_layers = Some(
        windowed
            .iter()
            .zip(&sparse)
            .map(|(&w, &s)| {
                if w || (force && !s) {
                    LayerRope::Global
                } else {
                    LayerRope::NoPe
                }
            })
            .collect(),
    );
    c.sliding_window = m.sliding_window;
    layout.sliding_window = m.sliding_window;
    let sigmoid = match m.expert_selection_fn.as_str() {
        "softmax" => false,
        "sigmoid" => true,
        other => {
            return Err(config.invalid(
                "expert_selection_fn",
                format!("is {other:?}: it must be \"softmax\" or \"sigmoid\""),
            ))
        }
    };
    let average = match m.shared_expert_combination_strategy.as_str() {
        "average" => true,
        "sum" => false,
        other => {
            return Err(config.invalid(
                "shared_expert_combination_strategy",
                format!("is {other:?}: it must be \"average\" or \"sum\""),
            ))
        }
    };
    let routing = Routing {
        experts: m.num_experts,
        top_k: m.num_experts_per_tok,
        inner: c.intermediate_size,
        norm_topk_prob: m.norm_topk_prob,
        weights_in_dtype: true,
    }
    .checked(config, "num_experts")?;
    let shared = c
        .intermediate_size
        .checked_mul(m.num_shared_experts)
        .ok_or_else(|| config.invalid("num_shared_experts", "is too large".into()))?;
    let rms_eps = match m.rms_norm_eps {
        Some(e) => Some(config.check_eps("rms_norm_eps", e)?),
        None => None,
    };
    let norm = |w: &Weights, n: usize, name: &str| match rms_eps {
        Some(eps) => Norm::rms(w, n, eps, name),
        None => cohere::norm(w, n, None, ln_eps, name),
    };
    let final_norm = norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let is_sparse = sparse.get(i).copied().unwrap_or(true);
        i += 1;
        let mw = w.pp("mlp");
        let mlp = if is_sparse {
            let mut moe = routing.moe(&mw, c.hidden_size, "gate", QWEN_NAMES)?;
            // The softmax of the top-k logits, or their sigmoids.
            moe.softmax_after_topk = !sigmoid;
            moe.sigmoid = sigmoid;
            moe.average_shared = average;
            if shared > 0 {
                let mut s = c.clone();
                s.intermediate_size = shared;
                moe.shared = Some((llama::mlp(&mw.pp("shared_experts"), &s)?, None));
            }
            Mlp::Moe(Box::new(moe))
        } else {
            let mut d = c.clone();
            d.intermediate_size = m
                .prefix_dense_intermediate_size
                .unwrap_or(c.intermediate_size);
            llama::mlp(&mw, &d)?
        };
        let mut layer = cohere::layer(w, &c, ln_eps, false, mlp)?;
        layer.attn_norm = Some(norm(w, c.hidden_size, "input_layernorm")?);
        Ok(layer)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn cohere2_moe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = COHERE2_MOE_DEFAULTS.class;
    let mut fields = serde_json::json!(CohereFields::default());
    if let Some(o) = fields.as_object_mut() {
        o.remove("use_qk_norm");
    }
    vec![
        (class, serde_json::json!(COHERE2_MOE_DEFAULTS)),
        (class, fields),
        (class, serde_json::json!(Cohere2MoeConfig::default())),
    ]
}

// ---- PhiMoE ----

/// `PhimoeConfig`'s defaults (its LayerNorms take `rms_norm_eps`).
pub(crate) const PHIMOE_DEFAULTS: Defaults = Defaults {
    class: "PhimoeConfig",
    vocab_size: 32064,
    intermediate_size: 6400,
    num_key_value_heads: Some(8),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    rope_theta: 1e6,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `PhimoeConfig`'s experts, router threshold, head bias and window (transformers
    /// 5.23).
    pub(crate) struct PhimoeConfig {
        num_local_experts: usize = 16,
        num_experts_per_tok: usize = 2,
        router_jitter_noise: f64 = 0.01,
        lm_head_bias: bool = false,
        sliding_window: Option<usize> = None,
    }
}

/// PhiMoE's rotary scale: 1 with the default rope type; with longrope, its
/// `short_mscale`, which must equal `long_mscale` (transformers switches between them
/// by the batch's length; the released checkpoints have one value).
fn phimoe_mscale(config: &ConfigReader) -> Result<Option<f64>> {
    let params = ["rope_parameters", "rope_scaling"]
        .iter()
        .find_map(|k| config.value.get(*k).filter(|v| v.is_object()));
    let get = |k: &str| params.and_then(|p| p.get(k)).filter(|v| !v.is_null());
    let rope_type = get("rope_type")
        .or_else(|| get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    match rope_type {
        "default" => Ok(None),
        "longrope" => {
            let num = |k: &str| {
                get(k).and_then(|v| v.as_f64()).ok_or_else(|| {
                    config.invalid(
                        "rope_parameters",
                        format!("longrope needs `{k}` for PhiMoE"),
                    )
                })
            };
            let (short, long) = (num("short_mscale")?, num("long_mscale")?);
            if short != long {
                return Err(config.invalid(
                    "rope_parameters",
                    format!(
                        "`short_mscale` {short} differs from `long_mscale` {long}: not supported \
                         (the released PhiMoE checkpoints have one value)"
                    ),
                ));
            }
            Ok(Some(short))
        }
        other => Err(config.invalid(
            "rope_parameters",
            format!("rope type `{other}` is not supported for PhiMoE (default and longrope are)"),
        )),
    }
}

fn load_phimoe(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &PHIMOE_DEFAULTS)?;
    let p: PhimoeConfig = config.typed()?;
    c.sliding_window = p.sliding_window;
    llama::check_layer_types(config, c.sliding_window)?;
    c.lm_head_bias = p.lm_head_bias;
    // transformers' PhiMoE always takes the short factors (its rotary embedding
    // recomputes them without the length) and scales cos and sin by the mscale.
    if let Some(mscale) = phimoe_mscale(config)? {
        c.rope.long = None;
        c.rope.attention_factor = mscale;
    }
    if !(p.router_jitter_noise.is_finite() && p.router_jitter_noise >= 0.0) {
        return Err(config.invalid(
            "router_jitter_noise",
            format!("is {}: it must be 0 or more", p.router_jitter_noise),
        ));
    }
    // The sparsemixer always picks two experts, whatever `num_experts_per_tok` says.
    let routing = Routing {
        experts: p.num_local_experts,
        top_k: 2,
        inner: c.intermediate_size,
        norm_topk_prob: false,
        weights_in_dtype: true,
    }
    .checked(config, "num_local_experts")?;
    let eps = c.eps;
    let norm = |w: &Weights, n: usize, name: &str| Norm::layer(w, n, eps, name);
    let final_norm = norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        // The released checkpoints' names, or transformers 5's (`mlp.router`).
        let (block, router) = if w.contains("block_sparse_moe.gate.weight") {
            (w.pp("block_sparse_moe"), "gate")
        } else {
            (w.pp("mlp"), "router")
        };
        let mut moe = routing.moe(&block, c.hidden_size, router, ["w1", "w3", "w2"])?;
        moe.sparsemixer = Some(p.router_jitter_noise as f32);
        llama::layer(w, &c, norm, attn, Mlp::Moe(Box::new(moe)))
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn phimoe_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (PHIMOE_DEFAULTS.class, serde_json::json!(PHIMOE_DEFAULTS)),
        (
            PHIMOE_DEFAULTS.class,
            serde_json::json!(PhimoeConfig::default()),
        ),
    ]
}

// ---- gpt-oss ----

/// `GptOssConfig`'s defaults.
pub(crate) const GPT_OSS_DEFAULTS: Defaults = Defaults {
    class: "GptOssConfig",
    vocab_size: 201088,
    hidden_size: 2880,
    intermediate_size: 2880,
    num_hidden_layers: 36,
    num_attention_heads: 64,
    num_key_value_heads: Some(8),
    head_dim: Some(64),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    rope_theta: 150000.0,
    attention_bias: Some(true),
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `GptOssConfig`'s experts, window and SwiGLU clamp (transformers 5.23;
    /// `num_experts` is its alias of `num_local_experts`).
    pub(crate) struct GptOssConfig {
        #[serde(alias = "num_experts")]
        num_local_experts: usize = 128,
        num_experts_per_tok: usize = 4,
        sliding_window: Option<usize> = Some(128),
        swiglu_alpha: f64 = 1.702,
        swiglu_limit: f64 = 7.0,
    }
}

/// The rotary parameters `GptOssConfig.__post_init__` fills in when config.json has
/// none: YaRN, factor 32 over 4096 positions, bounds not rounded.
fn gpt_oss_rope() -> serde_json::Value {
    serde_json::json!({
        "rope_type": "yarn",
        "rope_theta": GPT_OSS_DEFAULTS.rope_theta,
        "factor": 32.0,
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "truncate": false,
        "original_max_position_embeddings": 4096,
    })
}

/// gpt-oss's experts under `e` (`mlp.experts`), as transformers 5 stores them:
/// `gate_up_proj` `[experts, hidden, 2 * inner]` (multiplied from the right, gate and
/// up interleaved by column) with `gate_up_proj_bias`, `down_proj` `[experts, inner,
/// hidden]` with `down_proj_bias`. Each expert's projections are views.
fn gpt_oss_experts(
    e: &Weights,
    n: usize,
    hidden: usize,
    inner: usize,
    (alpha, limit): (f64, f64),
) -> Result<Vec<Mlp>> {
    if e.contains("gate_up_proj_blocks") {
        return Err(crate::error::Error::InvalidOption(format!(
            "{}: the experts are MXFP4-quantized (`gate_up_proj_blocks`, `_scales`), which is \
             not supported yet; save the checkpoint dequantized (transformers' \
             `Mxfp4Config(dequantize=True)`) and load that",
            e.path.display()
        )));
    }
    // `[experts, 2 * inner, hidden]` as `[experts, inner, 2, hidden]`: index 0 of the
    // pair is the gate, 1 the up projection.
    let gate_up = e
        .get((n, hidden, 2 * inner), "gate_up_proj")?
        .transpose(1, 2)?
        .reshape((n, inner, 2, hidden))?;
    let gate_up_bias = e
        .get((n, 2 * inner), "gate_up_proj_bias")?
        .reshape((n, inner, 2))?;
    let down = e.get((n, inner, hidden), "down_proj")?.transpose(1, 2)?;
    let down_bias = e.get((n, hidden), "down_proj_bias")?;
    (0..n)
        .map(|i| {
            // Every other row: copied once at load into a plain matrix.
            let part = |k: usize| -> Result<Linear> {
                Ok(Linear::new(
                    gate_up.get(i)?.narrow(1, k, 1)?.squeeze(1)?.contiguous()?,
                    Some(
                        gate_up_bias
                            .get(i)?
                            .narrow(1, k, 1)?
                            .squeeze(1)?
                            .contiguous()?,
                    ),
                ))
            };
            Ok(Mlp::ClampedSwiglu {
                gate: part(0)?,
                up: part(1)?,
                down: Linear::new(down.get(i)?, Some(down_bias.get(i)?)),
                alpha,
                limit,
            })
        })
        .collect()
}

fn load_gpt_oss(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let filled = llama::with_default_rope(config, gpt_oss_rope());
    let filled_reader = filled.as_ref().map(|v| config.with_value(v));
    let config = filled_reader.as_ref().unwrap_or(config);
    let mut c = llama::Config::read(config, &GPT_OSS_DEFAULTS)?;
    let g: GptOssConfig = config.typed()?;
    c.sliding_window = g.sliding_window;
    c.window_layers(config, |i| (i + 1) % 2 != 0)?;
    for (field, x) in [
        ("swiglu_alpha", g.swiglu_alpha),
        ("swiglu_limit", g.swiglu_limit),
    ] {
        if !x.is_finite() {
            return Err(config.invalid(field, "is not finite".into()));
        }
    }
    let routing = Routing {
        experts: g.num_local_experts,
        top_k: g.num_experts_per_tok,
        inner: c.intermediate_size,
        norm_topk_prob: true,
        weights_in_dtype: true,
    }
    .checked(config, "num_local_experts")?;
    let norm = |w: &Weights, n: usize, name: &str| Norm::rms_f32(w, n, c.eps, name, 0.0);
    let final_norm = norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let attn = llama::attention(&w.pp("self_attn"), &c, c.attention_bias, c.attention_bias)?;
        let m = w.pp("mlp");
        let (h, r) = (c.hidden_size, &routing);
        let router = m.pp("router");
        let moe = Moe {
            router: Linear::new(
                router.get((r.experts, h), "weight")?,
                Some(router.get(r.experts, "bias")?),
            ),
            experts: gpt_oss_experts(
                &m.pp("experts"),
                r.experts,
                h,
                r.inner,
                (g.swiglu_alpha, g.swiglu_limit),
            )?,
            top_k: r.top_k,
            norm_topk_prob: true,
            // The softmax of the top-k logits.
            softmax_after_topk: true,
            weights_in_dtype: r.weights_in_dtype,
            selection_bias: None,
            norm_min: 0.0,
            sigmoid: false,
            groups: None,
            routed_scaling: 1.0,
            shared: None,
            average_shared: false,
            sparsemixer: None,
        };
        let mut layer = llama::layer(w, &c, norm, attn, Mlp::Moe(Box::new(moe)))?;
        layer.sinks = Some(granite_swa::sinks(w, &c)?);
        Ok(layer)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn gpt_oss_defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![
        (GPT_OSS_DEFAULTS.class, serde_json::json!(GPT_OSS_DEFAULTS)),
        (
            GPT_OSS_DEFAULTS.class,
            serde_json::json!(GptOssConfig::default()),
        ),
    ]
}

// ---- DeepSeek-V3 ----

/// `DeepseekV3Config`'s defaults (`head_dim` is `qk_rope_head_dim`).
pub(crate) const DEEPSEEK_V3_DEFAULTS: Defaults = Defaults {
    class: "DeepseekV3Config",
    vocab_size: 129280,
    hidden_size: 7168,
    intermediate_size: 18432,
    num_hidden_layers: 61,
    num_attention_heads: 128,
    num_key_value_heads: Some(128),
    head_dim: Some(64),
    max_position_embeddings: 4096,
    rms_norm_eps: Some(1e-6),
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `DeepseekV3Config`'s experts (transformers 5.23).
    pub(crate) struct DeepseekV3Config {
        moe_intermediate_size: usize = 2048,
        n_shared_experts: usize = 1,
        n_routed_experts: usize = 256,
        routed_scaling_factor: f64 = 2.5,
        n_group: usize = 8,
        topk_group: usize = 4,
        num_experts_per_tok: usize = 8,
        first_k_dense_replace: usize = 3,
        norm_topk_prob: bool = true,
    }
}

fn load_deepseek_v3(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let f: MlaFields = config.typed()?;
    let (c, layout) = mla_config(config, &DEEPSEEK_V3_DEFAULTS, &f)?;
    llama::check_layer_types(config, None)?;
    let g: DeepseekV3Config = config.typed()?;
    let router = SigmoidRouting::read(
        config,
        SigmoidFields {
            experts: g.n_routed_experts,
            top_k: g.num_experts_per_tok,
            inner: g.moe_intermediate_size,
            norm_topk_prob: g.norm_topk_prob,
            n_group: g.n_group,
            topk_group: g.topk_group,
            routed_scaling: g.routed_scaling_factor,
            shared_experts: g.n_shared_experts,
        },
        ["n_routed_experts", "n_shared_experts"],
    )?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse = i >= g.first_k_dense_replace;
        i += 1;
        let attn = mla_attention(&w.pp("self_attn"), &c, &f, c.attention_bias)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            Mlp::Moe(Box::new(router.moe(&m, &c)?))
        } else {
            llama::mlp(&m, &c)?
        };
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn deepseek_v3_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = DEEPSEEK_V3_DEFAULTS.class;
    vec![
        (class, serde_json::json!(DEEPSEEK_V3_DEFAULTS)),
        (class, serde_json::json!(DeepseekV3Config::default())),
        (class, serde_json::json!(MlaFields::default())),
    ]
}

// ---- GLM-4-MoE-Lite ----

/// `Glm4MoeLiteConfig`'s defaults (`head_dim` is its alias of `qk_rope_head_dim`, read
/// as that).
pub(crate) const GLM4_MOE_LITE_DEFAULTS: Defaults = Defaults {
    class: "Glm4MoeLiteConfig",
    vocab_size: 154880,
    hidden_size: 2048,
    intermediate_size: 10240,
    num_hidden_layers: 47,
    num_attention_heads: 20,
    num_key_value_heads: Some(20),
    head_dim: None,
    max_position_embeddings: 202752,
    rms_norm_eps: Some(1e-5),
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `Glm4MoeLiteConfig`'s latent attention and experts (transformers 5.23).
    pub(crate) struct Glm4MoeLiteConfig {
        kv_lora_rank: usize = 512,
        q_lora_rank: Option<usize> = Some(768),
        qk_rope_head_dim: usize = 64,
        v_head_dim: usize = 256,
        qk_nope_head_dim: usize = 192,
        rope_interleave: bool = true,
        moe_intermediate_size: usize = 1536,
        n_shared_experts: usize = 1,
        n_routed_experts: usize = 64,
        routed_scaling_factor: f64 = 1.8,
        n_group: usize = 1,
        topk_group: usize = 1,
        num_experts_per_tok: usize = 4,
        norm_topk_prob: bool = true,
        /// Filled in by `__post_init__` (the first layer dense).
        #[serde(skip_serializing)]
        mlp_layer_types: Option<Vec<String>> = None,
    }
}

fn load_glm4_moe_lite(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: Glm4MoeLiteConfig = config.typed()?;
    let f = MlaFields {
        kv_lora_rank: g.kv_lora_rank,
        q_lora_rank: g.q_lora_rank,
        qk_rope_head_dim: g.qk_rope_head_dim,
        v_head_dim: g.v_head_dim,
        qk_nope_head_dim: g.qk_nope_head_dim,
        rope_interleave: g.rope_interleave,
    };
    let (c, layout) = mla_config(config, &GLM4_MOE_LITE_DEFAULTS, &f)?;
    llama::check_layer_types(config, None)?;
    let sparse = mlp_layer_types(config, g.mlp_layer_types.as_deref(), c.num_layers, |i| {
        i >= 1
    })?;
    let router = SigmoidRouting::read(
        config,
        SigmoidFields {
            experts: g.n_routed_experts,
            top_k: g.num_experts_per_tok,
            inner: g.moe_intermediate_size,
            norm_topk_prob: g.norm_topk_prob,
            n_group: g.n_group,
            topk_group: g.topk_group,
            routed_scaling: g.routed_scaling_factor,
            shared_experts: g.n_shared_experts,
        },
        ["n_routed_experts", "n_shared_experts"],
    )?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let is_sparse = sparse.get(i).copied().unwrap_or(true);
        i += 1;
        let attn = mla_attention(&w.pp("self_attn"), &c, &f, c.attention_bias)?;
        let m = w.pp("mlp");
        let mlp = if is_sparse {
            Mlp::Moe(Box::new(router.moe(&m, &c)?))
        } else {
            llama::mlp(&m, &c)?
        };
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn glm4_moe_lite_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = GLM4_MOE_LITE_DEFAULTS.class;
    vec![
        (class, serde_json::json!(GLM4_MOE_LITE_DEFAULTS)),
        (class, serde_json::json!(Glm4MoeLiteConfig::default())),
    ]
}

// ---- DeepSeek-V2 ----

/// `DeepseekV2Config`'s defaults (`head_dim` is `qk_rope_head_dim`).
pub(crate) const DEEPSEEK_V2_DEFAULTS: Defaults = Defaults {
    class: "DeepseekV2Config",
    vocab_size: 102400,
    head_dim: Some(64),
    ..llama::DEFAULTS
};

hf_config! {
    /// `DeepseekV2Config`'s latent attention and experts (transformers 5.23;
    /// `num_experts` is its alias of `n_routed_experts`).
    pub(crate) struct DeepseekV2Config {
        kv_lora_rank: usize = 512,
        q_lora_rank: Option<usize> = Some(1536),
        qk_rope_head_dim: usize = 64,
        v_head_dim: usize = 128,
        qk_nope_head_dim: usize = 128,
        moe_intermediate_size: usize = 1407,
        #[serde(alias = "num_experts")]
        n_routed_experts: usize = 64,
        n_shared_experts: usize = 2,
        num_experts_per_tok: Option<usize> = None,
        topk_method: String = "greedy".into(),
        n_group: Option<usize> = None,
        topk_group: Option<usize> = None,
        routed_scaling_factor: f64 = 1.0,
        first_k_dense_replace: usize = 0,
    }
}

fn load_deepseek_v2(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: DeepseekV2Config = config.typed()?;
    // Its rotary pairs are always interleaved (transformers multiplies complex numbers).
    let f = MlaFields {
        kv_lora_rank: g.kv_lora_rank,
        q_lora_rank: g.q_lora_rank,
        qk_rope_head_dim: g.qk_rope_head_dim,
        v_head_dim: g.v_head_dim,
        qk_nope_head_dim: g.qk_nope_head_dim,
        rope_interleave: true,
    };
    let (c, layout) = mla_config(config, &DEEPSEEK_V2_DEFAULTS, &f)?;
    llama::check_layer_types(config, None)?;
    let top_k = g.num_experts_per_tok.ok_or_else(|| {
        config.invalid(
            "num_experts_per_tok",
            "is absent: DeepSeek-V2's experts need it".into(),
        )
    })?;
    // The softmax probabilities picked, times `routed_scaling_factor`, never
    // renormalized (transformers drops `norm_topk_prob`).
    let routing = Routing {
        experts: g.n_routed_experts,
        top_k,
        inner: g.moe_intermediate_size,
        norm_topk_prob: false,
        weights_in_dtype: false,
    }
    .checked(config, "n_routed_experts")?;
    let groups = match g.topk_method.as_str() {
        "greedy" => None,
        "group_limited_greedy" => {
            let (Some(n), Some(k)) = (g.n_group, g.topk_group) else {
                return Err(config.invalid(
                    "topk_method",
                    "is group_limited_greedy without n_group and topk_group".into(),
                ));
            };
            if n == 0 || g.n_routed_experts % n != 0 || k == 0 || k > n {
                return Err(config.invalid(
                    "n_group",
                    format!(
                        "{n} groups of which topk_group {k} are kept do not fit {} experts",
                        g.n_routed_experts
                    ),
                ));
            }
            if top_k > k * (g.n_routed_experts / n) {
                return Err(config.invalid(
                    "num_experts_per_tok",
                    format!("{top_k} is more than the experts of {k} kept groups"),
                ));
            }
            // A group's score is its best expert's.
            Some((n, k, 1))
        }
        other => {
            return Err(config.invalid(
                "topk_method",
                format!("`{other}` is not supported (greedy and group_limited_greedy are)"),
            ))
        }
    };
    let shared = g
        .moe_intermediate_size
        .checked_mul(g.n_shared_experts)
        .ok_or_else(|| config.invalid("n_shared_experts", "is too large".into()))?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let mut i = 0;
    let layers = |w: &Weights| {
        let sparse = i >= g.first_k_dense_replace;
        i += 1;
        let attn = mla_attention(&w.pp("self_attn"), &c, &f, c.attention_bias)?;
        let m = w.pp("mlp");
        let mlp = if sparse {
            let mut moe = routing.moe(&m, c.hidden_size, "gate", QWEN_NAMES)?;
            moe.groups = groups;
            moe.routed_scaling = g.routed_scaling_factor as f32;
            if shared > 0 {
                let mut s = c.clone();
                s.intermediate_size = shared;
                moe.shared = Some((llama::mlp(&m.pp("shared_experts"), &s)?, None));
            }
            Mlp::Moe(Box::new(moe))
        } else {
            llama::mlp(&m, &c)?
        };
        llama::layer(w, &c, |w, n, name| c.norm(w, n, name), attn, mlp)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

fn deepseek_v2_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = DEEPSEEK_V2_DEFAULTS.class;
    vec![
        (class, serde_json::json!(DEEPSEEK_V2_DEFAULTS)),
        (class, serde_json::json!(DeepseekV2Config::default())),
    ]
}

// ---- MiniMax-M2 ----

/// `MiniMaxM2Config`'s defaults.
pub(crate) const MINIMAX_M2_DEFAULTS: Defaults = Defaults {
    class: "MiniMaxM2Config",
    vocab_size: 200064,
    hidden_size: 3072,
    intermediate_size: 1536,
    num_hidden_layers: 62,
    num_attention_heads: 48,
    num_key_value_heads: Some(8),
    head_dim: Some(128),
    max_position_embeddings: 196608,
    rope_theta: 5_000_000.0,
    attention_bias: None,
    mlp_bias: None,
    ..llama::DEFAULTS
};

hf_config! {
    /// `MiniMaxM2Config`'s experts (transformers 5.23), and the released checkpoints'
    /// legacy `rotary_dim` (read as `partial_rotary_factor = rotary_dim / head_dim`).
    pub(crate) struct MiniMaxM2Config {
        num_experts_per_tok: usize = 8,
        num_local_experts: usize = 256,
        #[serde(skip_serializing)]
        rotary_dim: Option<usize> = None,
    }
}

fn load_minimax_m2(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let mut c = llama::Config::read(config, &MINIMAX_M2_DEFAULTS)?;
    llama::check_layer_types(config, None)?;
    let m: MiniMaxM2Config = config.typed()?;
    let stated_partial = config
        .value
        .get("rope_parameters")
        .and_then(|p| p.get("partial_rotary_factor"))
        .or_else(|| config.value.get("partial_rotary_factor"))
        .is_some();
    if let (Some(dim), false) = (m.rotary_dim, stated_partial) {
        if dim == 0 || dim % 2 != 0 || dim > c.head_dim {
            return Err(config.invalid(
                "rotary_dim",
                format!("{dim} is not an even size up to head_dim {}", c.head_dim),
            ));
        }
        c.rotary_dim = dim;
        c.rope = super::decoder::rope_freqs(
            config,
            None,
            dim,
            MINIMAX_M2_DEFAULTS.rope_theta,
            c.max_positions,
        )?;
    }
    // Sigmoid scores, the choice corrected by `e_score_correction_bias`, the picked
    // scores renormalized (no groups, no scaling).
    let routing = Routing {
        experts: m.num_local_experts,
        top_k: m.num_experts_per_tok,
        inner: c.intermediate_size,
        norm_topk_prob: true,
        weights_in_dtype: false,
    }
    .checked(config, "num_local_experts")?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| {
        let a = w.pp("self_attn");
        let attn = llama::attention(&a, &c, false, false)?;
        // The released checkpoints' names, or transformers 5's.
        let block = if w.contains("block_sparse_moe.gate.weight") {
            w.pp("block_sparse_moe")
        } else {
            w.pp("mlp")
        };
        let mut moe = routing.moe(&block, c.hidden_size, "gate", ["w1", "w3", "w2"])?;
        let bias = block
            .get(m.num_local_experts, "e_score_correction_bias")?
            .to_dtype(DType::F32)?;
        moe.selection_bias = Some(bias.to_vec1::<f32>()?);
        moe.sigmoid = true;
        let mut layer = llama::layer(
            w,
            &c,
            |w, n, name| c.norm(w, n, name),
            attn,
            Mlp::Moe(Box::new(moe)),
        )?;
        // FlexOlmo's attention: RMSNorms over the whole query and key projections.
        layer.qk_norm = Some(QkNorm::Whole(
            olmo2::norm(&a, c.num_heads * c.head_dim, &c, "q_norm")?,
            olmo2::norm(&a, c.num_kv_heads * c.head_dim, &c, "k_norm")?,
        ));
        Ok(layer)
    };
    llama::assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

fn minimax_m2_defaults() -> Vec<(&'static str, serde_json::Value)> {
    let class = MINIMAX_M2_DEFAULTS.class;
    vec![
        (class, serde_json::json!(MINIMAX_M2_DEFAULTS)),
        (class, serde_json::json!(MiniMaxM2Config::default())),
    ]
}
