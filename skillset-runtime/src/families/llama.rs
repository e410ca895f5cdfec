//! The `llama` family's base member, Llama: a decoder-only transformer with RMSNorm,
//! rotary position embeddings, grouped-query attention and a gated MLP. The other
//! members are delta files over it (`mistral.rs`, `qwen2.rs`, `qwen3.rs`, `phi3.rs`,
//! `gemma.rs`, `granite.rs`, `olmo.rs`, `olmo2.rs`), as transformers' `modular_*.py`
//! files state them over Llama: each gives its config class's defaults and changes
//! the layers or the layout it changes.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{
    self, linear, Decoder, DecoderFile, Layer, LayerRope, Layout, Mlp, Norm, Qkv, Rope, RopeFreqs,
};
use super::nn::{Activation, Linear, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "LlamaForCausalLM",
        "LlamaModel",
        "LlamaForSequenceClassification",
    ],
    load,
    defaults,
};

hf_config! {
    /// The fields of a llama-family config.json the base reads, as given: a missing
    /// (or `null`) field takes the member's default ([`Defaults`]), a field of the
    /// wrong type is an error naming it.
    pub(crate) struct Fields {
        vocab_size: Option<usize> = None,
        hidden_size: Option<usize> = None,
        intermediate_size: Option<usize> = None,
        num_hidden_layers: Option<usize> = None,
        num_attention_heads: Option<usize> = None,
        num_key_value_heads: Option<usize> = None,
        head_dim: Option<usize> = None,
        hidden_act: Option<String> = None,
        max_position_embeddings: Option<usize> = None,
        rms_norm_eps: Option<f64> = None,
        tie_word_embeddings: Option<bool> = None,
        attention_bias: Option<bool> = None,
        mlp_bias: Option<bool> = None,
    }
}

/// A member's config class defaults for [`Fields`] (transformers 5.23; checked against
/// `tests/config_defaults.json` by the unit test below). `None` for a field the class
/// does not have: transformers' model then ignores it in a config.json.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Defaults {
    /// The config class (`LlamaConfig`), whose defaults the unit test compares.
    #[serde(skip)]
    pub class: &'static str,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// `None`: `num_attention_heads`.
    pub num_key_value_heads: Option<usize>,
    /// `None`: `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    pub hidden_act: &'static str,
    pub max_position_embeddings: usize,
    /// `None`: the class has no RMSNorm epsilon (OLMo's LayerNorm has its own).
    pub rms_norm_eps: Option<f64>,
    /// The rotary base when the config names none (the class's `default_theta`).
    #[serde(rename = "rope_parameters.rope_theta")]
    pub rope_theta: f64,
    /// The share of each head that takes rotary positions when the config names none.
    #[serde(
        rename = "rope_parameters.partial_rotary_factor",
        skip_serializing_if = "is_one"
    )]
    pub partial_rotary_factor: f64,
    pub tie_word_embeddings: bool,
    /// `None`: no such field; the projections have no bias (or the member fixes it).
    pub attention_bias: Option<bool>,
    pub mlp_bias: Option<bool>,
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

/// `d` as config.json fields, with the rotary base stated for each layer type (the
/// classes whose `rope_parameters` are keyed by layer type: Gemma 3, OLMo-3).
pub(crate) fn stated_per_layer_type(
    mut d: serde_json::Value,
    local_theta: f64,
) -> serde_json::Value {
    if let Some(o) = d.as_object_mut() {
        if let Some(theta) = o.remove("rope_parameters.rope_theta") {
            o.insert("rope_parameters.full_attention.rope_theta".into(), theta);
            o.insert(
                "rope_parameters.sliding_attention.rope_theta".into(),
                local_theta.into(),
            );
        }
    }
    d
}

/// `LlamaConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "LlamaConfig",
    vocab_size: 32000,
    hidden_size: 4096,
    intermediate_size: 11008,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: None,
    head_dim: None,
    hidden_act: "silu",
    max_position_embeddings: 2048,
    rms_norm_eps: Some(1e-6),
    rope_theta: 10000.0,
    partial_rotary_factor: 1.0,
    tie_word_embeddings: false,
    attention_bias: Some(false),
    mlp_bias: Some(false),
};

/// `InternLM3Config`'s defaults: transformers runs `internlm3` checkpoints with
/// Llama's classes, reading their config as this class.
pub(crate) const INTERNLM3: Defaults = Defaults {
    class: "InternLM3Config",
    vocab_size: 128512,
    intermediate_size: 10240,
    num_hidden_layers: 48,
    num_key_value_heads: Some(2),
    head_dim: Some(128),
    max_position_embeddings: 32768,
    rms_norm_eps: Some(1e-5),
    ..DEFAULTS
};

