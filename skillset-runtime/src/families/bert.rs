//! The `bert` family: BERT-style bidirectional encoders with absolute position
//! embeddings. One implementation serves BERT, the RoBERTa line (RoBERTa, XLM-RoBERTa,
//! CamemBERT and Data2VecText: positions count from the padding index + 1), ERNIE (task
//! type embeddings), DistilBERT (no token types, its own weight names) and ELECTRA
//! (embeddings narrower than the encoder, projected up). They differ in weight names,
//! position ids and heads, not in the encoder.

use candle_core::{Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm};

use super::config::{hf_config, ConfigReader};
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

/// A member: its class-name prefix, flavor, where its head models keep the encoder,
/// and its config class's defaults.
struct Member {
    class: &'static str,
    flavor: Flavor,
    prefix: &'static str,
    defaults: &'static Defaults,
}

/// The members, longer class prefixes first.
const MEMBERS: &[Member] = &[
    Member {
        class: "XLMRoberta",
        flavor: Flavor::Roberta,
        prefix: "roberta",
        defaults: &XLM_ROBERTA,
    },
    Member {
        class: "Roberta",
        flavor: Flavor::Roberta,
        prefix: "roberta",
        defaults: &ROBERTA,
    },
    Member {
        class: "Camembert",
        flavor: Flavor::Roberta,
        prefix: "roberta",
        defaults: &CAMEMBERT,
    },
    Member {
        class: "Data2VecText",
        flavor: Flavor::Roberta,
        prefix: "data2vec_text",
        defaults: &DATA2VEC_TEXT,
    },
    Member {
        class: "DistilBert",
        flavor: Flavor::DistilBert,
        prefix: "distilbert",
        defaults: &DISTILBERT,
    },
    Member {
        class: "Electra",
        flavor: Flavor::Electra,
        prefix: "electra",
        defaults: &ELECTRA,
    },
    Member {
        class: "Ernie",
        flavor: Flavor::Bert,
        prefix: "ernie",
        defaults: &ERNIE,
    },
    Member {
        class: "Bert",
        flavor: Flavor::Bert,
        prefix: "bert",
        defaults: &BERT,
    },
];

impl Flavor {
    /// The flavor of an architecture class and where its head models keep the encoder.
    pub(crate) fn of(architecture: &str) -> Option<(Self, &'static str)> {
        member(architecture).map(|m| (m.flavor, m.prefix))
    }
}

/// The member whose classes `architecture` is one of: its class prefix followed by
/// `Model` or a head (`For...`), so that `Ernie4_5ForCausalLM` is not ERNIE's.
fn member(architecture: &str) -> Option<&'static Member> {
    MEMBERS.iter().find(|m| {
        architecture
            .strip_prefix(m.class)
            .is_some_and(|rest| rest == "Model" || rest.starts_with("For"))
    })
}

/// A member's config class defaults (transformers 5.23; checked against
/// `tests/config_defaults.json` by the defaults test in `families`). DistilBERT's
/// fields have names of their own ([`DistilBertConfig`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    #[cfg_attr(not(test), allow(dead_code))]
    pub class: &'static str,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub pad_token_id: usize,
    /// ELECTRA's embedding width (`None`: no such field; the hidden size).
    pub embedding_size: Option<usize>,
    /// ERNIE's task type embeddings: `use_task_id` and `task_type_vocab_size` (`None`:
    /// no such fields).
    pub task_types: Option<(bool, usize)>,
}

/// `BertConfig`'s defaults.
pub(crate) const BERT: Defaults = Defaults {
    class: "BertConfig",
    vocab_size: 30522,
    hidden_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    intermediate_size: 3072,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    pad_token_id: 0,
    embedding_size: None,
    task_types: None,
};
/// `RobertaConfig`'s defaults.
pub(crate) const ROBERTA: Defaults = Defaults {
    class: "RobertaConfig",
    vocab_size: 50265,
    pad_token_id: 1,
    ..BERT
};
/// `XLMRobertaConfig`'s defaults.
pub(crate) const XLM_ROBERTA: Defaults = Defaults {
    class: "XLMRobertaConfig",
    pad_token_id: 1,
    ..BERT
};
/// `CamembertConfig`'s defaults.
pub(crate) const CAMEMBERT: Defaults = Defaults {
    class: "CamembertConfig",
    ..XLM_ROBERTA
};
/// `Data2VecTextConfig`'s defaults.
pub(crate) const DATA2VEC_TEXT: Defaults = Defaults {
    class: "Data2VecTextConfig",
    ..XLM_ROBERTA
};
/// `ErnieConfig`'s defaults.
pub(crate) const ERNIE: Defaults = Defaults {
    class: "ErnieConfig",
    task_types: Some((false, 3)),
    ..BERT
};
/// `ElectraConfig`'s defaults.
pub(crate) const ELECTRA: Defaults = Defaults {
    class: "ElectraConfig",
    hidden_size: 256,
    num_attention_heads: 4,
    intermediate_size: 1024,
    embedding_size: Some(128),
    ..BERT
};
/// DistilBERT has its own names: these are `DistilBertConfig`'s defaults under
/// BERT's (the test compares [`DistilBertConfig`]).
const DISTILBERT: Defaults = Defaults {
    class: "DistilBertConfig",
    num_hidden_layers: 6,
    type_vocab_size: 0,
    ..BERT
};

