//! The interface of encoder-only text models (BERT and its relatives): hidden states
//! plus the task head they were loaded with.

use candle_core::Tensor;

use crate::error::Result;

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
