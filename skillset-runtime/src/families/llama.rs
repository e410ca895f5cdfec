//! The `llama` family: decoder-only transformers with RMSNorm, rotary position
//! embeddings, grouped-query attention and a gated MLP. One implementation serves
//! Llama, Mistral (sliding-window attention), Qwen2 (q/k/v biases), Qwen3 (per-head
//! q/k norms), Phi-3 (fused qkv and gate/up projections, partial rotary) and Gemma
//! (offset RMSNorm, scaled embeddings, GELU MLP), Granite (multipliers) and OLMo
//! (parameter-free LayerNorms, q/k/v clipping).

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{self, linear, Decoder, Layer, Layout, Mlp, Norm, QkNorm, Qkv, Rope};
use super::nn::{Activation, Linear, Weights};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Phi3,
    Gemma,
    /// Llama with multipliers on embeddings, residuals, attention and logits.
    Granite,
    /// Llama with parameter-free LayerNorms and optional q/k/v clipping.
    Olmo,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) flavor: Flavor,
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
    pub(crate) sliding_window: Option<usize>,
    pub(crate) max_positions: usize,
    /// In f32, as transformers computes the rotary angles.
    pub(crate) inv_freq: Vec<f32>,
    pub(crate) embedding_multiplier: f64,
    pub(crate) residual_multiplier: f64,
    pub(crate) attention_multiplier: Option<f64>,
    pub(crate) logits_scaling: f64,
    pub(crate) clip_qkv: Option<f64>,
}

impl Flavor {
    /// The member an architecture class is (`None`: not a llama-family class).
    pub(crate) fn of(architecture: &str) -> Option<Self> {
        Some(
            match architecture
                .trim_end_matches("ForCausalLM")
                .trim_end_matches("Model")
            {
                "Llama" => Flavor::Llama,
                "Mistral" => Flavor::Mistral,
                "Qwen2" => Flavor::Qwen2,
                "Qwen3" => Flavor::Qwen3,
                "Phi3" => Flavor::Phi3,
                "Gemma" => Flavor::Gemma,
                "Granite" => Flavor::Granite,
                "Olmo" => Flavor::Olmo,
                _ => return None,
            },
        )
    }
}

impl Config {
    fn read(architecture: &str, c: &ConfigReader) -> Result<Self> {
        let flavor =
            Flavor::of(architecture).ok_or_else(|| c.not_of_family("llama", architecture))?;
        Self::read_as(flavor, c)
    }

