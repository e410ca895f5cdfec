//! The `t5` family: T5 and mT5 encoder-decoders (Flan-T5 checkpoints are T5s):
//! RMS layer norms without bias, unscaled attention with bucketed relative position
//! biases, ReLU or gated-GELU feed-forward, greedy or sampled decoding with a cache of
//! decoder self-attention keys and of the encoder's cross-attention keys.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::kv_cache::KvCache;
use candle_nn::Embedding;

use super::config::{hf_config, ConfigReader};
use super::nn::{self, Activation, Linear, Weights};
use super::stepper::Stepper;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
struct Config {
    vocab_size: usize,
    d_model: usize,
    d_kv: usize,
    d_ff: usize,
    enc_layers: usize,
    dec_layers: usize,
    heads: usize,
    buckets: usize,
    max_distance: usize,
    eps: f64,
    act: Activation,
    gated: bool,
    scale_decoder_outputs: bool,
    decoder_start: u32,
}

/// Whether an architecture class is mT5's (`None`: not a t5-family class).
pub(crate) fn is_mt5(architecture: &str) -> Option<bool> {
    match architecture {
        "T5ForConditionalGeneration" | "T5Model" => Some(false),
        "MT5ForConditionalGeneration" | "MT5Model" => Some(true),
        _ => None,
    }
}

hf_config! {
    /// `T5Config` (transformers 5.23): the fields the model reads, with its defaults.
    pub(crate) struct T5Config {
        vocab_size: usize = 32128,
        d_model: usize = 512,
        d_kv: usize = 64,
        d_ff: usize = 2048,
        num_layers: usize = 6,
        /// `None`: `num_layers`.
        num_decoder_layers: Option<usize> = None,
        num_heads: usize = 8,
        relative_attention_num_buckets: usize = 32,
        relative_attention_max_distance: usize = 128,
        layer_norm_epsilon: f64 = 1e-6,
        feed_forward_proj: String = "relu".into(),
        tie_word_embeddings: bool = true,
        /// `None`: `tie_word_embeddings` (T5 v1.0 scales the decoder output when the
        /// head is tied; v1.1 configs say no).
        scale_decoder_outputs: Option<bool> = None,
    }
}

hf_config! {
    /// `MT5Config` (transformers 5.23): the fields the model reads, with its defaults
    /// (mT5 never scales the decoder output).
    pub(crate) struct MT5Config {
        vocab_size: usize = 250112,
        d_model: usize = 512,
        d_kv: usize = 64,
        d_ff: usize = 1024,
        num_layers: usize = 8,
        num_decoder_layers: Option<usize> = None,
        num_heads: usize = 6,
        relative_attention_num_buckets: usize = 32,
        relative_attention_max_distance: usize = 128,
        layer_norm_epsilon: f64 = 1e-6,
        feed_forward_proj: String = "gated-gelu".into(),
        tie_word_embeddings: bool = true,
    }
}

