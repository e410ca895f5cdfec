//! The model families. Each is written once and serves every model type whose
//! architecture it covers (`model_types.json` records which). Dispatch goes from the
//! [`Family`] enum, so a family named in the metadata without an implementation here
//! does not compile.

pub(crate) mod bert;
pub(crate) mod causal;
pub(crate) mod clip;
pub(crate) mod config;
pub(crate) mod decoder;
pub(crate) mod encoder;
pub(crate) mod gpt;
pub(crate) mod heads;
pub(crate) mod kernels;
pub(crate) mod llama;
pub(crate) mod llava;
pub(crate) mod nn;
pub(crate) mod olmo2;
pub(crate) mod phi;
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

/// Whether `family`'s loader takes the architecture class (the registry lists only
/// classes it takes: tested below).
pub(crate) fn loader_takes(family: Family, architecture: &str) -> bool {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| architecture.starts_with(p));
    match family {
        Family::Bert => bert::Flavor::of(architecture).is_some(),
        _ if delta(family, architecture).is_some() => true,
        Family::Gpt => gpt::Flavor::of(architecture).is_some(),
        Family::Llama => llama::Flavor::of(architecture).is_some(),
        Family::T5 => t5::is_mt5(architecture).is_some(),
        Family::Vit => starts(&["ViT", "DeiT", "Dinov2"]),
        Family::Clip => starts(&["CLIP", "Siglip"]),
        Family::Wav2Vec2 => wav2vec2::base_prefix(architecture).is_some(),
        Family::Whisper => starts(&["Whisper"]),
        Family::Llava => starts(&["Llava"]),
    }
}

/// A loader of a model type stated as one delta file over the shared decoder.
type DeltaLoader =
    fn(&ConfigReader, &nn::Weights, candle_core::DType, &Device) -> Result<decoder::Decoder>;

/// The model types stated as one delta file each: their family, classes and loader.
/// A new one is a file and a row here.
const DECODER_DELTAS: &[(Family, &[&str], DeltaLoader)] = &[
    (Family::Llama, olmo2::CLASSES, olmo2::load),
    (Family::Gpt, phi::CLASSES, phi::load),
];

fn delta(family: Family, architecture: &str) -> Option<DeltaLoader> {
    DECODER_DELTAS
        .iter()
        .find(|(f, classes, _)| *f == family && classes.contains(&architecture))
        .map(|(_, _, load)| *load)
}

/// A decoder-only causal LM: a delta file's model type by its loader, the others by
/// their family's.
fn load_decoder(
    family: Family,
    architecture: &str,
    config: &ConfigReader,
    weights: &nn::Weights,
    dtype: candle_core::DType,
    device: &Device,
) -> Result<decoder::Decoder> {
    if let Some(load) = delta(family, architecture) {
        return load(config, weights, dtype, device);
    }
    match family {
        Family::Gpt => gpt::load(architecture, config, weights, dtype, device),
        _ => llama::load(architecture, config, weights, dtype, device),
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
    // The registry says which tasks each family runs; the loaders below take the
    // task as given.
    let runs = skillset_codegen::registry::family(family).runs(task);
    if !runs {
        return Err(Error::InvalidOption(format!(
            "the {family} family does not run `{task}`"
        )));
    }
    if !loader_takes(family, architecture) {
        return Err(config.not_of_family(family.as_str(), architecture));
    }
    Ok(match family {
        Family::Bert => Model::Encoder(Box::new(bert::load(
            architecture,
            &config,
            &weights,
            task,
            device,
        )?)),
        Family::Gpt | Family::Llama => Model::Causal(Box::new(load_decoder(
            family,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry and the loaders agree: every class the registry lists for a
    /// family is one its loader takes, and no family's loader takes another's.
    #[test]
    fn loaders_take_what_the_registry_lists() {
        for spec in skillset_codegen::registry::FAMILIES {
            for (task, classes) in spec.tasks {
                for class in *classes {
                    assert!(
                        loader_takes(spec.family, class),
                        "the {} loader does not take {class} ({task})",
                        spec.family
                    );
                    for other in Family::ALL.iter().filter(|f| **f != spec.family) {
                        assert!(
                            !loader_takes(*other, class),
                            "{class} is a {} class, but the {other} loader takes it too",
                            spec.family
                        );
                    }
                }
            }
        }
    }
}
