//! The transformer layer shared by the vision and audio encoders (ViT, DINOv2, CLIP,
//! SigLIP, Wav2Vec2, HuBERT, Whisper): self-attention and a two-layer MLP, each in a
//! residual branch (DINOv2: scaled per channel), with the layer norms before (pre-norm)
//! or after (post-norm) the branches. Only the tensor names differ between the families.

use super::nn::LayerNorm;
use candle_core::{Module, Tensor};

use super::nn::{self, Activation, Linear, Weights};
use crate::error::Result;

/// The tensor names of one layer, relative to the layer's prefix.
pub(crate) struct LayerNames {
    pub norm1: &'static str,
    pub q: &'static str,
    pub k: &'static str,
    pub v: &'static str,
    pub out: &'static str,
    pub norm2: &'static str,
    pub fc1: &'static str,
    pub fc2: &'static str,
    /// Per-channel scales of the attention and MLP branches (DINOv2's layer scale).
    pub scales: Option<(&'static str, &'static str)>,
}

/// ViT / DeiT.
pub(crate) const VIT_NAMES: LayerNames = LayerNames {
    norm1: "layernorm_before",
    q: "attention.attention.query",
    k: "attention.attention.key",
    v: "attention.attention.value",
    out: "attention.output.dense",
    norm2: "layernorm_after",
    fc1: "intermediate.dense",
    fc2: "output.dense",
    scales: None,
};

/// DINOv2.
pub(crate) const DINOV2_NAMES: LayerNames = LayerNames {
    norm1: "norm1",
    q: "attention.attention.query",
    k: "attention.attention.key",
    v: "attention.attention.value",
    out: "attention.output.dense",
    norm2: "norm2",
    fc1: "mlp.fc1",
    fc2: "mlp.fc2",
    scales: Some(("layer_scale1.lambda1", "layer_scale2.lambda1")),
};

/// CLIP and SigLIP (vision and text towers).
pub(crate) const CLIP_NAMES: LayerNames = LayerNames {
    norm1: "layer_norm1",
    q: "self_attn.q_proj",
    k: "self_attn.k_proj",
    v: "self_attn.v_proj",
    out: "self_attn.out_proj",
    norm2: "layer_norm2",
    fc1: "mlp.fc1",
    fc2: "mlp.fc2",
    scales: None,
};

/// BERT and the models that share its layout (RoBERTa, XLM-RoBERTa, CamemBERT,
/// Data2VecText, ERNIE, ELECTRA).
pub(crate) const BERT_NAMES: LayerNames = LayerNames {
    norm1: "attention.output.LayerNorm",
    q: "attention.self.query",
    k: "attention.self.key",
    v: "attention.self.value",
    out: "attention.output.dense",
    norm2: "output.LayerNorm",
    fc1: "intermediate.dense",
    fc2: "output.dense",
    scales: None,
};

/// DistilBERT.
pub(crate) const DISTILBERT_NAMES: LayerNames = LayerNames {
    norm1: "sa_layer_norm",
    q: "attention.q_lin",
    k: "attention.k_lin",
    v: "attention.v_lin",
    out: "attention.out_lin",
    norm2: "output_layer_norm",
    fc1: "ffn.lin1",
    fc2: "ffn.lin2",
    scales: None,
};

/// Wav2Vec2 and HuBERT.
pub(crate) const WAV2VEC2_NAMES: LayerNames = LayerNames {
    norm1: "layer_norm",
    q: "attention.q_proj",
    k: "attention.k_proj",
    v: "attention.v_proj",
    out: "attention.out_proj",
    norm2: "final_layer_norm",
    fc1: "feed_forward.intermediate_dense",
    fc2: "feed_forward.output_dense",
    scales: None,
};

/// Whisper's encoder and decoder self-attention blocks.
pub(crate) const WHISPER_NAMES: LayerNames = LayerNames {
    norm1: "self_attn_layer_norm",
    q: "self_attn.q_proj",
    k: "self_attn.k_proj",
    v: "self_attn.v_proj",
    out: "self_attn.out_proj",
    norm2: "final_layer_norm",
    fc1: "fc1",
    fc2: "fc2",
    scales: None,
};

