//! Building blocks shared by the families: activations, linear layers that name the
//! missing tensor, dtype-safe attention masks and attention itself.

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};

/// transformers' `ACT2FN` entries the families use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: the exact, erf-based GELU.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation.
    GeluTanh,
    Relu,
    /// `relu2`: `relu(x)²` (Arcee, Nemotron, Persimmon).
    Relu2,
    /// `silu` / `swish`.
    Silu,
    /// `quick_gelu`: x * sigmoid(1.702 x).
    QuickGelu,
    Tanh,
    /// `xielu`: its parameters are learned per layer, so only an MLP that reads them
    /// runs it (`decoder::Mlp::Xielu`, Apertus); anywhere else it is an error.
    Xielu,
}

impl Activation {
    pub fn from_hf(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "relu2" => Activation::Relu2,
            "silu" | "swish" => Activation::Silu,
            "quick_gelu" => Activation::QuickGelu,
            "tanh" => Activation::Tanh,
            "xielu" => Activation::Xielu,
            _ => return None,
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Gelu => super::kernels::gelu_erf(x),
            Activation::GeluTanh => x.gelu(),
            Activation::Relu => x.relu(),
            Activation::Relu2 => x.relu()?.sqr(),
            Activation::Silu => x.silu(),
            Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
            Activation::Tanh => x.tanh(),
            Activation::Xielu => Err(candle_core::Error::Msg(
                "xIELU needs the layer's learned parameters: only Apertus's MLP reads them".into(),
            )),
        }
    }
}

/// `act(linear(x))`, with the bias add fused into the activation where a fast kernel
/// does both (the exact GELU on the CPU in f32).
pub fn linear_act(linear: &Linear, act: Activation, x: &Tensor) -> candle_core::Result<Tensor> {
    use candle_core::Module;
    match (act, linear.bias()) {
        (Activation::Gelu, Some(bias)) if x.device().is_cpu() && x.dtype() == DType::F32 => {
            let y = match super::kernels::matvec(x, linear.weight(), None)? {
                Some(y) => y,
                None => candle_nn::Linear::new(linear.weight().clone(), None).forward(x)?,
            };
            super::kernels::bias_gelu_erf(&y, bias)
        }
        _ => act.forward(&linear.forward(x)?),
    }
}

/// candle's `Linear` (`y = x W^T + b`, W `[out, in]` as transformers stores it), with
/// a one-row CPU kernel for generation steps (`kernels::matvec`).
#[derive(Debug, Clone)]
pub struct Linear(candle_nn::Linear);

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear(candle_nn::Linear::new(weight, bias))
    }

    pub fn weight(&self) -> &Tensor {
        self.0.weight()
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.0.bias()
    }
}

impl candle_core::Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match super::kernels::matvec(x, self.weight(), self.bias())? {
            Some(y) => Ok(y),
            // candle's CUDA and Metal matmuls take only contiguous rows (a [CLS] token
            // sliced out of [batch, seq, hidden] is strided); the CPU takes any layout.
            None if !x.is_contiguous() && !x.device().is_cpu() => self.0.forward(&x.contiguous()?),
            None => self.0.forward(x),
        }
    }
}

/// Weights of one checkpoint, with errors that name the tensor and the file.
#[derive(Clone)]
pub struct Weights {
    pub vb: VarBuilder<'static>,
    pub path: std::path::PathBuf,
}

impl Weights {
    pub fn pp(&self, prefix: impl ToString) -> Weights {
        Weights {
            vb: self.vb.pp(prefix),
            path: self.path.clone(),
        }
    }

    /// The same weights, where a name the checkpoint lacks is read without its first
    /// component: a base model saved alone (`embed_tokens.weight`) loads through a
    /// loader that names `model.embed_tokens.weight`, as transformers'
    /// `from_pretrained` drops `base_model_prefix`.
    pub fn base_model_alone(&self) -> Weights {
        let stored = self.vb.clone();
        Weights {
            vb: self
                .vb
                .clone()
                .rename_f(move |name: &str| match name.split_once('.') {
                    Some((_, rest))
                        if !stored.contains_tensor(name) && stored.contains_tensor(rest) =>
                    {
                        rest.to_string()
                    }
                    _ => name.to_string(),
                }),
            path: self.path.clone(),
        }
    }

