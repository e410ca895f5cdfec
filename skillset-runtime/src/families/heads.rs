//! The interface of text encoders (BERT and its relatives, and decoders read as
//! encoders): hidden states plus the task head they were loaded with (a task's handler
//! holds the model, so the head is its task's).

use candle_core::Tensor;

use crate::error::Result;

/// An encoder-only model: hidden states plus one task head.
pub(crate) trait EncoderModel: Send + Sync {
    /// Last hidden states `[batch, len, hidden]`.
    fn hidden_states(&self, batch: &crate::tokenize::EncodedBatch) -> Result<Tensor>;
    /// The head's logits from the hidden states: `[batch, len, vocab]` (masked LM),
    /// `[batch, labels]` (sequence) or `[batch, len, labels]` (token classification).
    fn head_logits(&self, hidden: &Tensor) -> Result<Tensor>;
    /// A sequence classifier's logits `[batch, labels]` for a batch: the head on the
    /// hidden states (a decoder pools by the token ids, so it overrides this).
    fn sequence_logits(&self, batch: &crate::tokenize::EncodedBatch) -> Result<Tensor> {
        self.head_logits(&self.hidden_states(batch)?)
    }
    /// The longest input, in tokens, it can take.
    fn max_positions(&self) -> usize;
}
