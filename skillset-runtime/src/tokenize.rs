//! Tokenization: tokenizer.json through the `tokenizers` crate (the library behind
//! transformers' fast tokenizers), with the special tokens and decoding options of
//! tokenizer_config.json.
//!
//! Special tokens are added as transformers 5.23 adds them: tokenizer.json's
//! post-processor decides (`add_bos_token` / `add_eos_token` in tokenizer_config.json are
//! dropped when a tokenizer.json is there, as `PreTrainedTokenizerBase._from_pretrained`
//! does), except for the tokenizer classes that rebuild their post-processor from their
//! own defaults: `GPTNeoXTokenizer` adds nothing, `CodeLlamaTokenizer` adds its BOS.

use candle_core::{Device, Tensor};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};

/// A checkpoint's tokenizer and the special tokens the tasks need.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    /// Truncates to `max_length` (the encoder tasks).
    inner: Tokenizer,
    /// The same tokenizer without truncation (generation prompts: transformers'
    /// text-generation pipeline does not truncate them).
    untruncated: Tokenizer,
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
    /// The special tokens by name (`bos_token`, `eos_token`, ... from
    /// tokenizer_config.json / special_tokens_map.json), as chat templates see them.
    pub special_tokens: Vec<(String, String)>,
    /// For a model without a position limit whose tokenizer sets no real
    /// `model_max_length` (T5 checkpoints whose limit is transformers' 1e30 sentinel):
    /// the budget's ceiling on input tokens; longer inputs are errors.
    pub ceiling: Option<usize>,
    /// The model's vocabulary (config.json's `vocab_size`): an id at or beyond it would
    /// index past the embeddings.
    pub model_vocab: Option<usize>,
}

/// The named special tokens transformers passes to chat templates
/// (`SPECIAL_TOKENS_ATTRIBUTES`).
const SPECIAL_TOKEN_NAMES: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

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

