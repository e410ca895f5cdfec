//! The one decoder-only transformer every causal LM runs on, driven by a layout.
//!
//! A model type does not write a forward pass: its loader (a family file such as
//! `llama.rs` or `gpt.rs`, or a delta file such as `olmo2.rs`) reads its config,
//! picks the pieces of the layer library below (norms, q/k/v projections, q/k norms,
//! MLPs, rotary or learned positions) under its own weight names, and fills a
//! [`Layout`]: where the norms sit (before or after each sublayer), whether attention
//! and MLP run in parallel, the attention scale, multipliers and clipping.
//! [`Decoder`] runs every such model the same way, as transformers' modular files
//! state a model as a known one plus its differences.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::kv_cache::KvCache;
use candle_nn::Embedding;

use super::nn::LayerNorm;

use super::causal::{CausalLm, Masks};
use super::config::ConfigReader;
use super::nn::{self, Activation, Linear, Weights};
use crate::error::{Error, Result};

/// A normalization layer.
pub(crate) enum Norm {
    /// RMSNorm computed in f32 as transformers computes it. A weight stored in f32
    /// while activations are not (Gemma's `1 + weight`, OLMo-2's norms) multiplies in
    /// f32 before the cast back; otherwise the normalized value is cast first.
    Rms { weight: Tensor, eps: f64 },
    /// RMSNorm without a weight, in f32 and cast back (Llama 4's `L2Norm`, NanoChat).
    RmsUnit { eps: f64 },
    /// LayerNorm with weight and bias.
    Layer(LayerNorm),
    /// LayerNorm without parameters, in f32 (OLMo).
    Plain { eps: f64 },
    /// LayerNorm with a weight and no bias, in f32, the weight multiplied in f32
    /// before the cast back (`CohereLayerNorm`; its q/k norms have a weight per head,
    /// shaped `[heads, 1, head_dim]` to broadcast over `[batch, heads, t, head_dim]`).
    Centered { weight: Tensor, eps: f64 },
}

impl Norm {
    /// RMSNorm `name` of `size` (transformers' `LlamaRMSNorm`: cast, then scale).
    pub fn rms(w: &Weights, size: usize, eps: f64, name: &str) -> Result<Self> {
        Ok(Norm::Rms {
            weight: w.pp(name).get(size, "weight")?,
            eps,
        })
    }

    /// RMSNorm that scales in f32 before the cast (`Olmo2RMSNorm`, and with `offset`
    /// Gemma's `1 + weight`).
    pub fn rms_f32(w: &Weights, size: usize, eps: f64, name: &str, offset: f64) -> Result<Self> {
        let weight = w.pp(name).get(size, "weight")?.to_dtype(DType::F32)?;
        let weight = if offset != 0.0 {
            (weight + offset)?
        } else {
            weight
        };
        Ok(Norm::Rms { weight, eps })
    }

    /// LayerNorm `name` with weight and bias.
    pub fn layer(w: &Weights, size: usize, eps: f64, name: &str) -> Result<Self> {
        Ok(Norm::Layer(w.layer_norm(size, eps, name)?))
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Norm::Rms { weight, eps } => {
                let dtype = x.dtype();
                let normed = nn::rms_normalize_f32(x, *eps)?;
                if weight.dtype() == DType::F32 && dtype != DType::F32 {
                    Ok(normed.broadcast_mul(weight)?.to_dtype(dtype)?)
                } else {
                    Ok(normed.to_dtype(dtype)?.broadcast_mul(weight)?)
                }
            }
            Norm::RmsUnit { eps } => Ok(nn::rms_normalize_f32(x, *eps)?.to_dtype(x.dtype())?),
            Norm::Layer(ln) => Ok(ln.forward(x)?),
            Norm::Plain { eps } => Ok(layer_normalize_f32(x, *eps)?.to_dtype(x.dtype())?),
            Norm::Centered { weight, eps } => Ok(layer_normalize_f32(x, *eps)?
                .broadcast_mul(weight)?
                .to_dtype(x.dtype())?),
        }
    }
}

/// `(x - mean) / sqrt(var + eps)` over the last dimension, in f32.
fn layer_normalize_f32(x: &Tensor, eps: f64) -> Result<Tensor> {
    let xf = x.to_dtype(DType::F32)?;
    let centered = xf.broadcast_sub(&xf.mean_keepdim(D::Minus1)?)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    Ok(centered.broadcast_div(&(var + eps)?.sqrt()?)?)
}

/// The query, key and value projections.
pub(crate) enum Qkv {
    Separate(Linear, Linear, Linear),
    /// One projection whose output is `[q | k | v]` (GPT-2; multi-query GPTBigCode,
    /// whose k and v have fewer heads).
    Fused(Linear),
    /// One projection whose output is `[head0: q k v | head1: q k v | ...]`
    /// (GPT-NeoX).
    FusedPerHead(Linear),
    /// DeepSeek's multi-head latent attention.
    Mla(Box<Mla>),
}

/// Multi-head latent attention (DeepSeek-V2/V3): queries from `q` (one projection, or
/// a low-rank pair with an RMSNorm between), keys and values expanded by `kv_b` from a
/// normalized latent of `lora` channels that `kv_a` makes along with one rotary key
/// of `rope` channels shared by every head. Each query and key head is `nope + rope`
/// channels, each value head `v`. The rotary channels are put first (queries and keys
/// alike, which leaves their products as they are) so that the layout's rotary
/// positions turn them.
pub(crate) struct Mla {
    pub q: MlaQuery,
    pub kv_a: Linear,
    pub kv_norm: Norm,
    pub kv_b: Linear,
    pub lora: usize,
    pub nope: usize,
    pub rope: usize,
    pub v: usize,
}

/// The query projection of [`Mla`].
pub(crate) enum MlaQuery {
    /// `q_proj`.
    Direct(Linear),
    /// `q_b_proj(q_a_layernorm(q_a_proj(x)))`.
    LowRank { a: Linear, norm: Norm, b: Linear },
}

impl Qkv {
    /// `q_proj`, `k_proj` and `v_proj` under `a`: queries of `q_out` channels, keys
    /// and values of `kv_out`.
    pub fn separate(
        a: &Weights,
        d_in: usize,
        q_out: usize,
        kv_out: usize,
        bias: bool,
    ) -> Result<Self> {
        Ok(Qkv::Separate(
            linear(a, d_in, q_out, "q_proj", bias)?,
            linear(a, d_in, kv_out, "k_proj", bias)?,
            linear(a, d_in, kv_out, "v_proj", bias)?,
        ))
    }
}

/// Norms on the queries and keys.
pub(crate) enum QkNorm {
    /// Over each head (`[.., head_dim]`, after the split into heads: Qwen3, Phi).
    PerHead(Norm, Norm),
    /// Over the whole projection (`[.., heads * head_dim]`, before the split: OLMo-2).
    Whole(Norm, Norm),
    /// Over each head after the rotary positions (HunYuan).
    PerHeadAfterRope(Norm, Norm),
}

/// The feed-forward block.
pub(crate) enum Mlp {
    /// `fc_out(act(fc_in(x)))`.
    Plain { fc_in: Linear, fc_out: Linear },
    /// `down(act(gate(x)) * up(x))`.
    Gated {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
    /// A mixture of experts (Mixtral, the Qwen MoEs, OLMoE).
    Moe(Box<Moe>),
    /// gpt-oss's clamped SwiGLU: `down((clamp(up(x), ±limit) + 1) * g * sigmoid(alpha *
    /// g))` with `g = min(gate(x), limit)`; the projections have biases.
    ClampedSwiglu {
        gate: Linear,
        up: Linear,
        down: Linear,
        alpha: f64,
        limit: f64,
    },
    /// `fc_out(xielu(fc_in(x)))` with this layer's learned xIELU (Apertus).
    Xielu {
        fc_in: Linear,
        fc_out: Linear,
        act: Xielu,
    },
}

/// xIELU with one layer's learned parameters (transformers' `XIELUActivation`, its
/// Python path): `alpha_p * x² + beta * x` above 0, `(expm1(min(x, eps)) - x) *
/// alpha_n + beta * x` at or below.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Xielu {
    /// `softplus(alpha_p)` of the checkpoint.
    pub alpha_p: f64,
    /// `beta + softplus(alpha_n)` of the checkpoint.
    pub alpha_n: f64,
    pub beta: f64,
    pub eps: f64,
}

