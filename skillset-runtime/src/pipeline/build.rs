//! Building a pipeline's handler: per task, the model from the family's loader and the
//! parts of the checkpoint the task reads.

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::families::{CausalLm, ConfigReader, Loading};
use crate::generation::GenerationOptions;
use crate::media::ImageProcessor;
use crate::pooling::SentenceTransformersConfig;
use crate::speech::AudioFrontEnd;
use crate::tokenize::TextTokenizer;
use crate::{Family, Task};

use super::handler::{Handler, Labels, ScoreFn};
use super::options::LoadOptions;
use super::{audio, generate, text, vision};

/// The handler of `loading.task`: the model the task needs, from the family's loader,
/// with the parts of the checkpoint the task reads.
pub(super) fn handler(
    loading: &Loading,
    ckpt: &Checkpoint,
    options: &LoadOptions,
) -> Result<Box<dyn Handler>> {
    let task = loading.task;
    let vocab = config_vocab(ckpt);
    let config = ConfigReader::new(ckpt);
    config.check_labels()?;
    let labels = || Labels(config.labels());
    // A text tokenizer truncating to `max_positions` (and a sentence-transformers
    // directory's `max_seq_length`), within the budget's ceiling.
    let tokenizer = |max_positions: usize| -> Result<TextTokenizer> {
        let max_len = SentenceTransformersConfig::read(ckpt)?
            .and_then(|s| s.max_seq_length)
            .unwrap_or(max_positions)
            .min(max_positions);
        let mut tok = TextTokenizer::load(ckpt, max_len)?;
        tok.apply_ceiling(options.limits.max_input_tokens);
        tok.model_vocab = vocab;
        Ok(tok)
    };
    let generation = || -> Result<generate::GenSetup> {
        let defaults = GenerationOptions::from_checkpoint(ckpt)?;
        if let Some(vocab) = vocab {
            defaults.check_ids(vocab, &ckpt.dir.join("generation_config.json"))?;
        }
        Ok(generate::GenSetup {
            defaults,
            vocab,
            prefix: ckpt
                .config
                .get("prefix")
                .and_then(|v| v.as_str())
                .filter(|p| !p.is_empty())
                .map(String::from),
        })
    };
    let processor = || -> Result<ImageProcessor> {
        let p = ImageProcessor::from_checkpoint(ckpt)?;
        p.check(&options.limits, &ckpt.dir.join("preprocessor_config.json"))?;
        Ok(p)
    };
    let front_end = || -> Result<AudioFrontEnd> {
        AudioFrontEnd::for_family(loading.family, ckpt)?.ok_or_else(|| {
            Error::InvalidOption(format!("the {} family reads no audio", loading.family))
        })
    };
    Ok(match task {
        Task::FeatureExtraction => {
            let model = loading.encoder()?;
            Box::new(text::FeatureExtractor {
                tok: tokenizer(model.max_positions())?,
                model,
                sentence_transformers: SentenceTransformersConfig::read(ckpt)?,
            })
        }
        Task::FillMask => {
            let model = loading.encoder()?;
            let tok = tokenizer(model.max_positions())?;
            let mask = tok.mask.clone().ok_or_else(|| {
                Error::invalid_file(
                    ckpt.dir.join("tokenizer.json"),
                    "the tokenizer has no mask token, which fill-mask needs",
                )
            })?;
            Box::new(text::MaskFiller { model, tok, mask })
        }
        Task::TextClassification => {
            let model = loading.encoder()?;
            let labels = labels();
            let score_fn = ScoreFn::of(config.str_or("problem_type", ""), labels.0.len());
            Box::new(text::TextClassifier {
                tok: tokenizer(model.max_positions())?,
                model,
                labels,
                score_fn,
            })
        }
        Task::TokenClassification => {
            let model = loading.encoder()?;
            Box::new(text::TokenClassifier {
                tok: tokenizer(model.max_positions())?,
                model,
                labels: labels(),
            })
        }
        Task::TextGeneration => {
            let model = loading.causal()?;
            Box::new(generate::TextWriter {
                tok: tokenizer(model.max_positions())?,
                writer: generate::Writer::Causal(model),
                setup: generation()?,
                chat_template: crate::chat::ChatTemplate::load(ckpt)?,
            })
        }
        Task::Text2TextGeneration => Box::new(generate::TextWriter {
            writer: generate::Writer::Seq2Seq(Box::new(loading.seq2seq()?)),
            // Relative positions: no limit of its own (the tokenizer's applies).
            tok: tokenizer(usize::MAX)?,
            setup: generation()?,
            chat_template: None,
        }),
        Task::ImageClassification => Box::new(vision::ImageClassifier {
            model: loading.vit()?,
            processor: processor()?,
            labels: labels(),
        }),
        Task::ImageFeatureExtraction => Box::new(vision::ImageFeatureExtractor {
            tower: match loading.family {
                Family::Clip => vision::Tower::Clip(Box::new(loading.vision_tower()?)),
                _ => vision::Tower::Vit(Box::new(loading.vit()?)),
            },
            processor: processor()?,
        }),
        Task::ZeroShotImageClassification => {
            let model = loading.dual_encoder()?;
            Box::new(vision::ZeroShotImageClassifier {
                tok: tokenizer(model.max_positions())?,
                model,
                processor: processor()?,
            })
        }
        Task::ImageTextToText => {
            let model = loading.vision_language()?;
            Box::new(vision::ImageTextWriter {
                tok: tokenizer(model.llm.max_positions())?,
                model,
                processor: processor()?,
                setup: generation()?,
            })
        }
        Task::AutomaticSpeechRecognition if loading.family == Family::Whisper => {
            let model = loading.speech_seq2seq()?;
            let rules = crate::speech::WhisperDecoding::load(ckpt)?;
            if let Some(vocab) = vocab {
                rules.check_ids(vocab, &ckpt.dir.join("generation_config.json"))?;
            }
            let front = front_end()?;
            let AudioFrontEnd::LogMel(mel) = &front else {
                return Err(Error::invalid_file(
                    ckpt.dir.join("preprocessor_config.json"),
                    "Whisper reads log-mel features (WhisperFeatureExtractor)",
                ));
            };
            Box::new(audio::WhisperRecognizer {
                mel: mel.clone(),
                tok: tokenizer(model.max_target_positions)?,
                model,
                rules,
                front,
            })
        }
        Task::AutomaticSpeechRecognition => Box::new(audio::CtcRecognizer {
            encoder: audio::SpeechEncoder {
                model: loading.speech_encoder()?,
                front: front_end()?,
            },
            vocab: crate::speech::CtcVocab::load(ckpt)?,
        }),
        Task::AudioClassification => Box::new(audio::AudioClassifier {
            encoder: audio::SpeechEncoder {
                model: loading.speech_encoder()?,
                front: front_end()?,
            },
            labels: labels(),
        }),
        // The registry lists no family running these (every class it lists has a
        // fixture that the conformance tests load for its task).
        other => {
            return Err(Error::UnsupportedTask {
                scope: format!("family `{}`", loading.family),
                task: other,
                supported: vec![],
            })
        }
    })
}

/// The model's vocabulary size from config.json (or its text config).
fn config_vocab(ckpt: &Checkpoint) -> Option<usize> {
    let v = ckpt.config.get("vocab_size").or_else(|| {
        ckpt.config
            .get("text_config")
            .and_then(|t| t.get("vocab_size"))
    })?;
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}
