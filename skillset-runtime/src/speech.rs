//! What the audio tasks read from a checkpoint: the feature extractors in front of
//! the models (waveform, log-mel), a CTC tokenizer's vocabulary and Whisper's
//! decoding rules. The tasks themselves are in the pipeline's `audio` module.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::media::audio::{zero_mean_unit_var, Audio, LogMel};
use crate::Family;

/// Beams Whisper searches when neither the call nor generation_config.json says
/// (transformers' speech-recognition pipeline searches 5 unless told 1).
pub const WHISPER_DEFAULT_BEAMS: usize = 5;

/// What turns a waveform into the model's input, from `preprocessor_config.json`.
#[derive(Debug, Clone)]
pub enum AudioFrontEnd {
    /// `Wav2Vec2FeatureExtractor`: the waveform, optionally normalized per utterance.
    Waveform {
        sampling_rate: u32,
        normalize: bool,
        /// Whether the model takes an attention mask (`return_attention_mask`).
        attention_mask: bool,
    },
    /// `WhisperFeatureExtractor`: log-mel spectrograms of fixed-length windows.
    LogMel(LogMel),
}

impl AudioFrontEnd {
    pub(crate) fn for_family(family: Family, ckpt: &Checkpoint) -> Result<Option<Self>> {
        if !family.reads_audio() {
            return Ok(None);
        }
        let path = ckpt.dir.join("preprocessor_config.json");
        let config = ckpt
            .json("preprocessor_config.json")?
            .ok_or_else(|| Error::MissingFile {
                path: path.clone(),
                what: "preprocessor_config.json",
                hint: Some("a speech model's checkpoint ships its feature extractor's settings in preprocessor_config.json (AutoFeatureExtractor.save_pretrained writes it)".into()),
            })?;
        let num = |k: &str, default: u64| -> Result<u64> {
            match config.get(k) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => v.as_u64().ok_or_else(|| {
                    Error::invalid_file(
                        &path,
                        format!("field `{k}`: expected a positive integer, found {v}"),
                    )
                }),
            }
        };
        let sampling_rate = num("sampling_rate", 16_000)? as u32;
        if sampling_rate == 0 {
            return Err(Error::invalid_file(&path, "field `sampling_rate`: 0 Hz"));
        }
        let flag =
            |k: &str, default: bool| config.get(k).and_then(|v| v.as_bool()).unwrap_or(default);
        Ok(Some(match family {
            Family::Whisper => AudioFrontEnd::LogMel(LogMel::new(
                num("feature_size", 80)? as usize,
                sampling_rate,
                num("hop_length", 160)? as usize,
                num("chunk_length", 30)? as usize,
                num("n_fft", 400)? as usize,
            )?),
            _ => AudioFrontEnd::Waveform {
                sampling_rate,
                normalize: flag("do_normalize", true),
                attention_mask: flag("return_attention_mask", false),
            },
        }))
    }

    /// The rate the model hears at.
    pub fn sampling_rate(&self) -> u32 {
        match self {
            AudioFrontEnd::Waveform { sampling_rate, .. } => *sampling_rate,
            AudioFrontEnd::LogMel(m) => m.sampling_rate,
        }
    }

    /// `audio` at the model's rate (resampled where needed), checked for content.
    pub fn prepare<'a>(&self, audio: &'a Audio) -> Result<Cow<'a, Audio>> {
        if audio.samples.is_empty() {
            return Err(Error::InvalidInput("the audio has no samples".into()));
        }
        let rate = self.sampling_rate();
        if audio.sample_rate == rate {
            return Ok(Cow::Borrowed(audio));
        }
        Ok(Cow::Owned(Audio {
            samples: crate::media::audio::resample(&audio.samples, audio.sample_rate, rate)?,
            sample_rate: rate,
        }))
    }

    /// Wav2Vec2's `input_values` for one utterance at the model's rate.
    pub fn input_values(&self, samples: &[f32]) -> Vec<f32> {
        match self {
            AudioFrontEnd::Waveform {
                normalize: true, ..
            } => zero_mean_unit_var(samples),
            _ => samples.to_vec(),
        }
    }
}

/// CTC models hear long audio in windows of at most this many seconds and at most
/// [`WAV2VEC2_WINDOW_FRAMES`] frames.
pub const WAV2VEC2_WINDOW_SECONDS: usize = 30;
/// See [`WAV2VEC2_WINDOW_SECONDS`].
pub const WAV2VEC2_WINDOW_FRAMES: usize = 5000;

