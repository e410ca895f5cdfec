//! The model families. Each is written once and serves every model type whose
//! architecture it covers (`model_types.json` records which). Dispatch goes from the
//! [`Family`] enum, so a family named in the metadata without an implementation here
//! does not compile.

pub(crate) mod apertus;
pub(crate) mod arcee;
pub(crate) mod bert;
pub(crate) mod bloom;
pub(crate) mod causal;
pub(crate) mod clip;
pub(crate) mod codegen;
pub(crate) mod cohere;
pub(crate) mod cohere2;
pub(crate) mod config;
pub(crate) mod cwm;
pub(crate) mod dbrx;
pub(crate) mod decoder;
pub(crate) mod decoder_heads;
pub(crate) mod diffllama;
pub(crate) mod encoder;
pub(crate) mod ernie4_5;
pub(crate) mod exaone4;
pub(crate) mod falcon;
pub(crate) mod gemma;
pub(crate) mod gemma2;
pub(crate) mod gemma3;
pub(crate) mod glm;
pub(crate) mod glm4;
pub(crate) mod gpt;
pub(crate) mod gpt_bigcode;
pub(crate) mod gpt_neo;
pub(crate) mod gpt_neox;
pub(crate) mod gptj;
pub(crate) mod granite;
pub(crate) mod granite_swa;
pub(crate) mod heads;
pub(crate) mod helium;
pub(crate) mod hunyuan_v1_dense;
pub(crate) mod hyperclovax;
pub(crate) mod jais2;
pub(crate) mod kernels;
pub(crate) mod llama;
pub(crate) mod llava;
pub(crate) mod minicpm3;
pub(crate) mod ministral;
pub(crate) mod ministral3;
pub(crate) mod mistral;
pub(crate) mod mla;
pub(crate) mod moe;
pub(crate) mod mpt;
pub(crate) mod nanochat;
pub(crate) mod nemotron;
pub(crate) mod nn;
pub(crate) mod olmo;
pub(crate) mod olmo2;
pub(crate) mod olmo3;
pub(crate) mod openai_gpt;
pub(crate) mod opt;
pub(crate) mod persimmon;
pub(crate) mod phi;
pub(crate) mod phi3;
pub(crate) mod qwen2;
pub(crate) mod qwen3;
pub(crate) mod seed_oss;
pub(crate) mod smollm3;
pub(crate) mod stablelm;
pub(crate) mod starcoder2;
pub(crate) mod stepper;
pub(crate) mod t5;
pub(crate) mod vaultgemma;
pub(crate) mod vit;
pub(crate) mod wav2vec2;
pub(crate) mod whisper;
pub(crate) mod xglm;
pub(crate) mod youtu;

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
        Family::Gpt | Family::Llama => decoder_loader(family, architecture).is_some(),
        Family::T5 => t5::is_mt5(architecture).is_some(),
        Family::Vit => starts(&["ViT", "DeiT", "Dinov2"]),
        Family::Clip => starts(&["CLIP", "Siglip"]),
        Family::Wav2Vec2 => wav2vec2::base_prefix(architecture).is_some(),
        Family::Whisper => starts(&["Whisper"]),
        Family::Llava => starts(&["Llava"]),
    }
}

/// The decoder model types stated as one file each (a family's base member, or a delta
/// over it). A new one is a file, its `mod` line and a row here.
const DECODERS: &[decoder::DecoderFile] = &[
    llama::FILE,
    mistral::FILE,
    qwen2::FILE,
    qwen3::FILE,
    phi3::FILE,
    gemma::FILE,
    granite::FILE,
    olmo::FILE,
    olmo2::FILE,
    ministral::FILE,
    cwm::FILE,
    smollm3::FILE,
    helium::FILE,
    arcee::FILE,
    seed_oss::FILE,
    olmo3::FILE,
    starcoder2::FILE,
    glm::FILE,
    glm4::FILE,
    ernie4_5::FILE,
    gemma2::FILE,
    gemma3::FILE,
    vaultgemma::FILE,
    cohere::FILE,
    cohere2::FILE,
    nemotron::FILE,
    hunyuan_v1_dense::FILE,
    stablelm::FILE,
    exaone4::FILE,
    ministral3::FILE,
    granite_swa::FILE,
    jais2::FILE,
    nanochat::FILE,
    hyperclovax::FILE,
    apertus::FILE,
    minicpm3::FILE,
    diffllama::FILE,
    youtu::FILE,
    moe::MIXTRAL,
    moe::QWEN2_MOE,
    moe::QWEN3_MOE,
    moe::OLMOE,
    moe::FLEX_OLMO,
    moe::GRANITEMOE,
    moe::GRANITEMOESHARED,
    moe::GRANITEMOE_SWA,
    moe::HUNYUAN_V1_MOE,
    moe::ERNIE4_5_MOE,
    moe::GLM4_MOE,
    moe::DOTS1,
    moe::SOLAR_OPEN,
    moe::EXAONE_MOE,
    moe::MELLUM,
    moe::AFMOE,
    moe::COHERE2_MOE,
    moe::PHIMOE,
    moe::GPT_OSS,
    moe::DEEPSEEK_V3,
    moe::GLM4_MOE_LITE,
    moe::DEEPSEEK_V2,
    moe::MINIMAX_M2,
    gpt::FILE,
    gpt_neo::FILE,
    gptj::FILE,
    gpt_neox::FILE,
    gpt_bigcode::FILE,
    opt::FILE,
    phi::FILE,
    persimmon::FILE,
    codegen::FILE,
    bloom::FILE,
    mpt::FILE,
    falcon::FILE,
    xglm::FILE,
    dbrx::FILE,
    openai_gpt::FILE,
];

