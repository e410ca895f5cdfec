//! The text tasks of encoder models: features, fill-mask, text and token
//! classification.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

use crate::families::{self, Head};
use crate::ops::{argmax, ensure_finite, softmax, top_indices};
use crate::outputs::{Features, FillMaskPrediction, LabelScore, TokenEntity};
use crate::pooling::{self, Pooling};
use crate::tokenize::EncodedBatch;
use crate::Task;

use super::{Pipeline, ScoreFn, TopK};

impl Pipeline {
    /// feature-extraction: the last hidden states of each text, per token (special
    /// tokens included), or pooled into one vector.
    pub fn feature_extraction(
        &self,
        texts: &[&str],
        pooling: Option<Pooling>,
        normalize: bool,
    ) -> Result<Vec<Features>> {
        self.expect_task(Task::FeatureExtraction)?;
        let model = self.encoder(Head::None)?;
        self.chunked(texts, |_, batch| {
            let hidden = model.hidden_states(&batch)?;
            match pooling {
                None => {
                    let hidden = hidden
                        .to_dtype(candle_core::DType::F32)?
                        .to_device(&Device::Cpu)?;
                    batch
                        .lengths
                        .iter()
                        .enumerate()
                        .map(|(i, &n)| {
                            Ok(Features::Tokens(hidden.get(i)?.narrow(0, 0, n)?.to_vec2()?))
                        })
                        .collect()
                }
                Some(p) => {
                    let mut pooled = pooling::pool(&hidden, &batch.attention_mask, p)?;
                    if normalize {
                        pooled = pooling::l2_normalize(&pooled)?;
                    }
                    let rows: Vec<Vec<f32>> = pooled.to_device(&Device::Cpu)?.to_vec2()?;
                    Ok(rows.into_iter().map(Features::Pooled).collect())
                }
            }
        })
    }

    /// The encoder's last hidden states for a batch tokenized already: the bare
    /// forward pass under the feature-extraction handler (`skillset bench` measures
    /// the handler's overhead over it).
    pub fn hidden_states(&self, batch: &EncodedBatch) -> Result<Tensor> {
        self.expect_task(Task::FeatureExtraction)?;
        self.encoder(Head::None)?.hidden_states(batch)
    }

    /// The pooling and normalization of [`Pipeline::sentence_embeddings`]: a
    /// sentence-transformers directory's own, or mean pooling without normalization
    /// for any other checkpoint (as sentence-transformers loads a plain one).
    pub fn sentence_pooling(&self) -> (Pooling, bool) {
        match &self.sentence_transformers {
            Some(st) => (st.pooling, st.normalize),
            None => (Pooling::Mean, false),
        }
    }

