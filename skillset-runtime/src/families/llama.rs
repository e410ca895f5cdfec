//! The `llama` family: decoder-only transformers with RMSNorm, rotary position
//! embeddings, grouped-query attention and a gated MLP. One implementation serves
//! Llama, Mistral (sliding-window attention), Qwen2 (q/k/v biases), Qwen3 (per-head
//! q/k norms), Phi-3 (fused qkv and gate/up projections, partial rotary) and Gemma
//! (offset RMSNorm, scaled embeddings, GELU MLP), Granite (multipliers) and OLMo
//! (parameter-free LayerNorms, q/k/v clipping).

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::kv_cache::KvCache;
use candle_nn::Embedding;

use super::causal::CausalLm;
use super::causal::Masks;
use super::config::ConfigReader;
use super::nn::{self, Activation, Linear, Weights};
use crate::error::{Error, Result};

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
struct Config {
    flavor: Flavor,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_layers: usize,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    rotary_dim: usize,
    eps: f64,
    act: Activation,
    tie_word_embeddings: bool,
    attention_bias: bool,
    mlp_bias: bool,
    sliding_window: Option<usize>,
    max_positions: usize,
    /// In f32, as transformers computes the rotary angles.
    inv_freq: Vec<f32>,
    embedding_multiplier: f64,
    residual_multiplier: f64,
    attention_multiplier: Option<f64>,
    logits_scaling: f64,
    clip_qkv: Option<f64>,
}

/// The rope parameters: transformers 5 nests them in `rope_parameters`, older configs
/// have `rope_theta` and `rope_scaling` at the top.
fn rope_inv_freq(c: &ConfigReader, rotary_dim: usize) -> Result<Vec<f32>> {
    let params = c.value.get("rope_parameters").filter(|v| v.is_object());
    let scaling = c.value.get("rope_scaling").filter(|v| v.is_object());
    let get = |k: &str| {
        params
            .and_then(|p| p.get(k))
            .or_else(|| scaling.and_then(|s| s.get(k)))
            .filter(|v| !v.is_null())
    };
    let theta = c.check_rope_theta(
        get("rope_theta")
            .or_else(|| c.value.get("rope_theta"))
            .and_then(|v| v.as_f64())
            .unwrap_or(10000.0),
    )?;
    let rope_type = get("rope_type")
        .or_else(|| get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let mut inv: Vec<f64> = (0..rotary_dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / rotary_dim as f64))
        .collect();
    let num = |k: &str| -> Result<f64> {
        get(k).and_then(|v| v.as_f64()).ok_or_else(|| {
            c.invalid(
                "rope_parameters",
                format!("rope type `{rope_type}` needs `{k}`"),
            )
        })
    };
    match rope_type {
        "default" => {}
        "linear" => {
            let f = num("factor")?;
            inv.iter_mut().for_each(|x| *x /= f);
        }
        "llama3" => {
            let factor = num("factor")?;
            let low = num("low_freq_factor")?;
            let high = num("high_freq_factor")?;
            let old = num("original_max_position_embeddings")?;
            let low_wavelen = old / low;
            let high_wavelen = old / high;
            for x in inv.iter_mut() {
                let wavelen = 2.0 * std::f64::consts::PI / *x;
                if wavelen > low_wavelen {
                    *x /= factor;
                } else if wavelen >= high_wavelen {
                    let smooth = (old / wavelen - low) / (high - low);
                    *x = (1.0 - smooth) * *x / factor + smooth * *x;
                }
            }
        }
        other => {
            return Err(c.invalid(
                "rope_parameters",
                format!("rope type `{other}` is not supported (default, linear and llama3 are)"),
            ))
        }
    }
    Ok(inv.into_iter().map(|x| x as f32).collect())
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
        let flavor = Flavor::of(architecture).ok_or_else(|| {
            c.invalid(
                "architectures",
                format!("`{architecture}` is not a llama-family architecture"),
            )
        })?;
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
        let partial = c
            .value
            .get("rope_parameters")
            .and_then(|p| p.get("partial_rotary_factor"))
            .or_else(|| c.value.get("partial_rotary_factor"))
            .and_then(|v| v.as_f64())
            .unwrap_or(1.0);
        let rotary_dim = ((head_dim as f64) * partial) as usize;
        if rotary_dim % 2 != 0 || rotary_dim == 0 {
            return Err(c.invalid(
                "partial_rotary_factor",
                format!("gives a rotary size of {rotary_dim} (of head_dim {head_dim}): it must be even and not 0"),
            ));
        }
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
            inv_freq: rope_inv_freq(c, rotary_dim)?,
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

/// The norms of the family: RMSNorm (with Gemma's `1 + weight`), or OLMo's LayerNorm
/// without parameters.
enum RmsNorm {
    Rms(Rms),
    /// `(x - mean) / sqrt(var + 1e-5)` in f32.
    Plain,
}

impl RmsNorm {
    fn load(w: &Weights, size: usize, eps: f64, name: &str, c: &Config) -> Result<Self> {
        if c.flavor == Flavor::Olmo {
            return Ok(RmsNorm::Plain);
        }
        Ok(RmsNorm::Rms(Rms::load(
            w,
            size,
            eps,
            name,
            c.flavor == Flavor::Gemma,
        )?))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            RmsNorm::Rms(r) => r.forward(x),
            RmsNorm::Plain => {
                let dtype = x.dtype();
                let xf = x.to_dtype(DType::F32)?;
                let centered = xf.broadcast_sub(&xf.mean_keepdim(D::Minus1)?)?;
                let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
                Ok(centered
                    .broadcast_div(&(var + 1e-5)?.sqrt()?)?
                    .to_dtype(dtype)?)
            }
        }
    }
}

