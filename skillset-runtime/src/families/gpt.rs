//! The `gpt` family's base member, GPT-2: a decoder-only transformer with LayerNorms
//! (with biases), learned absolute positions, a fused `Conv1D` q/k/v projection and a
//! GELU MLP. The other members are files over the pieces here (`gpt_neo.rs`,
//! `gptj.rs`, `gpt_neox.rs`, `gpt_bigcode.rs`, `opt.rs`): each states its config class
//! with transformers' defaults, its block under its weight names and where its
//! checkpoint keeps the rest ([`Skeleton`]).
//! candle-transformers ships no GPT-2; this is our own implementation.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{
    self, Decoder, DecoderFile, Layer, LayerRope, Layout, LearnedPositions, Mlp, Norm, Qkv, Rope,
    RopeFreqs,
};
use super::nn::{Activation, Linear, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &[
        "GPT2LMHeadModel",
        "GPT2Model",
        "GPT2ForSequenceClassification",
    ],
    load,
    defaults,
};

hf_config! {
    /// `GPT2Config` (transformers 5.23): the fields the model reads, with its defaults
    /// (and its `attribute_map`'s names as aliases).
    pub(crate) struct GPT2Config {
        vocab_size: usize = 50257,
        #[serde(alias = "max_position_embeddings")]
        n_positions: usize = 1024,
        #[serde(alias = "hidden_size")]
        n_embd: usize = 768,
        #[serde(alias = "num_hidden_layers")]
        n_layer: usize = 12,
        #[serde(alias = "num_attention_heads")]
        n_head: usize = 12,
        n_inner: Option<usize> = None,
        activation_function: String = "gelu_new".into(),
        layer_norm_epsilon: f64 = 1e-5,
        scale_attn_weights: bool = true,
        scale_attn_by_inverse_layer_idx: bool = false,
        tie_word_embeddings: bool = true,
    }
}

/// Where a GPT-style checkpoint keeps its parts, and the sizes around the blocks.
pub(crate) struct Skeleton<'a> {
    /// The body's prefix in a head model (`transformer`); a bare model keeps the body
    /// at the root, or under `bare` (OPT's `decoder`).
    pub prefix: &'a str,
    pub bare: Option<&'a str>,
    /// The token embedding (`wte`).
    pub embed: &'a str,
    /// A LayerNorm on the embeddings (BLOOM's `word_embeddings_layernorm`).
    pub embed_norm: Option<&'a str>,
    /// Learned positions: the table (`wpe`) and the offset of position ids (OPT: 2).
    pub positions: Option<(&'a str, u32)>,
    /// The blocks (`h`: `h.0`, `h.1`, ...).
    pub blocks: &'a str,
    /// The final LayerNorm (`ln_f`), where there is one.
    pub final_norm: Option<&'a str>,
    /// The output head (`lm_head`) and whether it has a bias (GPT-J).
    pub head: &'a str,
    pub head_bias: bool,
    pub vocab_size: usize,
    pub hidden: usize,
    /// The width of the embeddings: `hidden`, or OPT's `word_embed_proj_dim` (with
    /// projections in and out).
    pub embed_dim: usize,
    pub max_positions: usize,
    pub layers: usize,
    pub eps: f64,
    pub tie_word_embeddings: bool,
}

impl Skeleton<'static> {
    /// GPT-2's weight names (`transformer.wte`, `wpe`, `h.N`, `ln_f`, `lm_head`), with
    /// these sizes; members change the names they do not share.
    pub(crate) fn gpt2(
        vocab_size: usize,
        hidden: usize,
        max_positions: usize,
        layers: usize,
        eps: f64,
        tie_word_embeddings: bool,
    ) -> Self {
        Skeleton {
            prefix: "transformer",
            bare: None,
            embed: "wte",
            embed_norm: None,
            positions: Some(("wpe", 0)),
            blocks: "h",
            final_norm: Some("ln_f"),
            head: "lm_head",
            head_bias: false,
            vocab_size,
            hidden,
            embed_dim: hidden,
            max_positions,
            layers,
            eps,
            tie_word_embeddings,
        }
    }
}

/// The hidden size split over heads: the head size (an error naming `key` when the
/// heads do not divide it).
pub(crate) fn head_dim(c: &ConfigReader, key: &str, hidden: usize, heads: usize) -> Result<usize> {
    Ok(hidden / c.check_heads(key, heads, hidden)?)
}

/// The rotary positions of `dim` dims per head with base `theta` (`interleaved`: GPT-J's
/// pairs of neighbours instead of halves).
pub(crate) fn rope(
    c: &ConfigReader,
    head_dim: usize,
    dim: usize,
    theta: f64,
    interleaved: bool,
) -> Result<Rope> {
    if dim == 0 || dim % 2 != 0 || dim > head_dim {
        return Err(c.invalid(
            "rotary_dim",
            format!("{dim} is not an even size up to the head size {head_dim}"),
        ));
    }
    let theta = c.check_rope_theta(theta)?;
    Ok(Rope {
        freqs: RopeFreqs::plain(
            decoder::plain_inv_freq(theta, dim)
                .into_iter()
                .map(|x| x as f32)
                .collect(),
        ),
        dim,
        interleaved,
    })
}