/// A CTC tokenizer's vocabulary (`vocab.json` + `tokenizer_config.json`), decoded as
/// `Wav2Vec2CTCTokenizer` does: repeats collapsed, blanks (the pad token) dropped, the
/// word delimiter turned into a space.
#[derive(Debug, Clone)]
pub struct CtcVocab {
    tokens: Vec<String>,
    pad: String,
    word_delimiter: String,
}

impl CtcVocab {
    pub(crate) fn load(ckpt: &Checkpoint) -> Result<Self> {
        let path = ckpt.dir.join("vocab.json");
        let vocab = ckpt.json("vocab.json")?.ok_or_else(|| Error::MissingFile {
            path: path.clone(),
            what: "vocab.json",
            hint: Some("a CTC checkpoint ships its character vocabulary in vocab.json (Wav2Vec2CTCTokenizer.save_pretrained writes it)".into()),
        })?;
        let map = vocab
            .as_object()
            .ok_or_else(|| Error::invalid_file(&path, "expected an object of token -> id"))?;
        // A multilingual vocab.json nests one table per language: take the first.
        let map = match map.values().next() {
            Some(serde_json::Value::Object(inner)) => inner,
            _ => map,
        };
        let mut tokens = vec![String::new(); map.len()];
        for (tok, id) in map {
            let id = id
                .as_u64()
                .filter(|&i| (i as usize) < map.len())
                .ok_or_else(|| Error::invalid_file(&path, format!("token {tok:?}: bad id {id}")))?;
            tokens[id as usize] = tok.clone();
        }
        let config = ckpt.json("tokenizer_config.json")?.unwrap_or_default();
        let get = |k: &str, d: &str| -> String {
            match config.get(k) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Object(o)) => o
                    .get("content")
                    .and_then(|c| c.as_str())
                    .unwrap_or(d)
                    .to_string(),
                _ => d.to_string(),
            }
        };
        Ok(CtcVocab {
            tokens,
            pad: get("pad_token", "<pad>"),
            word_delimiter: get("word_delimiter_token", "|"),
        })
    }

    /// The text of one utterance's best path (one id per frame).
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        let mut prev: Option<u32> = None;
        for &id in ids {
            if prev == Some(id) {
                continue;
            }
            prev = Some(id);
            let tok = self
                .tokens
                .get(id as usize)
                .map(String::as_str)
                .unwrap_or("");
            if tok == self.pad {
                continue;
            }
            if tok == self.word_delimiter {
                out.push(' ');
            } else {
                out.push_str(tok);
            }
        }
        out.trim().to_string()
    }
}

/// Whisper's decoding rules, from `generation_config.json`.
#[derive(Debug, Clone)]
pub struct WhisperDecoding {
    pub decoder_start: u32,
    pub eos: Vec<u32>,
    pub lang_to_id: BTreeMap<String, u32>,
    pub task_to_id: BTreeMap<String, u32>,
    pub no_timestamps: Option<u32>,
    pub suppress: Vec<u32>,
    pub begin_suppress: Vec<u32>,
    pub multilingual: bool,
    /// `max_length` of the decoder sequence, prompt included.
    pub max_length: Option<usize>,
    /// Beams (generation_config.json's `num_beams`; absent: transformers' speech
    /// pipeline uses 5).
    pub num_beams: Option<usize>,
    pub length_penalty: f64,
    pub early_stopping: crate::beam::EarlyStopping,
}