/// RMSNorm computed in f32 like transformers (`weight * x / rms(x)`; Gemma scales by
/// `1 + weight`).
struct Rms {
    weight: Tensor,
    eps: f64,
}

impl Rms {
    fn load(w: &Weights, size: usize, eps: f64, name: &str, offset: bool) -> Result<Self> {
        let mut weight = w.pp(name).get(size, "weight")?;
        if offset {
            weight = (weight.to_dtype(DType::F32)? + 1.0)?;
        }
        Ok(Rms { weight, eps })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let normed = nn::rms_normalize_f32(x, self.eps)?;
        if self.weight.dtype() == DType::F32 && dtype != DType::F32 {
            // Gemma: the product is taken in f32, then cast.
            Ok(normed.broadcast_mul(&self.weight)?.to_dtype(dtype)?)
        } else {
            Ok(normed.to_dtype(dtype)?.broadcast_mul(&self.weight)?)
        }
    }
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
}

enum Mlp {
    Gated {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
}

struct Layer {
    attn: Attention,
    mlp: Mlp,
    input_norm: RmsNorm,
    post_norm: RmsNorm,
}

fn linear(w: &Weights, d_in: usize, d_out: usize, name: &str, bias: bool) -> Result<Linear> {
    if bias {
        w.linear(d_in, d_out, name)
    } else {
        w.linear_no_bias(d_in, d_out, name)
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

impl Layer {
    fn load(w: &Weights, c: &Config) -> Result<Self> {
        let (h, hd) = (c.hidden_size, c.head_dim);
        let (qn, kvn) = (c.num_heads * hd, c.num_kv_heads * hd);
        let a = w.pp("self_attn");
        let (q, k, v) = if c.flavor == Flavor::Phi3 {
            let fused = linear(&a, h, qn + 2 * kvn, "qkv_proj", c.attention_bias)?;
            let mut parts = split_rows(&fused, &[qn, kvn, kvn])?.into_iter();
            (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            )
        } else {
            let qkv_bias = c.attention_bias || c.flavor == Flavor::Qwen2;
            (
                linear(&a, h, qn, "q_proj", qkv_bias)?,
                linear(&a, h, kvn, "k_proj", qkv_bias)?,
                linear(&a, h, kvn, "v_proj", qkv_bias)?,
            )
        };
        let o_bias = c.attention_bias && c.flavor != Flavor::Qwen2;
        let (q_norm, k_norm) = if c.flavor == Flavor::Qwen3 {
            (
                Some(RmsNorm::load(&a, hd, c.eps, "q_norm", c)?),
                Some(RmsNorm::load(&a, hd, c.eps, "k_norm", c)?),
            )
        } else {
            (None, None)
        };
        let attn = Attention {
            q,
            k,
            v,
            o: linear(&a, qn, h, "o_proj", o_bias)?,
            q_norm,
            k_norm,
        };
        let m = w.pp("mlp");
        let i = c.intermediate_size;
        let mlp = if c.flavor == Flavor::Phi3 {
            let fused = linear(&m, h, 2 * i, "gate_up_proj", c.mlp_bias)?;
            let mut parts = split_rows(&fused, &[i, i])?.into_iter();
            Mlp::Gated {
                gate: parts.next().unwrap(),
                up: parts.next().unwrap(),
                down: linear(&m, i, h, "down_proj", c.mlp_bias)?,
            }
        } else {
            Mlp::Gated {
                gate: linear(&m, h, i, "gate_proj", c.mlp_bias)?,
                up: linear(&m, h, i, "up_proj", c.mlp_bias)?,
                down: linear(&m, i, h, "down_proj", c.mlp_bias)?,
            }
        };
        Ok(Layer {
            attn,
            mlp,
            input_norm: RmsNorm::load(w, h, c.eps, "input_layernorm", c)?,
            post_norm: RmsNorm::load(w, h, c.eps, "post_attention_layernorm", c)?,
        })
    }
}

/// A loaded llama-family causal LM.
pub(crate) struct LlamaModel {
    c: Config,
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Linear,
    dtype: DType,
    device: Device,
}

pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<LlamaModel> {
    let c = Config::read(architecture, config)?;
    let m = weights.pp("model");
    let embed = m.embedding(c.vocab_size, c.hidden_size, "embed_tokens")?;
    let layers = (0..c.num_layers)
        .map(|i| Layer::load(&m.pp(format!("layers.{i}")), &c))
        .collect::<Result<Vec<_>>>()?;
    let norm = RmsNorm::load(&m, c.hidden_size, c.eps, "norm", &c)?;
    let lm_head = if c.tie_word_embeddings || !weights.contains("lm_head.weight") {
        if !c.tie_word_embeddings {
            return Err(Error::WeightMismatch {
                path: weights.path.clone(),
                reason: "no `lm_head.weight` and `tie_word_embeddings` is false".into(),
            });
        }
        Linear::new(embed.embeddings().clone(), None)
    } else {
        weights.linear_no_bias(c.hidden_size, c.vocab_size, "lm_head")?
    };
    Ok(LlamaModel {
        c,
        embed,
        layers,
        norm,
        lm_head,
        dtype,
        device: device.clone(),
    })
}

impl LlamaModel {
    /// cos/sin `[batch, len, rotary_dim / 2]` for the positions.
    fn rope_tables(&self, positions: &[Vec<u32>]) -> Result<(Tensor, Tensor)> {
        nn::rope_tables(positions, &self.c.inv_freq, self.dtype, &self.device)
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        nn::partial_rope(x, cos, sin, self.c.rotary_dim, false)
    }
}

impl CausalLm for LlamaModel {
    fn num_layers(&self) -> usize {
        self.c.num_layers
    }

    fn max_positions(&self) -> usize {
        self.c.max_positions
    }

    fn sliding_window(&self) -> Option<usize> {
        self.c.sliding_window
    }

    fn forward(
        &self,
        input_ids: &Tensor,
        positions: &[Vec<u32>],
        masks: &Masks,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let x = self.embed(input_ids)?;
        self.forward_embeds(x, positions, masks, cache)
    }

    fn embed(&self, input_ids: &Tensor) -> Result<Tensor> {
        let c = &self.c;
        let mut x = self.embed.forward(input_ids)?;
        if c.flavor == Flavor::Gemma {
            // transformers rounds the scale to the activation dtype first.
            let scale =
                Tensor::new((c.hidden_size as f32).sqrt(), &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&scale)?;
        }
        if c.embedding_multiplier != 1.0 {
            x = (x * c.embedding_multiplier)?;
        }
        Ok(x)
    }

    fn forward_embeds(
        &self,
        mut x: Tensor,
        positions: &[Vec<u32>],
        masks: &Masks,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let bias = masks.window.as_ref().unwrap_or(&masks.full);
        let (b, t, _) = x.dims3()?;
        let c = &self.c;
        let (cos, sin) = self.rope_tables(positions)?;
        let scale = c
            .attention_multiplier
            .unwrap_or(1.0 / (c.head_dim as f64).sqrt());
        let clip = |y: Tensor| -> Result<Tensor> {
            Ok(match c.clip_qkv {
                Some(m) => y.clamp(-m, m)?,
                None => y,
            })
        };
        let scaled = |y: Tensor| -> Result<Tensor> {
            Ok(if c.residual_multiplier != 1.0 {
                (y * c.residual_multiplier)?
            } else {
                y
            })
        };
        for (layer, kv) in self.layers.iter().zip(cache.iter_mut()) {
            let residual = x.clone();
            let h = layer.input_norm.forward(&x)?;
            let a = &layer.attn;
            let shape = |y: Tensor, heads: usize| -> Result<Tensor> {
                Ok(y.reshape((b, t, heads, c.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()?)
            };
            let mut q = shape(clip(a.q.forward(&h)?)?, c.num_heads)?;
            let mut k = shape(clip(a.k.forward(&h)?)?, c.num_kv_heads)?;
            let v = shape(clip(a.v.forward(&h)?)?, c.num_kv_heads)?;
            if let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm) {
                q = qn.forward(&q)?;
                k = kn.forward(&k)?;
            }
            let q = self.rope(&q, &cos, &sin)?;
            let k = self.rope(&k, &cos, &sin)?;
            let (k, v) = kv.append(&k.contiguous()?, &v.contiguous()?)?;
            let n_rep = c.num_heads / c.num_kv_heads;
            let k = nn::repeat_kv(k, n_rep)?;
            let v = nn::repeat_kv(v, n_rep)?;
            let ctx = nn::attention(&q, &k.contiguous()?, &v.contiguous()?, Some(bias), scale)?;
            let ctx = ctx
                .transpose(1, 2)?
                .reshape((b, t, c.num_heads * c.head_dim))?;
            x = (scaled(a.o.forward(&ctx)?)? + residual)?;
            let residual = x.clone();
            let h = layer.post_norm.forward(&x)?;
            let Mlp::Gated { gate, up, down } = &layer.mlp;
            let y = (c.act.forward(&gate.forward(&h)?)? * up.forward(&h)?)?;
            x = (scaled(down.forward(&y)?)? + residual)?;
        }
        let last = x.narrow(1, t - 1, 1)?;
        let last = self.norm.forward(&last)?;
        let logits = self
            .lm_head
            .forward(&last)?
            .squeeze(1)?
            .to_dtype(DType::F32)?;
        Ok(if c.logits_scaling != 1.0 {
            (logits / c.logits_scaling)?
        } else {
            logits
        })
    }
}
