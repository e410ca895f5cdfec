//! The `bert` family: BERT-style bidirectional encoders with absolute position
//! embeddings. One implementation serves BERT and the RoBERTa line (RoBERTa,
//! XLM-RoBERTa, CamemBERT), which differ in position ids (RoBERTa counts from the
//! padding index + 1), weight prefixes and heads.

use candle_core::{Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear};

use super::nn::{self, Activation, Weights};
use super::{ConfigReader, EncoderModel, Head};
use crate::error::{Error, Result};
use crate::tokenize::EncodedBatch;
use crate::Task;

/// Which member of the family a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Bert,
    /// RoBERTa, XLM-RoBERTa, CamemBERT: positions start at `pad_token_id + 1`.
    Roberta,
}

#[derive(Debug, Clone)]
struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_layers: usize,
    num_heads: usize,
    intermediate_size: usize,
    act: Activation,
    max_positions: usize,
    type_vocab_size: usize,
    eps: f64,
    pad_token_id: u32,
    tie_word_embeddings: bool,
    num_labels: usize,
}

impl Config {
    fn read(c: &ConfigReader) -> Result<Self> {
        let hidden_size = c.usize("hidden_size")?;
        let num_heads = c.usize("num_attention_heads")?;
        if num_heads == 0 || hidden_size % num_heads != 0 {
            return Err(c.invalid(
                "num_attention_heads",
                format!("{num_heads} does not divide hidden_size {hidden_size}"),
            ));
        }
        let pet = c.str_or("position_embedding_type", "absolute");
        if pet != "absolute" {
            return Err(c.invalid(
                "position_embedding_type",
                format!("`{pet}` is not supported by the bert family (only `absolute`)"),
            ));
        }
        if c.bool_or("is_decoder", false) {
            return Err(c.invalid(
                "is_decoder",
                "decoder BERTs are not supported by the bert family".into(),
            ));
        }
        Ok(Config {
            vocab_size: c.usize("vocab_size")?,
            hidden_size,
            num_layers: c.usize("num_hidden_layers")?,
            num_heads,
            intermediate_size: c.usize("intermediate_size")?,
            act: c.activation("hidden_act", "gelu")?,
            max_positions: c.usize_or("max_position_embeddings", 512)?,
            type_vocab_size: c.usize_or("type_vocab_size", 2)?,
            eps: c.f64_or("layer_norm_eps", 1e-12)?,
            pad_token_id: c.usize_or("pad_token_id", 0)? as u32,
            tie_word_embeddings: c.bool_or("tie_word_embeddings", true),
            num_labels: c.num_labels(),
        })
    }
}

struct Layer {
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    up: Linear,
    down: Linear,
    out_norm: LayerNorm,
}

impl Layer {
    fn load(w: &Weights, c: &Config) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Layer {
            q: w.linear(h, h, "attention.self.query")?,
            k: w.linear(h, h, "attention.self.key")?,
            v: w.linear(h, h, "attention.self.value")?,
            attn_out: w.linear(h, h, "attention.output.dense")?,
            attn_norm: w.layer_norm(h, c.eps, "attention.output.LayerNorm")?,
            up: w.linear(h, c.intermediate_size, "intermediate.dense")?,
            down: w.linear(c.intermediate_size, h, "output.dense")?,
            out_norm: w.layer_norm(h, c.eps, "output.LayerNorm")?,
        })
    }

    fn forward(&self, x: &Tensor, bias: &Tensor, c: &Config) -> Result<Tensor> {
        let heads = c.num_heads;
        let q = nn::split_heads(&self.q.forward(x)?, heads)?;
        let k = nn::split_heads(&self.k.forward(x)?, heads)?;
        let v = nn::split_heads(&self.v.forward(x)?, heads)?;
        let scale = 1.0 / ((c.hidden_size / heads) as f64).sqrt();
        let ctx = nn::merge_heads(&nn::attention(&q, &k, &v, Some(bias), scale)?)?;
        let x = self
            .attn_norm
            .forward(&(self.attn_out.forward(&ctx)? + x)?)?;
        let y = c.act.forward(&self.up.forward(&x)?)?;
        Ok(self.out_norm.forward(&(self.down.forward(&y)? + x)?)?)
    }
}

/// The encoder body (`BertModel` / `RobertaModel` without pooler).
struct Encoder {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
}