impl Xielu {
    /// The parameters under `w` (`mlp.act_fn`): `alpha_p`, `alpha_n` (`[1]`, before
    /// softplus) and the buffers `beta`, `eps` (0-dimensional; where a checkpoint lacks
    /// them, the class's 0.5 and -1e-6).
    pub fn read(w: &Weights) -> Result<Self> {
        let scalar = |name: &str, shape: &[usize]| -> Result<f64> {
            Ok(w.get(shape, name)?
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?[0])
        };
        let buffer = |name: &str, default: f64| -> Result<f64> {
            if w.contains(name) {
                scalar(name, &[])
            } else {
                Ok(default)
            }
        };
        // torch's softplus (beta 1, threshold 20).
        let softplus = |x: f64| if x > 20.0 { x } else { x.exp().ln_1p() };
        let beta = buffer("beta", 0.5)?;
        Ok(Xielu {
            alpha_p: softplus(scalar("alpha_p", &[1])?),
            alpha_n: beta + softplus(scalar("alpha_n", &[1])?),
            beta,
            eps: buffer("eps", -1e-6)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let linear = (x * self.beta)?;
        let positive = ((x * self.alpha_p)? * x)?.add(&linear)?;
        let m = x.minimum(self.eps)?;
        // expm1(m) = tanh(m / 2) * (exp(m) + 1), without exp(m) - 1's cancellation.
        let expm1 = ((&m / 2.0)?.tanh()? * (m.exp()? + 1.0)?)?;
        let negative = (((expm1 - x)? * self.alpha_n)? + linear)?;
        Ok(x.gt(0.0)?.where_cond(&positive, &negative)?)
    }
}

/// A mixture of experts: a router scores every expert for each token, the `top_k`
/// best run on it (each a gated MLP) and their outputs add up weighted by the
/// router's probabilities, as transformers' `*SparseMoeBlock`s compute it. Only the
/// experts some token picked run, each on its own tokens: an expert no token picked
/// is not read.
pub(crate) struct Moe {
    /// `[experts, hidden]`, no bias.
    pub router: Linear,
    pub experts: Vec<Mlp>,
    pub top_k: usize,
    /// Divide the `top_k` probabilities by their sum (`norm_topk_prob`; Mixtral always).
    pub norm_topk_prob: bool,
    /// Take the `top_k` logits first, then their softmax (Granite-MoE); equal to
    /// renormalized probabilities, rounded as transformers rounds them.
    pub softmax_after_topk: bool,
    /// Cast the routing weights to the activations' dtype before they scale the
    /// experts' outputs (the Qwen MoEs, OLMoE, Granite-MoE); otherwise the product is
    /// taken in f32 and cast back (Mixtral).
    pub weights_in_dtype: bool,
    /// Added to the probabilities to choose the experts, not to weigh them (ERNIE 4.5's
    /// `e_score_correction_bias`), one per expert.
    pub selection_bias: Option<Vec<f32>>,
    /// The smallest sum the picked probabilities are divided by (ERNIE 4.5's
    /// `moe_norm_min`; 0 elsewhere).
    pub norm_min: f32,
    /// Score each expert by the sigmoid of its logit instead of a softmax over them
    /// (DeepSeek-V3's router: GLM-4-MoE, dots.llm1).
    pub sigmoid: bool,
    /// `(n_group, topk_group, best)`: choose among the experts of the `topk_group`
    /// groups whose `best` best scores (with `selection_bias`) sum highest (DeepSeek-V3:
    /// the two best; DeepSeek-V2: the best alone).
    pub groups: Option<(usize, usize, usize)>,
    /// The picked weights' multiplier (`routed_scaling_factor`; 1 elsewhere).
    pub routed_scaling: f32,
    /// An expert every token takes, added to the routed ones (Qwen2-MoE's
    /// `shared_expert`, Granite-MoE-Shared's `shared_mlp`), scaled by
    /// `sigmoid(gate(x))` when it has a gate.
    pub shared: Option<(Mlp, Option<Linear>)>,
    /// Halve the sum of the routed and shared outputs (Cohere 2 MoE's `average`
    /// combination); otherwise they add up.
    pub average_shared: bool,
    /// PhiMoE's sparsemixer at inference, with its threshold (`router_jitter_noise`):
    /// always two experts, each weighted by the softmax of the logits within the
    /// threshold of its own (the second with the first left out), not renormalized.
    pub sparsemixer: Option<f32>,
}

impl Moe {
    /// The experts of a checkpoint under `w` (a layer's `mlp`), `hidden` wide with
    /// `inner` channels each, in either layout transformers reads: its own fused one
    /// (`experts.gate_up_proj` `[experts, 2 * inner, hidden]` and `experts.down_proj`
    /// `[experts, hidden, inner]`), or one set of `names` (gate, up, down) per
    /// expert under `experts.N` (Mixtral's `w1`, `w3`, `w2`; the Qwen MoEs'
    /// `gate_proj`, `up_proj`, `down_proj`), which transformers fuses at load. The
    /// fused tensors are split into views, not copied.
    pub fn experts(
        w: &Weights,
        n: usize,
        hidden: usize,
        inner: usize,
        names: [&str; 3],
    ) -> Result<Vec<Mlp>> {
        let e = w.pp("experts");
        if e.contains("gate_up_proj") {
            Self::fused(
                &e.get((n, 2 * inner, hidden), "gate_up_proj")?,
                &e.get((n, hidden, inner), "down_proj")?,
            )
        } else {
            let [gate, up, down] = names;
            (0..n)
                .map(|i| {
                    let x = e.pp(i);
                    Ok(Mlp::Gated {
                        gate: x.linear_no_bias(hidden, inner, gate)?,
                        up: x.linear_no_bias(hidden, inner, up)?,
                        down: x.linear_no_bias(inner, hidden, down)?,
                    })
                })
                .collect()
        }
    }

    /// Experts from fused tensors, `gate_up` `[experts, 2 * inner, hidden]` (each
    /// expert's gate rows, then its up rows) and `down` `[experts, hidden, inner]`, as
    /// views.
    pub fn fused(gate_up: &Tensor, down: &Tensor) -> Result<Vec<Mlp>> {
        let (n, two_inner, _) = gate_up.dims3()?;
        (0..n)
            .map(|i| Mlp::gated_fused(gate_up.get(i)?, two_inner / 2, down.get(i)?))
            .collect()
    }

    fn forward(&self, act: Activation, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let hidden = dims.last().copied().unwrap_or(0);
        let xs = x.reshape(((), hidden))?;
        // Routing in f32, as transformers computes it.
        let logits = self.router.forward(&xs)?.to_dtype(DType::F32)?;
        let scores = if self.softmax_after_topk || self.sparsemixer.is_some() {
            logits
        } else if self.sigmoid {
            candle_nn::ops::sigmoid(&logits)?
        } else {
            candle_nn::ops::softmax_last_dim(&logits)?
        }
        .to_vec2::<f32>()?;
        let mut picked: Vec<(Vec<u32>, Vec<f32>)> = vec![(vec![], vec![]); self.experts.len()];
        let mut order: Vec<usize> = Vec::with_capacity(self.experts.len());
        for (row, p) in scores.iter().enumerate() {
            if let Some(eps) = self.sparsemixer {
                for (e, weight) in sparsemixer(p, eps) {
                    picked[e].0.push(row as u32);
                    picked[e].1.push(weight);
                }
                continue;
            }
            order.clear();
            let key = |e: usize| match &self.selection_bias {
                Some(bias) => p[e] + bias.get(e).copied().unwrap_or(0.0),
                None => p[e],
            };
            match self.groups {
                Some((n_group, topk_group, best_of)) if n_group > 1 => {
                    // Each group's score: the sum of its `best_of` best keys.
                    let size = p.len() / n_group;
                    let mut best: Vec<(usize, f32)> = (0..n_group)
                        .map(|g| {
                            let mut k: Vec<f32> = (g * size..(g + 1) * size).map(key).collect();
                            k.sort_by(|a, b| b.total_cmp(a));
                            (g, k.iter().take(best_of).sum())
                        })
                        .collect();
                    best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    for &(g, _) in best.iter().take(topk_group) {
                        order.extend(g * size..(g + 1) * size);
                    }
                }
                _ => order.extend(0..p.len()),
            }
            // `torch.topk`: the largest first, the lower index first among equals.
            order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
            let top = &order[..self.top_k.min(order.len())];
            if self.softmax_after_topk {
                // The softmax of the picked logits alone (the largest first).
                let max = top.first().map_or(0.0, |&e| p[e]);
                let exps: Vec<f32> = top.iter().map(|&e| (p[e] - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                for (&e, x) in top.iter().zip(exps) {
                    picked[e].0.push(row as u32);
                    picked[e].1.push(x / sum);
                }
                continue;
            }
            let sum: f32 = top.iter().map(|&e| p[e]).sum::<f32>().max(self.norm_min);
            for &e in top {
                let weight = if self.norm_topk_prob {
                    p[e] / sum
                } else {
                    p[e]
                } * self.routed_scaling;
                picked[e].0.push(row as u32);
                picked[e].1.push(weight);
            }
        }
        let mut out = xs.zeros_like()?;
        for (expert, (rows, weights)) in self.experts.iter().zip(&picked) {
            if rows.is_empty() {
                continue;
            }
            let rows = Tensor::new(rows.as_slice(), xs.device())?;
            let y = expert.forward(act, &xs.index_select(&rows, 0)?)?;
            let weights = Tensor::new(weights.as_slice(), xs.device())?.unsqueeze(1)?;
            let y = if self.weights_in_dtype {
                y.broadcast_mul(&weights.to_dtype(y.dtype())?)?
            } else {
                y.to_dtype(DType::F32)?
                    .broadcast_mul(&weights)?
                    .to_dtype(xs.dtype())?
            };
            out = out.index_add(&rows, &y, 0)?;
        }
        if let Some((mlp, gate)) = &self.shared {
            let mut s = mlp.forward(act, &xs)?;
            if let Some(g) = gate {
                s = candle_nn::ops::sigmoid(&g.forward(&xs)?)?.broadcast_mul(&s)?;
            }
            out = (out + s)?;
            if self.average_shared {
                out = (out / 2.0)?;
            }
        }
        Ok(out.reshape(dims)?)
    }
}

/// PhiMoE's sparsemixer on one token's router logits `s` (transformers'
/// `sparsemixer`, not training): the best expert, weighted by the softmax over the
/// experts whose logit is within `2 * eps` of it (relative to `max(|s_j|, best)`),
/// then the best of the others, weighted the same way without the first. Ties go to
/// the lower index, as `max` gives them.
fn sparsemixer(s: &[f32], eps: f32) -> Vec<(usize, f32)> {
    let best = |skip: Option<usize>| -> Option<(usize, f32)> {
        s.iter().enumerate().filter(|(i, _)| Some(*i) != skip).fold(
            None,
            |acc: Option<(usize, f32)>, (i, &v)| match acc {
                Some((_, b)) if b >= v => acc,
                _ => Some((i, v)),
            },
        )
    };
    // The expert's weight: the softmax of the logits it does not mask out.
    let weight = |top: usize, threshold: f32, skip: Option<usize>| -> f32 {
        let sum: f32 = s
            .iter()
            .enumerate()
            .filter(|(j, &v)| {
                // Masked when the relative gap exceeds 2 * eps, as transformers writes it
                // (a 0/0 NaN compares false and does not mask).
                let masked = (threshold - v) / v.abs().max(threshold) > 2.0 * eps;
                Some(*j) != skip && !masked
            })
            .map(|(_, &v)| (v - threshold).exp())
            .sum();
        (s[top] - threshold).exp() / sum
    };
    let mut out = Vec::with_capacity(2);
    if let Some((first, threshold)) = best(None) {
        out.push((first, weight(first, threshold, None)));
        if let Some((second, threshold)) = best(Some(first)) {
            out.push((second, weight(second, threshold, Some(first))));
        }
    }
    out
}

impl Mlp {
    /// A gated MLP from one fused `[2 * inner, hidden]` gate-then-up weight and the
    /// down weight (no biases), the halves as views.
    pub fn gated_fused(gate_up: Tensor, inner: usize, down: Tensor) -> Result<Self> {
        Ok(Mlp::Gated {
            gate: Linear::new(gate_up.narrow(0, 0, inner)?, None),
            up: Linear::new(gate_up.narrow(0, inner, inner)?, None),
            down: Linear::new(down, None),
        })
    }

    /// A plain MLP `fc_in` (`d` -> `inner`), `fc_out` (back) under `w`.
    pub fn plain(
        w: &Weights,
        d: usize,
        inner: usize,
        fc_in: &str,
        fc_out: &str,
        bias: bool,
    ) -> Result<Self> {
        Ok(Mlp::Plain {
            fc_in: linear(w, d, inner, fc_in, bias)?,
            fc_out: linear(w, inner, d, fc_out, bias)?,
        })
    }

    fn forward(&self, act: Activation, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Mlp::Plain { fc_in, fc_out } => fc_out.forward(&act.forward(&fc_in.forward(x)?)?)?,
            Mlp::Gated { gate, up, down } => {
                let y = (act.forward(&gate.forward(x)?)? * up.forward(x)?)?;
                down.forward(&y)?
            }
            Mlp::Moe(moe) => moe.forward(act, x)?,
            Mlp::ClampedSwiglu {
                gate,
                up,
                down,
                alpha,
                limit,
            } => {
                let g = gate.forward(x)?.minimum(*limit)?;
                let u = up.forward(x)?.clamp(-*limit, *limit)?;
                let glu = (&g * candle_nn::ops::sigmoid(&(&g * *alpha)?)?)?;
                down.forward(&((u + 1.0)? * glu)?)?
            }
            Mlp::Xielu { fc_in, fc_out, act } => {
                fc_out.forward(&act.forward(&fc_in.forward(x)?)?)?
            }
        })
    }
}

/// One decoder layer's weights. Which norms are present says where they sit; the
/// [`Residual`] of the layout says how the sublayers combine.
pub(crate) struct Layer {
    /// Before attention (pre-norm); with [`Residual::PostNorm`], after the attention
    /// residual.
    pub attn_norm: Option<Norm>,
    pub qkv: Qkv,
    pub qk_norm: Option<QkNorm>,
    pub out: Linear,
    /// On the attention output, before the residual (OLMo-2).
    pub attn_out_norm: Option<Norm>,
    /// Before the MLP; with [`Residual::PostNorm`], after the MLP residual; absent in
    /// a parallel layer, the MLP reads the attention's normalized input.
    pub mlp_norm: Option<Norm>,
    pub mlp: Mlp,
    /// On the MLP output, before the residual (OLMo-2).
    pub mlp_out_norm: Option<Norm>,
    /// Attends within the sliding window (when the layout has one).
    pub windowed: bool,
    /// Which rotary table its queries and keys take (when the layout has rotary
    /// positions).
    pub rope: LayerRope,
    /// A learned logit per head that every query also attends to, adding nothing to
    /// the output (attention sinks: Granite-SWA); `[heads]`.
    pub sinks: Option<Tensor>,
    /// Scales the merged heads by `sigmoid(gate(h))` before the output projection, `h`
    /// the layer's normalized input (AFMoE's gated attention); `[hidden -> heads *
    /// head_dim]`.
    pub out_gate: Option<Linear>,
    /// Differential attention (DiffLlama): heads `j` and `j + heads/2` attend with
    /// values of two key/value heads side by side, and the first's output minus
    /// `lambda` times the second's is normalized.
    pub differential: Option<Differential>,
}

/// One layer's differential attention (transformers' `DiffLlamaAttention`): with
/// values `[v_a | v_b]` (key/value heads `a` and `a + kv_heads/2`), head pair `j`
/// gives `rms(o_j - lambda * o_{j + heads/2}) * (1 - lambda_init)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Differential {
    /// `exp(lambda_q1 · lambda_k1) - exp(lambda_q2 · lambda_k2) + lambda_init`.
    pub lambda: f64,
    /// `0.8 - 0.6 * exp(-0.3 * layer)`.
    pub lambda_init: f64,
    /// The weightless RMSNorm's epsilon (`rms_norm_eps`).
    pub eps: f64,
}

/// The rotary positions of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerRope {
    /// The layout's `rope`.
    Global,
    /// The layout's `local_rope` (Gemma 3's sliding layers: another base).
    Local,
    /// None: a NoPE layer (SmolLM3, Llama 4).
    NoPe,
}

