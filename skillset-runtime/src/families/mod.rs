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
pub(crate) use heads::EncoderModel;

use candle_core::Device;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use crate::{Family, Task};

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

/// A checkpoint opened for loading one architecture of `family` for one task: the
/// registry allows it and the family's loader takes the class. Its methods load the
/// model a task's handler needs (an encoder, a causal LM, ...); a family that has no
/// such model is an error naming the task.
pub(crate) struct Loading<'a> {
    pub family: Family,
    pub architecture: &'a str,
    pub task: Task,
    pub config: ConfigReader<'a>,
    weights: nn::Weights,
    pub dtype: candle_core::DType,
    pub device: Device,
}

impl<'a> Loading<'a> {
    /// Open `ckpt`'s weights for `architecture` (the class transformers would load,
    /// e.g. `RobertaForMaskedLM`) of `family`, after checking that the registry runs
    /// `task` on the family and that the family's loader takes the class.
    pub fn new(
        family: Family,
        architecture: &'a str,
        ckpt: &'a Checkpoint,
        task: Task,
        dtype: candle_core::DType,
        device: &Device,
    ) -> Result<Self> {
        let config = ConfigReader::new(ckpt);
        if !skillset_codegen::registry::family(family).runs(task) {
            return Err(Error::InvalidOption(format!(
                "the {family} family does not run `{task}`"
            )));
        }
        if !loader_takes(family, architecture) {
            return Err(config.not_of_family(family.as_str(), architecture));
        }
        let files = ckpt.weight_files()?;
        let weights = nn::Weights {
            vb: ckpt.var_builder(dtype, device)?,
            path: files[0].clone(),
        };
        Ok(Loading {
            family,
            architecture,
            task,
            config,
            weights,
            dtype,
            device: device.clone(),
        })
    }

    /// The error of a family asked for a kind of model it does not have (the registry
    /// and the task's handler disagree).
    fn no_model(&self, kind: &str) -> Error {
        Error::InvalidOption(format!(
            "the {} family has no {kind} for `{}`",
            self.family, self.task
        ))
    }

    /// An encoder-only text model with the head of the task.
    pub fn encoder(&self) -> Result<Box<dyn EncoderModel>> {
        let (arch, c, w) = (self.architecture, &self.config, &self.weights);
        match self.family {
            Family::Bert => Ok(Box::new(bert::load(arch, c, w, self.task, &self.device)?)),
            _ => Err(self.no_model("text encoder")),
        }
    }

    /// A decoder-only causal LM: a delta file's model type by its loader, the others by
    /// their family's.
    pub fn causal(&self) -> Result<Box<dyn CausalLm>> {
        let (arch, c, w) = (self.architecture, &self.config, &self.weights);
        if let Some(load) = delta(self.family, arch) {
            return Ok(Box::new(load(c, w, self.dtype, &self.device)?));
        }
        Ok(Box::new(match self.family {
            Family::Gpt => gpt::load(arch, c, w, self.dtype, &self.device)?,
            Family::Llama => llama::load(arch, c, w, self.dtype, &self.device)?,
            _ => return Err(self.no_model("causal LM")),
        }))
    }

    /// An encoder-decoder text model.
    pub fn seq2seq(&self) -> Result<t5::T5Model> {
        match self.family {
            Family::T5 => t5::load(
                self.architecture,
                &self.config,
                &self.weights,
                self.dtype,
                &self.device,
            ),
            _ => Err(self.no_model("encoder-decoder")),
        }
    }

    /// A ViT-style image encoder with the head of the task.
    pub fn vit(&self) -> Result<vit::VitModel> {
        match self.family {
            Family::Vit => vit::load(self.architecture, &self.config, &self.weights, self.task),
            _ => Err(self.no_model("image encoder")),
        }
    }

    /// A CLIP / SigLIP vision tower alone.
    pub fn vision_tower(&self) -> Result<clip::VisionTower> {
        match self.family {
            Family::Clip => clip::load_vision_model(self.architecture, &self.config, &self.weights),
            _ => Err(self.no_model("vision tower")),
        }
    }

    /// A CLIP / SigLIP dual encoder.
    pub fn dual_encoder(&self) -> Result<clip::ClipModel> {
        match self.family {
            Family::Clip => clip::load(self.architecture, &self.config, &self.weights),
            _ => Err(self.no_model("image-text encoder")),
        }
    }

    /// A Wav2Vec2-style speech encoder with the head of the task.
    pub fn speech_encoder(&self) -> Result<wav2vec2::Wav2Vec2> {
        match self.family {
            Family::Wav2Vec2 => {
                wav2vec2::load(self.architecture, &self.config, &self.weights, self.task)
            }
            _ => Err(self.no_model("speech encoder")),
        }
    }

    /// Whisper's speech encoder-decoder.
    pub fn speech_seq2seq(&self) -> Result<whisper::Whisper> {
        match self.family {
            Family::Whisper => whisper::load(&self.config, &self.weights),
            _ => Err(self.no_model("speech encoder-decoder")),
        }
    }

    /// An image-text-to-text model (a vision tower, a projector and a causal LM).
    pub fn vision_language(&self) -> Result<llava::LlavaModel> {
        match self.family {
            Family::Llava => llava::load(&self.config, &self.weights, self.dtype, &self.device),
            _ => Err(self.no_model("vision-language model")),
        }
    }
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
