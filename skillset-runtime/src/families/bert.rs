//! The `bert` family: BERT-style bidirectional encoders with absolute position
//! embeddings. One implementation serves BERT, the RoBERTa line (RoBERTa, XLM-RoBERTa,
//! CamemBERT and Data2VecText: positions count from the padding index + 1), ERNIE (task
//! type embeddings), DistilBERT (no token types, its own weight names) and ELECTRA
//! (embeddings narrower than the encoder, projected up). They differ in weight names,
//! position ids and heads, not in the encoder.

use candle_core::{Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm};

use super::config::ConfigReader;
use super::encoder;
use super::heads::EncoderModel;
use super::nn::{self, Activation, Linear, Weights};
use crate::error::{Error, Result};
use crate::tokenize::EncodedBatch;
use crate::Task;

/// Which member of the family a checkpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Bert,
    /// RoBERTa, XLM-RoBERTa, CamemBERT, Data2VecText: positions start at `pad_token_id + 1`.
    Roberta,
    DistilBert,
    Electra,
}

impl Flavor {
    /// The flavor of an architecture class and where its head models keep the encoder.
    pub(crate) fn of(architecture: &str) -> Option<(Self, &'static str)> {
        // (class-name prefix, flavor, weight prefix); longer class prefixes first.
        const LAYOUTS: &[(&str, Flavor, &str)] = &[
            ("XLMRoberta", Flavor::Roberta, "roberta"),
            ("Roberta", Flavor::Roberta, "roberta"),
            ("Camembert", Flavor::Roberta, "roberta"),
            ("Data2VecText", Flavor::Roberta, "data2vec_text"),
            ("DistilBert", Flavor::DistilBert, "distilbert"),
            ("Electra", Flavor::Electra, "electra"),
            ("Ernie", Flavor::Bert, "ernie"),
            ("Bert", Flavor::Bert, "bert"),
        ];
        LAYOUTS
            .iter()
            .find(|(class, _, _)| architecture.starts_with(class))
            .map(|(_, flavor, prefix)| (*flavor, *prefix))
    }
}

#[derive(Debug, Clone)]
struct Config {
    vocab_size: usize,
    /// Width of the embeddings (ELECTRA's `embedding_size`; the hidden size otherwise).
    embedding_size: usize,
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
    use_task_id: bool,
    task_type_vocab_size: usize,
}