/// `IQuestCoderConfig`'s defaults (`iquestcoder` runs with Llama's classes too).
pub(crate) const IQUESTCODER: Defaults = Defaults {
    class: "IQuestCoderConfig",
    vocab_size: 76800,
    hidden_size: 5120,
    intermediate_size: 27648,
    num_hidden_layers: 80,
    num_attention_heads: 40,
    num_key_value_heads: Some(8),
    head_dim: Some(128),
    max_position_embeddings: 131072,
    rms_norm_eps: Some(1e-5),
    ..DEFAULTS
};

/// The config class of a checkpoint that Llama's classes load: defaults follow the
/// model type's config class (what `AutoConfig` reads), the layers the architecture.
fn config_class(c: &ConfigReader) -> &'static Defaults {
    match c.str_or("model_type", "llama") {
        "internlm3" => &INTERNLM3,
        "iquestcoder" => &IQUESTCODER,
        _ => &DEFAULTS,
    }
}

/// A llama-family config resolved: the member's config.json over its class defaults.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) vocab_size: usize,
    pub(crate) hidden_size: usize,
    pub(crate) intermediate_size: usize,
    pub(crate) num_layers: usize,
    pub(crate) num_heads: usize,
    pub(crate) num_kv_heads: usize,
    pub(crate) head_dim: usize,
    pub(crate) rotary_dim: usize,
    pub(crate) eps: f64,
    pub(crate) act: Activation,
    pub(crate) tie_word_embeddings: bool,
    pub(crate) attention_bias: bool,
    pub(crate) mlp_bias: bool,
    /// The sliding window of the member's attention, where it has one (set by the
    /// member: Mistral, the Qwens).
    pub(crate) sliding_window: Option<usize>,
    /// Per layer, whether it attends within `sliding_window` (a member's
    /// `layer_types`); `None`: every layer does.
    pub(crate) windowed_layers: Option<Vec<bool>>,
    /// Per layer, which rotary positions it takes; `None`: the layout's `rope`.
    pub(crate) rope_layers: Option<Vec<LayerRope>>,
    pub(crate) max_positions: usize,
    /// In f32, as transformers computes the rotary angles.
    pub(crate) rope: RopeFreqs,
    /// The class's rotary base, for members that read more rotary sets.
    pub(crate) default_theta: f64,
    /// The head has a bias (ERNIE 4.5 MoE's `use_bias`; tied or not).
    pub(crate) lm_head_bias: bool,
}

