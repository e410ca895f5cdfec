//! Names: the closed enums of the metadata (`Task`, `Family`, `Modality`, `Backend`),
//! Rust identifiers for model types, and "did you mean" suggestions.

use std::fmt;
use std::str::FromStr;

/// The nearest names to `wanted` among `candidates`, best first (at most three).
///
/// Uses Jaro-Winkler similarity on lowercased names plus a bonus for prefixes, so
/// `bret` suggests `bert` and `xlm_roberta` suggests `xlm-roberta`.
pub fn suggest<'a, I>(wanted: &str, candidates: I) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let norm = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    let wanted_n = norm(wanted);
    let mut scored: Vec<(f64, &'a str)> = candidates
        .into_iter()
        .map(|c| {
            let cn = norm(c);
            let mut score = strsim::jaro_winkler(&wanted_n, &cn);
            if cn == wanted_n {
                score = 2.0;
            }
            (score, c)
        })
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// ` (did you mean `a`, `b`?)`-style tail for an error message, or "".
pub fn did_you_mean(suggestions: &[&str]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        many => {
            let list: Vec<String> = many.iter().map(|s| format!("`{s}`")).collect();
            format!("; did you mean one of {}?", list.join(", "))
        }
    }
}

/// An unknown name for one of the closed enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{name}`{}", did_you_mean(&self.suggestions.iter().map(String::as_str).collect::<Vec<_>>()))]
pub struct UnknownName {
    /// "task", "family", "modality" or "backend".
    pub kind: &'static str,
    pub name: String,
    pub suggestions: Vec<String>,
}

macro_rules! names_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $s:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`", $s, "`")] $variant ),*
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The name used in `model_types.json`, on the command line and by transformers.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),* }
            }

            /// The Rust identifier of the variant (also the task marker type's name).
            pub const fn rust_name(self) -> &'static str {
                match self { $($name::$variant => stringify!($variant)),* }
            }

            /// Every valid name, for help text and suggestions.
            pub fn names() -> impl Iterator<Item = &'static str> {
                Self::ALL.iter().map(|v| v.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($s => Ok($name::$variant),)*
                    _ => Err(UnknownName {
                        kind: $kind,
                        name: s.to_string(),
                        suggestions: suggest(s, Self::names()).into_iter().map(String::from).collect(),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

names_enum! {
    /// A task: the pipeline tasks of HF transformers, plus the transformers 4.x tasks
    /// that 5.x keeps only as auto classes (`text2text-generation`, `question-answering`).
    Task, "task" {
        AnyToAny = "any-to-any",
        AudioClassification = "audio-classification",
        AutomaticSpeechRecognition = "automatic-speech-recognition",
        Decision = "decision",
        DepthEstimation = "depth-estimation",
        DocumentQuestionAnswering = "document-question-answering",
        FeatureExtraction = "feature-extraction",
        FillMask = "fill-mask",
        ImageClassification = "image-classification",
        ImageFeatureExtraction = "image-feature-extraction",
        ImageSegmentation = "image-segmentation",
        ImageTextToText = "image-text-to-text",
        KeypointMatching = "keypoint-matching",
        MaskGeneration = "mask-generation",
        ObjectDetection = "object-detection",
        QuestionAnswering = "question-answering",
        TableQuestionAnswering = "table-question-answering",
        Text2TextGeneration = "text2text-generation",
        TextClassification = "text-classification",
        TextGeneration = "text-generation",
        TextToAudio = "text-to-audio",
        TokenClassification = "token-classification",
        VideoClassification = "video-classification",
        ZeroShotAudioClassification = "zero-shot-audio-classification",
        ZeroShotClassification = "zero-shot-classification",
        ZeroShotImageClassification = "zero-shot-image-classification",
        ZeroShotObjectDetection = "zero-shot-object-detection",
    }
}

names_enum! {
    /// A skillset family: one runtime implementation in `skillset-runtime`, shared by
    /// every model type whose architecture it covers.
    Family, "family" {
        Bert = "bert",
        Gpt = "gpt",
        Llama = "llama",
        T5 = "t5",
        Vit = "vit",
        Clip = "clip",
        Wav2Vec2 = "wav2vec2",
        Whisper = "whisper",
        Llava = "llava",
    }
}

names_enum! {
    /// What a model type consumes.
    Modality, "modality" {
        Text = "text",
        Vision = "vision",
        Audio = "audio",
        Multimodal = "multimodal",
        Video = "video",
        TimeSeries = "time-series",
        Other = "other",
    }
}

names_enum! {
    /// A compute backend.
    Backend, "backend" {
        Cpu = "cpu",
        Cuda = "cuda",
        Metal = "metal",
        /// The runtime compiled to wasm32 (CPU, SIMD128) in a browser: `web/`, the
        /// `web` feature of skillset-runtime. Measured by the headless-Chromium tests.
        Wasm = "wasm",
        /// WebGPU in a browser: not implemented (candle has no WebGPU backend).
        WebGpu = "webgpu",
        /// WebNN in a browser: not implemented (no Rust binding, no candle backend).
        WebNn = "webnn",
    }
}

impl Family {
    /// Whether the family's models read text (and so load tokenizer.json).
    pub const fn reads_text(self) -> bool {
        !matches!(self, Family::Vit | Family::Wav2Vec2)
    }

    /// Whether they read images (and so load preprocessor_config.json's image processor).
    pub const fn reads_images(self) -> bool {
        matches!(self, Family::Vit | Family::Clip | Family::Llava)
    }

    /// Whether they read audio.
    pub const fn reads_audio(self) -> bool {
        matches!(self, Family::Wav2Vec2 | Family::Whisper)
    }
}

impl Task {
    /// What a task's inputs are: `image` and `audio` tasks take file paths (or decoded
    /// media), the others text. image-text-to-text takes images (its prompt is an
    /// option, as in transformers' pipeline).
    pub const fn input_kind(self) -> InputKind {
        match self {
            Task::ImageClassification
            | Task::ImageFeatureExtraction
            | Task::ImageSegmentation
            | Task::ZeroShotImageClassification
            | Task::ObjectDetection
            | Task::ZeroShotObjectDetection
            | Task::DepthEstimation
            | Task::MaskGeneration
            | Task::KeypointMatching
            | Task::ImageTextToText => InputKind::Image,
            Task::AudioClassification
            | Task::AutomaticSpeechRecognition
            | Task::ZeroShotAudioClassification => InputKind::Audio,
            _ => InputKind::Text,
        }
    }
}

/// What a task's inputs are (see [`Task::input_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    Text,
    Image,
    Audio,
}

impl Backend {
    /// The cargo feature that compiles the backend in (`None` for CPU, always there,
    /// and for the backends that are not native).
    pub const fn cargo_feature(self) -> Option<&'static str> {
        match self {
            Backend::Cpu | Backend::Wasm | Backend::WebGpu | Backend::WebNn => None,
            Backend::Cuda => Some("cuda"),
            Backend::Metal => Some("metal"),
        }
    }

    /// Whether the native `skillset` binary runs it (`--run-tests` measures these).
    pub const fn native(self) -> bool {
        matches!(self, Backend::Cpu | Backend::Cuda | Backend::Metal)
    }

    /// Whether skillsets can run anything on it at all. WebGPU and WebNN are listed so
    /// that they are reported, as unsupported, until something truly runs on them.
    pub const fn implemented(self) -> bool {
        !matches!(self, Backend::WebGpu | Backend::WebNn)
    }
}

/// The Rust type name of a model type: `xlm-roberta` -> `XlmRoberta`,
/// `qwen2_5_vl` -> `Qwen2_5Vl`, `gpt2` -> `Gpt2`.
///
/// Parts are split on anything that is not alphanumeric and capitalised; an underscore
/// stays between two digits so that `qwen2_5` and `qwen25` stay different.
pub fn rust_type_name(model_type: &str) -> String {
    let mut out = String::with_capacity(model_type.len());
    for part in model_type.split(|c: char| !c.is_ascii_alphanumeric()) {
        if part.is_empty() {
            continue;
        }
        let starts_with_digit = part.starts_with(|c: char| c.is_ascii_digit());
        if starts_with_digit && out.ends_with(|c: char| c.is_ascii_digit()) {
            out.push('_');
        }
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'M');
    }
    out
}

