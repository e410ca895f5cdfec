//! The text tasks of encoder models (and of decoders read as encoders): features,
//! fill-mask, text and token classification.

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};

use crate::families::{self, EncoderModel};
use crate::ops::{argmax, ensure_finite, softmax, to_json, top_indices};
use crate::outputs::{Features, FillMaskPrediction, LabelScore, TokenEntity};
use crate::pooling::{self, Pooling, SentenceTransformersConfig};
use crate::tokenize::{EncodedBatch, TextTokenizer};

use super::handler::{chunked, json_each, Context, Handler, Inputs, Labels, ScoreFn};
use super::options::{PoolingChoice, RunOptions, TopK};

/// feature-extraction on a text encoder.
pub(crate) struct FeatureExtractor {
    pub model: Box<dyn EncoderModel>,
    pub tok: TextTokenizer,
    /// The pooling and normalization of a sentence-transformers directory.
    pub sentence_transformers: Option<SentenceTransformersConfig>,
}

impl FeatureExtractor {
    /// feature-extraction: the last hidden states of each text, per token (special
    /// tokens included), or pooled into one vector.
    pub fn feature_extraction(
        &self,
        cx: &Context,
        texts: &[&str],
        pooling: Option<Pooling>,
        normalize: bool,
    ) -> Result<Vec<Features>> {
        let model = self.model.as_ref();
        chunked(cx, &self.tok, texts, |_, batch| {
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
        self.model.hidden_states(batch)
    }

    /// `texts` with the sentence-transformers prompt put before each, as
    /// `SentenceTransformer.encode` puts it: the prompt called `name`, else the
    /// directory's default prompt; the texts as they are when there is none. Naming a
    /// prompt of a checkpoint that has no prompts is an error.
    pub fn prompted(&self, texts: &[&str], name: Option<&str>) -> Result<Vec<String>> {
        let prompt = match (&self.sentence_transformers, name) {
            (Some(st), name) => st.prompt(name)?,
            (None, Some(name)) => {
                return Err(Error::InvalidOption(format!(
                    "prompt `{name}`: the checkpoint is not a sentence-transformers directory with prompts (config_sentence_transformers.json)"
                )))
            }
            (None, None) => None,
        };
        Ok(texts
            .iter()
            .map(|t| format!("{}{t}", prompt.unwrap_or_default()))
            .collect())
    }

    /// Pooled embeddings with explicit pooling.
    pub fn embeddings(
        &self,
        cx: &Context,
        texts: &[&str],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        Ok(self
            .feature_extraction(cx, texts, Some(pooling), normalize)?
            .into_iter()
            .map(|f| match f {
                Features::Pooled(v) => v,
                Features::Tokens(_) => unreachable!("pooling was requested"),
            })
            .collect())
    }
}

/// fill-mask on a masked LM.
pub(crate) struct MaskFiller {
    pub model: Box<dyn EncoderModel>,
    pub tok: TextTokenizer,
    /// The mask token and its id (checked at load: fill-mask needs one).
    pub mask: (String, u32),
}

impl MaskFiller {
    /// fill-mask: for each text, for each mask token in it, the `top_k` best tokens.
    pub fn fill_mask(
        &self,
        cx: &Context,
        texts: &[&str],
        top_k: usize,
    ) -> Result<Vec<Vec<Vec<FillMaskPrediction>>>> {
        let model = self.model.as_ref();
        let (mask_token, mask_id) = self.mask.clone();
        let top_k = top_k.max(1);
        chunked(cx, &self.tok, texts, |chunk, batch| {
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
                    let cut =
                        !enc.get_overflowing().is_empty() && text.contains(mask_token.as_str());
                    return Err(Error::InvalidInput(if cut {
                        format!(
                            "the mask token `{mask_token}` is past the first {} tokens the model reads, and was cut off with the rest of the input: shorten it",
                            self.tok.max_length
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
                        let pad = self.tok.pad_id;
                        seq.retain(|&t| t != pad);
                        preds.push(FillMaskPrediction {
                            score,
                            token,
                            token_str: self.tok.decode(&[token], false)?,
                            sequence: self.tok.decode(&seq, single)?,
                        });
                    }
                    per_mask.push(preds);
                }
                out.push(per_mask);
            }
            Ok(out)
        })
    }
}

/// text-classification on a sequence classifier.
pub(crate) struct TextClassifier {
    pub model: Box<dyn EncoderModel>,
    pub tok: TextTokenizer,
    pub labels: Labels,
    pub score_fn: ScoreFn,
}

impl TextClassifier {
    /// text-classification: each text's labels with scores, best first.
    pub fn text_classification(
        &self,
        cx: &Context,
        texts: &[&str],
        top_k: TopK,
    ) -> Result<Vec<Vec<LabelScore>>> {
        let model = self.model.as_ref();
        chunked(cx, &self.tok, texts, |_, batch| {
            let logits = model.sequence_logits(&batch)?;
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
                .map(|row| self.labels.rank(&self.score_fn.apply(row), top_k))
                .collect())
        })
    }
}

/// token-classification on a token classifier.
pub(crate) struct TokenClassifier {
    pub model: Box<dyn EncoderModel>,
    pub tok: TextTokenizer,
    pub labels: Labels,
}

impl TokenClassifier {
    /// token-classification (aggregation `none`): every non-special token whose best
    /// label is not `O`.
    pub fn token_classification(
        &self,
        cx: &Context,
        texts: &[&str],
    ) -> Result<Vec<Vec<TokenEntity>>> {
        let model = self.model.as_ref();
        chunked(cx, &self.tok, texts, |chunk, batch| {
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
                    let entity = self.labels.name(best);
                    if entity == "O" {
                        continue;
                    }
                    let (start, end) = enc.get_offsets()[idx];
                    let id = enc.get_ids()[idx];
                    let word = if self.tok.unk_id == Some(id) {
                        chars[start.min(chars.len())..end.min(chars.len())]
                            .iter()
                            .collect()
                    } else {
                        self.tok.id_to_token(id).unwrap_or_default()
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

impl Handler for FeatureExtractor {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let texts = inputs.texts(cx.task)?;
        let (pooling, normalize) = match opts.pooling {
            PoolingChoice::None => (None, false),
            PoolingChoice::Pool(p) => (Some(p), opts.normalize),
            PoolingChoice::Auto => match &self.sentence_transformers {
                Some(st) => (Some(st.pooling), st.normalize || opts.normalize),
                None => (None, false),
            },
        };
        // sentence-transformers' embeddings take its prompts (the default one too);
        // other outputs only a prompt named.
        let st_embeddings =
            opts.pooling == PoolingChoice::Auto && self.sentence_transformers.is_some();
        let prompted = if st_embeddings || opts.prompt_name.is_some() {
            Some(self.prompted(texts, opts.prompt_name.as_deref())?)
        } else {
            None
        };
        let prompted: Option<Vec<&str>> = prompted
            .as_ref()
            .map(|p| p.iter().map(String::as_str).collect());
        let texts = prompted.as_deref().unwrap_or(texts);
        if pooling.is_none() && opts.normalize {
            return Err(Error::InvalidOption(
                "--normalize needs pooled embeddings: add --pooling mean (or cls, max)".into(),
            ));
        }
        Ok(json_each(
            &self.feature_extraction(cx, texts, pooling, normalize)?,
        ))
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
    fn sentence_transformers(&self) -> Option<&SentenceTransformersConfig> {
        self.sentence_transformers.as_ref()
    }
}

impl Handler for MaskFiller {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let texts = inputs.texts(cx.task)?;
        let k = match opts.top_k {
            Some(TopK::N(k)) => k,
            Some(TopK::All) => usize::MAX,
            None => 5,
        };
        let k = k.min(self.tok.inner().get_vocab_size(true));
        Ok(self
            .fill_mask(cx, texts, k)?
            .iter()
            .map(|per_mask| {
                if per_mask.len() == 1 {
                    to_json(&per_mask[0])
                } else {
                    to_json(per_mask)
                }
            })
            .collect())
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
}

impl Handler for TextClassifier {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let texts = inputs.texts(cx.task)?;
        Ok(json_each(&self.text_classification(
            cx,
            texts,
            opts.top_k.unwrap_or(TopK::N(1)),
        )?))
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
    fn labels(&self) -> &[String] {
        &self.labels.0
    }
}

impl Handler for TokenClassifier {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        _opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let texts = inputs.texts(cx.task)?;
        Ok(json_each(&self.token_classification(cx, texts)?))
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
    fn labels(&self) -> &[String] {
        &self.labels.0
    }
}
