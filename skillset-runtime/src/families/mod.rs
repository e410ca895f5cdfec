//! The model families. Each is written once and serves every model type whose
//! architecture it covers (`model_types.json` records which). Dispatch goes from the
//! [`Family`] enum, so a family named in the metadata without an implementation here
//! does not compile.

pub(crate) mod bert;
pub(crate) mod causal;
pub(crate) mod clip;
pub(crate) mod encoder;
pub(crate) mod gpt;
pub(crate) mod kernels;
pub(crate) mod llama;
pub(crate) mod llava;
pub(crate) mod nn;
pub(crate) mod t5;
pub(crate) mod vit;
pub(crate) mod wav2vec2;
pub(crate) mod whisper;

pub(crate) use causal::CausalLm;

use std::path::PathBuf;

use candle_core::{Device, Tensor};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::{Family, Task};

/// Which head an encoder was loaded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    None,
    MaskedLm,
    SequenceClassification,
    TokenClassification,
}

/// An encoder-only model: hidden states plus one task head.
pub(crate) trait EncoderModel: Send + Sync {
    /// Last hidden states `[batch, len, hidden]`.
    fn hidden_states(&self, batch: &crate::tokenize::EncodedBatch) -> Result<Tensor>;
    /// The head it was loaded with.
    fn head(&self) -> Head;
    /// The head's logits from the hidden states: `[batch, len, vocab]` (masked LM),
    /// `[batch, labels]` (sequence) or `[batch, len, labels]` (token classification).
    fn head_logits(&self, hidden: &Tensor) -> Result<Tensor>;
    /// The longest input, in tokens, it can take.
    fn max_positions(&self) -> usize;
}

/// A loaded model of any family.
pub(crate) enum Model {
    Encoder(Box<dyn EncoderModel>),
    Causal(Box<dyn CausalLm>),
    T5(Box<t5::T5Model>),
    Vit(Box<vit::VitModel>),
    Clip(Box<clip::ClipModel>),
    /// A CLIP / SigLIP vision tower alone (image-feature-extraction).
    ClipVision(Box<clip::VisionTower>),
    Wav2Vec2(Box<wav2vec2::Wav2Vec2>),
    Whisper(Box<whisper::Whisper>),
    Llava(Box<llava::LlavaModel>),
}

impl Model {
    /// The longest input, in tokens, the model takes.
    pub fn max_positions(&self) -> usize {
        match self {
            Model::Encoder(m) => m.max_positions(),
            Model::Causal(m) => m.max_positions(),
            // Relative positions: no limit of its own (the tokenizer's applies).
            Model::T5(_) => usize::MAX,
            Model::Vit(_) => usize::MAX,
            Model::Clip(m) => m.max_positions(),
            Model::ClipVision(_) => usize::MAX,
            Model::Wav2Vec2(_) => usize::MAX,
            Model::Whisper(m) => m.max_target_positions,
            Model::Llava(m) => m.llm.max_positions(),
        }
    }
}

/// Load the model for `task` from a checkpoint of `family`, following `architecture`
/// (the class transformers would load, e.g. `RobertaForMaskedLM`).
pub(crate) fn load(
    family: Family,
    architecture: &str,
    ckpt: &Checkpoint,
    task: Task,
    dtype: candle_core::DType,
    device: &Device,
) -> Result<Model> {
    let config = ConfigReader::new(ckpt);
    let files = ckpt.weight_files()?;
    let weights = nn::Weights {
        vb: ckpt.var_builder(dtype, device)?,
        path: files[0].clone(),
    };
    // Each family runs these tasks; the loaders below take the task as given.
    let runs = match family {
        Family::Bert => matches!(
            task,
            Task::FeatureExtraction
                | Task::FillMask
                | Task::TextClassification
                | Task::TokenClassification
        ),
        Family::Gpt | Family::Llama => task == Task::TextGeneration,
        Family::T5 => task == Task::Text2TextGeneration,
        Family::Vit => matches!(
            task,
            Task::ImageClassification | Task::ImageFeatureExtraction
        ),
        Family::Clip => matches!(
            task,
            Task::ZeroShotImageClassification | Task::ImageFeatureExtraction
        ),
        Family::Wav2Vec2 => matches!(
            task,
            Task::AutomaticSpeechRecognition | Task::AudioClassification
        ),
        Family::Whisper => task == Task::AutomaticSpeechRecognition,
        Family::Llava => task == Task::ImageTextToText,
    };
    if !runs {
        return Err(Error::InvalidOption(format!(
            "the {family} family does not run `{task}`"
        )));
    }
    Ok(match family {
        Family::Bert => Model::Encoder(Box::new(bert::load(
            architecture,
            &config,
            &weights,
            task,
            device,
        )?)),
        Family::Gpt => Model::Causal(Box::new(gpt::load(
            architecture,
            &config,
            &weights,
            dtype,
            device,
        )?)),
        Family::Llama => Model::Causal(Box::new(llama::load(
            architecture,
            &config,
            &weights,
            dtype,
            device,
        )?)),
        Family::T5 => Model::T5(Box::new(t5::load(
            architecture,
            &config,
            &weights,
            dtype,
            device,
        )?)),
        Family::Vit => Model::Vit(Box::new(vit::load(architecture, &config, &weights, task)?)),
        Family::Clip if task == Task::ImageFeatureExtraction => Model::ClipVision(Box::new(
            clip::load_vision_model(architecture, &config, &weights)?,
        )),
        Family::Clip => Model::Clip(Box::new(clip::load(architecture, &config, &weights)?)),
        Family::Wav2Vec2 => Model::Wav2Vec2(Box::new(wav2vec2::load(
            architecture,
            &config,
            &weights,
            task,
        )?)),
        Family::Whisper => Model::Whisper(Box::new(whisper::load(&config, &weights)?)),
        Family::Llava => Model::Llava(Box::new(llava::load(&config, &weights, dtype, device)?)),
    })
}

