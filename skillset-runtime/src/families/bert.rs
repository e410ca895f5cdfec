//! The `bert` family: BERT-style bidirectional encoders with absolute position
//! embeddings. One implementation serves BERT, the RoBERTa line (RoBERTa, XLM-RoBERTa,
//! CamemBERT and Data2VecText: positions count from the padding index + 1), ERNIE (task
//! type embeddings), DistilBERT (no token types, its own weight names), ELECTRA
//! (embeddings narrower than the encoder, projected up), the pre-norm members
//! (RoBERTa-PreLayerNorm, XLM-RoBERTa-XL, Megatron-BERT: layer norms before each branch
//! and after the last layer), MPNet (a relative position bias shared by every layer),
//! ALBERT (factorised embeddings, layers shared in groups), RemBERT (narrow embeddings
//! projected up, a head of its own width), BERT-Generation's encoder, LayoutLM (text without
//! boxes: the zero box's embeddings) and I-BERT (its float path is RoBERTa's). They
//! differ in weight names, where the norms sit, position ids and heads; the layer is
//! the shared one of [`encoder`].

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::Embedding;

use super::nn::LayerNorm;

use super::config::{hf_config, ConfigReader};
use super::encoder::{self, LayerNames};
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
    /// ALBERT: layers shared in groups, its own head names.
    Albert,
    /// RemBERT: BERT's heads, the masked-LM one through its own output width.
    RemBert,
}

/// A member: its class-name prefix, flavor, where its head models keep the encoder,
/// and its config class's defaults.
struct Member {
    class: &'static str,
    flavor: Flavor,
    prefix: &'static str,
    defaults: &'static Defaults,
    layout: &'static Layout,
}

/// Where a member's encoder keeps its layers and norms.
struct Layout {
    /// The layers: `{stack}.{i}`.
    stack: &'static str,
    names: &'static LayerNames,
    /// Norms before the attention and MLP branches, and one after the last layer.
    pre_norm: bool,
    /// `embeddings.LayerNorm` (the pre-norm Megatron-BERT and XLM-RoBERTa-XL have none).
    embeddings_norm: bool,
    /// The norm after the last layer, relative to the encoder body.
    final_norm: Option<&'static str>,
    /// MPNet: the relative position bias table shared by every layer (`[buckets, heads]`).
    relative_bias: Option<&'static str>,
    /// LayoutLM: 2-D position embeddings of each token's box; text-only inputs have the
    /// zero box, as transformers gives a call without `bbox`.
    box_embeddings: bool,
    /// The projection from the embedding width to the hidden width, where they differ
    /// (ALBERT's is there whatever the widths).
    projection: &'static str,
    /// ALBERT: `num_hidden_groups` groups of `inner_group_num` layers under
    /// `{stack}.{group}.albert_layers.{j}`, each group run for a share of the
    /// `num_hidden_layers` steps.
    groups: bool,
}

/// BERT's post-norm layers (and every member's but the ones below).
const POST_NORM: Layout = Layout {
    stack: "encoder.layer",
    names: &encoder::BERT_NAMES,
    pre_norm: false,
    embeddings_norm: true,
    final_norm: None,
    relative_bias: None,
    box_embeddings: false,
    projection: "embeddings_project",
    groups: false,
};

/// RemBERT: BERT's layers after a projection from the embedding width.
const REMBERT_LAYOUT: Layout = Layout {
    projection: "encoder.embedding_hidden_mapping_in",
    ..POST_NORM
};

/// ALBERT: shared layer groups, names of its own.
const ALBERT_LAYOUT: Layout = Layout {
    stack: "encoder.albert_layer_groups",
    names: &LayerNames {
        norm1: "attention.LayerNorm",
        q: "attention.query",
        k: "attention.key",
        v: "attention.value",
        out: "attention.dense",
        norm2: "full_layer_layer_norm",
        fc1: "ffn",
        fc2: "ffn_output",
        scales: None,
    },
    projection: "encoder.embedding_hidden_mapping_in",
    groups: true,
    ..POST_NORM
};

/// LayoutLM: BERT with the zero box's embeddings added.
const LAYOUTLM_LAYOUT: Layout = Layout {
    box_embeddings: true,
    ..POST_NORM
};

const DISTILBERT_LAYOUT: Layout = Layout {
    stack: "transformer.layer",
    names: &encoder::DISTILBERT_NAMES,
    ..POST_NORM
};