/// A linear layer whose bias may be absent (Whisper's `k_proj` has none).
pub(crate) fn linear_maybe_bias(
    w: &Weights,
    d_in: usize,
    d_out: usize,
    name: &str,
) -> Result<Linear> {
    if w.contains(&format!("{name}.bias")) {
        w.linear(d_in, d_out, name)
    } else {
        w.linear_no_bias(d_in, d_out, name)
    }
}

/// Multi-head attention projections.
pub(crate) struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub out: Linear,
    pub heads: usize,
    pub scale: f64,
    /// Scores in f32 up to the softmax in f16/bf16 (BERT: as transformers' SDPA keeps
    /// them; over the 23 bert-family checks in bf16, the CPU dry run of
    /// scripts/gpu-check.sh measured our distance from transformers' f32 outputs at
    /// 1.33x transformers' own bf16 distance with bf16 scores, 1.01x with f32 ones).
    pub f32_scores: bool,
}

impl Attention {
    pub fn load(
        w: &Weights,
        hidden: usize,
        heads: usize,
        names: (&str, &str, &str, &str),
    ) -> Result<Self> {
        Ok(Attention {
            q: linear_maybe_bias(w, hidden, hidden, names.0)?,
            k: linear_maybe_bias(w, hidden, hidden, names.1)?,
            v: linear_maybe_bias(w, hidden, hidden, names.2)?,
            out: linear_maybe_bias(w, hidden, hidden, names.3)?,
            heads,
            scale: ((hidden / heads) as f64).powf(-0.5),
            f32_scores: false,
        })
    }

    /// Attention of `x` over `kv` (itself for self-attention), with an additive bias.
    pub fn forward(&self, x: &Tensor, kv: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let q = nn::split_heads(&self.q.forward(x)?, self.heads)?;
        let k = nn::split_heads(&self.k.forward(kv)?, self.heads)?;
        let v = nn::split_heads(&self.v.forward(kv)?, self.heads)?;
        let ctx = if self.f32_scores {
            nn::attention_f32_scores(&q, &k, &v, bias, self.scale)?
        } else {
            nn::attention(&q, &k, &v, bias, self.scale)?
        };
        Ok(self.out.forward(&nn::merge_heads(&ctx)?)?)
    }
}

/// One encoder layer.
pub(crate) struct Layer {
    norm1: LayerNorm,
    attn: Attention,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
    pre_norm: bool,
    scales: Option<(Tensor, Tensor)>,
    /// WavLM: the layer gates the shared relative position bias by its input.
    rel_gate: Option<RelGate>,
}

/// WavLM's gate on the relative position bias: per head, from the attention's input,
/// `a * (b * c - 1) + 2` with `a, b` sigmoids of a projection of each head's slice
/// (8 outputs summed in two groups of 4) and `c` a learned constant per head.
pub(crate) struct RelGate {
    pub linear: Linear,
    /// `[1, heads, 1, 1]`.
    pub constant: Tensor,
}

impl RelGate {
    /// The gated bias `[b, heads, t, t]` for attention input `x [b, t, hidden]` and the
    /// shared position bias `[1, heads, t, t]`.
    fn apply(&self, x: &Tensor, position_bias: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let heads = self.constant.dim(1)?;
        let per_head = nn::split_heads(x, heads)?; // [b, h, t, d]
        let proj = self
            .linear
            .forward(&per_head)?
            .reshape((b, heads, t, 2, 4))?
            .sum(candle_core::D::Minus1)?; // [b, h, t, 2]
        let gates = candle_nn::ops::sigmoid(&proj)?;
        let (a, g) = (gates.narrow(3, 0, 1)?, gates.narrow(3, 1, 1)?);
        let gate = ((a * (g.broadcast_mul(&self.constant)? - 1.0)?)? + 2.0)?; // [b, h, t, 1]
        Ok(gate.broadcast_mul(position_bias)?)
    }
}

/// The sizes of an encoder layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerDims {
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub eps: f64,
    pub act: Activation,
    /// Layer norms before the attention and MLP branches (ViT, CLIP, Whisper, stable
    /// Wav2Vec2), or after each residual sum (BERT-style: base Wav2Vec2, HuBERT).
    pub pre_norm: bool,
}