/// A post-processor from its single and pair templates (a tokenizer class's own, where
/// transformers rebuilds it over tokenizer.json's).
fn template(
    single: String,
    pair: String,
    specials: Vec<(String, u32)>,
) -> Result<TemplateProcessing> {
    TemplateProcessing::builder()
        .try_single(single)
        .and_then(|b| b.try_pair(pair))
        .map_err(|e| Error::Tokenizer(e.to_string()))?
        .special_tokens(specials)
        .build()
        .map_err(|e| Error::Tokenizer(e.to_string()))
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

        // transformers 5.23 skips the clean-up for BPE models (it would strip real
        // spaces before punctuation) unless the config insists.
        let is_bpe = matches!(inner.get_model(), tokenizers::ModelWrapper::BPE(_));
        let flag = |k: &str| tok_config.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
        let clean_up_spaces = flag("clean_up_tokenization_spaces")
            && (!is_bpe
                || flag("clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output"));

        let class = tok_config
            .get("tokenizer_class")
            .and_then(|v| v.as_str())
            .map(|c| c.trim_end_matches("Fast").to_string());
        match class.as_deref() {
            // Rebuilt from the class defaults after loading: no special tokens.
            Some("GPTNeoXTokenizer") => {
                inner.with_post_processor(None::<TemplateProcessing>);
            }
            // `add_bos_token=True` is the class's default, passed explicitly.
            Some("CodeLlamaTokenizer") => {
                if let Some((bos, id)) =
                    special("bos_token").and_then(|t| id_of(&t).map(|i| (t, i)))
                {
                    inner.with_post_processor(Some(template(
                        format!("{bos}:0 $A:0"),
                        format!("{bos}:0 $A:0 {bos}:1 $B:1"),
                        vec![(bos, id)],
                    )?));
                }
            }
            // Rebuilt in the class's `__init__` whatever tokenizer.json says (5.23 saves
            // an empty template): `[CLS] A [SEP]`, `[CLS] A [SEP] B [SEP]`.
            Some("RemBertTokenizer") => {
                let token = |name: &str, default: &str| {
                    let t = special(name).unwrap_or_else(|| default.to_string());
                    id_of(&t).map(|id| (t, id))
                };
                if let (Some((cls, cls_id)), Some((sep, sep_id))) =
                    (token("cls_token", "[CLS]"), token("sep_token", "[SEP]"))
                {
                    inner.with_post_processor(Some(template(
                        format!("{cls}:0 $A:0 {sep}:0"),
                        format!("{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1"),
                        vec![(cls, cls_id), (sep, sep_id)],
                    )?));
                }
            }
            _ => {}
        }

        let mut special_tokens = Vec::new();
        for name in SPECIAL_TOKEN_NAMES {
            if let Some(t) = special(name) {
                special_tokens.push((name.to_string(), t));
            }
        }
        // Model-specific named tokens (`extra_special_tokens` as a map, e.g. `image_token`).
        if let Some(extra) = tok_config
            .get("extra_special_tokens")
            .and_then(|v| v.as_object())
        {
            for (name, v) in extra {
                if let Some(t) = token_content(v) {
                    special_tokens.push((name.clone(), t));
                }
            }
        }

        let model_max = tok_config
            .get("model_max_length")
            .and_then(|v| v.as_f64())
            .filter(|v| *v >= 1.0 && *v < 1e12)
            .map(|v| v as usize)
            .unwrap_or(usize::MAX);
        let max_length = max_length.min(model_max).max(2);

        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let untruncated = inner.clone();
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
            untruncated,
            pad_id,
            mask,
            unk_id,
            clean_up_spaces,
            max_length,
            special_tokens,
            ceiling: None,
            model_vocab: None,
        })
    }

    /// Every id within the model's vocabulary (see [`TextTokenizer::model_vocab`]).
    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        if let Some(vocab) = self.model_vocab {
            if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(Error::InvalidInput(format!(
                    "the tokenizer gives token id {id} ({:?}), beyond the model's vocabulary of {vocab} (config.json's `vocab_size`): tokenizer.json and the weights do not belong together",
                    self.inner.id_to_token(id).unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// Apply the budget's ceiling on input tokens when nothing else limits them (see
    /// [`TextTokenizer::ceiling`]).
    pub fn apply_ceiling(&mut self, max_input_tokens: usize) {
        if self.max_length == usize::MAX {
            self.ceiling = Some(max_input_tokens);
        }
    }

    /// Encode a generation prompt as transformers' text-generation pipeline does: the
    /// tokenizer's defaults (its post-processor's special tokens, a BOS where the
    /// checkpoint's tokenizer adds one), no truncation. `add_special_tokens: false` is
    /// `apply_chat_template`'s encoding of a rendered chat (the template writes them).
    pub fn encode_prompt(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let ids = self
            .untruncated
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .get_ids()
            .to_vec();
        self.check_ids(&ids)?;
        Ok(ids)
    }

    /// The id of a named special token (`bos_token`, `eos_token`, ...), if the
    /// tokenizer has it.
    pub fn special_token_id(&self, name: &str) -> Option<u32> {
        self.special_tokens
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| self.inner.token_to_id(t))
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
        for e in &encodings {
            self.check_ids(e.get_ids())?;
        }
        if let Some(ceiling) = self.ceiling {
            if let Some(e) = encodings.iter().find(|e| e.get_ids().len() > ceiling) {
                return Err(Error::OverLimit {
                    what: "input tokens (the model has no position limit and the tokenizer no model_max_length)".into(),
                    value: e.get_ids().len() as u128,
                    limit: ceiling as u128,
                    field: "max_input_tokens".into(),
                });
            }
        }
        let truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        if truncated > 0 {
            tracing::info!(
                "{truncated} of {} inputs were longer than {} tokens and were truncated to fit the model (transformers' pipelines fail on such inputs; sentence-transformers truncates them so)",
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