/// Reads config.json fields with errors that name the file and field.
pub(crate) struct ConfigReader<'a> {
    pub value: &'a serde_json::Value,
    pub path: PathBuf,
}

impl<'a> ConfigReader<'a> {
    pub fn new(ckpt: &'a Checkpoint) -> Self {
        ConfigReader {
            value: &ckpt.config,
            path: ckpt.config_path(),
        }
    }

    pub fn invalid(&self, field: &str, reason: String) -> Error {
        Error::invalid_file(&self.path, format!("field `{field}`: {reason}"))
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        match self.value.get(key) {
            None | Some(serde_json::Value::Null) => Err(self.invalid(key, "is missing".into())),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                self.invalid(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    /// A nested configuration (`vision_config`, `text_config`), read with the same
    /// file in errors.
    pub fn sub(&self, key: &str) -> Result<ConfigReader<'a>> {
        match self.value.get(key) {
            Some(v) if v.is_object() => Ok(ConfigReader {
                value: v,
                path: self.path.clone(),
            }),
            _ => Err(self.invalid(key, "is missing (a nested configuration)".into())),
        }
    }

    /// The head count under `key`, which must divide `hidden`.
    pub fn heads(&self, key: &str, hidden: usize) -> Result<usize> {
        let heads = self.usize(key)?;
        if heads == 0 || hidden % heads != 0 {
            return Err(self.invalid(
                key,
                format!("{heads} heads do not divide the hidden size {hidden}"),
            ));
        }
        Ok(heads)
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.value.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(_) => self.usize(key),
        }
    }

    /// A number; a normalization epsilon (`*_eps`, `*_epsilon`) must be finite and not
    /// negative (a negative one turns the variance's square root into NaN).
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        let x = match self.value.get(key) {
            None | Some(serde_json::Value::Null) => return Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.invalid(key, format!("expected a number, found {v}")))?,
        };
        if (key.ends_with("eps") || key.ends_with("epsilon")) && !(x >= 0.0 && x.is_finite()) {
            return Err(self.invalid(
                key,
                format!("{x}: a normalization epsilon is a small positive number"),
            ));
        }
        Ok(x)
    }

    /// The rotary base (`rope_theta`), where it was read: positive and finite, or the
    /// rotary angles are NaN or infinite.
    pub fn check_rope_theta(&self, theta: f64) -> Result<f64> {
        if theta > 0.0 && theta.is_finite() {
            Ok(theta)
        } else {
            Err(self.invalid(
                "rope_theta",
                format!("{theta}: the rotary base must be positive"),
            ))
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        self.value
            .get(key)
            .and_then(|v| v.as_bool())
            .unwrap_or(default)
    }

    pub fn str_or(&self, key: &str, default: &'a str) -> &'a str {
        self.value
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or(default)
    }

    pub fn activation(&self, key: &str, default: &str) -> Result<nn::Activation> {
        let name = self
            .value
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or(default);
        nn::Activation::from_hf(name)
            .ok_or_else(|| self.invalid(key, format!("activation `{name}` is not supported")))
    }

    /// `id2label` in id order (`LABEL_i` where the config has none).
    pub fn labels(&self) -> Vec<String> {
        let n = self.num_labels();
        let map = self.value.get("id2label").and_then(|v| v.as_object());
        (0..n)
            .map(|i| {
                map.and_then(|m| m.get(&i.to_string()))
                    .and_then(|v| v.as_str())
                    .map(String::from)
                    .unwrap_or_else(|| format!("LABEL_{i}"))
            })
            .collect()
    }

    /// `id2label`, when there is one, names every label id from 0 to its size - 1 (a
    /// missing or extra id would label scores with the wrong names).
    pub fn check_labels(&self) -> Result<()> {
        let Some(map) = self.value.get("id2label").and_then(|v| v.as_object()) else {
            return Ok(());
        };
        let mut ids: Vec<usize> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let id = k
                .parse::<usize>()
                .map_err(|_| self.invalid("id2label", format!("key {k:?} is not a label id")))?;
            if !v.is_string() {
                return Err(self.invalid("id2label", format!("label {k} is {v}, not a name")));
            }
            ids.push(id);
        }
        ids.sort_unstable();
        if let Some(missing) = (0..ids.len()).find(|&i| ids[i] != i) {
            return Err(self.invalid(
                "id2label",
                format!(
                    "has {} labels but no id {missing} (ids must run from 0 to {})",
                    ids.len(),
                    ids.len().saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }

    /// `num_labels`: the size of `id2label`, else 2 (transformers' default).
    pub fn num_labels(&self) -> usize {
        self.value
            .get("id2label")
            .and_then(|v| v.as_object())
            .map(|m| m.len())
            .filter(|n| *n > 0)
            .or_else(|| {
                self.value
                    .get("num_labels")
                    .and_then(|v| v.as_u64())
                    .map(|n| n as usize)
            })
            .unwrap_or(2)
    }
}
