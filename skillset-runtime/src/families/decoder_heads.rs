//! Decoders read as text encoders. feature-extraction: the base model's last hidden
//! states (pooled as a sentence-transformers directory says: the last-token pooling of
//! Qwen3-Embedding, gte-Qwen2 and e5-mistral). text-classification: the `score` head
//! on the last token that is not `pad_token_id`, as transformers'
//! `GenericForSequenceClassification` pools.

use candle_core::{DType, Module, Tensor};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile};
use super::heads::EncoderModel;
use super::nn::{Linear, Weights};
use super::CausalLm;
use crate::error::{Error, Result};
use crate::tokenize::EncodedBatch;
use crate::Task;

/// A decoder with the head of an encoder task.
pub(crate) struct DecoderEncoder {
    model: Decoder,
    classifier: Option<Classifier>,
}

/// `score`: hidden width -> labels, no bias, on the pooled token.
struct Classifier {
    score: Linear,
    /// `pad_token_id` of config.json: the pooled token is the last one that is not it
    /// (without one, the last token).
    pad_token_id: Option<u32>,
}

/// Load `file`'s decoder for `task` (feature-extraction or text-classification).
pub(crate) fn load(
    file: &DecoderFile,
    task: Task,
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<DecoderEncoder> {
    // The encoder tasks never read a language-model head: one the checkpoint has (gte-Qwen2's
    // whole causal LM) is dropped after loading, so its memory goes back.
    let headless = |mut model: Decoder| {
        model.lm_head = None;
        model
    };
    match task {
        // The base model: saved alone (no `model.` prefix, no head) or inside a
        // causal LM's checkpoint.
        Task::FeatureExtraction => Ok(DecoderEncoder {
            model: headless((file.load)(
                config,
                &weights.base_model_alone(),
                dtype,
                device,
            )?),
            classifier: None,
        }),
        Task::TextClassification => {
            let model = headless((file.load)(config, weights, dtype, device)?);
            let labels = config.num_labels();
            let score = weights.linear_no_bias(model.embedding_width(), labels, "score")?;
            let pad_token_id = match config.value.get("pad_token_id") {
                None | Some(serde_json::Value::Null) => None,
                Some(_) => Some(u32::try_from(config.usize("pad_token_id")?).map_err(|_| {
                    config.invalid("pad_token_id", "is beyond any vocabulary".into())
                })?),
            };
            Ok(DecoderEncoder {
                model,
                classifier: Some(Classifier {
                    score,
                    pad_token_id,
                }),
            })
        }
        other => Err(Error::InvalidOption(format!(
            "a decoder runs `{other}` only as a causal LM"
        ))),
    }
}

impl EncoderModel for DecoderEncoder {
    fn hidden_states(&self, batch: &EncodedBatch) -> Result<Tensor> {
        self.model
            .last_hidden_states(&batch.input_ids, &batch.lengths)
    }

    fn head_logits(&self, _hidden: &Tensor) -> Result<Tensor> {
        Err(Error::InvalidOption(
            "a decoder's head pools by token ids: use its sequence logits".into(),
        ))
    }

    fn sequence_logits(&self, batch: &EncodedBatch) -> Result<Tensor> {
        let c = self.classifier.as_ref().ok_or_else(|| {
            Error::InvalidOption("the decoder was loaded without a classification head".into())
        })?;
        let hidden = self.hidden_states(batch)?;
        let rows = batch
            .encodings
            .iter()
            .zip(&batch.lengths)
            .enumerate()
            .map(|(i, (e, &n))| {
                if n == 0 {
                    return Err(Error::InvalidInput(
                        "an empty text: the tokenizer adds no special tokens to it, so there is no token to classify".into(),
                    ));
                }
                let ids = &e.get_ids()[..n];
                let last = match c.pad_token_id {
                    Some(pad) => ids.iter().rposition(|&t| t != pad).unwrap_or(0),
                    None => n - 1,
                };
                Ok(hidden.get(i)?.get(last)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(c.score
            .forward(&Tensor::stack(&rows, 0)?)?
            .to_dtype(DType::F32)?)
    }

    fn max_positions(&self) -> usize {
        self.model.max_positions()
    }
}