    /// The config of a member read as `flavor` reads it (a delta file reads its
    /// model type's config as the member it varies).
    pub(crate) fn read_as(flavor: Flavor, c: &ConfigReader) -> Result<Self> {
        let hidden_size = c.usize("hidden_size")?;
        let num_heads = c.usize("num_attention_heads")?;
        if num_heads == 0 {
            return Err(c.invalid("num_attention_heads", "is 0".into()));
        }
        let num_kv_heads = c.usize_or("num_key_value_heads", num_heads)?;
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(c.invalid(
                "num_key_value_heads",
                format!("{num_kv_heads} does not divide num_attention_heads {num_heads}"),
            ));
        }
        let head_dim = c.usize_or("head_dim", hidden_size / num_heads)?;
        if head_dim == 0 {
            return Err(c.invalid(
                "head_dim",
                format!(
                    "is 0 (hidden_size {hidden_size} / num_attention_heads {num_heads} when absent)"
                ),
            ));
        }
        let rotary_dim = decoder::partial_rotary_dim(c, head_dim, 1.0)?;
        let act_key = if c
            .value
            .get("hidden_activation")
            .is_some_and(|v| v.is_string())
        {
            "hidden_activation"
        } else {
            "hidden_act"
        };
        let default_act = if flavor == Flavor::Gemma {
            "gelu_pytorch_tanh"
        } else {
            "silu"
        };
        let sliding_window = match flavor {
            Flavor::Mistral => c
                .value
                .get("sliding_window")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize),
            Flavor::Qwen2 | Flavor::Qwen3 if c.bool_or("use_sliding_window", false) => {
                let layer_types = c.value.get("layer_types").and_then(|v| v.as_array());
                let mixed = layer_types
                    .is_some_and(|l| l.iter().any(|t| t.as_str() == Some("full_attention")));
                if mixed {
                    return Err(c.invalid(
                        "layer_types",
                        "mixing sliding-window and full-attention layers is not supported".into(),
                    ));
                }
                c.value
                    .get("sliding_window")
                    .and_then(|v| v.as_u64())
                    .map(|v| v as usize)
            }
            _ => None,
        };
        if let Some(types) = c.value.get("layer_types").and_then(|v| v.as_array()) {
            if flavor != Flavor::Mistral
                && sliding_window.is_none()
                && types
                    .iter()
                    .any(|t| t.as_str() == Some("sliding_attention"))
            {
                return Err(c.invalid(
                    "layer_types",
                    "sliding-attention layers are not supported for this model type".into(),
                ));
            }
        }
        Ok(Config {
            flavor,
            vocab_size: c.usize("vocab_size")?,
            hidden_size,
            intermediate_size: c.usize("intermediate_size")?,
            num_layers: c.usize("num_hidden_layers")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rotary_dim,
            eps: c.f64_or("rms_norm_eps", 1e-6)?,
            act: c.activation(act_key, default_act)?,
            tie_word_embeddings: c.bool_or("tie_word_embeddings", flavor == Flavor::Gemma),
            attention_bias: c.bool_or("attention_bias", flavor == Flavor::Qwen2),
            mlp_bias: c.bool_or("mlp_bias", false),
            sliding_window,
            max_positions: c.usize_or("max_position_embeddings", 4096)?,
            inv_freq: decoder::rope_inv_freq(c, rotary_dim, 10000.0)?,
            embedding_multiplier: if flavor == Flavor::Granite {
                c.f64_or("embedding_multiplier", 1.0)?
            } else {
                1.0
            },
            residual_multiplier: if flavor == Flavor::Granite {
                c.f64_or("residual_multiplier", 1.0)?
            } else {
                1.0
            },
            attention_multiplier: if flavor == Flavor::Granite {
                Some(c.f64_or("attention_multiplier", 1.0)?)
            } else {
                None
            },
            logits_scaling: if flavor == Flavor::Granite {
                c.f64_or("logits_scaling", 1.0)?
            } else {
                1.0
            },
            clip_qkv: if flavor == Flavor::Olmo {
                c.value.get("clip_qkv").and_then(|v| v.as_f64())
            } else {
                None
            },
        })
    }
}

impl Config {
    /// The family's norm: RMSNorm (Gemma: `1 + weight`, scaled in f32), or OLMo's
    /// LayerNorm without parameters.
    fn norm(&self, w: &Weights, size: usize, name: &str) -> Result<Norm> {
        match self.flavor {
            Flavor::Olmo => Ok(Norm::Plain { eps: 1e-5 }),
            Flavor::Gemma => Norm::rms_f32(w, size, self.eps, name, 1.0),
            _ => Norm::rms(w, size, self.eps, name),
        }
    }

    /// The model-wide layout.
    fn layout(&self) -> Layout {
        let mut l = Layout::new(self.num_heads, self.num_kv_heads, self.head_dim, self.act);
        l.rope = Some(Rope {
            inv_freq: self.inv_freq.clone(),
            dim: self.rotary_dim,
            interleaved: false,
        });
        if let Some(m) = self.attention_multiplier {
            l.scale = m;
        }
        l.clip_qkv = self.clip_qkv;
        if self.flavor == Flavor::Gemma {
            l.embed_sqrt_scale = Some(self.hidden_size);
        }
        l.embedding_multiplier = self.embedding_multiplier;
        l.residual_multiplier = self.residual_multiplier;
        l.logits_scaling = self.logits_scaling;
        l.max_positions = self.max_positions;
        l.sliding_window = self.sliding_window;
        l
    }
}

/// Split a fused projection's weight `[a + b + c, in]` into its parts.
fn split_rows(l: &Linear, sizes: &[usize]) -> Result<Vec<Linear>> {
    let mut out = Vec::new();
    let mut start = 0;
    for &n in sizes {
        let w = l.weight().narrow(0, start, n)?.contiguous()?;
        let b = l.bias().map(|b| b.narrow(0, start, n)).transpose()?;
        out.push(Linear::new(w, b));
        start += n;
    }
    Ok(out)
}

