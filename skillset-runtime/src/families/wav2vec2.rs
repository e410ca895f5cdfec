//! The wav2vec2 family: Wav2Vec2, HuBERT, Data2VecAudio, UniSpeech, UniSpeechSat and
//! WavLM (a gated relative position bias in every layer). A convolutional feature
//! encoder on the raw waveform (group norm on the first layer, or layer norm on every
//! layer), a feature projection, a grouped convolutional position embedding (one
//! weight-normalized convolution; Data2VecAudio: a stack of convolutions, each with a
//! parameter-free layer norm), transformer layers (post-norm, or pre-norm for the
//! "stable layer norm" variant), and a CTC head (speech recognition) or a mean-pooled
//! classifier.

use candle_core::{Module, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig};

use super::nn::LayerNorm;

use super::config::{hf_config, ConfigReader};
use super::encoder::{self, LayerDims, WAV2VEC2_NAMES};
use super::nn::{Activation, Linear, Weights};
use crate::error::{Error, Result};
use crate::Task;

enum ConvNorm {
    None,
    /// Group norm with one group per channel (first layer, `feat_extract_norm: group`).
    Group {
        weight: Tensor,
        bias: Tensor,
    },
    /// Layer norm over the channels (`feat_extract_norm: layer`).
    Layer(LayerNorm),
}

struct ConvLayer {
    conv: Conv1d,
    norm: ConvNorm,
}

pub(crate) enum Head {
    Ctc(Linear),
    Classifier {
        projector: Linear,
        classifier: Linear,
    },
}

/// WavLM's relative position bias table `[buckets, heads]`.
struct RelBias {
    table: candle_nn::Embedding,
    buckets: usize,
    max_distance: usize,
}

impl RelBias {
    /// `[1, heads, t, t]`: the bucket of key minus query position, looked up.
    fn bias(&self, t: usize, device: &candle_core::Device) -> Result<Tensor> {
        let ids: Vec<u32> = (0..t)
            .flat_map(|q| {
                (0..t).map(move |k| {
                    super::nn::relative_bucket(
                        k as i64 - q as i64,
                        true,
                        self.buckets,
                        self.max_distance,
                    ) as u32
                })
            })
            .collect();
        let ids = Tensor::from_vec(ids, (t, t), device)?;
        Ok(self
            .table
            .forward(&ids)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()?)
    }
}

/// The convolutional position embedding.
enum PosConv {
    /// Wav2Vec2 / HuBERT: one grouped, weight-normalized convolution, then GELU.
    WeightNorm(Conv1d),
    /// Data2VecAudio: grouped convolutions, each followed by a layer norm without
    /// parameters and GELU.
    Stack(Vec<Conv1d>, LayerNorm),
}

pub(crate) struct Wav2Vec2 {
    convs: Vec<ConvLayer>,
    conv_act: Activation,
    projection_norm: Option<LayerNorm>,
    projection: Linear,
    pos_conv: PosConv,
    pos_kernel: usize,
    encoder_norm: LayerNorm,
    stable: bool,
    rel_bias: Option<RelBias>,
    layers: Vec<encoder::Layer>,
    pub head: Head,
    /// Total stride of the feature encoder, and its receptive field.
    stride: usize,
    receptive: usize,
}

hf_config! {
    /// The config of the wav2vec2 family (transformers 5.23): the fields of
    /// `Wav2Vec2Config` and its siblings (`HubertConfig`, `Data2VecAudioConfig`,
    /// `UniSpeechConfig`, `UniSpeechSatConfig`, `WavLMConfig`), which share every
    /// default the model reads, plus the fields only some have (HuBERT's
    /// `feat_proj_layer_norm`, Data2VecAudio's `conv_pos_kernel_size`, WavLM's buckets).
    pub(crate) struct Wav2Vec2Config {
        vocab_size: usize = 32,
        hidden_size: usize = 768,
        intermediate_size: usize = 3072,
        num_hidden_layers: usize = 12,
        num_attention_heads: usize = 12,
        hidden_act: String = "gelu".into(),
        layer_norm_eps: f64 = 1e-5,
        feat_extract_norm: String = "group".into(),
        feat_extract_activation: String = "gelu".into(),
        conv_dim: Vec<usize> = vec![512; 7],
        conv_stride: Vec<usize> = vec![5, 2, 2, 2, 2, 2, 2],
        conv_kernel: Vec<usize> = vec![10, 3, 3, 3, 3, 2, 2],
        conv_bias: bool = false,
        /// `None`: 128 (Data2VecAudio: 5, its count of position convolutions).
        num_conv_pos_embeddings: Option<usize> = None,
        num_conv_pos_embedding_groups: usize = 16,
        conv_pos_kernel_size: usize = 19,
        do_stable_layer_norm: bool = false,
        feat_proj_layer_norm: bool = true,
        num_buckets: usize = 320,
        max_bucket_distance: usize = 800,
        use_weighted_layer_sum: bool = false,
        classifier_proj_size: usize = 256,
    }
}