impl Config {
    fn read(flavor: Flavor, c: &ConfigReader) -> Result<Self> {
        let distil = flavor == Flavor::DistilBert;
        let key =
            |bert: &'static str, distil_key: &'static str| if distil { distil_key } else { bert };
        let hidden_size = c.usize(key("hidden_size", "dim"))?;
        let num_heads = c.usize(key("num_attention_heads", "n_heads"))?;
        if num_heads == 0 || hidden_size % num_heads != 0 {
            return Err(c.invalid(
                key("num_attention_heads", "n_heads"),
                format!("{num_heads} does not divide the hidden size {hidden_size}"),
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
            embedding_size: if flavor == Flavor::Electra {
                c.usize_or("embedding_size", hidden_size)?
            } else {
                hidden_size
            },
            hidden_size,
            num_layers: c.usize(key("num_hidden_layers", "n_layers"))?,
            num_heads,
            intermediate_size: c.usize(key("intermediate_size", "hidden_dim"))?,
            act: c.activation(key("hidden_act", "activation"), "gelu")?,
            max_positions: c.usize_or("max_position_embeddings", 512)?,
            type_vocab_size: if distil {
                0
            } else {
                c.usize_or("type_vocab_size", 2)?
            },
            // DistilBERT hard-codes its LayerNorm eps.
            eps: if distil {
                1e-12
            } else {
                c.f64_or("layer_norm_eps", 1e-12)?
            },
            pad_token_id: c.usize_or("pad_token_id", 0)? as u32,
            tie_word_embeddings: c.bool_or("tie_word_embeddings", true),
            num_labels: c.num_labels(),
            use_task_id: c.bool_or("use_task_id", false),
            task_type_vocab_size: c.usize_or("task_type_vocab_size", 3)?,
        })
    }
}

/// The encoder body (`BertModel` & co. without pooler).
struct Encoder {
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    norm: LayerNorm,
    /// ELECTRA: embedding width -> hidden width.
    project: Option<Linear>,
    /// ERNIE with `use_task_id`: the embedding of task type 0 (what transformers adds
    /// when no task type ids are given).
    task_type: Option<Tensor>,
    layers: Vec<encoder::Layer>,
}

impl Encoder {
    fn load(w: &Weights, c: &Config, flavor: Flavor) -> Result<Self> {
        let (e, h) = (c.embedding_size, c.hidden_size);
        let emb = w.pp("embeddings");
        let (stack, names) = match flavor {
            Flavor::DistilBert => ("transformer.layer", &encoder::DISTILBERT_NAMES),
            _ => ("encoder.layer", &encoder::BERT_NAMES),
        };
        // The shared encoder layer, post-norm as BERT's.
        let dims = encoder::LayerDims {
            hidden: h,
            heads: c.num_heads,
            intermediate: c.intermediate_size,
            eps: c.eps,
            act: c.act,
            pre_norm: false,
        };
        let layers = encoder::load_layers(w, stack, c.num_layers, dims, names)?
            .into_iter()
            .map(encoder::Layer::with_f32_scores)
            .collect();
        Ok(Encoder {
            word: emb.embedding(c.vocab_size, e, "word_embeddings")?,
            position: emb.embedding(c.max_positions, e, "position_embeddings")?,
            token_type: if c.type_vocab_size > 0 {
                Some(emb.embedding(c.type_vocab_size, e, "token_type_embeddings")?)
            } else if emb.vb.contains_tensor("token_type_embeddings.weight") {
                // transformers refuses to load the checkpoint then (its weights do not
                // fit an embedding of 0 rows); dropping them would change every output.
                return Err(Error::invalid_file(
                    &w.path,
                    "has token_type_embeddings, but config.json's `type_vocab_size` is 0",
                ));
            } else {
                None
            },
            norm: emb.layer_norm(e, c.eps, "LayerNorm")?,
            project: if e != h {
                Some(w.linear(e, h, "embeddings_project")?)
            } else {
                None
            },
            task_type: if c.use_task_id {
                Some(
                    emb.get((c.task_type_vocab_size, e), "task_type_embeddings.weight")?
                        .get(0)?,
                )
            } else {
                None
            },
            layers,
        })
    }
}

enum BertHead {
    None,
    /// dense, activation, norm, decoder (BERT `cls.predictions`, RoBERTa `lm_head`,
    /// DistilBERT `vocab_*`, ELECTRA `generator_*`).
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
    /// First token -> dense -> activation -> projection (RoBERTa: tanh, ELECTRA: GELU,
    /// DistilBERT's `pre_classifier`: ReLU).
    FirstTokenClassifier {
        dense: Linear,
        act: Activation,
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

fn no_head(weights: &Weights, what: &str, task: &str, class: &str) -> Error {
    Error::WeightMismatch {
        path: weights.path.clone(),
        reason: format!("no {what} head: {task} needs a `*{class}` checkpoint"),
    }
}

fn masked_lm_head(
    weights: &Weights,
    c: &Config,
    flavor: Flavor,
    encoder: &Encoder,
) -> Result<BertHead> {
    let (h, e) = (c.hidden_size, c.embedding_size);
    // (prefix, dense, norm, decoder, activation)
    let (p, dense, norm, decoder, act) = match flavor {
        Flavor::Bert => (
            "cls.predictions",
            "transform.dense",
            "transform.LayerNorm",
            "decoder",
            c.act,
        ),
        Flavor::Roberta => (
            "lm_head",
            "dense",
            "layer_norm",
            "decoder",
            Activation::Gelu,
        ),
        Flavor::DistilBert => (
            "",
            "vocab_transform",
            "vocab_layer_norm",
            "vocab_projector",
            c.act,
        ),
        Flavor::Electra => (
            "",
            "generator_predictions.dense",
            "generator_predictions.LayerNorm",
            "generator_lm_head",
            Activation::Gelu,
        ),
    };
    let hw = if p.is_empty() {
        weights.clone()
    } else {
        weights.pp(p)
    };
    if !hw.contains(&format!("{dense}.weight")) {
        return Err(no_head(weights, "masked-LM", "fill-mask", "ForMaskedLM"));
    }
    // The decoder projects from the embedding width back to the vocabulary.
    let decoder_weight = if !c.tie_word_embeddings && hw.contains(&format!("{decoder}.weight")) {
        hw.get((c.vocab_size, e), &format!("{decoder}.weight"))?
    } else {
        encoder.word.embeddings().clone()
    };
    let bias = if flavor == Flavor::Bert || flavor == Flavor::Roberta {
        if hw.contains("bias") {
            hw.get(c.vocab_size, "bias")?
        } else {
            hw.get(c.vocab_size, &format!("{decoder}.bias"))?
        }
    } else {
        hw.get(c.vocab_size, &format!("{decoder}.bias"))?
    };
    Ok(BertHead::MaskedLm {
        dense: hw.linear(h, e, dense)?,
        act,
        norm: hw.layer_norm(e, c.eps, norm)?,
        decoder: Linear::new(decoder_weight, Some(bias)),
    })
}

/// Load a bert-family checkpoint for `task`, following `architecture`.
pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
    task: Task,
    device: &Device,
) -> Result<BertModel> {
    let (flavor, prefix) =
        Flavor::of(architecture).ok_or_else(|| config.not_of_family("bert", architecture))?;
    let c = Config::read(flavor, config)?;
    // Head models keep the encoder under `bert.` & co.; a bare model (and
    // sentence-transformers) at the root.
    let body = if weights.contains(&format!("{prefix}.embeddings.word_embeddings.weight")) {
        weights.pp(prefix)
    } else {
        weights.clone()
    };
    let encoder = Encoder::load(&body, &c, flavor)?;
    let h = c.hidden_size;
    let head = match task {
        Task::FeatureExtraction => BertHead::None,
        Task::FillMask => masked_lm_head(weights, &c, flavor, &encoder)?,
        Task::TextClassification => {
            let need = |name: &str| -> Result<()> {
                if weights.contains(&format!("{name}.weight")) {
                    Ok(())
                } else {
                    Err(no_head(
                        weights,
                        "`classifier`",
                        "text-classification",
                        "ForSequenceClassification",
                    ))
                }
            };
            match flavor {
                Flavor::Bert => {
                    need("classifier")?;
                    BertHead::PooledClassifier {
                        pooler: body.linear(h, h, "pooler.dense")?,
                        classifier: weights.linear(h, c.num_labels, "classifier")?,
                    }
                }
                Flavor::Roberta | Flavor::Electra => {
                    need("classifier.dense")?;
                    BertHead::FirstTokenClassifier {
                        dense: weights.linear(h, h, "classifier.dense")?,
                        act: if flavor == Flavor::Roberta {
                            Activation::Tanh
                        } else {
                            Activation::Gelu
                        },
                        out_proj: weights.linear(h, c.num_labels, "classifier.out_proj")?,
                    }
                }
                Flavor::DistilBert => {
                    need("pre_classifier")?;
                    BertHead::FirstTokenClassifier {
                        dense: weights.linear(h, h, "pre_classifier")?,
                        act: Activation::Relu,
                        out_proj: weights.linear(h, c.num_labels, "classifier")?,
                    }
                }
            }
        }
        Task::TokenClassification => {
            if !weights.contains("classifier.weight") {
                return Err(no_head(
                    weights,
                    "`classifier`",
                    "token-classification",
                    "ForTokenClassification",
                ));
            }
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

impl BertModel {
    fn position_ids(&self, batch: &EncodedBatch) -> Result<Tensor> {
        let (b, len) = batch.input_ids.dims2()?;
        let rows: Vec<Vec<u32>> = match self.flavor {
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
            _ => vec![(0..len as u32).collect(); b],
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
        let mut x = (e.word.forward(&batch.input_ids)? + e.position.forward(&positions)?)?;
        if let Some(tt) = &e.token_type {
            let types = if self.config.type_vocab_size <= 1 {
                batch.type_ids.zeros_like()?
            } else {
                batch.type_ids.clone()
            };
            x = (x + tt.forward(&types)?)?;
        }
        if let Some(task) = &e.task_type {
            x = x.broadcast_add(task)?;
        }
        let mut x = e.norm.forward(&x)?;
        if let Some(p) = &e.project {
            x = p.forward(&x)?;
        }
        let bias = nn::padding_bias(&batch.attention_mask, x.dtype())?;
        encoder::run_layers(&e.layers, x, Some(&bias))
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
            BertHead::FirstTokenClassifier {
                dense,
                act,
                out_proj,
            } => out_proj.forward(&act.forward(&dense.forward(&first()?)?)?)?,
            BertHead::TokenClassifier(classifier) => classifier.forward(hidden)?,
        })
    }

    fn max_positions(&self) -> usize {
        match self.flavor {
            Flavor::Roberta => self
                .config
                .max_positions
                .saturating_sub(self.config.pad_token_id as usize + 1),
            _ => self.config.max_positions,
        }
    }
}
