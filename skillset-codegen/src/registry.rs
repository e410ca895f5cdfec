//! The registry: which transformers architecture class each skillset family runs, and
//! for which task. It is the one source of truth: `scripts/gen_model_types.py` reads
//! it (`skillset --registry` prints it as JSON) to decide each model type's family and
//! skillset tasks in `model_types.json`; the runtime's loader refuses a task its
//! family's entry does not list; tests check that `model_types.json`, this table and
//! the loaders agree, and that every architecture listed here has a fixture.
//!
//! A model type belongs to a family when its base architecture (the class `AutoModel`
//! loads) is in the family's `base`; it runs a task when the class transformers uses
//! for that task is in the family's list for the task.

use crate::names::{Family, Modality, Task};

/// One skillset family: what it is, the base classes that make a model type a member
/// and the classes it runs per task.
#[derive(Debug, Clone, Copy)]
pub struct FamilySpec {
    pub family: Family,
    pub modality: Modality,
    pub description: &'static str,
    /// `AutoModel` classes of the member model types.
    pub base: &'static [&'static str],
    /// Per task, the architecture classes the family's loader runs for it.
    pub tasks: &'static [(Task, &'static [&'static str])],
}

impl FamilySpec {
    /// The architectures the family runs for `task` (empty: it does not run it).
    pub fn architectures(&self, task: Task) -> &'static [&'static str] {
        self.tasks
            .iter()
            .find(|(t, _)| *t == task)
            .map(|(_, a)| *a)
            .unwrap_or(&[])
    }

    /// Whether the family runs `task` at all.
    pub fn runs(&self, task: Task) -> bool {
        !self.architectures(task).is_empty()
    }
}

/// `$prefix` followed by one suffix, for each prefix: the classes of a family whose
/// members differ only in their name (`BertForMaskedLM`, `RobertaForMaskedLM`, ...).
macro_rules! classes {
    ($suffix:literal: $($prefix:literal),* $(,)?) => {
        &[$(concat!($prefix, $suffix)),*]
    };
}

/// Architectures whose encoder the bert family implements (class-name prefixes), then
/// prefixes for some tasks only (LayoutLM has heads, not transformers'
/// feature-extraction pipeline) and whole class names (`BertGenerationEncoder`).
macro_rules! bert_like {
    ($suffix:literal $(, $extra:literal)* $(; $class:literal)*) => {
        &[
            concat!("Bert", $suffix),
            concat!("Roberta", $suffix),
            concat!("XLMRoberta", $suffix),
            concat!("Camembert", $suffix),
            concat!("Data2VecText", $suffix),
            concat!("Ernie", $suffix),
            concat!("DistilBert", $suffix),
            concat!("Electra", $suffix),
            concat!("RobertaPreLayerNorm", $suffix),
            concat!("XLMRobertaXL", $suffix),
            concat!("MegatronBert", $suffix),
            concat!("MPNet", $suffix),
            concat!("IBert", $suffix),
            concat!("Albert", $suffix),
            concat!("RemBert", $suffix),
            $(concat!($extra, $suffix),)*
            $($class,)*
        ]
    };
}

/// Speech encoders the wav2vec2 family implements (class-name prefixes).
macro_rules! wav2vec2_like {
    ($suffix:literal) => {
        classes!($suffix: "Wav2Vec2", "Hubert", "Data2VecAudio", "UniSpeech", "UniSpeechSat", "WavLM")
    };
}