impl Config {
    /// Read config.json as a member whose config class has the defaults `d`.
    pub(crate) fn read(c: &ConfigReader, d: &Defaults) -> Result<Self> {
        let f: Fields = c.typed()?;
        let hidden_size = f.hidden_size.unwrap_or(d.hidden_size);
        let num_heads = f.num_attention_heads.unwrap_or(d.num_attention_heads);
        if num_heads == 0 {
            return Err(c.invalid("num_attention_heads", "is 0".into()));
        }
        let num_kv_heads = f
            .num_key_value_heads
            .or(d.num_key_value_heads)
            .unwrap_or(num_heads);
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(c.invalid(
                "num_key_value_heads",
                format!("{num_kv_heads} does not divide num_attention_heads {num_heads}"),
            ));
        }
        let head_dim = f.head_dim.or(d.head_dim).unwrap_or(hidden_size / num_heads);
        if head_dim == 0 {
            return Err(c.invalid(
                "head_dim",
                format!(
                    "is 0 (hidden_size {hidden_size} / num_attention_heads {num_heads} when absent)"
                ),
            ));
        }
        let rotary_dim = decoder::partial_rotary_dim(c, head_dim, d.partial_rotary_factor)?;
        let eps = match d.rms_norm_eps {
            Some(default) => c.check_eps("rms_norm_eps", f.rms_norm_eps.unwrap_or(default))?,
            None => 0.0,
        };
        let act = f.hidden_act.as_deref().unwrap_or(d.hidden_act);
        let max_positions = f
            .max_position_embeddings
            .unwrap_or(d.max_position_embeddings);
        let rope = decoder::rope_freqs(c, None, rotary_dim, d.rope_theta, max_positions)?;
        Ok(Config {
            vocab_size: f.vocab_size.unwrap_or(d.vocab_size),
            hidden_size,
            intermediate_size: f.intermediate_size.unwrap_or(d.intermediate_size),
            num_layers: f.num_hidden_layers.unwrap_or(d.num_hidden_layers),
            num_heads,
            num_kv_heads,
            head_dim,
            rotary_dim,
            eps,
            act: c.activation_named("hidden_act", act)?,
            tie_word_embeddings: f.tie_word_embeddings.unwrap_or(d.tie_word_embeddings),
            // A field the class does not have is not read (transformers ignores it).
            attention_bias: d
                .attention_bias
                .is_some_and(|b| f.attention_bias.unwrap_or(b)),
            mlp_bias: d.mlp_bias.is_some_and(|b| f.mlp_bias.unwrap_or(b)),
            sliding_window: None,
            windowed_layers: None,
            rope_layers: None,
            // Dynamic NTK scaling is there to run past `max_position_embeddings`: up to
            // `factor` times it.
            max_positions: match &rope.dynamic {
                Some(d) => (max_positions as f64 * d.factor.max(1.0)) as usize,
                None => max_positions,
            },
            rope,
            default_theta: d.rope_theta,
            lm_head_bias: false,
        })
    }

    /// Each layer's window as `layer_types` says (absent: layer `i` is windowed when
    /// `default(i)`, as the member's config class fills `layer_types` in).
    pub(crate) fn window_layers(
        &mut self,
        c: &ConfigReader,
        default: impl Fn(usize) -> bool,
    ) -> Result<()> {
        self.windowed_layers = Some(
            sliding_layers(c, self.num_layers)?
                .unwrap_or_else(|| (0..self.num_layers).map(default).collect()),
        );
        Ok(())
    }

    /// Each layer's rotary positions by its kind: `sliding` for the windowed layers,
    /// `full` for the others (Gemma 3, OLMo-3: a base per kind; Cohere 2: NoPE globals).
    pub(crate) fn rope_by_window(&mut self, sliding: LayerRope, full: LayerRope) {
        self.rope_layers = self
            .windowed_layers
            .as_ref()
            .map(|w| w.iter().map(|&w| if w { sliding } else { full }).collect());
    }

    /// Llama's RMSNorm.
    pub(crate) fn norm(&self, w: &Weights, size: usize, name: &str) -> Result<Norm> {
        Norm::rms(w, size, self.eps, name)
    }

    /// The model-wide layout: heads, rotary positions, the position limit and the
    /// sliding window.
    pub(crate) fn layout(&self) -> Layout {
        let mut l = Layout::new(self.num_heads, self.num_kv_heads, self.head_dim, self.act);
        l.rope = Some(Rope {
            freqs: self.rope.clone(),
            dim: self.rotary_dim,
            interleaved: false,
        });
        l.max_positions = self.max_positions;
        l.sliding_window = self.sliding_window;
        l
    }
}

/// config.json with `rope` as its `rope_parameters` when it states neither
/// `rope_parameters` nor `rope_scaling` (the config class's default, which its
/// `__post_init__` fills in); `None` when it states one.
pub(crate) fn with_default_rope(
    config: &ConfigReader,
    rope: serde_json::Value,
) -> Option<serde_json::Value> {
    let stated = ["rope_parameters", "rope_scaling"]
        .iter()
        .any(|k| config.value.get(*k).is_some_and(|v| !v.is_null()));
    if stated {
        return None;
    }
    let mut value = config.value.clone();
    if let Some(o) = value.as_object_mut() {
        o.insert("rope_parameters".into(), rope);
    }
    Some(value)
}

hf_config! {
    /// The per-layer attention kinds of a config (transformers 5's `layer_types`).
    pub(crate) struct LayerTypes {
        layer_types: Option<Vec<String>> = None,
    }
}