/// How attention and MLP combine with the residual stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Residual {
    /// `x += attn(x); x += mlp(x)` (each with its norms).
    Sequential,
    /// `x += attn(n(x)) + mlp(n'(x))` (GPT-J, GPT-NeoX, Phi).
    Parallel,
    /// `x = n(x + attn(x)); x = n'(x + mlp(x))` (OPT with `do_layer_norm_before`
    /// false).
    PostNorm,
}

/// ALiBi's biases: a key `d` positions before the newest one adds `-slope * d` to each
/// head's scaled scores. Softmax does not change when a row's biases shift together,
/// so this equals transformers' forms (BLOOM counts positions from each row's first
/// real token, MPT from the newest key); counting back from the newest key keeps the
/// biases of the nearest keys small, where f16 and bf16 round finest.
pub(crate) struct Alibi {
    /// One per head.
    pub slopes: Vec<f32>,
    /// Falcon's form: the slopes rounded to bf16, times the key's position counted
    /// from the row's first real token, rounded to bf16 again, then times `scale`
    /// (`1/sqrt(head_dim)`), as transformers' Falcon computes it whatever the dtype.
    pub falcon_scale: Option<f64>,
}

/// Rotary position embeddings on the first `dim` channels of each head.
pub(crate) struct Rope {
    pub freqs: RopeFreqs,
    pub dim: usize,
    /// Rotate interleaved pairs (GPT-J) instead of halves.
    pub interleaved: bool,
}