impl Config {
    fn read(architecture: &str, c: &ConfigReader) -> Result<Self> {
        let mt5 = is_mt5(architecture).ok_or_else(|| c.not_of_family("t5", architecture))?;
        // The fields both classes share, then T5's scaling of the decoder output.
        macro_rules! shared {
            ($t:expr) => {{
                let t = $t;
                let dims = (t.vocab_size, t.d_model, t.d_kv, t.d_ff, t.num_heads);
                let layers = (t.num_layers, t.num_decoder_layers.unwrap_or(t.num_layers));
                let buckets = (
                    t.relative_attention_num_buckets,
                    t.relative_attention_max_distance,
                );
                (
                    dims,
                    layers,
                    buckets,
                    t.layer_norm_epsilon,
                    t.feed_forward_proj,
                )
            }};
        }
        let (shared, scale_decoder_outputs) = if mt5 {
            (shared!(c.typed::<MT5Config>()?), false)
        } else {
            let t: T5Config = c.typed()?;
            let scale = t.scale_decoder_outputs.unwrap_or(t.tie_word_embeddings);
            (shared!(t), scale)
        };
        let ((vocab_size, d_model, d_kv, d_ff, heads), (enc_layers, dec_layers), buckets, eps, ff) =
            shared;
        let ff = ff.as_str();
        let parts: Vec<&str> = ff.split('-').collect();
        let (gated, act_name) = match parts.as_slice() {
            [act] => (false, *act),
            ["gated", act] => (true, *act),
            _ => {
                return Err(c.invalid(
                    "feed_forward_proj",
                    format!("`{ff}` is not `ACT` or `gated-ACT`"),
                ))
            }
        };
        // transformers: `gated-gelu` means the tanh GELU.
        let act_name = if ff == "gated-gelu" {
            "gelu_new"
        } else {
            act_name
        };
        let act = Activation::from_hf(act_name).ok_or_else(|| {
            c.invalid(
                "feed_forward_proj",
                format!("activation `{act_name}` is not supported"),
            )
        })?;
        Ok(Config {
            vocab_size,
            d_model,
            d_kv,
            d_ff,
            enc_layers,
            dec_layers,
            heads,
            buckets: buckets.0,
            max_distance: buckets.1,
            eps: c.check_eps("layer_norm_epsilon", eps)?,
            act,
            gated,
            scale_decoder_outputs,
            decoder_start: c
                .value
                .get("decoder_start_token_id")
                .and_then(|v| v.as_u64())
                .or_else(|| c.value.get("pad_token_id").and_then(|v| v.as_u64()))
                .unwrap_or(0) as u32,
        })
    }
}

/// T5's layer norm: scale by the root mean square, no mean, no bias (in f32).
struct T5Norm {
    weight: Tensor,
    eps: f64,
}

impl T5Norm {
    fn load(w: &Weights, size: usize, eps: f64, name: &str) -> Result<Self> {
        Ok(T5Norm {
            weight: w.pp(name).get(size, "weight")?,
            eps,
        })
    }

    /// Normalized in f32, returned in the weight's dtype (the model's): in f16 the
    /// residual stream is f32 after the first feed-forward (see [`FeedForward`]).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let normed = nn::rms_normalize_f32(x, self.eps)?.to_dtype(self.weight.dtype())?;
        Ok(normed.broadcast_mul(&self.weight)?)
    }
}

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    /// `[buckets, heads]`, in the first layer of each stack only.
    relative_bias: Option<Embedding>,
}

impl Attention {
    fn load(w: &Weights, c: &Config, with_bias: bool) -> Result<Self> {
        let inner = c.heads * c.d_kv;
        Ok(Attention {
            q: w.linear_no_bias(c.d_model, inner, "q")?,
            k: w.linear_no_bias(c.d_model, inner, "k")?,
            v: w.linear_no_bias(c.d_model, inner, "v")?,
            o: w.linear_no_bias(inner, c.d_model, "o")?,
            relative_bias: if with_bias {
                Some(w.embedding(c.buckets, c.heads, "relative_attention_bias")?)
            } else {
                None
            },
        })
    }
}

enum FeedForward {
    Plain {
        wi: Linear,
        wo: Linear,
    },
    Gated {
        wi_0: Linear,
        wi_1: Linear,
        wo: Linear,
    },
}