/// Per layer, whether `layer_types` makes it a sliding-attention layer (`None` when
/// the config has no `layer_types`): one entry per layer, each `full_attention` or
/// `sliding_attention`.
pub(crate) fn sliding_layers(c: &ConfigReader, num_layers: usize) -> Result<Option<Vec<bool>>> {
    let Some(types) = c.typed::<LayerTypes>()?.layer_types else {
        return Ok(None);
    };
    if types.len() != num_layers {
        return Err(c.invalid(
            "layer_types",
            format!("has {} entries for {num_layers} layers", types.len()),
        ));
    }
    types
        .iter()
        .map(|t| match t.as_str() {
            "sliding_attention" => Ok(true),
            "full_attention" => Ok(false),
            other => Err(c.invalid(
                "layer_types",
                format!("layer type `{other}` is not supported (full_attention and sliding_attention are)"),
            )),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// The error of a config whose `layer_types` has sliding-attention layers for a member
/// that does not run them (every layer here attends the same way).
pub(crate) fn check_layer_types(c: &ConfigReader, window: Option<usize>) -> Result<()> {
    let sliding = c
        .value
        .get("layer_types")
        .and_then(|v| v.as_array())
        .is_some_and(|t| t.iter().any(|t| t.as_str() == Some("sliding_attention")));
    if sliding && window.is_none() {
        return Err(c.invalid(
            "layer_types",
            "sliding-attention layers are not supported for this model type".into(),
        ));
    }
    Ok(())
}

/// Llama's attention projections under `self_attn`: q/k/v with `qkv_bias`, the output
/// with `o_bias`.
pub(crate) fn attention(
    a: &Weights,
    c: &Config,
    qkv_bias: bool,
    o_bias: bool,
) -> Result<(Qkv, Linear)> {
    let (h, hd) = (c.hidden_size, c.head_dim);
    let (qn, kvn) = (c.num_heads * hd, c.num_kv_heads * hd);
    let qkv = Qkv::separate(a, h, qn, kvn, qkv_bias)?;
    Ok((qkv, linear(a, qn, h, "o_proj", o_bias)?))
}

/// Llama's gated MLP under `mlp`.
pub(crate) fn mlp(m: &Weights, c: &Config) -> Result<Mlp> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    Ok(Mlp::Gated {
        gate: linear(m, h, i, "gate_proj", c.mlp_bias)?,
        up: linear(m, h, i, "up_proj", c.mlp_bias)?,
        down: linear(m, i, h, "down_proj", c.mlp_bias)?,
    })
}

/// Llama's pre-norm layer around `attention` and `mlp`, its two norms made by `norm`.
pub(crate) fn layer(
    w: &Weights,
    c: &Config,
    norm: impl Fn(&Weights, usize, &str) -> Result<Norm>,
    (qkv, out): (Qkv, Linear),
    mlp: Mlp,
) -> Result<Layer> {
    Ok(Layer {
        attn_norm: Some(norm(w, c.hidden_size, "input_layernorm")?),
        qkv,
        qk_norm: None,
        out,
        attn_out_norm: None,
        mlp_norm: Some(norm(w, c.hidden_size, "post_attention_layernorm")?),
        mlp,
        mlp_out_norm: None,
        windowed: true,
        rope: LayerRope::Global,
        sinks: None,
        out_gate: None,
        differential: None,
    })
}

/// Llama's layer with its own attention, MLP and norm: what most members keep.
pub(crate) fn plain_layer(w: &Weights, c: &Config) -> Result<Layer> {
    let a = w.pp("self_attn");
    let attn = attention(&a, c, c.attention_bias, c.attention_bias)?;
    layer(
        w,
        c,
        |w, n, name| c.norm(w, n, name),
        attn,
        mlp(&w.pp("mlp"), c)?,
    )
}

/// The llama layout's embeddings, final norm and head around `layers`, with `layout`
/// (the members change it: Gemma's embedding scale, Granite's multipliers).
pub(crate) fn assemble(
    c: &Config,
    weights: &Weights,
    layout: Layout,
    layers: impl FnMut(&Weights) -> Result<Layer>,
    final_norm: Norm,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let m = weights.pp("model");
    let embed = m.embedding(c.vocab_size, c.hidden_size, "embed_tokens")?;
    let mut layers = layers;
    let layers = (0..c.num_layers)
        .map(|i| {
            let mut layer = layers(&m.pp(format!("layers.{i}")))?;
            if let Some(&w) = c.windowed_layers.as_ref().and_then(|w| w.get(i)) {
                layer.windowed = w;
            }
            if let Some(&r) = c.rope_layers.as_ref().and_then(|r| r.get(i)) {
                layer.rope = r;
            }
            Ok(layer)
        })
        .collect::<Result<Vec<_>>>()?;
    let lm_head = decoder::lm_head(
        weights,
        &embed,
        c.tie_word_embeddings,
        "lm_head",
        c.hidden_size,
        c.vocab_size,
        c.lm_head_bias,
    )?;
    Ok(Decoder {
        layout,
        embed,
        embed_norm: None,
        positions: None,
        project_in: None,
        project_out: None,
        layers,
        final_norm: Some(final_norm),
        lm_head,
        dtype,
        device: device.clone(),
    })
}

/// Load a Llama causal LM.
pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = Config::read(config, config_class(config))?;
    check_layer_types(config, None)?;
    let final_norm = c.norm(&weights.pp("model"), c.hidden_size, "norm")?;
    let layers = |w: &Weights| plain_layer(w, &c);
    assemble(&c, weights, c.layout(), layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    [DEFAULTS, INTERNLM3, IQUESTCODER]
        .iter()
        .map(|d| (d.class, serde_json::json!(d)))
        .collect()
}
