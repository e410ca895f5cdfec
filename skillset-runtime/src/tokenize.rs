//! Tokenization: tokenizer.json through the `tokenizers` crate (the library behind
//! transformers' fast tokenizers), with the special tokens and decoding options of
//! tokenizer_config.json.

use candle_core::{Device, Tensor};
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};

/// A checkpoint's tokenizer and the special tokens the tasks need.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    /// Id used to pad a batch.
    pub pad_id: u32,
    /// The mask token (`[MASK]`, `<mask>`) and its id, where the tokenizer has one.
    pub mask: Option<(String, u32)>,
    /// The unknown token's id.
    pub unk_id: Option<u32>,
    /// transformers' `clean_up_tokenization_spaces` (` .` -> `.` etc. after decoding).
    pub clean_up_spaces: bool,
    /// Inputs longer than this many tokens are truncated.
    pub max_length: usize,
}

/// A padded batch of encoded texts.
#[derive(Debug)]
pub struct EncodedBatch {
    /// `u32 [batch, len]`.
    pub input_ids: Tensor,
    /// `u32 [batch, len]`.
    pub type_ids: Tensor,
    /// `u32 [batch, len]`, 1 for real tokens and 0 for padding.
    pub attention_mask: Tensor,
    /// Real (unpadded) length of each row.
    pub lengths: Vec<usize>,
    pub encodings: Vec<Encoding>,
}

fn token_content(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
        _ => None,
    }
}

impl TextTokenizer {
    /// Load tokenizer.json (plus tokenizer_config.json / special_tokens_map.json when
    /// present). `max_length` caps the input length (the model's positions).
    pub fn load(ckpt: &Checkpoint, max_length: usize) -> Result<Self> {
        let mut inner = ckpt.tokenizer()?;
        let tok_config = ckpt.json("tokenizer_config.json")?.unwrap_or_default();
        let special_map = ckpt.json("special_tokens_map.json")?.unwrap_or_default();
        let special = |name: &str| -> Option<String> {
            tok_config
                .get(name)
                .and_then(token_content)
                .or_else(|| special_map.get(name).and_then(token_content))
        };
        let id_of = |tok: &str| inner.token_to_id(tok);

        let mask = special("mask_token")
            .or_else(|| {
                ["[MASK]", "<mask>"]
                    .iter()
                    .find(|t| id_of(t).is_some())
                    .map(|t| t.to_string())
            })
            .and_then(|t| id_of(&t).map(|id| (t, id)));

        let unk_id = special("unk_token")
            .and_then(|t| id_of(&t))
            .or_else(|| ["[UNK]", "<unk>"].iter().find_map(|t| id_of(t)));

        let pad_id = ckpt
            .config
            .get("pad_token_id")
            .and_then(|v| v.as_u64())
            .map(|v| v as u32)
            .or_else(|| special("pad_token").and_then(|t| id_of(&t)))
            .or_else(|| inner.get_padding().map(|p| p.pad_id))
            .unwrap_or(0);

        let clean_up_spaces = tok_config
            .get("clean_up_tokenization_spaces")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);

        let model_max = tok_config
            .get("model_max_length")
            .and_then(|v| v.as_f64())
            .filter(|v| *v >= 1.0 && *v < 1e12)
            .map(|v| v as usize)
            .unwrap_or(usize::MAX);
        let max_length = max_length.min(model_max).max(2);

        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TextTokenizer {
            inner,
            pad_id,
            mask,
            unk_id,
            clean_up_spaces,
            max_length,
        })
    }

    /// The underlying `tokenizers::Tokenizer`.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Encode texts with special tokens and pad them to the longest.
    pub fn encode_batch(&self, texts: &[&str], device: &Device) -> Result<EncodedBatch> {
        let encodings = self.encode_all(texts)?;
        self.pad(encodings, device)
    }

    /// Encode texts with special tokens (truncated to the model's length), unpadded.
    pub fn encode_all(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        if texts.is_empty() {
            return Err(Error::InvalidInput("no input text".into()));
        }
        let encodings = self
            .inner
            .encode_batch_char_offsets(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        if truncated > 0 {
            tracing::info!(
                "{truncated} of {} inputs were longer than {} tokens and were truncated to fit the model, as transformers does",
                texts.len(),
                self.max_length
            );
        }
        Ok(encodings)
    }

    /// Pad already-encoded texts into a batch.
    pub fn pad(&self, encodings: Vec<Encoding>, device: &Device) -> Result<EncodedBatch> {
        let lengths: Vec<usize> = encodings.iter().map(|e| e.get_ids().len()).collect();
        let len = lengths.iter().copied().max().unwrap_or(0).max(1);
        let b = encodings.len();
        let mut ids = Vec::with_capacity(b * len);
        let mut types = Vec::with_capacity(b * len);
        let mut mask = Vec::with_capacity(b * len);
        for e in &encodings {
            let n = e.get_ids().len();
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, len - n));
            types.extend_from_slice(e.get_type_ids());
            types.extend(std::iter::repeat_n(0, len - n));
            mask.extend(std::iter::repeat_n(1u32, n));
            mask.extend(std::iter::repeat_n(0u32, len - n));
        }
        Ok(EncodedBatch {
            input_ids: Tensor::from_vec(ids, (b, len), device)?,
            type_ids: Tensor::from_vec(types, (b, len), device)?,
            attention_mask: Tensor::from_vec(mask, (b, len), device)?,
            lengths,
            encodings,
        })
    }

    /// Decode ids to text the way transformers' `tokenizer.decode` does.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let text = self
            .inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// The vocabulary string of an id (transformers' `convert_ids_to_tokens`).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// transformers' `PreTrainedTokenizerBase.clean_up_tokenization`.
pub fn clean_up_tokenization(s: &str) -> String {
    s.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}
