//! The model families. Each is written once and serves every model type whose
//! architecture it covers (`model_types.json` records which). Dispatch goes from the
//! [`Family`] enum, so a family named in the metadata without an implementation here
//! does not compile.

pub(crate) mod bert;
pub(crate) mod causal;
pub(crate) mod clip;
pub(crate) mod config;
pub(crate) mod encoder;
pub(crate) mod gpt;
pub(crate) mod heads;
pub(crate) mod kernels;
pub(crate) mod llama;
pub(crate) mod llava;
pub(crate) mod nn;
pub(crate) mod stepper;
pub(crate) mod t5;
pub(crate) mod vit;
pub(crate) mod wav2vec2;
pub(crate) mod whisper;

pub(crate) use causal::CausalLm;
pub(crate) use config::ConfigReader;
pub(crate) use heads::{EncoderModel, Head};

use candle_core::Device;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::{Family, Task};

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