/// Wav2Vec2 / HuBERT's position convolution: weight norm over dim 2, stored as g and v
/// (or as torch's parametrizations).
fn weight_norm_pos_conv(w: &Weights, k: usize, hidden: usize, groups: usize) -> Result<Conv1d> {
    let pc = w.pp("encoder.pos_conv_embed.conv");
    let (g, v) = if pc.contains("parametrizations.weight.original0") {
        (
            pc.get((1, 1, k), "parametrizations.weight.original0")?,
            pc.get(
                (hidden, hidden / groups, k),
                "parametrizations.weight.original1",
            )?,
        )
    } else {
        (
            pc.get((1, 1, k), "weight_g")?,
            pc.get((hidden, hidden / groups, k), "weight_v")?,
        )
    };
    let norm = v.sqr()?.sum_keepdim(0)?.sum_keepdim(1)?.sqrt()?;
    let pos_weight = v.broadcast_mul(&g.broadcast_div(&norm)?)?;
    Ok(Conv1d::new(
        pos_weight,
        Some(pc.get(hidden, "bias")?),
        Conv1dConfig {
            padding: k / 2,
            groups,
            ..Default::default()
        },
    ))
}

/// Where a task checkpoint of an architecture class nests the model's weights
/// (`None`: not a wav2vec2-family class).
pub(crate) fn base_prefix(architecture: &str) -> Option<&'static str> {
    [
        ("Hubert", "hubert"),
        ("Data2VecAudio", "data2vec_audio"),
        ("UniSpeechSat", "unispeech_sat"),
        ("UniSpeech", "unispeech"),
        ("WavLM", "wavlm"),
        ("Wav2Vec2", "wav2vec2"),
    ]
    .into_iter()
    .find(|(class, _)| architecture.starts_with(class))
    .map(|(_, base)| base)
}

pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
    task: Task,
) -> Result<Wav2Vec2> {
    // Where a task checkpoint nests the model (UniSpeech and UniSpeechSat are Wav2Vec2
    // with pre-training heads of their own, which inference does not use).
    let base =
        base_prefix(architecture).ok_or_else(|| config.not_of_family("wav2vec2", architecture))?;
    let data2vec = base == "data2vec_audio";
    let w = if weights.contains(&format!("{base}.feature_projection.projection.weight")) {
        weights.pp(base)
    } else {
        weights.clone()
    };
    let c: Wav2Vec2Config = config.typed()?;
    let hidden = c.hidden_size;
    let heads = config.check_heads("num_attention_heads", c.num_attention_heads, hidden)?;
    let (dims, kernels, strides) = (&c.conv_dim, &c.conv_kernel, &c.conv_stride);
    if dims.is_empty()
        || kernels.len() != dims.len()
        || strides.len() != dims.len()
        || strides.contains(&0)
    {
        return Err(config.invalid(
            "conv_dim",
            "conv_dim, conv_kernel and conv_stride must be lists of the same length, strides not 0"
                .into(),
        ));
    }
    let conv_bias = c.conv_bias;
    // Data2VecAudio's feature encoder has a layer norm in every layer (no option).
    let norm_kind = if data2vec {
        "layer"
    } else {
        c.feat_extract_norm.as_str()
    };
    let eps = config.check_eps("layer_norm_eps", c.layer_norm_eps)?;
    let mut convs = Vec::with_capacity(dims.len());
    for i in 0..dims.len() {
        let cw = w.pp(format!("feature_extractor.conv_layers.{i}"));
        let c_in = if i == 0 { 1 } else { dims[i - 1] };
        let weight = cw.get((dims[i], c_in, kernels[i]), "conv.weight")?;
        let bias = if conv_bias {
            Some(cw.get(dims[i], "conv.bias")?)
        } else {
            None
        };
        let conv = Conv1d::new(
            weight,
            bias,
            Conv1dConfig {
                stride: strides[i],
                ..Default::default()
            },
        );
        let norm = match (norm_kind, i) {
            ("group", 0) => ConvNorm::Group {
                weight: cw.get(dims[0], "layer_norm.weight")?,
                bias: cw.get(dims[0], "layer_norm.bias")?,
            },
            ("group", _) => ConvNorm::None,
            ("layer", _) => ConvNorm::Layer(cw.layer_norm(dims[i], 1e-5, "layer_norm")?),
            (other, _) => {
                return Err(config.invalid(
                    "feat_extract_norm",
                    format!("`{other}`: expected `group` or `layer`"),
                ))
            }
        };
        convs.push(ConvLayer { conv, norm });
    }
    let last = *dims.last().unwrap_or(&hidden);
    let fp = w.pp("feature_projection");
    let projection_norm = if base == "hubert" && !c.feat_proj_layer_norm {
        None
    } else {
        Some(fp.layer_norm(last, eps, "layer_norm")?)
    };
    let projection = fp.linear(last, hidden, "projection")?;
    let groups = c.num_conv_pos_embedding_groups;
    if groups == 0 || hidden % groups != 0 {
        return Err(config.invalid(
            "num_conv_pos_embedding_groups",
            format!("{groups} groups for {hidden} channels"),
        ));
    }
    let (pos_conv, k) = if data2vec {
        // `num_conv_pos_embeddings` convolutions of `conv_pos_kernel_size`.
        let k = c.conv_pos_kernel_size;
        let n = c.num_conv_pos_embeddings.unwrap_or(5);
        let convs = (0..n)
            .map(|j| -> Result<Conv1d> {
                let pc = w.pp(format!("encoder.pos_conv_embed.layers.{j}.conv"));
                Ok(Conv1d::new(
                    pc.get((hidden, hidden / groups, k), "weight")?,
                    Some(pc.get(hidden, "bias")?),
                    Conv1dConfig {
                        padding: k / 2,
                        groups,
                        ..Default::default()
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let like = convs
            .first()
            .map(|c| c.weight().clone())
            .ok_or_else(|| config.invalid("num_conv_pos_embeddings", "0 layers".into()))?;
        let ones = Tensor::ones(hidden, like.dtype(), like.device())?;
        let zeros = Tensor::zeros(hidden, like.dtype(), like.device())?;
        (PosConv::Stack(convs, LayerNorm::new(ones, zeros, 1e-5)), k)
    } else {
        let k = c.num_conv_pos_embeddings.unwrap_or(128);
        (
            PosConv::WeightNorm(weight_norm_pos_conv(&w, k, hidden, groups)?),
            k,
        )
    };
    let stable = c.do_stable_layer_norm;
    let layer_dims = LayerDims {
        hidden,
        heads,
        intermediate: c.intermediate_size,
        eps,
        act: config.activation_named("hidden_act", &c.hidden_act)?,
        pre_norm: stable,
    };
    let mut layers = encoder::load_layers(
        &w,
        "encoder.layers",
        c.num_hidden_layers,
        layer_dims,
        &WAV2VEC2_NAMES,
    )?;
    // WavLM: a relative position bias (buckets as T5's, from the first layer's table)
    // that every layer gates by its own attention input.
    let rel_bias = if base == "wavlm" {
        let head_dim = hidden / heads;
        for (i, layer) in layers.iter_mut().enumerate() {
            let a = w.pp(format!("encoder.layers.{i}.attention"));
            layer.set_rel_gate(encoder::RelGate {
                linear: a.linear(head_dim, 8, "gru_rel_pos_linear")?,
                constant: a.get((1, heads, 1, 1), "gru_rel_pos_const")?,
            });
        }
        let (buckets, max_distance) = (c.num_buckets, c.max_bucket_distance);
        Some(RelBias {
            table: w.pp("encoder.layers.0.attention").embedding(
                buckets,
                heads,
                "rel_attn_embed",
            )?,
            buckets,
            max_distance,
        })
    } else {
        None
    };
    let head = match task {
        Task::AutomaticSpeechRecognition => {
            let vocab = c.vocab_size;
            Head::Ctc(weights.linear(hidden, vocab, "lm_head")?)
        }
        _ => {
            if c.use_weighted_layer_sum {
                return Err(config.invalid(
                    "use_weighted_layer_sum",
                    "a classifier over a weighted sum of layers is not supported yet".into(),
                ));
            }
            let proj = c.classifier_proj_size;
            Head::Classifier {
                projector: weights.linear(hidden, proj, "projector")?,
                classifier: weights.linear(proj, config.num_labels(), "classifier")?,
            }
        }
    };
    let mut stride = 1;
    let mut receptive = 1;
    for (k, s) in kernels.iter().zip(strides) {
        receptive += (k - 1) * stride;
        stride *= s;
    }
    Ok(Wav2Vec2 {
        convs,
        conv_act: config.activation_named("feat_extract_activation", &c.feat_extract_activation)?,
        projection_norm,
        projection,
        pos_conv,
        pos_kernel: k,
        encoder_norm: w.layer_norm(hidden, eps, "encoder.layer_norm")?,
        stable,
        rel_bias,
        layers,
        head,
        stride,
        receptive,
    })
}

impl Wav2Vec2 {
    /// The fewest samples that make one frame.
    pub fn min_samples(&self) -> usize {
        self.receptive
    }

    /// Samples per frame.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The encoder's last hidden states `[1, frames, hidden]` of one utterance's
    /// `input_values` `[1, samples]`.
    pub fn hidden_states(&self, input: &Tensor) -> Result<Tensor> {
        let samples = input.dim(1)?;
        if samples < self.receptive {
            return Err(Error::InvalidInput(format!(
                "{samples} samples is shorter than the model's receptive field ({} samples): the audio is too short",
                self.receptive
            )));
        }
        let mut x = input.unsqueeze(1)?;
        for layer in &self.convs {
            x = layer.conv.forward(&x)?;
            x = match &layer.norm {
                ConvNorm::None => x,
                ConvNorm::Group { weight, bias } => {
                    // Per channel over time, eps 1e-5; statistics in f32 (tens of
                    // thousands of frames).
                    let dtype = x.dtype();
                    let x = x.to_dtype(candle_core::DType::F32)?;
                    let mean = x.mean_keepdim(D::Minus1)?;
                    let centered = x.broadcast_sub(&mean)?;
                    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
                    let normed = centered.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
                    normed
                        .to_dtype(dtype)?
                        .broadcast_mul(&weight.reshape((1, (), 1))?)?
                        .broadcast_add(&bias.reshape((1, (), 1))?)?
                }
                ConvNorm::Layer(norm) => norm.forward(&x.transpose(1, 2)?)?.transpose(1, 2)?,
            };
            x = self.conv_act.forward(&x)?;
        }
        let mut x = x.transpose(1, 2)?.contiguous()?;
        if let Some(norm) = &self.projection_norm {
            x = norm.forward(&x)?;
        }
        let x = self.projection.forward(&x)?;
        // Position embedding: grouped conv, drop the extra frame of an even kernel, GELU
        // (Data2VecAudio: a parameter-free layer norm before each GELU, layer by layer).
        let trim = |pos: Tensor| -> Result<Tensor> {
            Ok(if self.pos_kernel % 2 == 0 {
                let t = pos.dim(2)?;
                pos.narrow(2, 0, t - 1)?
            } else {
                pos
            })
        };
        let pos = match &self.pos_conv {
            PosConv::WeightNorm(conv) => {
                let pos = trim(conv.forward(&x.transpose(1, 2)?.contiguous()?)?)?;
                self.conv_act.forward(&pos)?.transpose(1, 2)?
            }
            PosConv::Stack(convs, norm) => {
                let mut pos = x.transpose(1, 2)?.contiguous()?;
                for conv in convs {
                    let y = trim(conv.forward(&pos)?)?;
                    let y = norm.forward(&y.transpose(1, 2)?.contiguous()?)?;
                    pos = self.conv_act.forward(&y)?.transpose(1, 2)?.contiguous()?;
                }
                pos.transpose(1, 2)?
            }
        };
        let mut x = (x + pos)?;
        if !self.stable {
            x = self.encoder_norm.forward(&x)?;
        }
        let bias = match &self.rel_bias {
            Some(r) => Some(r.bias(x.dim(1)?, x.device())?.to_dtype(x.dtype())?),
            None => None,
        };
        let x = encoder::run_layers(&self.layers, x, bias.as_ref())?;
        Ok(if self.stable {
            self.encoder_norm.forward(&x)?
        } else {
            x
        })
    }

    /// CTC logits `[frames, vocab]`, or class logits `[labels]`.
    pub fn head_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(match &self.head {
            Head::Ctc(lm) => lm.forward(hidden)?.squeeze(0)?,
            Head::Classifier {
                projector,
                classifier,
            } => {
                // Mean over the frames accumulated in f32 (torch accumulates half
                // precision sums in f32 too).
                let projected = projector.forward(hidden)?;
                let pooled = projected
                    .to_dtype(candle_core::DType::F32)?
                    .mean(1)?
                    .to_dtype(projected.dtype())?;
                classifier.forward(&pooled)?.squeeze(0)?
            }
        })
    }
}