impl Encoder {
    fn load(w: &Weights, c: &Config) -> Result<Self> {
        let h = c.hidden_size;
        let e = w.pp("embeddings");
        let layers = (0..c.num_layers)
            .map(|i| Layer::load(&w.pp(format!("encoder.layer.{i}")), c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            word: e.embedding(c.vocab_size, h, "word_embeddings")?,
            position: e.embedding(c.max_positions, h, "position_embeddings")?,
            token_type: e.embedding(c.type_vocab_size.max(1), h, "token_type_embeddings")?,
            norm: e.layer_norm(h, c.eps, "LayerNorm")?,
            layers,
        })
    }
}

enum BertHead {
    None,
    /// `cls.predictions` (BERT) or `lm_head` (RoBERTa): dense, act, norm, decoder.
    MaskedLm {
        dense: Linear,
        act: Activation,
        norm: LayerNorm,
        decoder: Linear,
    },
    /// BERT: pooler (dense + tanh on the first token), then `classifier`.
    PooledClassifier {
        pooler: Linear,
        classifier: Linear,
    },
    /// RoBERTa: `classifier.dense` + tanh + `classifier.out_proj` on the first token.
    RobertaClassifier {
        dense: Linear,
        out_proj: Linear,
    },
    /// `classifier` on every token.
    TokenClassifier(Linear),
}

/// A loaded bert-family model with the head its task needs.
pub(crate) struct BertModel {
    config: Config,
    flavor: Flavor,
    encoder: Encoder,
    head: BertHead,
    device: Device,
}

/// Load a bert-family checkpoint for `task`.
pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
    task: Task,
    device: &Device,
) -> Result<BertModel> {
    let c = Config::read(config)?;
    let flavor = if ["Roberta", "XLMRoberta", "Camembert"]
        .iter()
        .any(|p| architecture.starts_with(p))
    {
        Flavor::Roberta
    } else if architecture.starts_with("Bert") {
        Flavor::Bert
    } else {
        return Err(config.invalid(
            "architectures",
            format!("`{architecture}` is not a bert-family architecture"),
        ));
    };
    let prefix = match flavor {
        Flavor::Bert => "bert",
        Flavor::Roberta => "roberta",
    };
    // Head models keep the encoder under `bert.`/`roberta.`; a bare `BertModel` (and
    // sentence-transformers) at the root.
    let body = if weights.contains(&format!("{prefix}.embeddings.word_embeddings.weight")) {
        weights.pp(prefix)
    } else {
        weights.clone()
    };
    let encoder = Encoder::load(&body, &c)?;
    let h = c.hidden_size;
    let head = match task {
        Task::FeatureExtraction => BertHead::None,
        Task::FillMask => {
            let (p, dense, norm) = match flavor {
                Flavor::Bert => ("cls.predictions", "transform.dense", "transform.LayerNorm"),
                Flavor::Roberta => ("lm_head", "dense", "layer_norm"),
            };
            let hw = weights.pp(p);
            if !weights.contains(&format!("{p}.{dense}.weight")) {
                return Err(Error::WeightMismatch {
                    path: weights.path.clone(),
                    reason: format!(
                        "no masked-LM head (`{p}.*`): fill-mask needs a `*ForMaskedLM` checkpoint"
                    ),
                });
            }
            let act = match flavor {
                Flavor::Bert => c.act,
                Flavor::Roberta => Activation::Gelu,
            };
            let decoder_weight = if !c.tie_word_embeddings && hw.contains("decoder.weight") {
                hw.get((c.vocab_size, h), "decoder.weight")?
            } else {
                encoder.word.embeddings().clone()
            };
            let bias = if hw.contains("bias") {
                hw.get(c.vocab_size, "bias")?
            } else {
                hw.get(c.vocab_size, "decoder.bias")?
            };
            BertHead::MaskedLm {
                dense: hw.linear(h, h, dense)?,
                act,
                norm: hw.layer_norm(h, c.eps, norm)?,
                decoder: Linear::new(decoder_weight, Some(bias)),
            }
        }
        Task::TextClassification => {
            require(
                weights,
                "classifier",
                "text-classification",
                "ForSequenceClassification",
            )?;
            match flavor {
                Flavor::Bert => BertHead::PooledClassifier {
                    pooler: body.linear(h, h, "pooler.dense")?,
                    classifier: weights.linear(h, c.num_labels, "classifier")?,
                },
                Flavor::Roberta => BertHead::RobertaClassifier {
                    dense: weights.linear(h, h, "classifier.dense")?,
                    out_proj: weights.linear(h, c.num_labels, "classifier.out_proj")?,
                },
            }
        }
        Task::TokenClassification => {
            require(
                weights,
                "classifier",
                "token-classification",
                "ForTokenClassification",
            )?;
            BertHead::TokenClassifier(weights.linear(h, c.num_labels, "classifier")?)
        }
        other => {
            return Err(Error::InvalidOption(format!(
                "the bert family does not run `{other}`"
            )))
        }
    };
    Ok(BertModel {
        config: c,
        flavor,
        encoder,
        head,
        device: device.clone(),
    })
}