/// RoBERTa-PreLayerNorm: norms at `attention.LayerNorm` and `intermediate.LayerNorm`,
/// the last one at the model's root.
const ROBERTA_PRELAYERNORM_LAYOUT: Layout = Layout {
    names: &LayerNames {
        norm1: "attention.LayerNorm",
        norm2: "intermediate.LayerNorm",
        ..encoder::BERT_NAMES
    },
    pre_norm: true,
    final_norm: Some("LayerNorm"),
    ..POST_NORM
};

/// XLM-RoBERTa-XL: no embedding norm, `attention.self_attn_layer_norm` and the
/// layer's `LayerNorm`, the last one at `encoder.LayerNorm`.
const XLM_ROBERTA_XL_LAYOUT: Layout = Layout {
    names: &LayerNames {
        norm1: "attention.self_attn_layer_norm",
        norm2: "LayerNorm",
        ..encoder::BERT_NAMES
    },
    pre_norm: true,
    embeddings_norm: false,
    final_norm: Some("encoder.LayerNorm"),
    ..POST_NORM
};

/// Megatron-BERT: no embedding norm, `attention.ln` and the layer's `ln`, the last
/// one at `encoder.ln`.
const MEGATRON_BERT_LAYOUT: Layout = Layout {
    names: &LayerNames {
        norm1: "attention.ln",
        norm2: "ln",
        ..encoder::BERT_NAMES
    },
    pre_norm: true,
    embeddings_norm: false,
    final_norm: Some("encoder.ln"),
    ..POST_NORM
};

/// MPNet: post-norm with its own attention names and a relative position bias.
const MPNET_LAYOUT: Layout = Layout {
    names: &LayerNames {
        norm1: "attention.LayerNorm",
        q: "attention.attn.q",
        k: "attention.attn.k",
        v: "attention.attn.v",
        out: "attention.attn.o",
        ..encoder::BERT_NAMES
    },
    relative_bias: Some("encoder.relative_attention_bias.weight"),
    ..POST_NORM
};

/// MPNet's position bias: transformers computes 32 buckets up to distance 128 whatever
/// `relative_attention_num_buckets` says (`MPNetEncoder.compute_position_bias`).
const MPNET_BUCKETS: usize = 32;
const MPNET_MAX_DISTANCE: usize = 128;

/// The members, longer class prefixes first.
const MEMBERS: &[Member] = &[
    Member {
        class: "XLMRobertaXL",
        flavor: Flavor::Roberta,
        prefix: "roberta",
        defaults: &XLM_ROBERTA_XL,
        layout: &XLM_ROBERTA_XL_LAYOUT,
    },
    Member {
        class: "RobertaPreLayerNorm",
        flavor: Flavor::Roberta,
        prefix: "roberta_prelayernorm",
        defaults: &ROBERTA_PRELAYERNORM,
        layout: &ROBERTA_PRELAYERNORM_LAYOUT,
    },
    Member {
        class: "MegatronBert",
        flavor: Flavor::Bert,
        prefix: "bert",
        defaults: &MEGATRON_BERT,
        layout: &MEGATRON_BERT_LAYOUT,
    },
    Member {
        class: "BertGeneration",
        flavor: Flavor::Bert,
        prefix: "bert",
        defaults: &BERT_GENERATION,
        layout: &POST_NORM,
    },
    Member {
        class: "RemBert",
        flavor: Flavor::RemBert,
        prefix: "rembert",
        defaults: &REMBERT,
        layout: &REMBERT_LAYOUT,
    },
    Member {
        class: "Albert",
        flavor: Flavor::Albert,
        prefix: "albert",
        defaults: &ALBERT,
        layout: &ALBERT_LAYOUT,
    },
    Member {
        class: "LayoutLM",
        flavor: Flavor::Bert,
        prefix: "layoutlm",
        defaults: &LAYOUTLM,
        layout: &LAYOUTLM_LAYOUT,
    },
    Member {
        class: "IBert",
        flavor: Flavor::Roberta,
        prefix: "ibert",
        defaults: &IBERT,
        layout: &POST_NORM,
    },
    Member {
        class: "MPNet",
        flavor: Flavor::Roberta,
        prefix: "mpnet",
        defaults: &MPNET,
        layout: &MPNET_LAYOUT,
    },
    Member {
        class: "XLMRoberta",
        flavor: Flavor::Roberta,
        prefix: "roberta",
        defaults: &XLM_ROBERTA,
        layout: &POST_NORM,
    },
    Member {
        class: "Roberta",
        flavor: Flavor::Roberta,
        prefix: "roberta",
        defaults: &ROBERTA,
        layout: &POST_NORM,
    },
    Member {
        class: "Camembert",
        flavor: Flavor::Roberta,
        prefix: "roberta",
        defaults: &CAMEMBERT,
        layout: &POST_NORM,
    },
    Member {
        class: "Data2VecText",
        flavor: Flavor::Roberta,
        prefix: "data2vec_text",
        defaults: &DATA2VEC_TEXT,
        layout: &POST_NORM,
    },
    Member {
        class: "DistilBert",
        flavor: Flavor::DistilBert,
        prefix: "distilbert",
        defaults: &DISTILBERT,
        layout: &DISTILBERT_LAYOUT,
    },
    Member {
        class: "Electra",
        flavor: Flavor::Electra,
        prefix: "electra",
        defaults: &ELECTRA,
        layout: &POST_NORM,
    },
    Member {
        class: "Ernie",
        flavor: Flavor::Bert,
        prefix: "ernie",
        defaults: &ERNIE,
        layout: &POST_NORM,
    },
    Member {
        class: "Bert",
        flavor: Flavor::Bert,
        prefix: "bert",
        defaults: &BERT,
        layout: &POST_NORM,
    },
];