/// A block with its parts, pre-norm unless the layout says otherwise.
pub(crate) fn block(
    attn_norm: Norm,
    mlp_norm: Option<Norm>,
    (qkv, out): (Qkv, Linear),
    mlp: Mlp,
    windowed: bool,
) -> Layer {
    Layer {
        attn_norm: Some(attn_norm),
        qkv,
        qk_norm: None,
        out,
        attn_out_norm: None,
        mlp_norm,
        mlp,
        mlp_out_norm: None,
        windowed,
        rope: LayerRope::Global,
        sinks: None,
        out_gate: None,
        differential: None,
    }
}

/// The decoder around the blocks `layer(weights, index)` builds, where `s` says.
pub(crate) fn assemble(
    s: &Skeleton,
    weights: &Weights,
    layout: Layout,
    mut layer: impl FnMut(&Weights, usize) -> Result<Layer>,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let body = if weights.contains(&format!("{}.{}.weight", s.prefix, s.embed)) {
        weights.pp(s.prefix)
    } else if let Some(bare) = s.bare {
        weights.pp(bare)
    } else {
        weights.clone()
    };
    let embed = body.embedding(s.vocab_size, s.embed_dim, s.embed)?;
    let positions = match s.positions {
        None => None,
        Some((name, offset)) => Some(LearnedPositions {
            table: body.embedding(s.max_positions + offset as usize, s.hidden, name)?,
            offset,
        }),
    };
    let layers = (0..s.layers)
        .map(|i| layer(&body.pp(format!("{}.{i}", s.blocks)), i))
        .collect::<Result<Vec<_>>>()?;
    let final_norm = match s.final_norm {
        Some(name) => Some(Norm::layer(&body, s.hidden, s.eps, name)?),
        None => None,
    };
    let (project_in, project_out) = if s.embed_dim != s.hidden {
        (
            Some(body.linear_no_bias(s.embed_dim, s.hidden, "project_in")?),
            Some(body.linear_no_bias(s.hidden, s.embed_dim, "project_out")?),
        )
    } else {
        (None, None)
    };
    let lm_head = decoder::lm_head(
        weights,
        &embed,
        s.tie_word_embeddings,
        s.head,
        s.embed_dim,
        s.vocab_size,
        s.head_bias,
    )?;
    let mut layout = layout;
    layout.max_positions = s.max_positions;
    let embed_norm = match s.embed_norm {
        Some(name) => Some(Norm::layer(&body, s.embed_dim, s.eps, name)?),
        None => None,
    };
    Ok(Decoder {
        layout,
        embed,
        embed_norm,
        positions,
        project_in,
        project_out,
        layers,
        final_norm,
        lm_head,
        dtype,
        device: device.clone(),
    })
}

/// GPT-2's `Conv1D` stores `[in, out]`: transpose into a `Linear`.
pub(crate) fn conv1d(w: &Weights, d_in: usize, d_out: usize, name: &str) -> Result<Linear> {
    let p = w.pp(name);
    let weight = p.get((d_in, d_out), "weight")?.t()?.contiguous()?;
    Ok(Linear::new(weight, Some(p.get(d_out, "bias")?)))
}

/// Load a GPT-2 causal LM.
pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let g: GPT2Config = config.typed()?;
    let (h, heads) = (g.n_embd, g.n_head);
    let hd = head_dim(config, "n_head", h, heads)?;
    let i = g.n_inner.unwrap_or(4 * h);
    let eps = config.check_eps("layer_norm_epsilon", g.layer_norm_epsilon)?;
    let act: Activation = config.activation_named("activation_function", &g.activation_function)?;
    let mut layout = Layout::new(heads, heads, hd, act);
    if !g.scale_attn_weights {
        layout.scale = 1.0;
    }
    layout.scale_by_layer = g.scale_attn_by_inverse_layer_idx;
    let skeleton = Skeleton::gpt2(
        g.vocab_size,
        h,
        g.n_positions,
        g.n_layer,
        eps,
        g.tie_word_embeddings,
    );
    let layer = |w: &Weights, _| {
        let ln = |name: &str| Norm::layer(w, h, eps, name);
        let attn = (
            Qkv::Fused(conv1d(w, h, 3 * h, "attn.c_attn")?),
            conv1d(w, h, h, "attn.c_proj")?,
        );
        let mlp = Mlp::Plain {
            fc_in: conv1d(w, h, i, "mlp.c_fc")?,
            fc_out: conv1d(w, i, h, "mlp.c_proj")?,
        };
        Ok(block(ln("ln_1")?, Some(ln("ln_2")?), attn, mlp, false))
    };
    assemble(&skeleton, weights, layout, layer, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    vec![("GPT2Config", serde_json::json!(GPT2Config::default()))]
}