    /// The same weights, loaded in `dtype` (the checkpoint's tensors are converted).
    pub fn with_dtype(&self, dtype: DType) -> Weights {
        Weights {
            vb: self.vb.clone().set_dtype(dtype),
            path: self.path.clone(),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.vb.contains_tensor(name)
    }

    fn wrap(&self, name: &str, e: candle_core::Error) -> Error {
        let full = if self.vb.prefix().is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.vb.prefix())
        };
        Error::WeightMismatch {
            path: self.path.clone(),
            reason: format!("tensor `{full}`: {}", first_line(&e.to_string())),
        }
    }

    pub fn get(&self, shape: impl Into<candle_core::Shape>, name: &str) -> Result<Tensor> {
        self.vb.get(shape, name).map_err(|e| self.wrap(name, e))
    }

    pub fn linear(&self, d_in: usize, d_out: usize, name: &str) -> Result<Linear> {
        let w = self.pp(name);
        let weight = w.get((d_out, d_in), "weight")?;
        let bias = w.get(d_out, "bias")?;
        Ok(Linear::new(weight, Some(bias)))
    }

    pub fn linear_no_bias(&self, d_in: usize, d_out: usize, name: &str) -> Result<Linear> {
        let w = self.pp(name);
        Ok(Linear::new(w.get((d_out, d_in), "weight")?, None))
    }

    pub fn layer_norm(&self, size: usize, eps: f64, name: &str) -> Result<LayerNorm> {
        let w = self.pp(name);
        Ok(LayerNorm::new(
            w.get(size, "weight")?,
            w.get(size, "bias")?,
            eps,
        ))
    }

    pub fn embedding(&self, n: usize, dim: usize, name: &str) -> Result<candle_nn::Embedding> {
        let w = self.pp(name);
        Ok(candle_nn::Embedding::new(w.get((n, dim), "weight")?, dim))
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// The most negative finite value of a dtype: a masked score that stays finite, so
/// that no `0 * inf` makes a NaN in f16 (candle-transformers' BERT multiplies by
/// `f32::MIN`, which is `-inf` in f16).
pub fn mask_value(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.3895e38,
        DType::F64 => f64::MIN,
        _ => f32::MIN as f64,
    }
}

/// transformers' `nn.LayerNorm` over the last dimension (with or without a bias), its
/// variance taken after the mean is subtracted ([`super::kernels::layer_norm`]), as
/// PyTorch's: candle's own `LayerNorm` takes `E[x²] - E[x]²`, which loses the variance
/// to cancellation when a row's mean is large against its spread (a pre-norm residual
/// stream's is).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f64,
}

impl LayerNorm {
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        LayerNorm {
            weight,
            bias: Some(bias),
            eps,
        }
    }

    pub fn new_no_bias(weight: Tensor, eps: f64) -> Self {
        LayerNorm {
            weight,
            bias: None,
            eps,
        }
    }
}

impl candle_core::Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        super::kernels::layer_norm(x, &self.weight, self.bias.as_ref(), self.eps)
    }
}

/// An additive attention bias `[batch, 1, 1, len]` from a padding mask `[batch, len]`
/// (1 = attend): 0 where attended, the dtype's most negative value elsewhere. Built
/// once per forward pass and shared by every layer.
pub fn padding_bias(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, len) = mask.dims2()?;
    let zeros = Tensor::zeros((b, len), dtype, mask.device())?;
    let neg = Tensor::full(mask_value(dtype) as f32, (b, len), mask.device())?.to_dtype(dtype)?;
    let bias = mask.ne(0u32)?.where_cond(&zeros, &neg)?;
    Ok(bias.reshape((b, 1, 1, len))?)
}

/// Scaled dot-product attention over `[batch, heads, len, head_dim]` tensors with an
/// additive bias broadcastable to `[batch, heads, q_len, k_len]`. The softmax runs in
/// f32 whatever the dtype (as transformers' eager attention does).
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let dtype = q.dtype();
    let scores = q.matmul(&k.t()?)?;
    let probs = if dtype == DType::F32 {
        super::kernels::scaled_bias_softmax(&scores, bias, scale)?
    } else {
        let scores = scaled_with_bias(scores, bias, scale)?;
        candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(dtype)?
    };
    Ok(probs.matmul(v)?)
}