/// Llama's attention projections under `self_attn` (Phi-3: one fused `qkv_proj`).
pub(crate) fn attention(a: &Weights, c: &Config) -> Result<(Qkv, Linear)> {
    let (h, hd) = (c.hidden_size, c.head_dim);
    let (qn, kvn) = (c.num_heads * hd, c.num_kv_heads * hd);
    let qkv = if c.flavor == Flavor::Phi3 {
        let fused = linear(a, h, qn + 2 * kvn, "qkv_proj", c.attention_bias)?;
        let mut parts = split_rows(&fused, &[qn, kvn, kvn])?.into_iter();
        Qkv::Separate(
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        )
    } else {
        let qkv_bias = c.attention_bias || c.flavor == Flavor::Qwen2;
        Qkv::separate(a, h, qn, kvn, qkv_bias)?
    };
    let o_bias = c.attention_bias && c.flavor != Flavor::Qwen2;
    Ok((qkv, linear(a, qn, h, "o_proj", o_bias)?))
}

/// Llama's gated MLP under `mlp` (Phi-3: one fused `gate_up_proj`).
pub(crate) fn mlp(m: &Weights, c: &Config) -> Result<Mlp> {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    Ok(if c.flavor == Flavor::Phi3 {
        let fused = linear(m, h, 2 * i, "gate_up_proj", c.mlp_bias)?;
        let mut parts = split_rows(&fused, &[i, i])?.into_iter();
        Mlp::Gated {
            gate: parts.next().unwrap(),
            up: parts.next().unwrap(),
            down: linear(m, i, h, "down_proj", c.mlp_bias)?,
        }
    } else {
        Mlp::Gated {
            gate: linear(m, h, i, "gate_proj", c.mlp_bias)?,
            up: linear(m, h, i, "up_proj", c.mlp_bias)?,
            down: linear(m, i, h, "down_proj", c.mlp_bias)?,
        }
    })
}

fn layer(w: &Weights, c: &Config) -> Result<Layer> {
    let a = w.pp("self_attn");
    let (qkv, out) = attention(&a, c)?;
    let qk_norm = if c.flavor == Flavor::Qwen3 {
        Some(QkNorm::PerHead(
            c.norm(&a, c.head_dim, "q_norm")?,
            c.norm(&a, c.head_dim, "k_norm")?,
        ))
    } else {
        None
    };
    Ok(Layer {
        attn_norm: Some(c.norm(w, c.hidden_size, "input_layernorm")?),
        qkv,
        qk_norm,
        out,
        attn_out_norm: None,
        mlp_norm: Some(c.norm(w, c.hidden_size, "post_attention_layernorm")?),
        mlp: mlp(&w.pp("mlp"), c)?,
        mlp_out_norm: None,
        windowed: true,
    })
}

/// The llama layout's embeddings, final norm and head around `layers` (OLMo-2 reuses
/// it with layers of its own).
pub(crate) fn assemble(
    c: &Config,
    weights: &Weights,
    layers: impl FnMut(&Weights) -> Result<Layer>,
    final_norm: Norm,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let m = weights.pp("model");
    let embed = m.embedding(c.vocab_size, c.hidden_size, "embed_tokens")?;
    let mut layers = layers;
    let layers = (0..c.num_layers)
        .map(|i| layers(&m.pp(format!("layers.{i}"))))
        .collect::<Result<Vec<_>>>()?;
    let lm_head = decoder::lm_head(
        weights,
        &embed,
        c.tie_word_embeddings,
        "lm_head",
        c.hidden_size,
        c.vocab_size,
        false,
    )?;
    Ok(Decoder {
        layout: c.layout(),
        embed,
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

/// Load a llama-family causal LM.
pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = Config::read(architecture, config)?;
    let m = weights.pp("model");
    let final_norm = c.norm(&m, c.hidden_size, "norm")?;
    assemble(&c, weights, |w| layer(w, &c), final_norm, dtype, device)
}