/// Learned absolute positions, looked up at `position + offset` (OPT: 2).
pub(crate) struct LearnedPositions {
    pub table: Embedding,
    pub offset: u32,
}

/// The model-wide settings of a decoder.
pub(crate) struct Layout {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub act: Activation,
    pub residual: Residual,
    pub rope: Option<Rope>,
    /// The rotary positions of the layers marked [`LayerRope::Local`].
    pub local_rope: Option<Rope>,
    /// Attention score scale.
    pub scale: f64,
    /// GPT-2's `scale_attn_by_inverse_layer_idx`: also divide by `layer + 1`.
    pub scale_by_layer: bool,
    /// OLMo: clamp q, k and v to `[-c, c]`.
    pub clip_qkv: Option<f64>,
    /// Clip after the whole-projection q/k norms instead of before (OLMoE).
    pub clip_after_qk_norm: bool,
    /// Gemma: scale embeddings by `sqrt(hidden)` (rounded to the activation dtype).
    pub embed_sqrt_scale: Option<usize>,
    /// Granite's multipliers (1 elsewhere).
    pub embedding_multiplier: f64,
    pub residual_multiplier: f64,
    /// Logits are divided by this (Granite).
    pub logits_scaling: f64,
    /// Logits are multiplied by this (Cohere's `logit_scale`).
    pub logit_scale: f64,
    /// Soft-capping: attention scores become `cap * tanh(scores / cap)` before the mask
    /// (Gemma 2's `attn_logit_softcapping`) ...
    pub attn_softcap: Option<f64>,
    /// ... and so do the final logits (`final_logit_softcapping`).
    pub final_softcap: Option<f64>,
    pub max_positions: usize,
    pub sliding_window: Option<usize>,
    /// Phi-3: once a sequence outgrows this many positions, its keys and values are
    /// computed again over the whole sequence (transformers' Phi-3 generation drops its
    /// cache then, so that every key takes longrope's long factors).
    pub recompute_past_after: Option<usize>,
    /// ALiBi: a bias per head that grows with the distance to each key (BLOOM, MPT,
    /// Falcon).
    pub alibi: Option<Alibi>,
    /// Queries scaled by position after the rotary positions (Llama 4's attention
    /// temperature, Ministral 3): `1 + beta * ln(1 + floor(position / original))`.
    pub query_scale: Option<QueryScale>,
}

/// Llama 4's position-dependent query scale (`llama_4_scaling_beta`,
/// `original_max_position_embeddings`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueryScale {
    pub beta: f64,
    pub original: usize,
}

impl QueryScale {
    /// The scale of each row's positions, `[batch, 1, t, 1]`, computed in f32 as
    /// transformers computes it, then cast to `dtype`.
    fn tensor(&self, positions: &[Vec<u32>], dtype: DType, device: &Device) -> Result<Tensor> {
        let t = positions.first().map_or(0, Vec::len);
        let original = self.original.max(1) as f32;
        let beta = self.beta as f32;
        let scales: Vec<f32> = positions
            .iter()
            .flatten()
            .map(|&p| 1.0 + beta * (1.0 + (p as f32 / original).floor()).ln())
            .collect();
        Ok(Tensor::from_vec(scales, (positions.len(), 1, t, 1), device)?.to_dtype(dtype)?)
    }
}

impl Layout {
    /// A layout with the common defaults: sequential, scale `1/sqrt(head_dim)`, no
    /// positions, no multipliers.
    pub fn new(heads: usize, kv_heads: usize, head_dim: usize, act: Activation) -> Self {
        Layout {
            heads,
            kv_heads,
            head_dim,
            act,
            residual: Residual::Sequential,
            rope: None,
            local_rope: None,
            scale: 1.0 / (head_dim as f64).sqrt(),
            scale_by_layer: false,
            clip_qkv: None,
            clip_after_qk_norm: false,
            embed_sqrt_scale: None,
            embedding_multiplier: 1.0,
            residual_multiplier: 1.0,
            logits_scaling: 1.0,
            logit_scale: 1.0,
            attn_softcap: None,
            final_softcap: None,
            max_positions: usize::MAX,
            sliding_window: None,
            recompute_past_after: None,
            alibi: None,
            query_scale: None,
        }
    }
}

/// A loaded decoder-only causal LM.
pub(crate) struct Decoder {
    pub layout: Layout,
    pub embed: Embedding,
    /// A norm on the embeddings before the first layer (BLOOM's
    /// `word_embeddings_layernorm`).
    pub embed_norm: Option<Norm>,
    pub positions: Option<LearnedPositions>,
    /// OPT: embedding width -> hidden width and back.
    pub project_in: Option<Linear>,
    pub project_out: Option<Linear>,
    pub layers: Vec<Layer>,
    pub final_norm: Option<Norm>,
    /// The language-model head: `None` for a checkpoint without one (a base model
    /// saved alone, or a sequence classifier), which runs the encoder tasks only.
    pub lm_head: Option<Linear>,
    pub dtype: DType,
    pub device: Device,
}

/// The output head: `name` when the checkpoint has it and the embeddings are not
/// tied, else the input embeddings; `None` when neither (a checkpoint without a head:
/// [`Decoder::check_lm_head`] makes that an error for text generation). A head with a
/// `bias` keeps its bias when tied (Phi).
pub(crate) fn lm_head(
    weights: &Weights,
    embed: &Embedding,
    tie: bool,
    name: &str,
    d_in: usize,
    vocab: usize,
    bias: bool,
) -> Result<Option<Linear>> {
    if !tie && weights.contains(&format!("{name}.weight")) {
        Ok(Some(if bias {
            weights.linear(d_in, vocab, name)?
        } else {
            weights.linear_no_bias(d_in, vocab, name)?
        }))
    } else if tie {
        let b = if bias && weights.contains(&format!("{name}.bias")) {
            Some(weights.pp(name).get(vocab, "bias")?)
        } else {
            None
        };
        Ok(Some(Linear::new(embed.embeddings().clone(), b)))
    } else {
        Ok(None)
    }
}

/// A linear layer with or without a bias.
pub(crate) fn linear(
    w: &Weights,
    d_in: usize,
    d_out: usize,
    name: &str,
    bias: bool,
) -> Result<Linear> {
    if bias {
        w.linear(d_in, d_out, name)
    } else {
        w.linear_no_bias(d_in, d_out, name)
    }
}

/// A rotary embedding's frequencies as a config gives them: the inverse frequencies
/// and what some rope types add (transformers' `ROPE_INIT_FUNCTIONS` and
/// `dynamic_rope_update`).
#[derive(Debug, Clone)]
pub(crate) struct RopeFreqs {
    /// In f32, as transformers computes the angles.
    pub inv_freq: Vec<f32>,
    /// `cos` and `sin` are multiplied by this (yarn's and longrope's attention factor).
    pub attention_factor: f64,
    /// longrope: the frequencies of `long_factor`, taken instead of `inv_freq` (the
    /// short factors') while the sequence is longer than this many positions.
    pub long: Option<(Vec<f32>, usize)>,
    /// dynamic (NTK): past `max_positions`, the base grows with the sequence.
    pub dynamic: Option<DynamicNtk>,
}

/// Dynamic NTK scaling: for a sequence of `len > max_positions` positions the base
/// becomes `theta * (factor * len / max_positions - (factor - 1)) ^ (dim / (dim - 2))`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DynamicNtk {
    pub theta: f64,
    pub factor: f64,
    pub max_positions: usize,
    pub dim: usize,
}