/// [`attention`] with a sink logit per head (`sinks`, `[heads]`): each query's output
/// is scaled by `sigmoid(lse - sink)`, `lse` the log-sum-exp of its scores, which
/// equals a softmax over the scores and the sink with the sink's column dropped
/// (Granite-SWA's eager attention; the scale in f32).
pub fn attention_with_sinks(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: &Tensor,
    scale: f64,
    sinks: &Tensor,
) -> Result<Tensor> {
    let dtype = q.dtype();
    let scores = scaled_with_bias(q.matmul(&k.t()?)?, Some(bias), scale)?;
    let scores32 = scores.to_dtype(DType::F32)?;
    // One pass of exponentials gives both the softmax and the log-sum-exp.
    let max = scores32.max_keepdim(D::Minus1)?;
    let exp = scores32.broadcast_sub(&max)?.exp()?;
    let sum = exp.sum_keepdim(D::Minus1)?;
    let probs = exp.broadcast_div(&sum)?.to_dtype(dtype)?;
    // `logsumexp` in the scores' dtype, the difference with the sink in f32.
    let lse = (sum.log()? + max)?.to_dtype(dtype)?.to_dtype(DType::F32)?;
    let heads = sinks.dims1()?;
    let sinks = sinks.to_dtype(DType::F32)?.reshape((1, heads, 1, 1))?;
    let keep = candle_nn::ops::sigmoid(&lse.broadcast_sub(&sinks)?)?;
    Ok(probs.matmul(v)?.broadcast_mul(&keep.to_dtype(dtype)?)?)
}

/// [`attention`] with soft-capped scores: `cap * tanh(scores * scale / cap) + bias`,
/// in f32 up to the softmax (Gemma 2's eager attention).
pub fn attention_softcapped(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: &Tensor,
    scale: f64,
    cap: f64,
) -> Result<Tensor> {
    let dtype = q.dtype();
    let scores = ((q.matmul(&k.t()?)?.to_dtype(DType::F32)? * scale)? / cap)?;
    let scores = (scores.tanh()? * cap)?.broadcast_add(&bias.to_dtype(DType::F32)?)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)?;
    Ok(probs.matmul(v)?)
}

/// `scores * scale + bias`, the bias in the scores' dtype.
fn scaled_with_bias(scores: Tensor, bias: Option<&Tensor>, scale: f64) -> Result<Tensor> {
    let scores = (scores * scale)?;
    Ok(match bias {
        Some(bias) => scores.broadcast_add(&bias.to_dtype(scores.dtype())?)?,
        None => scores,
    })
}

/// [`attention`] with the scores kept in f32 up to the softmax in every dtype, as
/// transformers' SDPA attention and fused GPU kernels keep them. For T5, whose
/// attention is unscaled: its scores run into the hundreds, where f16 rounds by 0.5,
/// and rounding them flipped tiny-T5's first greedy token in f16 and bf16 (with this,
/// both give the f32 tokens, as transformers does); and for the bert family, measured
/// closer to transformers' f32 outputs in bf16 with it. The other families measured
/// mixed on the CPU (ViT slightly farther, one Whisper near tie flipped) and keep
/// [`attention`]: to be measured again on a GPU.
pub fn attention_f32_scores(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let dtype = q.dtype();
    if dtype == DType::F32 {
        return attention(q, k, v, bias, scale);
    }
    let scores = q
        .to_dtype(DType::F32)?
        .matmul(&k.to_dtype(DType::F32)?.t()?)?;
    let scores = scaled_with_bias(scores, bias, scale)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.to_dtype(dtype)?;
    Ok(probs.matmul(v)?)
}

/// `[batch, len, heads * head_dim]` -> `[batch, heads, len, head_dim]`, contiguous.
pub fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, len, hidden) = x.dims3()?;
    Ok(x.reshape((b, len, heads, hidden / heads))?
        .transpose(1, 2)?
        .contiguous()?)
}

/// `[batch, heads, len, head_dim]` -> `[batch, len, heads * head_dim]`.
pub fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, h, len, d) = x.dims4()?;
    Ok(x.transpose(1, 2)?.reshape((b, len, h * d))?)
}