impl WhisperDecoding {
    pub(crate) fn load(ckpt: &Checkpoint) -> Result<Self> {
        let path = ckpt.dir.join("generation_config.json");
        let g = ckpt.json("generation_config.json")?.ok_or_else(|| Error::MissingFile {
            path: path.clone(),
            what: "generation_config.json",
            hint: Some("Whisper's decoding rules (start-of-transcript, language and task tokens, suppressed tokens) are in generation_config.json".into()),
        })?;
        // Token ids as generation_config.json's other readers take them: an id beyond
        // u32 is an error naming the field, never truncated.
        let ids = |k: &str| crate::generation::ids_of(g.get(k), &path, k);
        let id = |k: &str| -> Result<Option<u32>> { Ok(ids(k)?.first().copied()) };
        let table = |k: &str| -> Result<BTreeMap<String, u32>> {
            let Some(m) = g.get(k).and_then(|v| v.as_object()) else {
                return Ok(BTreeMap::new());
            };
            let mut out = BTreeMap::new();
            for (name, v) in m {
                if let Some(&n) = crate::generation::ids_of(Some(v), &path, k)?.first() {
                    out.insert(name.clone(), n);
                }
            }
            Ok(out)
        };
        let decoder_start = id("decoder_start_token_id")?.ok_or_else(|| {
            Error::invalid_file(&path, "field `decoder_start_token_id` is missing")
        })?;
        let lang_to_id = table("lang_to_id")?;
        Ok(WhisperDecoding {
            decoder_start,
            eos: ids("eos_token_id")?,
            multilingual: g
                .get("is_multilingual")
                .and_then(|v| v.as_bool())
                .unwrap_or(!lang_to_id.is_empty()),
            lang_to_id,
            task_to_id: table("task_to_id")?,
            no_timestamps: id("no_timestamps_token_id")?,
            suppress: ids("suppress_tokens")?,
            begin_suppress: ids("begin_suppress_tokens")?,
            max_length: g
                .get("max_length")
                .and_then(|v| v.as_u64())
                .map(|n| n as usize),
            num_beams: g
                .get("num_beams")
                .and_then(|v| v.as_u64())
                .map(|n| (n as usize).max(1)),
            length_penalty: g
                .get("length_penalty")
                .and_then(|v| v.as_f64())
                .unwrap_or(1.0),
            early_stopping: g
                .get("early_stopping")
                .and_then(crate::beam::EarlyStopping::from_json)
                .unwrap_or_default(),
        })
    }

    /// Every token id it names within a vocabulary of `vocab` tokens (the decoder's
    /// embedding rows and logits): an id beyond it is an error naming the field, not an
    /// index error mid-decoding.
    pub(crate) fn check_ids(&self, vocab: usize, path: &std::path::Path) -> Result<()> {
        let bad = |field: &str, id: u32| {
            Error::invalid_file(
                path,
                format!(
                    "field `{field}`: token id {id} is beyond the vocabulary of {vocab} tokens"
                ),
            )
        };
        let within = |field: &str, ids: Vec<u32>| {
            ids.into_iter()
                .find(|&id| id as usize >= vocab)
                .map_or(Ok(()), |id| Err(bad(field, id)))
        };
        within("decoder_start_token_id", vec![self.decoder_start])?;
        within("lang_to_id", self.lang_to_id.values().copied().collect())?;
        within("task_to_id", self.task_to_id.values().copied().collect())?;
        within(
            "no_timestamps_token_id",
            self.no_timestamps.into_iter().collect(),
        )?;
        Ok(())
    }

    /// The language token for `en`, `<|en|>` or `english`.
    pub(crate) fn language_token(&self, language: &str) -> Result<u32> {
        let lower = language.trim().to_lowercase();
        let code = if lower.starts_with("<|") {
            lower.clone()
        } else {
            let code = LANGUAGE_NAMES
                .iter()
                .find(|(name, _)| *name == lower)
                .map(|(_, c)| *c)
                .unwrap_or(&lower);
            format!("<|{code}|>")
        };
        self.lang_to_id.get(&code).copied().ok_or_else(|| {
            let known: Vec<&str> = self
                .lang_to_id
                .keys()
                .map(|k| k.trim_start_matches("<|").trim_end_matches("|>"))
                .collect();
            Error::InvalidOption(if known.is_empty() {
                format!(
                    "language `{language}`: this checkpoint is English-only (no language tokens)"
                )
            } else {
                format!(
                    "unknown language `{language}`: this checkpoint knows {}",
                    known.join(", ")
                )
            })
        })
    }
}

/// Common language names to Whisper's codes (`--language french`).
const LANGUAGE_NAMES: &[(&str, &str)] = &[
    ("english", "en"),
    ("chinese", "zh"),
    ("german", "de"),
    ("spanish", "es"),
    ("russian", "ru"),
    ("korean", "ko"),
    ("french", "fr"),
    ("japanese", "ja"),
    ("portuguese", "pt"),
    ("turkish", "tr"),
    ("polish", "pl"),
    ("catalan", "ca"),
    ("dutch", "nl"),
    ("arabic", "ar"),
    ("swedish", "sv"),
    ("italian", "it"),
    ("indonesian", "id"),
    ("hindi", "hi"),
    ("finnish", "fi"),
    ("vietnamese", "vi"),
    ("hebrew", "he"),
    ("ukrainian", "uk"),
    ("greek", "el"),
    ("czech", "cs"),
    ("romanian", "ro"),
    ("danish", "da"),
    ("hungarian", "hu"),
    ("norwegian", "no"),
];