impl DynamicNtk {
    /// The inverse frequencies for a sequence of `len` positions.
    pub fn inv_freq(&self, len: usize) -> Vec<f32> {
        let len = len.max(self.max_positions) as f64;
        let d = self.dim as f64;
        let scale = self.factor * len / self.max_positions as f64 - (self.factor - 1.0);
        let base = self.theta * scale.powf(d / (d - 2.0));
        plain_inv_freq(base, self.dim)
            .into_iter()
            .map(|x| x as f32)
            .collect()
    }
}

/// `1 / theta ^ (2i / dim)` for `i < dim / 2`.
pub(crate) fn plain_inv_freq(theta: f64, dim: usize) -> Vec<f64> {
    (0..dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / dim as f64))
        .collect()
}

/// BLOOM's ALiBi slopes (`_get_alibi_slopes`, also Falcon's): for `n` heads with
/// `p` the largest power of two up to `n`, `2^(-8i/p)` for `i` in `1..=p`, then for
/// the heads past `p` every other slope of `2p` heads.
pub(crate) fn alibi_slopes(heads: usize) -> Vec<f32> {
    let p = 1usize << heads.max(1).ilog2();
    let base = |n: usize| 2f32.powf(-(2f32.powf(-((n as f32).log2() - 3.0))));
    let mut slopes: Vec<f32> = (1..=p).map(|i| base(p).powi(i as i32)).collect();
    let extra = heads.saturating_sub(p).min(p);
    slopes.extend((0..extra).map(|i| base(2 * p).powi((2 * i + 1) as i32)));
    slopes
}

/// MPT's ALiBi slopes (`build_mpt_alibi_tensor`): for `n` heads and `p` the smallest
/// power of two from `n`, `2^(-i * max_bias / p)` for `i` in `1..=p`; when `p > n`,
/// the odd-numbered slopes first, then the even ones, the first `n` kept.
pub(crate) fn mpt_alibi_slopes(heads: usize, max_bias: f64) -> Vec<f32> {
    let p = heads.max(1).next_power_of_two();
    let slopes: Vec<f32> = (1..=p)
        .map(|i| 1.0 / 2f32.powf(i as f32 * (max_bias / p as f64) as f32))
        .collect();
    if p == heads {
        return slopes;
    }
    let odd = slopes.iter().skip(1).step_by(2);
    let even = slopes.iter().step_by(2);
    odd.chain(even).copied().take(heads).collect()
}

impl RopeFreqs {
    /// Fixed frequencies, nothing added.
    pub fn plain(inv_freq: Vec<f32>) -> Self {
        RopeFreqs {
            inv_freq,
            attention_factor: 1.0,
            long: None,
            dynamic: None,
        }
    }

    /// The frequencies for a sequence of `len` positions, and the attention factor.
    fn for_len(&self, len: usize) -> (std::borrow::Cow<'_, [f32]>, f64) {
        let inv: std::borrow::Cow<'_, [f32]> = match (&self.long, &self.dynamic) {
            (Some((long, original)), _) if len > *original => long.as_slice().into(),
            (_, Some(d)) if len > d.max_positions => d.inv_freq(len).into(),
            _ => self.inv_freq.as_slice().into(),
        };
        (inv, self.attention_factor)
    }
}

/// The rotary frequencies of `dim` channels (transformers 5 nests the parameters in
/// `rope_parameters`, older configs have `rope_theta` and `rope_scaling` at the top;
/// `default_theta`: when the config names none) of the layers of `layer_type`
/// (`full_attention`, `sliding_attention`) where `rope_parameters` holds one set per
/// layer type (Gemma 3, OLMo-3); the one set otherwise. `max_positions`: the
/// config's `max_position_embeddings` (what dynamic, yarn and longrope scale from).
/// Every rope type transformers 5.23 has: default, linear, dynamic, yarn, longrope,
/// llama3.
pub(crate) fn rope_freqs(
    c: &ConfigReader,
    layer_type: Option<&str>,
    dim: usize,
    default_theta: f64,
    max_positions: usize,
) -> Result<RopeFreqs> {
    let params = c.value.get("rope_parameters").filter(|v| v.is_object());
    let params = match (params, layer_type) {
        (Some(p), Some(t)) if p.get(t).is_some_and(|v| v.is_object()) => p.get(t),
        (p, _) => p,
    };
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
            .unwrap_or(default_theta),
    )?;
    let rope_type = get("rope_type")
        .or_else(|| get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let mut inv = plain_inv_freq(theta, dim);
    let bad = |why: String| c.invalid("rope_parameters", format!("rope type `{rope_type}`: {why}"));
    let num = |k: &str| -> Result<f64> {
        get(k)
            .and_then(|v| v.as_f64())
            .ok_or_else(|| bad(format!("needs `{k}`")))
    };
    let opt = |k: &str| -> Result<Option<f64>> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(format!("`{k}` is not a number"))),
        }
    };
    let positive = |k: &str, x: f64| -> Result<f64> {
        if x > 0.0 && x.is_finite() {
            Ok(x)
        } else {
            Err(bad(format!("`{k}` is {x}; it must be positive")))
        }
    };
    // A top-level `original_max_position_embeddings` wins (Phi-3's longrope configs).
    let original_max = || -> Result<usize> {
        let v = c
            .value
            .get("original_max_position_embeddings")
            .filter(|v| !v.is_null())
            .or_else(|| get("original_max_position_embeddings"));
        match v {
            Some(v) => v
                .as_f64()
                .filter(|x| *x >= 1.0 && x.is_finite() && x.fract() == 0.0)
                .map(|x| x as usize)
                .ok_or_else(|| {
                    bad("`original_max_position_embeddings` is not a positive integer".into())
                }),
            None if max_positions != usize::MAX => Ok(max_positions),
            None => Err(bad("needs `original_max_position_embeddings`".into())),
        }
    };
    let mut freqs = RopeFreqs {
        inv_freq: Vec::new(),
        attention_factor: 1.0,
        long: None,
        dynamic: None,
    };
    match rope_type {
        "default" => {}
        "linear" => {
            let f = positive("factor", num("factor")?)?;
            inv.iter_mut().for_each(|x| *x /= f);
        }
        "dynamic" => {
            if max_positions == usize::MAX || dim <= 2 {
                return Err(bad("is not supported for this model type".into()));
            }
            freqs.dynamic = Some(DynamicNtk {
                theta,
                factor: positive("factor", num("factor")?)?,
                max_positions,
                dim,
            });
        }
        "llama3" => {
            let factor = positive("factor", num("factor")?)?;
            let low = positive("low_freq_factor", num("low_freq_factor")?)?;
            let high = positive("high_freq_factor", num("high_freq_factor")?)?;
            if high <= low {
                return Err(bad("`high_freq_factor` must be above `low_freq_factor`".into()));
            }
            let old = original_max()? as f64;
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
        "yarn" => {
            let original = original_max()? as f64;
            let factor = match opt("factor")? {
                Some(f) => positive("factor", f)?,
                None if max_positions != usize::MAX => max_positions as f64 / original,
                None => return Err(bad("needs `factor`".into())),
            };
            let mscale = |scale: f64, m: f64| {
                if scale <= 1.0 {
                    1.0
                } else {
                    0.1 * m * scale.ln() + 1.0
                }
            };
            freqs.attention_factor = match (opt("attention_factor")?, opt("mscale")?, opt("mscale_all_dim")?) {
                (Some(a), _, _) => a,
                (None, Some(m), Some(all)) if m != 0.0 && all != 0.0 => {
                    mscale(factor, m) / mscale(factor, all)
                }
                _ => mscale(factor, 1.0),
            };
            let beta_fast = opt("beta_fast")?.filter(|b| *b != 0.0).unwrap_or(32.0);
            let beta_slow = opt("beta_slow")?.filter(|b| *b != 0.0).unwrap_or(1.0);
            let truncate = get("truncate").and_then(|v| v.as_bool()).unwrap_or(true);
            let d = dim as f64;
            let correction = |rot: f64| {
                d * (original / (rot * 2.0 * std::f64::consts::PI)).ln() / (2.0 * theta.ln())
            };
            let (mut low, mut high) = (correction(beta_fast), correction(beta_slow));
            if truncate {
                low = low.floor();
                high = high.ceil();
            }
            let (low, mut high) = (low.max(0.0), high.min(d - 1.0));
            if low == high {
                high += 0.001;
            }
            // In f32 as transformers computes the blend.
            for (i, x) in inv.iter_mut().enumerate() {
                let extrapolation = *x as f32;
                let interpolation = (1.0 / (factor * (1.0 / *x))) as f32;
                let ramp = ((i as f32 - low as f32) / (high as f32 - low as f32)).clamp(0.0, 1.0);
                let keep = 1.0 - ramp;
                *x = (interpolation * (1.0 - keep) + extrapolation * keep) as f64;
            }
        }
        "longrope" => {
            let original = original_max()?;
            let factors = |k: &str| -> Result<Vec<f64>> {
                let v = get(k)
                    .and_then(|v| v.as_array())
                    .ok_or_else(|| bad(format!("needs `{k}`")))?;
                if v.len() != dim / 2 {
                    return Err(bad(format!("`{k}` has {} entries for {} frequencies", v.len(), dim / 2)));
                }
                v.iter()
                    .map(|x| x.as_f64().filter(|x| *x > 0.0 && x.is_finite()))
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| bad(format!("`{k}` must hold positive numbers")))
            };
            let (short, long) = (factors("short_factor")?, factors("long_factor")?);
            let factor = match opt("factor")? {
                Some(f) => f,
                None if max_positions != usize::MAX => max_positions as f64 / original as f64,
                None => return Err(bad("needs `factor`".into())),
            };
            freqs.attention_factor = match opt("attention_factor")? {
                Some(a) => a,
                None if factor <= 1.0 => 1.0,
                None => (1.0 + factor.ln() / (original as f64).ln()).sqrt(),
            };
            let scaled = |ext: &[f64]| -> Vec<f32> {
                inv.iter()
                    .zip(ext)
                    .map(|(x, e)| (1.0 / (e * (1.0 / x))) as f32)
                    .collect()
            };
            freqs.long = Some((scaled(&long), original));
            inv = scaled(&short).into_iter().map(f64::from).collect();
        }
        other => {
            return Err(c.invalid(
                "rope_parameters",
                format!(
                    "rope type `{other}` is not supported (default, linear, dynamic, yarn, longrope and llama3 are)"
                ),
            ))
        }
    }
    if !freqs.attention_factor.is_finite() {
        return Err(bad("its attention factor is not finite".into()));
    }
    freqs.inv_freq = inv.into_iter().map(|x| x as f32).collect();
    Ok(freqs)
}