fn decoder_loader(family: Family, architecture: &str) -> Option<&'static decoder::DecoderFile> {
    DECODERS
        .iter()
        .find(|d| d.family == family && d.classes.contains(&architecture))
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

    /// A text encoder with the head of the task (a decoder's hidden states for the
    /// encoder tasks).
    pub fn encoder(&self) -> Result<Box<dyn EncoderModel>> {
        let (arch, c, w) = (self.architecture, &self.config, &self.weights);
        match self.family {
            Family::Bert => Ok(Box::new(bert::load(arch, c, w, self.task, &self.device)?)),
            Family::Gpt | Family::Llama => match decoder_loader(self.family, arch) {
                Some(file) => Ok(Box::new(decoder_heads::load(
                    file,
                    self.task,
                    c,
                    w,
                    self.dtype,
                    &self.device,
                )?)),
                None => Err(self.no_model("text encoder")),
            },
            _ => Err(self.no_model("text encoder")),
        }
    }

    /// A decoder-only causal LM, by its model type file's loader.
    pub fn causal(&self) -> Result<Box<dyn CausalLm>> {
        let (arch, c, w) = (self.architecture, &self.config, &self.weights);
        if let Some(file) = decoder_loader(self.family, arch) {
            let model = (file.load)(c, w, self.dtype, &self.device)?;
            model.check_lm_head(w)?;
            return Ok(Box::new(model));
        }
        Err(self.no_model("causal LM"))
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

    /// Every class a decoder file loads is one the registry lists for its family (or
    /// the file would never be reached), and no two files load the same class.
    #[test]
    fn every_decoder_file_is_reachable() {
        let mut seen = std::collections::BTreeSet::new();
        for file in DECODERS {
            let spec = skillset_codegen::registry::family(file.family);
            for class in file.classes {
                let listed = spec.base.contains(class)
                    || spec
                        .tasks
                        .iter()
                        .any(|(_, classes)| classes.contains(class));
                assert!(
                    listed,
                    "{class}: list it for the {} family in the registry",
                    file.family
                );
                assert!(
                    seen.insert(*class),
                    "{class} is loaded by two decoder files"
                );
            }
        }
    }

    /// The defaults each model type file states are transformers' (its config class
    /// instantiated with no arguments: `tests/config_defaults.json`, written by
    /// `scripts/gen_config_defaults.py`), and a field its class does not have is
    /// stated as absent.
    #[test]
    fn stated_config_defaults_are_transformers() {
        let file: serde_json::Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/config_defaults.json"
        )))
        .unwrap();
        let class = |name: &str| -> &serde_json::Map<String, serde_json::Value> {
            file["classes"][name]
                .as_object()
                .unwrap_or_else(|| panic!("{name} is not in config_defaults.json: add it to scripts/gen_config_defaults.py"))
        };
        let compared = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let same = |name: &str, field: &str, ours: serde_json::Value| {
            compared.borrow_mut().insert(name.to_string());
            // `a.b`: field `b` of the object `a` (and so on).
            let mut path = field.split('.');
            let first = class(name).get(path.next().unwrap_or_default());
            let theirs = path.fold(first, |v, key| v.and_then(|v| v.get(key)));
            let equal = match (&ours, theirs) {
                (serde_json::Value::Null, None) => true,
                (serde_json::Value::Number(a), Some(serde_json::Value::Number(b))) => {
                    a.as_f64() == b.as_f64()
                }
                (a, Some(b)) => a == b,
                (_, None) => false,
            };
            assert!(
                equal,
                "{name}.{field}: ours {ours}, transformers {theirs:?}"
            );
        };
        // A field a file states as `None` that transformers' signature has as `None`
        // too, and derives from other fields in `__init__` (the loaders derive it the
        // same way); any other `None` is a field the class does not have.
        let derived = [
            "num_key_value_heads",
            "head_dim",
            "word_embed_proj_dim",
            "num_decoder_layers",
            "scale_decoder_outputs",
            "num_kv_heads",
            "ffn_hidden_size",
        ];
        let check = |name: &str, fields: serde_json::Value| {
            for (field, ours) in fields.as_object().unwrap() {
                if !(ours.is_null() && derived.contains(&field.as_str())) {
                    same(name, field, ours.clone());
                }
            }
        };
        // Every decoder file's stated defaults.
        for file in DECODERS {
            for (name, fields) in (file.defaults)() {
                check(name, fields);
            }
        }
        for d in bert::member_defaults() {
            let n = d.class;
            same(n, "vocab_size", d.vocab_size.into());
            same(n, "hidden_size", d.hidden_size.into());
            same(n, "num_hidden_layers", d.num_hidden_layers.into());
            same(n, "num_attention_heads", d.num_attention_heads.into());
            same(n, "intermediate_size", d.intermediate_size.into());
            same(
                n,
                "max_position_embeddings",
                d.max_position_embeddings.into(),
            );
            same(n, "type_vocab_size", serde_json::json!(d.type_vocab_size));
            same(n, "pad_token_id", d.pad_token_id.into());
            same(n, "hidden_act", d.hidden_act.into());
            same(n, "layer_norm_eps", d.layer_norm_eps.into());
            let (groups, inner) = d.groups.unzip();
            same(n, "num_hidden_groups", serde_json::json!(groups));
            same(n, "inner_group_num", serde_json::json!(inner));
            let (input, output) = d.rembert_widths.unzip();
            same(n, "input_embedding_size", serde_json::json!(input));
            same(n, "output_embedding_size", serde_json::json!(output));
            let buckets = serde_json::json!(d.relative_buckets);
            same(n, "relative_attention_num_buckets", buckets);
            let boxes = serde_json::json!(d.max_2d_positions);
            same(n, "max_2d_position_embeddings", boxes);
            same(n, "tie_word_embeddings", d.tie_word_embeddings.into());
            same(n, "embedding_size", serde_json::json!(d.embedding_size));
            let (use_task_id, types) = d.task_types.unzip();
            same(n, "use_task_id", serde_json::json!(use_task_id));
            same(n, "task_type_vocab_size", serde_json::json!(types));
        }
        for d in [
            &clip::CLIP_TEXT,
            &clip::CLIP_VISION,
            &clip::SIGLIP_TEXT,
            &clip::SIGLIP_VISION,
        ] {
            let n = d.class;
            same(n, "vocab_size", serde_json::json!(d.vocab_size));
            same(n, "hidden_size", d.hidden_size.into());
            same(n, "intermediate_size", d.intermediate_size.into());
            same(n, "num_hidden_layers", d.num_hidden_layers.into());
            same(n, "num_attention_heads", d.num_attention_heads.into());
            let positions = serde_json::json!(d.max_position_embeddings);
            same(n, "max_position_embeddings", positions);
            same(n, "hidden_act", d.hidden_act.into());
            same(n, "layer_norm_eps", d.layer_norm_eps.into());
            same(n, "image_size", serde_json::json!(d.image_size));
            same(n, "patch_size", serde_json::json!(d.patch_size));
            same(n, "num_channels", serde_json::json!(d.num_channels));
        }
        // The wav2vec2 family's one struct: each class's fields, where it has them.
        let ours = serde_json::json!(wav2vec2::Wav2Vec2Config::default());
        for name in [
            "Wav2Vec2Config",
            "HubertConfig",
            "Data2VecAudioConfig",
            "UniSpeechConfig",
            "UniSpeechSatConfig",
            "WavLMConfig",
        ] {
            for (field, value) in ours.as_object().unwrap() {
                if class(name).contains_key(field) && !value.is_null() {
                    same(name, field, value.clone());
                }
            }
        }
        // Its `None`: 128, and Data2VecAudio's 5.
        same("Wav2Vec2Config", "num_conv_pos_embeddings", 128.into());
        same("Data2VecAudioConfig", "num_conv_pos_embeddings", 5.into());
        // The other families' typed configs.
        let typed = [
            (
                "DistilBertConfig",
                serde_json::json!(bert::DistilBertConfig::default()),
            ),
            ("T5Config", serde_json::json!(t5::T5Config::default())),
            ("MT5Config", serde_json::json!(t5::MT5Config::default())),
            ("ViTConfig", serde_json::json!(vit::ViTConfig::default())),
            ("DeiTConfig", serde_json::json!(vit::ViTConfig::default())),
            (
                "Dinov2Config",
                serde_json::json!(vit::Dinov2Config::default()),
            ),
            (
                "WhisperConfig",
                serde_json::json!(whisper::WhisperConfig::default()),
            ),
            (
                "LlavaConfig",
                serde_json::json!(llava::LlavaConfig::default()),
            ),
        ];
        for (name, fields) in typed {
            check(name, fields);
        }
        // The dual encoders' own fields (their towers are compared above): CLIP's
        // projection width; SigLIP reads none.
        check("CLIPConfig", serde_json::json!({ "projection_dim": 512 }));
        compared.borrow_mut().insert("SiglipConfig".into());
        // Every config class of a model type a family runs has its defaults stated.
        for name in file["classes"].as_object().unwrap().keys() {
            assert!(
                compared.borrow().contains(name),
                "{name}: a family runs its model type, but no file states its defaults"
            );
        }
    }
}