/// Every member's defaults (for the defaults test).
#[cfg(test)]
pub(crate) fn member_defaults() -> impl Iterator<Item = &'static Defaults> {
    MEMBERS
        .iter()
        .map(|m| m.defaults)
        .filter(|d| d.class != "DistilBertConfig")
}

hf_config! {
    /// The fields of a bert-family config.json, as given: a missing (or `null`) field
    /// takes the member's default ([`Defaults`]), one of the wrong type is an error
    /// naming it.
    pub(crate) struct Fields {
        vocab_size: Option<usize> = None,
        hidden_size: Option<usize> = None,
        num_hidden_layers: Option<usize> = None,
        num_attention_heads: Option<usize> = None,
        intermediate_size: Option<usize> = None,
        hidden_act: Option<String> = None,
        max_position_embeddings: Option<usize> = None,
        type_vocab_size: Option<usize> = None,
        pad_token_id: Option<usize> = None,
        tie_word_embeddings: Option<bool> = None,
        embedding_size: Option<usize> = None,
        use_task_id: Option<bool> = None,
        task_type_vocab_size: Option<usize> = None,
        /// Only `absolute` is run (4.x configs may name relative ones).
        position_embedding_type: Option<String> = None,
        is_decoder: bool = false,
    }
}

hf_config! {
    /// `DistilBertConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults.
    pub(crate) struct DistilBertConfig {
        vocab_size: usize = 30522,
        max_position_embeddings: usize = 512,
        n_layers: usize = 6,
        n_heads: usize = 12,
        dim: usize = 768,
        hidden_dim: usize = 3072,
        activation: String = "gelu".into(),
        pad_token_id: usize = 0,
        tie_word_embeddings: bool = true,
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
    fn read(m: &Member, c: &ConfigReader) -> Result<Self> {
        let config = if m.flavor == Flavor::DistilBert {
            let f: DistilBertConfig = c.typed()?;
            Config {
                vocab_size: f.vocab_size,
                embedding_size: f.dim,
                hidden_size: f.dim,
                num_layers: f.n_layers,
                num_heads: f.n_heads,
                intermediate_size: f.hidden_dim,
                act: c.activation_named("activation", &f.activation)?,
                max_positions: f.max_position_embeddings,
                type_vocab_size: 0,
                // DistilBERT hard-codes its LayerNorm eps.
                eps: 1e-12,
                pad_token_id: f.pad_token_id as u32,
                tie_word_embeddings: f.tie_word_embeddings,
                num_labels: c.num_labels(),
                use_task_id: false,
                task_type_vocab_size: 0,
            }
        } else {
            let f: Fields = c.typed()?;
            let d = m.defaults;
            if let Some(pet) = f.position_embedding_type.filter(|p| p != "absolute") {
                return Err(c.invalid(
                    "position_embedding_type",
                    format!("`{pet}` is not supported by the bert family (only `absolute`)"),
                ));
            }
            if f.is_decoder {
                return Err(c.invalid(
                    "is_decoder",
                    "decoder BERTs are not supported by the bert family".into(),
                ));
            }
            let hidden_size = f.hidden_size.unwrap_or(d.hidden_size);
            let (use_task_id, task_type_vocab_size) = match d.task_types {
                Some((use_id, n)) => (
                    f.use_task_id.unwrap_or(use_id),
                    f.task_type_vocab_size.unwrap_or(n),
                ),
                None => (false, 0),
            };
            Config {
                vocab_size: f.vocab_size.unwrap_or(d.vocab_size),
                embedding_size: match d.embedding_size {
                    Some(e) => f.embedding_size.unwrap_or(e),
                    None => hidden_size,
                },
                hidden_size,
                num_layers: f.num_hidden_layers.unwrap_or(d.num_hidden_layers),
                num_heads: f.num_attention_heads.unwrap_or(d.num_attention_heads),
                intermediate_size: f.intermediate_size.unwrap_or(d.intermediate_size),
                act: c.activation_named("hidden_act", f.hidden_act.as_deref().unwrap_or("gelu"))?,
                max_positions: f
                    .max_position_embeddings
                    .unwrap_or(d.max_position_embeddings),
                type_vocab_size: f.type_vocab_size.unwrap_or(d.type_vocab_size),
                eps: c.f64_or("layer_norm_eps", 1e-12)?,
                pad_token_id: f.pad_token_id.unwrap_or(d.pad_token_id) as u32,
                tie_word_embeddings: f.tie_word_embeddings.unwrap_or(true),
                num_labels: c.num_labels(),
                use_task_id,
                task_type_vocab_size,
            }
        };
        let heads_key = if m.flavor == Flavor::DistilBert {
            "n_heads"
        } else {
            "num_attention_heads"
        };
        c.check_heads(heads_key, config.num_heads, config.hidden_size)?;
        Ok(config)
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
    let m = member(architecture).ok_or_else(|| config.not_of_family("bert", architecture))?;
    let (flavor, prefix) = (m.flavor, m.prefix);
    let c = Config::read(m, config)?;
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