fn require(weights: &Weights, prefix: &str, task: &str, class: &str) -> Result<()> {
    let has = weights.contains(&format!("{prefix}.weight"))
        || weights.contains(&format!("{prefix}.dense.weight"))
        || weights.contains(&format!("{prefix}.out_proj.weight"));
    if has {
        Ok(())
    } else {
        Err(Error::WeightMismatch {
            path: weights.path.clone(),
            reason: format!("no `{prefix}` head: {task} needs a `*{class}` checkpoint"),
        })
    }
}

impl BertModel {
    fn position_ids(&self, batch: &EncodedBatch) -> Result<Tensor> {
        let (b, len) = batch.input_ids.dims2()?;
        let rows: Vec<Vec<u32>> = match self.flavor {
            Flavor::Bert => vec![(0..len as u32).collect(); b],
            Flavor::Roberta => {
                let pad = self.config.pad_token_id;
                let ids: Vec<Vec<u32>> = batch.input_ids.to_device(&Device::Cpu)?.to_vec2()?;
                ids.iter()
                    .map(|row| {
                        let mut n = 0u32;
                        row.iter()
                            .map(|&id| {
                                if id == pad {
                                    pad
                                } else {
                                    n += 1;
                                    n + pad
                                }
                            })
                            .collect()
                    })
                    .collect()
            }
        };
        let max = rows.iter().flatten().copied().max().unwrap_or(0) as usize;
        if max >= self.config.max_positions {
            return Err(Error::InvalidInput(format!(
                "input of {len} tokens is longer than the model's {} positions",
                self.config.max_positions
            )));
        }
        nn::ids_tensor(&rows, &self.device)
    }
}

impl EncoderModel for BertModel {
    fn hidden_states(&self, batch: &EncodedBatch) -> Result<Tensor> {
        let e = &self.encoder;
        let positions = self.position_ids(batch)?;
        let types = if self.config.type_vocab_size <= 1 {
            batch.type_ids.zeros_like()?
        } else {
            batch.type_ids.clone()
        };
        let x = (e.word.forward(&batch.input_ids)? + e.token_type.forward(&types)?)?
            .add(&e.position.forward(&positions)?)?;
        let mut x = e.norm.forward(&x)?;
        let bias = nn::padding_bias(&batch.attention_mask, x.dtype())?;
        for layer in &e.layers {
            x = layer.forward(&x, &bias, &self.config)?;
        }
        Ok(x)
    }

    fn head(&self) -> Head {
        match self.head {
            BertHead::None => Head::None,
            BertHead::MaskedLm { .. } => Head::MaskedLm,
            BertHead::PooledClassifier { .. } | BertHead::RobertaClassifier { .. } => {
                Head::SequenceClassification
            }
            BertHead::TokenClassifier(_) => Head::TokenClassification,
        }
    }

    fn head_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let first = || -> Result<Tensor> { Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?) };
        Ok(match &self.head {
            BertHead::None => hidden.clone(),
            BertHead::MaskedLm {
                dense,
                act,
                norm,
                decoder,
            } => {
                let x = norm.forward(&act.forward(&dense.forward(hidden)?)?)?;
                decoder.forward(&x)?
            }
            BertHead::PooledClassifier { pooler, classifier } => {
                let pooled = pooler.forward(&first()?)?.tanh()?;
                classifier.forward(&pooled)?
            }
            BertHead::RobertaClassifier { dense, out_proj } => {
                out_proj.forward(&dense.forward(&first()?)?.tanh()?)?
            }
            BertHead::TokenClassifier(classifier) => classifier.forward(hidden)?,
        })
    }

    fn max_positions(&self) -> usize {
        match self.flavor {
            Flavor::Bert => self.config.max_positions,
            Flavor::Roberta => self
                .config
                .max_positions
                .saturating_sub(self.config.pad_token_id as usize + 1),
        }
    }
}