/// Attention heads, key/value heads and head size from a config's values (absent:
/// as many key/value heads as heads, `hidden / heads` per head), checked: the heads
/// divide the hidden size, the key/value heads divide the heads, no size is 0.
pub(crate) fn heads(
    c: &ConfigReader,
    hidden: usize,
    heads: usize,
    kv_heads: Option<usize>,
    head_dim: Option<usize>,
) -> Result<(usize, usize, usize)> {
    if heads == 0 || hidden % heads != 0 {
        return Err(c.invalid(
            "num_attention_heads",
            format!("{heads} does not divide hidden_size {hidden}"),
        ));
    }
    let kv = kv_heads.unwrap_or(heads);
    if kv == 0 || heads % kv != 0 {
        return Err(c.invalid(
            "num_key_value_heads",
            format!("{kv} does not divide num_attention_heads {heads}"),
        ));
    }
    let hd = head_dim.unwrap_or(hidden / heads);
    if hd == 0 {
        return Err(c.invalid("head_dim", "is 0".into()));
    }
    Ok((heads, kv, hd))
}

/// The rotary size of a head: `head_dim * partial_rotary_factor` (in
/// `rope_parameters` or at the top; `default` when absent), which must be even and
/// not 0.
pub(crate) fn partial_rotary_dim(c: &ConfigReader, head_dim: usize, default: f64) -> Result<usize> {
    let partial = c
        .value
        .get("rope_parameters")
        .and_then(|p| p.get("partial_rotary_factor"))
        .or_else(|| c.value.get("partial_rotary_factor"))
        .and_then(|v| v.as_f64())
        .unwrap_or(default);
    let dim = ((head_dim as f64) * partial) as usize;
    if dim % 2 != 0 || dim == 0 || dim > head_dim {
        return Err(c.invalid(
            "partial_rotary_factor",
            format!("gives a rotary size of {dim} (of head_dim {head_dim}): it must be even, not 0 and at most head_dim"),
        ));
    }
    Ok(dim)
}

/// A decoder model type stated as one file (a family's base member, or a delta over
/// it): its family, architecture classes and loader, and the config defaults it
/// states (a unit test compares them with transformers'). `families` runs every one
/// it lists in `DECODERS`.
pub(crate) struct DecoderFile {
    pub family: crate::Family,
    pub classes: &'static [&'static str],
    pub load: fn(
        &super::config::ConfigReader,
        &Weights,
        candle_core::DType,
        &candle_core::Device,
    ) -> Result<Decoder>,
    /// `(config class, its defaults as config.json fields)`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub defaults: fn() -> Vec<(&'static str, serde_json::Value)>,
}

impl Decoder {
    /// An error unless it has a language-model head (text generation needs one).
    pub fn check_lm_head(&self, weights: &Weights) -> Result<()> {
        match self.lm_head {
            Some(_) => Ok(()),
            None => Err(Error::WeightMismatch {
                path: weights.path.clone(),
                reason: "no `lm_head.weight` and `tie_word_embeddings` is false: the checkpoint has no language-model head (a base model or a classifier), so it cannot generate text".into(),
            }),
        }
    }