/// The feed-forward block. In f16, `wo` stays in f32 as transformers keeps it
/// (`T5PreTrainedModel._keep_in_fp32_modules = ["wo"]`, applied to f16 loads only): its
/// input is converted to f32 and its f32 output makes the residual sum f32, so from the
/// first feed-forward on the residual stream is f32 and real T5 checkpoints, whose
/// feed-forward outputs exceed f16's 65504, do not overflow to inf.
impl FeedForward {
    fn load(w: &Weights, c: &Config, dtype: DType) -> Result<Self> {
        let w = w.pp("DenseReluDense");
        let wo_weights = if dtype == DType::F16 {
            w.with_dtype(DType::F32)
        } else {
            w.clone()
        };
        let wo = wo_weights.linear_no_bias(c.d_ff, c.d_model, "wo")?;
        Ok(if c.gated {
            FeedForward::Gated {
                wi_0: w.linear_no_bias(c.d_model, c.d_ff, "wi_0")?,
                wi_1: w.linear_no_bias(c.d_model, c.d_ff, "wi_1")?,
                wo,
            }
        } else {
            FeedForward::Plain {
                wi: w.linear_no_bias(c.d_model, c.d_ff, "wi")?,
                wo,
            }
        })
    }

    fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let (h, wo) = match self {
            FeedForward::Plain { wi, wo } => (act.forward(&wi.forward(x)?)?, wo),
            FeedForward::Gated { wi_0, wi_1, wo } => {
                ((act.forward(&wi_0.forward(x)?)? * wi_1.forward(x)?)?, wo)
            }
        };
        Ok(wo.forward(&h.to_dtype(wo.weight().dtype())?)?)
    }
}

/// `x + y` as torch adds them: in the wider dtype where one is f32 (the f16 model's
/// residual stream after its first feed-forward); then, while the sum is still f16,
/// transformers' clamp (the dtype's largest value, less 1000 where the sum holds an inf).
fn residual(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let sum = if x.dtype() == y.dtype() {
        (x + y)?
    } else {
        (x.to_dtype(DType::F32)? + y.to_dtype(DType::F32)?)?
    };
    if sum.dtype() != DType::F16 {
        return Ok(sum);
    }
    let any_inf = sum
        .to_dtype(DType::F32)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?
        .is_infinite();
    let limit = if any_inf { 65504.0 - 1000.0 } else { 65504.0 };
    Ok(sum.clamp(-limit, limit)?)
}

struct EncoderBlock {
    attn: Attention,
    attn_norm: T5Norm,
    ff: FeedForward,
    ff_norm: T5Norm,
}

struct DecoderBlock {
    self_attn: Attention,
    self_norm: T5Norm,
    cross_attn: Attention,
    cross_norm: T5Norm,
    ff: FeedForward,
    ff_norm: T5Norm,
}