    /// Sentence embeddings, pooled and normalized as [`Pipeline::sentence_pooling`] says.
    pub fn sentence_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let (pooling, normalize) = self.sentence_pooling();
        self.embeddings(texts, pooling, normalize)
    }

    /// Pooled embeddings with explicit pooling.
    pub fn embeddings(
        &self,
        texts: &[&str],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        Ok(self
            .feature_extraction(texts, Some(pooling), normalize)?
            .into_iter()
            .map(|f| match f {
                Features::Pooled(v) => v,
                Features::Tokens(_) => unreachable!("pooling was requested"),
            })
            .collect())
    }

    /// fill-mask: for each text, for each mask token in it, the `top_k` best tokens.
    pub fn fill_mask(
        &self,
        texts: &[&str],
        top_k: usize,
    ) -> Result<Vec<Vec<Vec<FillMaskPrediction>>>> {
        self.expect_task(Task::FillMask)?;
        let model = self.encoder(Head::MaskedLm)?;
        let (mask_token, mask_id) = self
            .tok()?
            .mask
            .clone()
            .ok_or_else(|| Error::InvalidInput("the tokenizer has no mask token".into()))?;
        let top_k = top_k.max(1);
        self.chunked(texts, |chunk, batch| {
            let ids: Vec<Vec<u32>> = batch
                .encodings
                .iter()
                .map(|e| e.get_ids().to_vec())
                .collect();
            // Find the masks first, so that a text without one fails before the forward pass.
            let positions: Vec<Vec<usize>> = ids
                .iter()
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .filter(|(_, &t)| t == mask_id)
                        .map(|(i, _)| i)
                        .collect()
                })
                .collect();
            for ((text, pos), enc) in chunk.iter().zip(&positions).zip(&batch.encodings) {
                if pos.is_empty() {
                    let cut = !enc.get_overflowing().is_empty() && text.contains(mask_token.as_str());
                    return Err(Error::InvalidInput(if cut {
                        format!(
                            "the mask token `{mask_token}` is past the first {} tokens the model reads, and was cut off with the rest of the input: shorten it",
                            self.tok()?.max_length
                        )
                    } else {
                        format!("no mask token `{mask_token}` in {text:?}: fill-mask needs one")
                    }));
                }
            }
            let hidden = model.hidden_states(&batch)?;
            let mut out = Vec::with_capacity(chunk.len());
            for (i, pos) in positions.iter().enumerate() {
                let rows: Vec<Tensor> = pos
                    .iter()
                    .map(|&p| hidden.get(i)?.get(p))
                    .collect::<candle_core::Result<_>>()?;
                let logits = model
                    .head_logits(&Tensor::stack(&rows, 0)?.unsqueeze(0)?)?
                    .squeeze(0)?;
                let probs = families::nn::softmax_rows(&logits)?;
                let single = pos.len() == 1;
                let mut per_mask = Vec::with_capacity(pos.len());
                for (m, &p) in pos.iter().enumerate() {
                    let best = top_indices(&probs[m], top_k);
                    let mut preds = Vec::with_capacity(best.len());
                    for (token, score) in best {
                        let mut seq = ids[i].clone();
                        seq[p] = token;
                        let pad = self.tok()?.pad_id;
                        seq.retain(|&t| t != pad);
                        preds.push(FillMaskPrediction {
                            score,
                            token,
                            token_str: self.tok()?.decode(&[token], false)?,
                            sequence: self.tok()?.decode(&seq, single)?,
                        });
                    }
                    per_mask.push(preds);
                }
                out.push(per_mask);
            }
            Ok(out)
        })
    }

    /// text-classification: each text's labels with scores, best first.
    pub fn text_classification(&self, texts: &[&str], top_k: TopK) -> Result<Vec<Vec<LabelScore>>> {
        self.expect_task(Task::TextClassification)?;
        let model = self.encoder(Head::SequenceClassification)?;
        self.chunked(texts, |_, batch| {
            let logits = model.head_logits(&model.hidden_states(&batch)?)?;
            let logits: Vec<Vec<f32>> = logits
                .to_dtype(candle_core::DType::F32)?
                .to_device(&Device::Cpu)?
                .to_vec2()?;
            ensure_finite(
                logits.iter().map(Vec::as_slice),
                "a text-classification logit",
            )?;
            Ok(logits
                .iter()
                .map(|row| self.rank(&self.apply_score_fn(row), top_k))
                .collect())
        })
    }

    fn apply_score_fn(&self, row: &[f32]) -> Vec<f32> {
        match self.score_fn {
            ScoreFn::Identity => row.to_vec(),
            ScoreFn::Sigmoid => row.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
            ScoreFn::Softmax => softmax(row),
        }
    }

    /// token-classification (aggregation `none`): every non-special token whose best
    /// label is not `O`.
    pub fn token_classification(&self, texts: &[&str]) -> Result<Vec<Vec<TokenEntity>>> {
        self.expect_task(Task::TokenClassification)?;
        let model = self.encoder(Head::TokenClassification)?;
        self.chunked(texts, |chunk, batch| {
            let logits = model.head_logits(&model.hidden_states(&batch)?)?;
            let logits = logits
                .to_dtype(candle_core::DType::F32)?
                .to_device(&Device::Cpu)?;
            let mut out = Vec::with_capacity(chunk.len());
            for (i, enc) in batch.encodings.iter().enumerate() {
                let rows: Vec<Vec<f32>> =
                    logits.get(i)?.narrow(0, 0, batch.lengths[i])?.to_vec2()?;
                ensure_finite(
                    rows.iter().map(Vec::as_slice),
                    "a token-classification logit",
                )?;
                let text = chunk[i];
                let chars: Vec<char> = text.chars().collect();
                let mut entities = Vec::new();
                for (idx, row) in rows.iter().enumerate() {
                    if enc.get_special_tokens_mask()[idx] == 1 {
                        continue;
                    }
                    let probs = softmax(row);
                    let (best, score) = argmax(&probs);
                    let entity = self
                        .labels
                        .get(best)
                        .cloned()
                        .unwrap_or_else(|| format!("LABEL_{best}"));
                    if entity == "O" {
                        continue;
                    }
                    let (start, end) = enc.get_offsets()[idx];
                    let id = enc.get_ids()[idx];
                    let word = if self.tok()?.unk_id == Some(id) {
                        chars[start.min(chars.len())..end.min(chars.len())]
                            .iter()
                            .collect()
                    } else {
                        self.tok()?.id_to_token(id).unwrap_or_default()
                    };
                    entities.push(TokenEntity {
                        entity,
                        score,
                        index: idx,
                        word,
                        start,
                        end,
                    });
                }
                out.push(entities);
            }
            Ok(out)
        })
    }
}