/// A `u32 [batch, len]` tensor from rows of ids.
pub fn ids_tensor(rows: &[Vec<u32>], device: &Device) -> Result<Tensor> {
    let b = rows.len();
    let len = rows.first().map(|r| r.len()).unwrap_or(0);
    let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    Ok(Tensor::from_vec(flat, (b, len), device)?)
}

/// Rotary tables `cos`, `sin` of shape `[batch, len, inv_freq.len()]` for per-row
/// positions, computed in f32 as transformers does, then cast to `dtype`.
pub fn rope_tables(
    positions: &[Vec<u32>],
    inv_freq: &[f32],
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let b = positions.len();
    let t = positions.first().map(|p| p.len()).unwrap_or(0);
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(b * t * half);
    let mut sin = Vec::with_capacity(b * t * half);
    for row in positions {
        for &p in row {
            for &f in inv_freq {
                let a = (p as f32) * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    Ok((
        Tensor::from_vec(cos, (b, t, half), device)?.to_dtype(dtype)?,
        Tensor::from_vec(sin, (b, t, half), device)?.to_dtype(dtype)?,
    ))
}

/// Rotary embeddings on the first `rotary_dim` dims of each head of `x [b, h, t, d]`
/// (all of them when `rotary_dim == d`): halves rotated (`rotate_half`, Llama, NeoX), or
/// interleaved pairs (`rotate_every_two`, GPT-J).
pub fn partial_rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    rotary_dim: usize,
    interleaved: bool,
) -> Result<Tensor> {
    let d = x.dim(candle_core::D::Minus1)?;
    let rot = x
        .narrow(candle_core::D::Minus1, 0, rotary_dim)?
        .contiguous()?;
    let rot = if interleaved {
        candle_nn::rotary_emb::rope_i(&rot, cos, sin)?
    } else {
        candle_nn::rotary_emb::rope(&rot, cos, sin)?
    };
    if rotary_dim == d {
        return Ok(rot);
    }
    let pass = x.narrow(candle_core::D::Minus1, rotary_dim, d - rotary_dim)?;
    Ok(Tensor::cat(&[&rot, &pass], candle_core::D::Minus1)?.contiguous()?)
}

/// Grouped-query attention: `[b, kv_heads, t, d]` -> `[b, kv_heads * n_rep, t, d]`.
pub fn repeat_kv(x: Tensor, n_rep: usize) -> Result<Tensor> {
    if n_rep == 1 {
        return Ok(x);
    }
    let (b, kvh, t, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .expand((b, kvh, n_rep, t, d))?
        .reshape((b, kvh * n_rep, t, d))?)
}

/// `x / sqrt(mean(x^2) + eps)` over the last dimension, computed in f32 (the core of
/// RMSNorm and T5's layer norm); the caller casts and scales.
pub fn rms_normalize_f32(x: &Tensor, eps: f64) -> Result<Tensor> {
    let xf = x.to_dtype(DType::F32)?;
    let var = xf.sqr()?.mean_keepdim(candle_core::D::Minus1)?;
    Ok(xf.broadcast_div(&(var + eps)?.sqrt()?)?)
}

/// Softmax over the last dimension in f32, returned on the CPU as rows.
pub fn softmax_rows(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let probs = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
    Ok(probs.to_device(&Device::Cpu)?.to_vec2()?)
}

/// transformers' `T5Attention._relative_position_bucket` (T5's attention bias,
/// wav2vec2's gated relative position bias).
pub(crate) fn relative_bucket(
    relative: i64,
    bidirectional: bool,
    num_buckets: usize,
    max_distance: usize,
) -> usize {
    let mut buckets = num_buckets as i64;
    let mut out = 0i64;
    let mut rel = relative;
    if bidirectional {
        buckets /= 2;
        if rel > 0 {
            out += buckets;
        }
        rel = rel.abs();
    } else {
        rel = -rel.min(0);
    }
    let max_exact = buckets / 2;
    if rel < max_exact {
        out += rel;
    } else {
        // torch: log(float32(rel) / max_exact) / math.log(max_distance / max_exact) * ..., truncated.
        let den = (max_distance as f64 / max_exact as f64).ln() as f32;
        let large = max_exact
            + ((rel as f32 / max_exact as f32).ln() / den * (buckets - max_exact) as f32) as i64;
        out += large.min(buckets - 1);
    }
    out as usize
}