/// The file stem of a model type's generated source: `xlm-roberta` -> `xlm_roberta`.
pub fn file_stem(model_type: &str) -> String {
    let mut out = String::with_capacity(model_type.len() + 4);
    let mut prev_lower = false;
    for c in model_type.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            out.push('_');
            prev_lower = false;
        }
    }
    out
}

/// The name of the constant that holds a model type's info: `xlm-roberta` -> `XLM_ROBERTA`.
pub fn const_name(model_type: &str) -> String {
    file_stem(model_type).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        assert_eq!(rust_type_name("bert"), "Bert");
        assert_eq!(rust_type_name("xlm-roberta"), "XlmRoberta");
        assert_eq!(rust_type_name("qwen2_5_vl"), "Qwen2_5Vl");
        assert_eq!(rust_type_name("gpt2"), "Gpt2");
        assert_eq!(rust_type_name("EvollaModel"), "EvollaModel");
        assert_eq!(rust_type_name("blip-2"), "Blip2");
        assert_eq!(rust_type_name("2x"), "M2x");
        assert_eq!(file_stem("xlm-roberta"), "xlm_roberta");
        assert_eq!(file_stem("EvollaModel"), "evolla_model");
        assert_eq!(const_name("gpt-sw3"), "GPT_SW3");
    }

    #[test]
    fn parse_and_suggest() {
        assert_eq!("fill-mask".parse::<Task>(), Ok(Task::FillMask));
        let err = "fill_mask".parse::<Task>().unwrap_err();
        assert_eq!(err.suggestions[0], "fill-mask");
        assert_eq!(
            err.to_string(),
            "unknown task `fill_mask`; did you mean `fill-mask`?"
        );
        let err = "bret".parse::<Family>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown family `bret`; did you mean `bert`?"
        );
        assert!("zzzzzz"
            .parse::<Backend>()
            .unwrap_err()
            .suggestions
            .is_empty());
        for t in Task::ALL {
            assert_eq!(t.as_str().parse::<Task>(), Ok(*t));
        }
    }
}