impl Layer {
    pub fn load(w: &Weights, d: LayerDims, n: &LayerNames) -> Result<Self> {
        Ok(Layer {
            norm1: w.layer_norm(d.hidden, d.eps, n.norm1)?,
            attn: Attention::load(w, d.hidden, d.heads, (n.q, n.k, n.v, n.out))?,
            norm2: w.layer_norm(d.hidden, d.eps, n.norm2)?,
            fc1: w.linear(d.hidden, d.intermediate, n.fc1)?,
            fc2: w.linear(d.intermediate, d.hidden, n.fc2)?,
            act: d.act,
            pre_norm: d.pre_norm,
            scales: match n.scales {
                Some((s1, s2)) => Some((w.get(d.hidden, s1)?, w.get(d.hidden, s2)?)),
                None => None,
            },
            rel_gate: None,
        })
    }

    /// Attention scores in f32 up to the softmax (BERT).
    pub fn with_f32_scores(mut self) -> Self {
        self.attn.f32_scores = true;
        self
    }

    /// Gate the shared position bias by this layer's attention input (WavLM).
    pub fn set_rel_gate(&mut self, gate: RelGate) {
        self.rel_gate = Some(gate);
    }

    pub fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let attend = |h: &Tensor| -> Result<Tensor> {
            match (&self.rel_gate, bias) {
                (Some(gate), Some(position_bias)) => {
                    self.attn
                        .forward(h, h, Some(&gate.apply(h, position_bias)?))
                }
                _ => self.attn.forward(h, h, bias),
            }
        };
        let mlp = |h: &Tensor| -> Result<Tensor> {
            Ok(self.fc2.forward(&nn::linear_act(&self.fc1, self.act, h)?)?)
        };
        let scaled = |y: Tensor, i: usize| -> Result<Tensor> {
            Ok(match &self.scales {
                Some(s) => y.broadcast_mul(if i == 0 { &s.0 } else { &s.1 })?,
                None => y,
            })
        };
        if self.pre_norm {
            let h = self.norm1.forward(x)?;
            let x = (x + scaled(attend(&h)?, 0)?)?;
            let h = self.norm2.forward(&x)?;
            Ok((&x + scaled(mlp(&h)?, 1)?)?)
        } else {
            let x = self.norm1.forward(&(x + attend(x)?)?)?;
            Ok(self.norm2.forward(&(&x + mlp(&x)?)?)?)
        }
    }
}

/// `layers` layers under `prefix.{i}`.
pub(crate) fn load_layers(
    w: &Weights,
    prefix: &str,
    count: usize,
    d: LayerDims,
    names: &LayerNames,
) -> Result<Vec<Layer>> {
    (0..count)
        .map(|i| Layer::load(&w.pp(format!("{prefix}.{i}")), d, names))
        .collect()
}

/// Run `x` through every layer.
pub(crate) fn run_layers(layers: &[Layer], x: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    layers.iter().try_fold(x, |x, l| l.forward(&x, bias))
}

/// Non-overlapping patches as a matrix product (a convolution whose stride is its
/// kernel): `[b, c, H, W]` -> `[b, patches, hidden]`, row-major over the patch grid.
pub(crate) fn patch_embed(
    pixels: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    patch: usize,
) -> Result<Tensor> {
    let (b, c, h, w) = pixels.dims4()?;
    let (gh, gw) = (h / patch, w / patch);
    let hidden = weight.dim(0)?;
    let x = pixels
        .narrow(2, 0, gh * patch)?
        .narrow(3, 0, gw * patch)?
        .reshape((b, c, gh, patch, gw, patch))?
        .permute((0, 2, 4, 1, 3, 5))?
        .contiguous()?
        .reshape((b * gh * gw, c * patch * patch))?;
    let wt = weight.reshape((hidden, c * patch * patch))?;
    let mut y = x.matmul(&wt.t()?)?;
    if let Some(bias) = bias {
        y = y.broadcast_add(bias)?;
    }
    Ok(y.reshape((b, gh * gw, hidden))?)
}
