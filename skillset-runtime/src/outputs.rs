//! Task outputs, in the schema of HF transformers' `pipeline()` for each task.

use serde::{Deserialize, Serialize};

/// feature-extraction: per-token hidden states, or one pooled vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Features {
    /// `[[f32; hidden]; tokens]`, special tokens included (as the HF pipeline returns).
    Tokens(Vec<Vec<f32>>),
    /// `[f32; hidden]` after pooling (and normalization when asked).
    Pooled(Vec<f32>),
}

/// fill-mask: one candidate for a masked token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillMaskPrediction {
    pub score: f32,
    pub token: u32,
    pub token_str: String,
    pub sequence: String,
}

/// text-classification and the other classification tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// token-classification (aggregation `none`): one token's entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntity {
    pub entity: String,
    pub score: f32,
    /// The token's index in the encoded input (special tokens counted).
    pub index: usize,
    pub word: String,
    /// Character offsets into the input text.
    pub start: usize,
    pub end: usize,
}

/// automatic-speech-recognition: the transcription (or translation) of one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcription {
    pub text: String,
}

/// image-text-to-text: the prompt and its continuation (`generated_text` starts with
/// the prompt, as transformers' pipeline returns it by default), plus the new tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageTextGeneration {
    pub input_text: String,
    pub generated_text: String,
    pub token_ids: Vec<u32>,
}