/// Every family, in the order of the `Family` enum.
pub static FAMILIES: &[FamilySpec] = &[
    FamilySpec {
        family: Family::Bert,
        modality: Modality::Text,
        description: "BERT-style bidirectional transformer encoders (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, Data2VecText, ERNIE, DistilBERT, ELECTRA); the pre-norm RoBERTa-PreLayerNorm, XLM-RoBERTa-XL and Megatron-BERT; MPNet (a relative position bias shared by every layer); ALBERT (factorised embeddings, shared layer groups); I-BERT (its float path); RemBERT (narrow embeddings, a head of its own width); BERT-Generation's encoder; LayoutLM (text without boxes: fill-mask and classifiers)",
        base: bert_like!("Model", "LayoutLM"; "BertGenerationEncoder"),
        tasks: &[
            (Task::FeatureExtraction, bert_like!("Model"; "BertGenerationEncoder")),
            (Task::FillMask, bert_like!("ForMaskedLM", "LayoutLM")),
            (Task::TextClassification, bert_like!("ForSequenceClassification", "LayoutLM")),
            (Task::TokenClassification, bert_like!("ForTokenClassification", "LayoutLM")),
        ],
    },
    FamilySpec {
        family: Family::Gpt,
        modality: Modality::Text,
        description: "decoder-only transformers with LayerNorm and GELU MLPs: GPT-2 (learned positions), OpenAI GPT (post-norm blocks), GPT-Neo (local attention), GPT-J and GPT-NeoX (partial rotary, parallel residual), GPTBigCode (multi-query attention), OPT, Phi (parallel attention and MLP, partial rotary), Persimmon, CodeGen, BLOOM, MPT and Falcon (ALiBi), XGLM (sinusoidal positions), DBRX (MPT's layout with rotary positions and a mixture of experts); GPT-2's, Persimmon's and Phi's sequence classifiers",
        base: &[
            "GPT2Model",
            "GPTNeoModel",
            "GPTJModel",
            "GPTNeoXModel",
            "GPTBigCodeModel",
            "OPTModel",
            "PhiModel",
            "PersimmonModel",
            "CodeGenModel",
            "BloomModel",
            "MptModel",
            "FalconModel",
            "XGLMModel",
            "DbrxModel",
            "OpenAIGPTModel",
        ],
        tasks: &[
            (
            Task::TextGeneration,
            &[
                "GPT2LMHeadModel",
                "GPTNeoForCausalLM",
                "GPTJForCausalLM",
                "GPTNeoXForCausalLM",
                "GPTBigCodeForCausalLM",
                "OPTForCausalLM",
                "PhiForCausalLM",
                "PersimmonForCausalLM",
                "CodeGenForCausalLM",
                "BloomForCausalLM",
                "MptForCausalLM",
                "FalconForCausalLM",
                "XGLMForCausalLM",
                "DbrxForCausalLM",
                "OpenAIGPTLMHeadModel",
            ],
        ),
            (
                Task::TextClassification,
                &[
                    "GPT2ForSequenceClassification",
                    "PersimmonForSequenceClassification",
                    "PhiForSequenceClassification",
                ],
            ),
        ],
    },
    FamilySpec {
        family: Family::Llama,
        modality: Modality::Text,
        description: "decoder-only transformers with rotary positions and grouped-query attention, each member a delta over Llama (Mistral, Qwen2/3, Phi-3, Gemma 1-3, Granite, OLMo 1-3, GLM, Cohere, StarCoder2, SmolLM3, Nemotron, EXAONE 4, Jais 2, NanoChat, HyperCLOVA X, Apertus, MiniCPM3, DiffLlama, Youtu-LLM and more; the mixtures of experts Mixtral, Qwen2/3-MoE, OLMoE, FlexOlmo, Granite-MoE, HunYuan-MoE, ERNIE 4.5 MoE, GLM-4-MoE, dots.llm1, Solar Open, EXAONE-MoE, Mellum, AFMoE, Cohere 2 MoE, PhiMoE, gpt-oss, DeepSeek-V2/V3, GLM-4-MoE-Lite and MiniMax-M2); their sequence classifiers, and embedding models (Qwen3-Embedding, gte-Qwen2, e5-mistral) read as encoders",
        base: &[
            "LlamaModel",
            "MistralModel",
            "Qwen2Model",
            "Qwen3Model",
            "Phi3Model",
            "GemmaModel",
            "GraniteModel",
            "OlmoModel",
            "Olmo2Model",
            "MinistralModel",
            "CwmModel",
            "SmolLM3Model",
            "HeliumModel",
            "ArceeModel",
            "SeedOssModel",
            "Olmo3Model",
            "Starcoder2Model",
            "GlmModel",
            "Glm4Model",
            "Ernie4_5Model",
            "Gemma2Model",
            "Gemma3TextModel",
            "VaultGemmaModel",
            "CohereModel",
            "Cohere2Model",
            "NemotronModel",
            "HunYuanDenseV1Model",
            "StableLmModel",
            "Exaone4Model",
            "Ministral3Model",
            "GraniteSWAModel",
            "Jais2Model",
            "NanoChatModel",
            "HyperCLOVAXModel",
            "ApertusModel",
            "MiniCPM3Model",
            "DiffLlamaModel",
            "YoutuModel",
            "MixtralModel",
            "Qwen2MoeModel",
            "Qwen3MoeModel",
            "OlmoeModel",
            "FlexOlmoModel",
            "GraniteMoeModel",
            "GraniteMoeSharedModel",
            "GraniteMoeSWAModel",
            "HunYuanMoEV1Model",
            "Ernie4_5_MoeModel",
            "Glm4MoeModel",
            "Dots1Model",
            "SolarOpenModel",
            "ExaoneMoeModel",
            "MellumModel",
            "AfmoeModel",
            "Cohere2MoeModel",
            "PhimoeModel",
            "GptOssModel",
            "DeepseekV3Model",
            "Glm4MoeLiteModel",
            "DeepseekV2Model",
            "MiniMaxM2Model",
        ],
        tasks: &[
            (
            Task::TextGeneration,
            &[
                "LlamaForCausalLM",
                "MistralForCausalLM",
                "Qwen2ForCausalLM",
                "Qwen3ForCausalLM",
                "Phi3ForCausalLM",
                "GemmaForCausalLM",
                "GraniteForCausalLM",
                "OlmoForCausalLM",
                "Olmo2ForCausalLM",
                "MinistralForCausalLM",
                "CwmForCausalLM",
                "SmolLM3ForCausalLM",
                "HeliumForCausalLM",
                "ArceeForCausalLM",
                "SeedOssForCausalLM",
                "Olmo3ForCausalLM",
                "Starcoder2ForCausalLM",
                "GlmForCausalLM",
                "Glm4ForCausalLM",
                "Ernie4_5ForCausalLM",
                "Gemma2ForCausalLM",
                "Gemma3ForCausalLM",
                "VaultGemmaForCausalLM",
                "CohereForCausalLM",
                "Cohere2ForCausalLM",
                "NemotronForCausalLM",
                "HunYuanDenseV1ForCausalLM",
                "StableLmForCausalLM",
                "Exaone4ForCausalLM",
                "Ministral3ForCausalLM",
                "GraniteSWAForCausalLM",
                "Jais2ForCausalLM",
                "NanoChatForCausalLM",
                "HyperCLOVAXForCausalLM",
                "ApertusForCausalLM",
                "MiniCPM3ForCausalLM",
                "DiffLlamaForCausalLM",
                "YoutuForCausalLM",
                "MixtralForCausalLM",
                "Qwen2MoeForCausalLM",
                "Qwen3MoeForCausalLM",
                "OlmoeForCausalLM",
                "FlexOlmoForCausalLM",
                "GraniteMoeForCausalLM",
                "GraniteMoeSharedForCausalLM",
                "GraniteMoeSWAForCausalLM",
                "HunYuanMoEV1ForCausalLM",
                "Ernie4_5_MoeForCausalLM",
                "Glm4MoeForCausalLM",
                "Dots1ForCausalLM",
                "SolarOpenForCausalLM",
                "ExaoneMoeForCausalLM",
                "MellumForCausalLM",
                "AfmoeForCausalLM",
                "Cohere2MoeForCausalLM",
                "PhimoeForCausalLM",
                "GptOssForCausalLM",
                "DeepseekV3ForCausalLM",
                "Glm4MoeLiteForCausalLM",
                "DeepseekV2ForCausalLM",
                "MiniMaxM2ForCausalLM",
            ],
        ),
        // The base model's hidden states (a sentence-transformers directory pools
        // the last token: Qwen3-Embedding, gte-Qwen2, e5-mistral).
        (
            Task::FeatureExtraction,
            &["Qwen3Model", "Qwen2Model", "MistralModel"],
        ),
        // `score` on the last token that is not `pad_token_id`.
        (
            Task::TextClassification,
            &[
                "LlamaForSequenceClassification",
                "MistralForSequenceClassification",
                "Qwen2ForSequenceClassification",
                "Qwen3ForSequenceClassification",
                "ArceeForSequenceClassification",
                "Exaone4ForSequenceClassification",
                "GemmaForSequenceClassification",
                "Gemma2ForSequenceClassification",
                "Gemma3TextForSequenceClassification",
                "GlmForSequenceClassification",
                "Glm4ForSequenceClassification",
                "HeliumForSequenceClassification",
                "HunYuanDenseV1ForSequenceClassification",
                "MinistralForSequenceClassification",
                "NemotronForSequenceClassification",
                "OlmoForSequenceClassification",
                "Olmo2ForSequenceClassification",
                "Olmo3ForSequenceClassification",
                "Phi3ForSequenceClassification",
                "SeedOssForSequenceClassification",
                "SmolLM3ForSequenceClassification",
                "StableLmForSequenceClassification",
                "Starcoder2ForSequenceClassification",
                "DiffLlamaForSequenceClassification",
                "MixtralForSequenceClassification",
            ],
        ),
        ],
    },
    FamilySpec {
        family: Family::T5,
        modality: Modality::Text,
        description: "T5 and mT5 encoder-decoders (and Flan-T5 checkpoints): relative position buckets, RMS layer norms, ReLU or gated-GELU feed-forward",
        base: &["T5Model", "MT5Model"],
        tasks: &[(
            Task::Text2TextGeneration,
            &["T5ForConditionalGeneration", "MT5ForConditionalGeneration"],
        )],
    },
    FamilySpec {
        family: Family::Vit,
        modality: Modality::Vision,
        description: "Vision transformers on image patches with a class token and pre-norm layers: ViT, DeiT (plus its distillation token), DINOv2 (layer scales, interpolated positions)",
        base: &["ViTModel", "DeiTModel", "Dinov2Model"],
        tasks: &[
            (
                Task::ImageClassification,
                &[
                    "ViTForImageClassification",
                    "DeiTForImageClassification",
                    "Dinov2ForImageClassification",
                ],
            ),
            (
                Task::ImageFeatureExtraction,
                &["ViTModel", "DeiTModel", "Dinov2Model"],
            ),
        ],
    },
    FamilySpec {
        family: Family::Clip,
        modality: Modality::Multimodal,
        description: "Contrastive image-text dual encoders: CLIP (softmax over labels, pooled at the end-of-text token) and SigLIP (sigmoid scores, attention-pooling head); their vision towers alone (CLIPVisionModel, SiglipVisionModel) as image feature extractors",
        base: &["CLIPModel", "SiglipModel", "CLIPVisionModel", "SiglipVisionModel"],
        tasks: &[
            (Task::ZeroShotImageClassification, &["CLIPModel", "SiglipModel"]),
            (
                Task::ImageFeatureExtraction,
                &["CLIPVisionModel", "SiglipVisionModel"],
            ),
        ],
    },
    FamilySpec {
        family: Family::Wav2Vec2,
        modality: Modality::Audio,
        description: "Self-supervised speech encoders on raw 16 kHz waveforms (convolutional feature encoder, convolutional positions): Wav2Vec2, HuBERT, Data2VecAudio, UniSpeech, UniSpeechSat and WavLM (gated relative position bias), with CTC or classification heads",
        base: wav2vec2_like!("Model"),
        tasks: &[
            (Task::AutomaticSpeechRecognition, wav2vec2_like!("ForCTC")),
            (
                Task::AudioClassification,
                wav2vec2_like!("ForSequenceClassification"),
            ),
        ],
    },
    FamilySpec {
        family: Family::Whisper,
        modality: Modality::Audio,
        description: "Whisper encoder-decoder speech recognition on log-mel spectrograms, with language/task prompt tokens and 30-second windows",
        base: &["WhisperModel"],
        tasks: &[(
            Task::AutomaticSpeechRecognition,
            &["WhisperForConditionalGeneration"],
        )],
    },
    FamilySpec {
        family: Family::Llava,
        modality: Modality::Multimodal,
        description: "LLaVA: a CLIP vision tower and a projector feeding image features into a llama-family decoder (image-text-to-text, the llama family's generation)",
        base: &["LlavaModel"],
        tasks: &[(
            Task::ImageTextToText,
            &["LlavaForConditionalGeneration"],
        )],
    },
];