/// A loaded T5/mT5 for conditional generation.
pub(crate) struct T5Model {
    c: Config,
    shared: Embedding,
    encoder: Vec<EncoderBlock>,
    enc_norm: T5Norm,
    decoder: Vec<DecoderBlock>,
    dec_norm: T5Norm,
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
) -> Result<T5Model> {
    let c = Config::read(architecture, config)?;
    let shared = weights.embedding(c.vocab_size, c.d_model, "shared")?;
    let encoder = (0..c.enc_layers)
        .map(|i| {
            let b = weights.pp(format!("encoder.block.{i}.layer"));
            Ok(EncoderBlock {
                attn: Attention::load(&b.pp("0.SelfAttention"), &c, i == 0)?,
                attn_norm: T5Norm::load(&b, c.d_model, c.eps, "0.layer_norm")?,
                ff: FeedForward::load(&b.pp("1"), &c, dtype)?,
                ff_norm: T5Norm::load(&b, c.d_model, c.eps, "1.layer_norm")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let decoder = (0..c.dec_layers)
        .map(|i| {
            let b = weights.pp(format!("decoder.block.{i}.layer"));
            Ok(DecoderBlock {
                self_attn: Attention::load(&b.pp("0.SelfAttention"), &c, i == 0)?,
                self_norm: T5Norm::load(&b, c.d_model, c.eps, "0.layer_norm")?,
                cross_attn: Attention::load(&b.pp("1.EncDecAttention"), &c, false)?,
                cross_norm: T5Norm::load(&b, c.d_model, c.eps, "1.layer_norm")?,
                ff: FeedForward::load(&b.pp("2"), &c, dtype)?,
                ff_norm: T5Norm::load(&b, c.d_model, c.eps, "2.layer_norm")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // transformers 5 ties the head to `shared` unless the file holds its own.
    let lm_head = if weights.contains("lm_head.weight") {
        weights.linear_no_bias(c.d_model, c.vocab_size, "lm_head")?
    } else {
        Linear::new(shared.embeddings().clone(), None)
    };
    Ok(T5Model {
        enc_norm: T5Norm::load(weights, c.d_model, c.eps, "encoder.final_layer_norm")?,
        dec_norm: T5Norm::load(weights, c.d_model, c.eps, "decoder.final_layer_norm")?,
        c,
        shared,
        encoder,
        decoder,
        lm_head,
        dtype,
        device: device.clone(),
    })
}

impl T5Model {
    /// Position bias `[1, heads, q, k]` for queries at `q_pos` over keys `0..k_len`.
    fn position_bias(
        &self,
        table: &Embedding,
        q_pos: &[usize],
        k_len: usize,
        bidirectional: bool,
    ) -> Result<Tensor> {
        let mut ids = Vec::with_capacity(q_pos.len() * k_len);
        for &q in q_pos {
            for k in 0..k_len {
                ids.push(nn::relative_bucket(
                    k as i64 - q as i64,
                    bidirectional,
                    self.c.buckets,
                    self.c.max_distance,
                ) as u32);
            }
        }
        let ids = Tensor::from_vec(ids, (q_pos.len(), k_len), &self.device)?;
        // [q, k, heads] -> [1, heads, q, k]
        Ok(table
            .forward(&ids)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()?)
    }

    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.c.heads, self.c.d_kv))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    /// Encode `ids [batch, len]` under `mask [batch, len]`.
    pub fn encode(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let len = ids.dims2()?.1;
        let mut x = self.shared.forward(ids)?;
        let pad = nn::padding_bias(mask, self.dtype)?;
        let table = self.encoder[0]
            .attn
            .relative_bias
            .as_ref()
            .ok_or_else(|| missing_bias("encoder"))?;
        let positions: Vec<usize> = (0..len).collect();
        let bias = self
            .position_bias(table, &positions, len, true)?
            .to_dtype(self.dtype)?
            .broadcast_add(&pad)?;
        for block in &self.encoder {
            let h = block.attn_norm.forward(&x)?;
            let a = &block.attn;
            let ctx = nn::attention_f32_scores(
                &self.heads(&a.q.forward(&h)?)?,
                &self.heads(&a.k.forward(&h)?)?,
                &self.heads(&a.v.forward(&h)?)?,
                Some(&bias),
                1.0,
            )?;
            x = residual(&x, &a.o.forward(&nn::merge_heads(&ctx)?)?)?;
            let h = block.ff_norm.forward(&x)?;
            x = residual(&x, &block.ff.forward(&h, self.c.act)?)?;
        }
        self.enc_norm.forward(&x)
    }
}

fn missing_bias(stack: &str) -> Error {
    Error::InvalidOption(format!(
        "the t5 {stack} has no relative attention bias in its first block"
    ))
}

/// Decoding state: the encoder output and the decoder's caches.
pub(crate) struct T5Stepper<'m> {
    model: &'m T5Model,
    encoded: Tensor,
    /// Additive `[batch, 1, 1, source_len]` bias of the encoder padding.
    cross_bias: Tensor,
    self_cache: Vec<KvCache>,
    cross_kv: Vec<Option<(Tensor, Tensor)>>,
    step: usize,
    batch: usize,
    /// The decoder's first token.
    start: u32,
}

impl<'m> T5Stepper<'m> {
    /// `start`: the decoder start token (generation_config.json's
    /// `decoder_start_token_id`, else [`T5Stepper::start_token`]).
    pub fn new(
        model: &'m T5Model,
        ids: &Tensor,
        mask: &Tensor,
        max_new_tokens: usize,
        start: u32,
    ) -> Result<Self> {
        let batch = ids.dims2()?.0;
        let encoded = model.encode(ids, mask)?;
        Ok(T5Stepper {
            model,
            encoded,
            cross_bias: nn::padding_bias(mask, model.dtype)?,
            self_cache: (0..model.c.dec_layers)
                .map(|_| KvCache::new(2, max_new_tokens + 1))
                .collect(),
            cross_kv: vec![None; model.c.dec_layers],
            step: 0,
            batch,
            start,
        })
    }

    /// The decoder start token of config.json (`decoder_start_token_id`, else the pad
    /// token).
    pub fn start_token(model: &T5Model) -> u32 {
        model.c.decoder_start
    }

    fn decode(&mut self, tokens: &[u32]) -> Result<Tensor> {
        let m = self.model;
        let ids = Tensor::from_vec(tokens.to_vec(), (self.batch, 1), &m.device)?;
        let mut x = m.shared.forward(&ids)?;
        let table = m.decoder[0]
            .self_attn
            .relative_bias
            .as_ref()
            .ok_or_else(|| missing_bias("decoder"))?;
        let self_bias = m
            .position_bias(table, &[self.step], self.step + 1, false)?
            .to_dtype(m.dtype)?;
        for (i, block) in m.decoder.iter().enumerate() {
            let h = block.self_norm.forward(&x)?;
            let a = &block.self_attn;
            let (k, v) = self.self_cache[i]
                .append(&m.heads(&a.k.forward(&h)?)?, &m.heads(&a.v.forward(&h)?)?)?;
            let ctx = nn::attention_f32_scores(
                &m.heads(&a.q.forward(&h)?)?,
                &k.contiguous()?,
                &v.contiguous()?,
                Some(&self_bias),
                1.0,
            )?;
            x = residual(&x, &a.o.forward(&nn::merge_heads(&ctx)?)?)?;

            let h = block.cross_norm.forward(&x)?;
            let a = &block.cross_attn;
            if self.cross_kv[i].is_none() {
                self.cross_kv[i] = Some((
                    m.heads(&a.k.forward(&self.encoded)?)?,
                    m.heads(&a.v.forward(&self.encoded)?)?,
                ));
            }
            let (ck, cv) = self.cross_kv[i].as_ref().expect("just set");
            let ctx = nn::attention_f32_scores(
                &m.heads(&a.q.forward(&h)?)?,
                ck,
                cv,
                Some(&self.cross_bias),
                1.0,
            )?;
            x = residual(&x, &a.o.forward(&nn::merge_heads(&ctx)?)?)?;

            let h = block.ff_norm.forward(&x)?;
            x = residual(&x, &block.ff.forward(&h, m.c.act)?)?;
        }
        let mut x = m.dec_norm.forward(&x)?;
        if m.c.scale_decoder_outputs {
            x = (x * (m.c.d_model as f64).powf(-0.5))?;
        }
        self.step += 1;
        Ok(m.lm_head.forward(&x)?.squeeze(1)?.to_dtype(DType::F32)?)
    }
}

impl Stepper for T5Stepper<'_> {
    fn prefill(&mut self) -> Result<Tensor> {
        let start = vec![self.start; self.batch];
        self.decode(&start)
    }

    fn feed(&mut self, tokens: &[u32]) -> Result<Tensor> {
        self.decode(tokens)
    }

    fn reorder(&mut self, sources: &[usize]) -> Result<()> {
        // Only the decoder's own caches: a beam search's rows are copies of one input,
        // so the encoder output, its padding bias and the cross-attention keys/values
        // are the same in every row (gathering them each step would copy them for
        // nothing).
        let rows = super::stepper::rows_tensor(sources, &self.model.device)?;
        for c in self.self_cache.iter_mut() {
            super::stepper::reorder_cache(c, &rows)?;
        }
        Ok(())
    }
}