impl Flavor {
    /// The flavor of an architecture class and where its head models keep the encoder.
    pub(crate) fn of(architecture: &str) -> Option<(Self, &'static str)> {
        member(architecture).map(|m| (m.flavor, m.prefix))
    }
}

/// The member whose classes `architecture` is one of: its class prefix followed by
/// `Model` or a head (`For...`), so that `Ernie4_5ForCausalLM` is not ERNIE's
/// (BERT-Generation's encoder is `BertGenerationEncoder`).
fn member(architecture: &str) -> Option<&'static Member> {
    MEMBERS.iter().find(|m| {
        architecture.strip_prefix(m.class).is_some_and(|rest| {
            rest == "Model"
                || rest.starts_with("For")
                || (m.class == "BertGeneration" && rest == "Encoder")
        })
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
    /// `None`: no such field (MPNet has no token types).
    pub type_vocab_size: Option<usize>,
    pub pad_token_id: usize,
    pub layer_norm_eps: f64,
    /// MPNet's `relative_attention_num_buckets` (`None`: no such field).
    pub relative_buckets: Option<usize>,
    /// LayoutLM's `max_2d_position_embeddings` (`None`: no such field).
    pub max_2d_positions: Option<usize>,
    pub hidden_act: &'static str,
    pub tie_word_embeddings: bool,
    /// ALBERT's `num_hidden_groups` and `inner_group_num` (`None`: no such fields).
    pub groups: Option<(usize, usize)>,
    /// RemBERT's `input_embedding_size` and `output_embedding_size` (`None`: no such
    /// fields).
    pub rembert_widths: Option<(usize, usize)>,
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
    type_vocab_size: Some(2),
    pad_token_id: 0,
    layer_norm_eps: 1e-12,
    relative_buckets: None,
    max_2d_positions: None,
    hidden_act: "gelu",
    tie_word_embeddings: true,
    groups: None,
    rembert_widths: None,
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
    type_vocab_size: Some(0),
    ..BERT
};
/// `RobertaPreLayerNormConfig`'s defaults.
pub(crate) const ROBERTA_PRELAYERNORM: Defaults = Defaults {
    class: "RobertaPreLayerNormConfig",
    ..ROBERTA
};
/// `XLMRobertaXLConfig`'s defaults.
pub(crate) const XLM_ROBERTA_XL: Defaults = Defaults {
    class: "XLMRobertaXLConfig",
    vocab_size: 250880,
    hidden_size: 2560,
    num_hidden_layers: 36,
    num_attention_heads: 32,
    intermediate_size: 10240,
    max_position_embeddings: 514,
    type_vocab_size: Some(1),
    pad_token_id: 1,
    layer_norm_eps: 1e-5,
    ..BERT
};
/// `MegatronBertConfig`'s defaults.
pub(crate) const MEGATRON_BERT: Defaults = Defaults {
    class: "MegatronBertConfig",
    vocab_size: 29056,
    hidden_size: 1024,
    num_hidden_layers: 24,
    num_attention_heads: 16,
    intermediate_size: 4096,
    ..BERT
};
/// `BertGenerationConfig`'s defaults.
pub(crate) const BERT_GENERATION: Defaults = Defaults {
    class: "BertGenerationConfig",
    vocab_size: 50358,
    hidden_size: 1024,
    num_hidden_layers: 24,
    num_attention_heads: 16,
    intermediate_size: 4096,
    type_vocab_size: None,
    ..BERT
};
/// `RemBertConfig`'s defaults.
pub(crate) const REMBERT: Defaults = Defaults {
    class: "RemBertConfig",
    vocab_size: 250300,
    hidden_size: 1152,
    num_hidden_layers: 32,
    num_attention_heads: 18,
    intermediate_size: 4608,
    rembert_widths: Some((256, 1664)),
    tie_word_embeddings: false,
    ..BERT
};
/// `AlbertConfig`'s defaults.
pub(crate) const ALBERT: Defaults = Defaults {
    class: "AlbertConfig",
    vocab_size: 30000,
    embedding_size: Some(128),
    hidden_size: 4096,
    num_attention_heads: 64,
    intermediate_size: 16384,
    hidden_act: "gelu_new",
    groups: Some((1, 1)),
    ..BERT
};
/// `LayoutLMConfig`'s defaults.
pub(crate) const LAYOUTLM: Defaults = Defaults {
    class: "LayoutLMConfig",
    max_2d_positions: Some(1024),
    ..BERT
};
/// `IBertConfig`'s defaults.
pub(crate) const IBERT: Defaults = Defaults {
    class: "IBertConfig",
    pad_token_id: 1,
    ..BERT
};
/// `MPNetConfig`'s defaults.
pub(crate) const MPNET: Defaults = Defaults {
    class: "MPNetConfig",
    vocab_size: 30527,
    type_vocab_size: None,
    pad_token_id: 1,
    relative_buckets: Some(32),
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
        relative_attention_num_buckets: Option<usize> = None,
        max_2d_position_embeddings: Option<usize> = None,
        num_hidden_groups: Option<usize> = None,
        input_embedding_size: Option<usize> = None,
        output_embedding_size: Option<usize> = None,
        inner_group_num: Option<usize> = None,
        /// I-BERT: only the float path (`false`) is run.
        quant_mode: bool = false,
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
    /// Rows of MPNet's relative position bias table (0: no such table).
    relative_buckets: usize,
    /// Rows of LayoutLM's 2-D position tables (0: no such tables).
    max_2d_positions: usize,
    /// ALBERT's `num_hidden_groups` and `inner_group_num` (1 and 1 for the others).
    groups: (usize, usize),
    /// The masked-LM head's width (RemBERT's `output_embedding_size`; the embedding
    /// width otherwise).
    head_width: usize,
}

impl Config {
    fn read(m: &Member, c: &ConfigReader) -> Result<Self> {
        let mut config = if m.flavor == Flavor::DistilBert {
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
                relative_buckets: 0,
                max_2d_positions: 0,
                groups: (1, 1),
                head_width: f.dim,
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
            if f.quant_mode {
                return Err(c.invalid(
                    "quant_mode",
                    "is true: I-BERT's integer-only kernels are not implemented (the float \
                     path, `quant_mode: false`, is)"
                        .into(),
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
                embedding_size: match (d.embedding_size, d.rembert_widths) {
                    (Some(e), _) => f.embedding_size.unwrap_or(e),
                    (None, Some((e, _))) => f.input_embedding_size.unwrap_or(e),
                    (None, None) => hidden_size,
                },
                hidden_size,
                num_layers: f.num_hidden_layers.unwrap_or(d.num_hidden_layers),
                num_heads: f.num_attention_heads.unwrap_or(d.num_attention_heads),
                intermediate_size: f.intermediate_size.unwrap_or(d.intermediate_size),
                act: c.activation_named(
                    "hidden_act",
                    f.hidden_act.as_deref().unwrap_or(d.hidden_act),
                )?,
                max_positions: f
                    .max_position_embeddings
                    .unwrap_or(d.max_position_embeddings),
                type_vocab_size: match d.type_vocab_size {
                    Some(n) => f.type_vocab_size.unwrap_or(n),
                    None => 0,
                },
                eps: c.f64_or("layer_norm_eps", d.layer_norm_eps)?,
                // MPNet counts positions from its padding index 1 whatever
                // `pad_token_id` says (`MPNetEmbeddings.padding_idx`).
                pad_token_id: if d.relative_buckets.is_some() {
                    1
                } else {
                    f.pad_token_id.unwrap_or(d.pad_token_id) as u32
                },
                tie_word_embeddings: f.tie_word_embeddings.unwrap_or(d.tie_word_embeddings),
                num_labels: c.num_labels(),
                use_task_id,
                task_type_vocab_size,
                relative_buckets: match d.relative_buckets {
                    Some(n) => f.relative_attention_num_buckets.unwrap_or(n),
                    None => 0,
                },
                max_2d_positions: match d.max_2d_positions {
                    Some(n) => f.max_2d_position_embeddings.unwrap_or(n),
                    None => 0,
                },
                groups: match d.groups {
                    Some((g, inner)) => (
                        f.num_hidden_groups.unwrap_or(g),
                        f.inner_group_num.unwrap_or(inner),
                    ),
                    None => (1, 1),
                },
                head_width: match d.rembert_widths {
                    Some((_, o)) => f.output_embedding_size.unwrap_or(o),
                    None => 0,
                },
            }
        };
        if config.head_width == 0 {
            config.head_width = config.embedding_size;
        }
        let (groups, _) = config.groups;
        if groups == 0 || groups > config.num_layers.max(1) {
            // transformers divides by the group count and indexes groups by layer.
            return Err(c.invalid(
                "num_hidden_groups",
                format!(
                    "is {groups}: it must be between 1 and num_hidden_layers ({})",
                    config.num_layers
                ),
            ));
        }
        if m.layout.relative_bias.is_some() && config.relative_buckets < MPNET_BUCKETS {
            // transformers indexes the table up to bucket 31 (bucket 17 already for
            // two tokens) and fails on such a checkpoint.
            return Err(c.invalid(
                "relative_attention_num_buckets",
                format!(
                    "is {}, but MPNet computes {MPNET_BUCKETS} relative position buckets",
                    config.relative_buckets
                ),
            ));
        }
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
    norm: Option<LayerNorm>,
    /// ELECTRA: embedding width -> hidden width.
    project: Option<Linear>,
    /// ERNIE with `use_task_id`: the embedding of task type 0 (what transformers adds
    /// when no task type ids are given); LayoutLM: the zero box's embeddings (left,
    /// upper, right, lower, height and width 0), added to every token alike.
    constant: Option<Tensor>,
    layers: Vec<encoder::Layer>,
    /// The layer run at each step: each layer once in turn, ALBERT's shared ones as
    /// many times as its groups say.
    order: Vec<usize>,
    /// The pre-norm members' norm after the last layer.
    final_norm: Option<LayerNorm>,
    /// MPNet's relative position bias table `[buckets, heads]`.
    relative_bias: Option<Embedding>,
}

impl Encoder {
    fn load(w: &Weights, c: &Config, layout: &Layout) -> Result<Self> {
        let (e, h) = (c.embedding_size, c.hidden_size);
        let emb = w.pp("embeddings");
        // The shared encoder layer.
        let dims = encoder::LayerDims {
            hidden: h,
            heads: c.num_heads,
            intermediate: c.intermediate_size,
            eps: c.eps,
            act: c.act,
            pre_norm: layout.pre_norm,
        };
        let (layers, order) = if layout.groups {
            let (groups, inner) = c.groups;
            let mut layers = Vec::with_capacity(groups * inner);
            for g in 0..groups {
                let group = format!("{}.{g}.albert_layers", layout.stack);
                layers.extend(encoder::load_layers(w, &group, inner, dims, layout.names)?);
            }
            // transformers: group `int(i / (num_hidden_layers / num_hidden_groups))`
            // at step i, every layer of the group in turn.
            let per_group = c.num_layers as f64 / groups as f64;
            let order = (0..c.num_layers)
                .flat_map(|i| {
                    let g = ((i as f64 / per_group) as usize).min(groups - 1);
                    (0..inner).map(move |j| g * inner + j)
                })
                .collect();
            (layers, order)
        } else {
            let layers = encoder::load_layers(w, layout.stack, c.num_layers, dims, layout.names)?;
            (layers, (0..c.num_layers).collect())
        };
        let layers = layers
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
            norm: if layout.embeddings_norm {
                Some(emb.layer_norm(e, c.eps, "LayerNorm")?)
            } else {
                None
            },
            project: if e != h || w.contains(&format!("{}.weight", layout.projection)) {
                Some(w.linear(e, h, layout.projection)?)
            } else {
                None
            },
            constant: if c.use_task_id {
                Some(
                    emb.get((c.task_type_vocab_size, e), "task_type_embeddings.weight")?
                        .get(0)?,
                )
            } else if layout.box_embeddings {
                if c.max_2d_positions == 0 {
                    return Err(Error::invalid_file(
                        &w.path,
                        "config.json's `max_2d_position_embeddings` is 0: no row for the zero box",
                    ));
                }
                let zero = |name: &str| -> Result<Tensor> {
                    Ok(emb
                        .get((c.max_2d_positions, e), &format!("{name}.weight"))?
                        .get(0)?)
                };
                let (x, y) = (
                    zero("x_position_embeddings")?,
                    zero("y_position_embeddings")?,
                );
                let hw = (zero("h_position_embeddings")? + zero("w_position_embeddings")?)?;
                Some(((x + y)? * 2.0)?.add(&hw)?)
            } else {
                None
            },
            layers,
            order,
            final_norm: match layout.final_norm {
                Some(name) => Some(w.layer_norm(h, c.eps, name)?),
                None => None,
            },
            relative_bias: match layout.relative_bias {
                Some(name) => Some(Embedding::new(
                    w.get((c.relative_buckets, c.num_heads), name)?,
                    c.num_heads,
                )),
                None => None,
            },
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
    // The head's width: the embeddings' (their matrix is the tied decoder), RemBERT's
    // own output width.
    let (h, e) = (c.hidden_size, c.head_width);
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
        Flavor::Albert => ("predictions", "dense", "LayerNorm", "decoder", c.act),
        Flavor::RemBert => ("cls.predictions", "dense", "LayerNorm", "decoder", c.act),
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
    } else if e == c.embedding_size {
        encoder.word.embeddings().clone()
    } else {
        return Err(Error::invalid_file(
            &weights.path,
            format!(
                "the masked-LM decoder is tied to the word embeddings ({} wide), but the head is {e} wide",
                c.embedding_size
            ),
        ));
    };
    let bias = if matches!(
        flavor,
        Flavor::Bert | Flavor::Roberta | Flavor::Albert | Flavor::RemBert
    ) {
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
    let encoder = Encoder::load(&body, &c, m.layout)?;
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
                Flavor::Bert | Flavor::Albert | Flavor::RemBert => {
                    need("classifier")?;
                    BertHead::PooledClassifier {
                        // ALBERT's pooler is a bare linear layer.
                        pooler: body.linear(
                            h,
                            h,
                            if flavor == Flavor::Albert {
                                "pooler"
                            } else {
                                "pooler.dense"
                            },
                        )?,
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

    /// MPNet's relative position bias `[1, heads, len, len]`: T5's bidirectional
    /// buckets of `key - query`, looked up in the shared table.
    fn position_bias(&self, table: &Embedding, len: usize, dtype: DType) -> Result<Tensor> {
        let mut ids = Vec::with_capacity(len * len);
        for q in 0..len {
            for k in 0..len {
                let rel = k as i64 - q as i64;
                ids.push(nn::relative_bucket(rel, true, MPNET_BUCKETS, MPNET_MAX_DISTANCE) as u32);
            }
        }
        let ids = Tensor::from_vec(ids, (len, len), &self.device)?;
        // [q, k, heads] -> [1, heads, q, k]
        Ok(table
            .forward(&ids)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .to_dtype(dtype)?
            .contiguous()?)
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
        if let Some(constant) = &e.constant {
            x = x.broadcast_add(constant)?;
        }
        if let Some(norm) = &e.norm {
            x = norm.forward(&x)?;
        }
        if let Some(p) = &e.project {
            x = p.forward(&x)?;
        }
        let mut bias = nn::padding_bias(&batch.attention_mask, x.dtype())?;
        if let Some(table) = &e.relative_bias {
            bias = bias.broadcast_add(&self.position_bias(table, x.dim(1)?, x.dtype())?)?;
        }
        let x = e
            .order
            .iter()
            .try_fold(x, |x, &i| e.layers[i].forward(&x, Some(&bias)))?;
        Ok(match &e.final_norm {
            Some(norm) => norm.forward(&x)?,
            None => x,
        })
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
