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