/// A family's entry.
pub fn family(family: Family) -> &'static FamilySpec {
    FAMILIES
        .iter()
        .find(|f| f.family == family)
        .expect("the registry has every family of the Family enum (tested)")
}

/// The family and task an architecture class is run for (a class may serve two
/// tasks, e.g. `BertModel` for feature-extraction only, `ViTModel` for
/// image-feature-extraction only: the first listed).
pub fn architecture(class: &str) -> Option<(Family, Task)> {
    FAMILIES.iter().find_map(|f| {
        f.tasks
            .iter()
            .find(|(_, archs)| archs.contains(&class))
            .map(|(t, _)| (f.family, *t))
    })
}

/// The registry as JSON (what `skillset --registry` prints and
/// `scripts/gen_model_types.py` reads): per family its name, description, modality,
/// base classes and `tasks` as a list of `{task, architectures}` in the family's order.
pub fn to_json() -> serde_json::Value {
    let families: Vec<serde_json::Value> = FAMILIES
        .iter()
        .map(|f| {
            // A list, not an object: the order is the family's (serde_json sorts keys).
            let tasks: Vec<serde_json::Value> = f
                .tasks
                .iter()
                .map(|(t, archs)| serde_json::json!({"task": t.as_str(), "architectures": archs}))
                .collect();
            serde_json::json!({
                "name": f.family.as_str(),
                "description": f.description,
                "modality": f.modality.as_str(),
                "base_architectures": f.base,
                "tasks": tasks,
            })
        })
        .collect();
    serde_json::json!({ "families": families })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_once_in_enum_order() {
        let listed: Vec<Family> = FAMILIES.iter().map(|f| f.family).collect();
        assert_eq!(listed, Family::ALL);
    }

    #[test]
    fn no_class_serves_two_families() {
        let mut seen = std::collections::BTreeMap::new();
        for f in FAMILIES {
            for class in f
                .base
                .iter()
                .chain(f.tasks.iter().flat_map(|(_, a)| a.iter()))
            {
                if let Some(other) = seen.insert(*class, f.family) {
                    assert_eq!(other, f.family, "{class} is in two families");
                }
            }
        }
        assert_eq!(
            architecture("CamembertForTokenClassification"),
            Some((Family::Bert, Task::TokenClassification))
        );
        assert_eq!(architecture("GPT2Model"), None);
    }
}