    /// The last hidden states `[batch, t, width]` of right-padded rows (`lengths` real
    /// tokens each), every row at positions `0..t`: what transformers' base model
    /// (`LlamaModel`, ...) returns after its final norm. Padding comes after each row's
    /// tokens, so causal attention keeps it out of them.
    pub fn last_hidden_states(&self, input_ids: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, t) = input_ids.dims2()?;
        let positions: Vec<Vec<u32>> = (0..b).map(|_| (0..t as u32).collect()).collect();
        let masks = Masks {
            full: padded_causal_bias(lengths, t, None, self.dtype, &self.device)?,
            window: self
                .layout
                .sliding_window
                .map(|w| padded_causal_bias(lengths, t, Some(w), self.dtype, &self.device))
                .transpose()?,
        };
        let mut cache: Vec<KvCache> = (0..self.layers.len())
            .map(|_| KvCache::new(2, t.max(1)))
            .collect();
        let x = self.embed(input_ids)?;
        let x = self.run_layers(x, &positions, &masks, &mut cache)?;
        self.finish(x)
    }

    /// The final norm and projection (OPT's `project_out`) on hidden states.
    fn finish(&self, mut x: Tensor) -> Result<Tensor> {
        if let Some(n) = &self.final_norm {
            x = n.forward(&x)?;
        }
        if let Some(p) = &self.project_out {
            x = p.forward(&x)?;
        }
        Ok(x)
    }

    /// The width of its token embeddings (what an image projector feeds it).
    pub fn embedding_width(&self) -> usize {
        self.embed.embeddings().dims()[1]
    }

    /// Queries, keys and values `[batch, heads, t, head_dim]` of one layer's input.
    fn project(&self, layer: &Layer, h: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let l = &self.layout;
        let (b, t, _) = h.dims3()?;
        let hd = l.head_dim;
        let split = |y: Tensor, heads: usize| -> Result<Tensor> {
            Ok(y.reshape((b, t, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let clip = |y: Tensor| -> Result<Tensor> {
            Ok(match l.clip_qkv {
                Some(m) => y.clamp(-m, m)?,
                None => y,
            })
        };
        let norm = |y: Tensor, n: usize| -> Result<Tensor> {
            match &layer.qk_norm {
                Some(QkNorm::Whole(qn, kn)) => (if n == 0 { qn } else { kn }).forward(&y),
                _ => Ok(y),
            }
        };
        // A separate q or k projection's output through the clip and the
        // whole-projection norm, in the layout's order.
        let qk = |y: Tensor, n: usize| -> Result<Tensor> {
            if l.clip_after_qk_norm {
                clip(norm(y, n)?)
            } else {
                norm(clip(y)?, n)
            }
        };
        let (q, k, v) = match &layer.qkv {
            Qkv::Separate(q, k, v) => (
                split(qk(q.forward(h)?, 0)?, l.heads)?,
                split(qk(k.forward(h)?, 1)?, l.kv_heads)?,
                split(clip(v.forward(h)?)?, l.kv_heads)?,
            ),
            Qkv::Fused(p) => {
                let y = clip(p.forward(h)?)?;
                let (qd, kvd) = (l.heads * hd, l.kv_heads * hd);
                (
                    split(norm(y.narrow(D::Minus1, 0, qd)?, 0)?, l.heads)?,
                    split(norm(y.narrow(D::Minus1, qd, kvd)?, 1)?, l.kv_heads)?,
                    split(y.narrow(D::Minus1, qd + kvd, kvd)?, l.kv_heads)?,
                )
            }
            Qkv::Mla(m) => {
                let (nope, rope) = (m.nope, m.rope);
                let q = match &m.q {
                    MlaQuery::Direct(p) => p.forward(h)?,
                    MlaQuery::LowRank { a, norm, b: up } => {
                        up.forward(&norm.forward(&a.forward(h)?)?)?
                    }
                }
                .reshape((b, t, l.heads, nope + rope))?
                .transpose(1, 2)?;
                let q = Tensor::cat(
                    &[
                        q.narrow(D::Minus1, nope, rope)?,
                        q.narrow(D::Minus1, 0, nope)?,
                    ],
                    D::Minus1,
                )?;
                let latent = m.kv_a.forward(h)?;
                let kv = m.kv_norm.forward(&latent.narrow(D::Minus1, 0, m.lora)?)?;
                let kv = m
                    .kv_b
                    .forward(&kv)?
                    .reshape((b, t, l.heads, nope + m.v))?
                    .transpose(1, 2)?;
                let k_rope = latent
                    .narrow(D::Minus1, m.lora, rope)?
                    .unsqueeze(1)?
                    .broadcast_as((b, l.heads, t, rope))?;
                let k = Tensor::cat(&[k_rope, kv.narrow(D::Minus1, 0, nope)?], D::Minus1)?;
                (
                    q.contiguous()?,
                    k.contiguous()?,
                    kv.narrow(D::Minus1, nope, m.v)?.contiguous()?,
                )
            }
            Qkv::FusedPerHead(p) => {
                let y = clip(p.forward(h)?)?
                    .reshape((b, t, l.heads, 3 * hd))?
                    .transpose(1, 2)?;
                (
                    y.narrow(D::Minus1, 0, hd)?.contiguous()?,
                    y.narrow(D::Minus1, hd, hd)?.contiguous()?,
                    y.narrow(D::Minus1, 2 * hd, hd)?.contiguous()?,
                )
            }
        };
        Ok(match &layer.qk_norm {
            Some(QkNorm::PerHead(qn, kn)) => (qn.forward(&q)?, kn.forward(&k)?, v),
            _ => (q, k, v),
        })
    }

    fn scaled(&self, y: Tensor) -> Result<Tensor> {
        let m = self.layout.residual_multiplier;
        Ok(if m != 1.0 { (y * m)? } else { y })
    }
}

/// The masks with ALiBi's biases added: `[batch, heads, t, keys]`, summed in f32 and
/// kept at or above the dtype's most negative value (so that no masked score becomes
/// `-inf` in f16). `positions`: each row's positions of this pass.
fn with_alibi(masks: &Masks, alibi: &Alibi, positions: &[Vec<u32>]) -> Result<Masks> {
    let heads = alibi.slopes.len();
    let add = |mask: &Tensor| -> Result<Tensor> {
        let (rows, keys) = (mask.dim(0)?, mask.dim(D::Minus1)?);
        let device = mask.device();
        let bias = match alibi.falcon_scale {
            None => {
                let bias: Vec<f32> = alibi
                    .slopes
                    .iter()
                    .flat_map(|s| (0..keys).map(move |j| -s * (keys - 1 - j) as f32))
                    .collect();
                Tensor::from_vec(bias, (1, heads, 1, keys), device)?
            }
            Some(scale) => {
                let bf16 = |x: Vec<f32>, shape: (usize, usize, usize, usize)| -> Result<Tensor> {
                    Ok(Tensor::from_vec(x, shape, device)?
                        .to_dtype(DType::BF16)?
                        .to_dtype(DType::F32)?)
                };
                let slopes = bf16(alibi.slopes.clone(), (1, heads, 1, 1))?;
                // The key's position from the row's first real token (0 for padding,
                // which the mask hides).
                let mut pos = Vec::with_capacity(rows * keys);
                for r in 0..rows {
                    let last = positions
                        .get(r)
                        .and_then(|p| p.last())
                        .copied()
                        .unwrap_or(0) as i64;
                    pos.extend((0..keys).map(|j| (last - (keys - 1 - j) as i64).max(0) as f32));
                }
                let pos = Tensor::from_vec(pos, (rows, 1, 1, keys), device)?;
                let product = slopes.broadcast_mul(&pos)?;
                (product.to_dtype(DType::BF16)?.to_dtype(DType::F32)? * scale)?
            }
        };
        let dtype = mask.dtype();
        let sum = mask.to_dtype(DType::F32)?.broadcast_add(&bias)?;
        Ok(sum.maximum(nn::mask_value(dtype))?.to_dtype(dtype)?)
    };
    Ok(Masks {
        full: add(&masks.full)?,
        window: masks.window.as_ref().map(add).transpose()?,
    })
}

/// The rotary tables `cos`, `sin` of `rope` at `positions` (none without it).
fn rope_tables<'r>(
    rope: &'r Option<Rope>,
    positions: &[Vec<u32>],
    dtype: DType,
    device: &Device,
) -> Result<Option<(Tensor, Tensor, &'r Rope)>> {
    Ok(match rope {
        Some(r) => {
            // The sequence length of the rope types that depend on it: transformers takes
            // the largest position + 1 of the batch; each row takes its own here, so that
            // a prompt's tokens do not depend on the prompts batched with it (as
            // transformers gives them one by one).
            let len = |row: &[u32]| row.iter().max().map_or(0, |&p| p as usize + 1);
            let (cos, sin) = if r.freqs.long.is_some() || r.freqs.dynamic.is_some() {
                let mut cos = Vec::with_capacity(positions.len());
                let mut sin = Vec::with_capacity(positions.len());
                for row in positions {
                    let (inv_freq, _) = r.freqs.for_len(len(row));
                    let (c, s) =
                        nn::rope_tables(std::slice::from_ref(row), &inv_freq, dtype, device)?;
                    cos.push(c);
                    sin.push(s);
                }
                (Tensor::cat(&cos, 0)?, Tensor::cat(&sin, 0)?)
            } else {
                nn::rope_tables(positions, &r.freqs.inv_freq, dtype, device)?
            };
            let factor = r.freqs.attention_factor;
            if factor != 1.0 {
                Some(((cos * factor)?, (sin * factor)?, r))
            } else {
                Some((cos, sin, r))
            }
        }
        None => None,
    })
}

impl CausalLm for Decoder {
    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn max_positions(&self) -> usize {
        self.layout.max_positions
    }

    fn sliding_window(&self) -> Option<usize> {
        self.layout.sliding_window
    }

    fn recompute_past_after(&self) -> Option<usize> {
        self.layout.recompute_past_after
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
        let l = &self.layout;
        let mut x = self.embed.forward(input_ids)?;
        if let Some(p) = &self.project_in {
            x = p.forward(&x)?;
        }
        if let Some(hidden) = l.embed_sqrt_scale {
            // transformers rounds the scale to the activation dtype first.
            let scale = Tensor::new((hidden as f32).sqrt(), &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&scale)?;
        }
        if l.embedding_multiplier != 1.0 {
            x = (x * l.embedding_multiplier)?;
        }
        Ok(x)
    }

    fn forward_embeds(
        &self,
        x: Tensor,
        positions: &[Vec<u32>],
        masks: &Masks,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let l = &self.layout;
        let (_, t, _) = x.dims3()?;
        let x = self.run_layers(x, positions, masks, cache)?;
        let last = self.finish(x.narrow(1, t - 1, 1)?)?;
        let lm_head = self.lm_head.as_ref().ok_or_else(|| {
            Error::InvalidOption("the checkpoint has no language-model head".into())
        })?;
        let logits = lm_head.forward(&last)?.squeeze(1)?.to_dtype(DType::F32)?;
        let logits = if l.logits_scaling != 1.0 {
            (logits / l.logits_scaling)?
        } else {
            logits
        };
        let logits = if l.logit_scale != 1.0 {
            (logits * l.logit_scale)?
        } else {
            logits
        };
        Ok(match l.final_softcap {
            Some(cap) => ((logits / cap)?.tanh()? * cap)?,
            None => logits,
        })
    }
}

impl Decoder {
    /// Embeddings `x` through the position embeddings and every layer: the hidden
    /// states before the final norm.
    fn run_layers(
        &self,
        mut x: Tensor,
        positions: &[Vec<u32>],
        masks: &Masks,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let l = &self.layout;
        if let Some(p) = &self.positions {
            let shifted: Vec<Vec<u32>> = positions
                .iter()
                .map(|r| r.iter().map(|&i| i + p.offset).collect())
                .collect();
            x = (x + p.table.forward(&nn::ids_tensor(&shifted, &self.device)?)?)?;
        }
        if let Some(n) = &self.embed_norm {
            x = n.forward(&x)?;
        }
        let global = rope_tables(&l.rope, positions, self.dtype, &self.device)?;
        let local = rope_tables(&l.local_rope, positions, self.dtype, &self.device)?;
        let query_scale = match &l.query_scale {
            Some(qs) => Some(qs.tensor(positions, self.dtype, &self.device)?),
            None => None,
        };
        let alibi_masks;
        let masks = match &l.alibi {
            Some(alibi) => {
                alibi_masks = with_alibi(masks, alibi, positions)?;
                &alibi_masks
            }
            None => masks,
        };
        for (i, (layer, kv)) in self.layers.iter().zip(cache.iter_mut()).enumerate() {
            let h = match (&layer.attn_norm, l.residual) {
                (Some(n), Residual::Sequential | Residual::Parallel) => n.forward(&x)?,
                _ => x.clone(),
            };
            let (q, k, v) = self.project(layer, &h)?;
            let rope = match layer.rope {
                LayerRope::Global => global.as_ref(),
                LayerRope::Local => local.as_ref(),
                LayerRope::NoPe => None,
            };
            let (q, k) = match rope {
                Some((cos, sin, r)) => (
                    nn::partial_rope(&q, cos, sin, r.dim, r.interleaved)?,
                    nn::partial_rope(&k, cos, sin, r.dim, r.interleaved)?,
                ),
                None => (q, k),
            };
            let q = match &query_scale {
                Some(s) => q.broadcast_mul(s)?,
                None => q,
            };
            let (q, k) = match &layer.qk_norm {
                Some(QkNorm::PerHeadAfterRope(qn, kn)) => (qn.forward(&q)?, kn.forward(&k)?),
                _ => (q, k),
            };
            let (k, v) = kv.append(&k.contiguous()?, &v.contiguous()?)?;
            // Differential attention's values: the first half of the key/value heads
            // tiled, beside the second half tiled.
            let v = match &layer.differential {
                Some(_) => {
                    let half = l.kv_heads / 2;
                    let (a, b) = (v.narrow(1, 0, half)?, v.narrow(1, half, half)?);
                    Tensor::cat(
                        &[Tensor::cat(&[&a, &a], 1)?, Tensor::cat(&[&b, &b], 1)?],
                        D::Minus1,
                    )?
                }
                None => v,
            };
            let n_rep = l.heads / l.kv_heads;
            let (k, v) = (nn::repeat_kv(k, n_rep)?, nn::repeat_kv(v, n_rep)?);
            let bias = if layer.windowed {
                masks.window.as_ref().unwrap_or(&masks.full)
            } else {
                &masks.full
            };
            let scale = if l.scale_by_layer {
                l.scale / (i + 1) as f64
            } else {
                l.scale
            };
            let (k, v) = (k.contiguous()?, v.contiguous()?);
            let ctx = match (l.attn_softcap, &layer.sinks) {
                (Some(cap), _) => nn::attention_softcapped(&q, &k, &v, bias, scale, cap)?,
                (None, Some(sinks)) => nn::attention_with_sinks(&q, &k, &v, bias, scale, sinks)?,
                (None, None) => nn::attention(&q, &k, &v, Some(bias), scale)?,
            };
            let ctx = match &layer.differential {
                Some(d) => {
                    let half = l.heads / 2;
                    let (o1, o2) = (ctx.narrow(1, 0, half)?, ctx.narrow(1, half, half)?);
                    let o = (o1 - (o2 * d.lambda)?)?;
                    (nn::rms_normalize_f32(&o, d.eps)?.to_dtype(o.dtype())?
                        * (1.0 - d.lambda_init))?
                }
                None => ctx,
            };
            let mut merged = nn::merge_heads(&ctx)?;
            if let Some(g) = &layer.out_gate {
                merged = (merged * candle_nn::ops::sigmoid(&g.forward(&h)?)?)?;
            }
            let mut attn = layer.out.forward(&merged)?;
            if let Some(n) = &layer.attn_out_norm {
                attn = n.forward(&attn)?;
            }
            let attn = self.scaled(attn)?;
            x = match l.residual {
                Residual::Sequential => {
                    let x = (attn + x)?;
                    let m_in = match &layer.mlp_norm {
                        Some(n) => n.forward(&x)?,
                        None => x.clone(),
                    };
                    let mut m = layer.mlp.forward(l.act, &m_in)?;
                    if let Some(n) = &layer.mlp_out_norm {
                        m = n.forward(&m)?;
                    }
                    (self.scaled(m)? + x)?
                }
                Residual::Parallel => {
                    let m_in = match &layer.mlp_norm {
                        Some(n) => n.forward(&x)?,
                        None => h,
                    };
                    let m = self.scaled(layer.mlp.forward(l.act, &m_in)?)?;
                    ((attn + m)? + x)?
                }
                Residual::PostNorm => {
                    let mut x = (attn + x)?;
                    if let Some(n) = &layer.attn_norm {
                        x = n.forward(&x)?;
                    }
                    let m = layer.mlp.forward(l.act, &x)?;
                    let x = (m + x)?;
                    match &layer.mlp_norm {
                        Some(n) => n.forward(&x)?,
                        None => x,
                    }
                }
            };
        }
        Ok(x)
    }
}

/// Additive attention bias `[batch, 1, t, t]` for right-padded rows of `lengths` real
/// tokens: causal, padding keys hidden, and with `window` the sliding window.
fn padded_causal_bias(
    lengths: &[usize],
    t: usize,
    window: Option<usize>,
    dtype: DType,
    device: &Device,
) -> Result<Tensor> {
    let neg = nn::mask_value(dtype) as f32;
    let mut data = Vec::with_capacity(lengths.len() * t * t);
    for &n in lengths {
        for q in 0..t {
            for k in 0..t {
                let visible = k <= q && (k < n || k == q) && window.is_none_or(|w| q - k < w);
                data.push(if visible { 0.0 } else { neg });
            }
        }
    }
    Ok(Tensor::from_vec(data, (lengths.len(), 1, t, t), device)?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A router that sends every token to experts 1 and 2 of 4, and experts 0 and 3
    /// full of NaN: the output is finite only if the unpicked experts are not read
    /// (a dense pass multiplying them by a zero weight would spread the NaN).
    #[test]
    fn moe_runs_only_the_picked_experts() -> Result<()> {
        let dev = Device::Cpu;
        let (hidden, inner) = (4, 3);
        let expert = |fill: f32| -> Result<Mlp> {
            let w = |r, c| Tensor::full(fill, (r, c), &dev);
            Ok(Mlp::Gated {
                gate: Linear::new(w(inner, hidden)?, None),
                up: Linear::new(w(inner, hidden)?, None),
                down: Linear::new(w(hidden, inner)?, None),
            })
        };
        // Inputs are positive: expert scores are 0, 5, 4 and -5 times their sum.
        let router = Tensor::new(&[[0f32; 4], [5.0; 4], [4.0; 4], [-5.0; 4]], &dev)?;
        let moe = Moe {
            router: Linear::new(router, None),
            experts: vec![
                expert(f32::NAN)?,
                expert(0.1)?,
                expert(0.2)?,
                expert(f32::NAN)?,
            ],
            top_k: 2,
            norm_topk_prob: true,
            softmax_after_topk: false,
            weights_in_dtype: false,
            selection_bias: None,
            norm_min: 0.0,
            sigmoid: false,
            groups: None,
            routed_scaling: 1.0,
            shared: None,
            average_shared: false,
            sparsemixer: None,
        };
        let x = Tensor::new(&[[[0.5f32, 1.0, 0.25, 0.75], [1.0, 1.0, 1.0, 1.0]]], &dev)?;
        let y = Mlp::Moe(Box::new(moe)).forward(Activation::Silu, &x)?;
        assert_eq!(y.dims(), &[1, 2, 4]);
        let y: Vec<f32> = y.flatten_all()?.to_vec1()?;
        assert!(y.iter().all(|v| v.is_finite() && *v != 0.0), "{y:?}");
        Ok(())
    }
}
