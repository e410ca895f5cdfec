//! The resource budget of one pipeline: ceilings on every size that comes from a file
//! or a caller (processor sizes, audio length, images, input tokens, new tokens, beams),
//! checked before any buffer is sized from it. A request over the budget is
//! [`Error::OverLimit`](crate::Error::OverLimit), naming the value and the limit.

use crate::error::{Error, Result};

/// Ceilings on what one call may make the runtime allocate or compute. The defaults fit
/// real checkpoints (a 30 s Whisper window, 16K images, a 128K-token context) with room
/// to spare while keeping one request of a tiny file from asking for gigabytes; raise
/// them in [`LoadOptions::limits`](crate::LoadOptions) for bigger work.
///
/// ```
/// use skillset_runtime::{LoadOptions, Limits};
///
/// let options = LoadOptions { limits: Limits { max_audio_seconds: 4 * 3600, ..Limits::default() }, ..LoadOptions::default() };
/// assert_eq!(options.limits.max_beams, 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest audio input, in seconds (Whisper and CTC models run it in windows).
    pub max_audio_seconds: u64,
    /// Largest image a processor makes or reads, in pixels (height x width).
    pub max_image_pixels: u64,
    /// Longest side of an image a processor's settings ask for (`size`, `crop_size`).
    pub max_image_side: u64,
    /// Longest text input, in tokens, to a model without a position limit of its own
    /// whose tokenizer sets no `model_max_length` (T5's relative attention).
    pub max_input_tokens: usize,
    /// Most new tokens one generation may ask for.
    pub max_new_tokens: usize,
    /// Most beams of a beam search.
    pub max_beams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_audio_seconds: 3 * 3600,
            max_image_pixels: 1 << 28,
            max_image_side: 8192,
            max_input_tokens: 2048,
            max_new_tokens: 1 << 17,
            max_beams: 64,
        }
    }
}

impl Limits {
    /// `Err(OverLimit)` when `value` is over `limit`.
    pub(crate) fn check(what: &str, value: u128, limit: u128, field: &str) -> Result<()> {
        if value > limit {
            return Err(Error::OverLimit {
                what: what.to_string(),
                value,
                limit,
                field: field.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) fn check_beams(&self, beams: usize) -> Result<()> {
        Self::check("beams", beams as u128, self.max_beams as u128, "max_beams")
    }

    pub(crate) fn check_new_tokens(&self, n: usize) -> Result<()> {
        Self::check(
            "new tokens",
            n as u128,
            self.max_new_tokens as u128,
            "max_new_tokens",
        )
    }

    pub(crate) fn check_image_side(&self, what: &str, side: u64) -> Result<()> {
        Self::check(
            what,
            side as u128,
            self.max_image_side as u128,
            "max_image_side",
        )
    }

    pub(crate) fn check_image_pixels(&self, what: &str, height: usize, width: usize) -> Result<()> {
        Self::check(
            what,
            height as u128 * width as u128,
            self.max_image_pixels as u128,
            "max_image_pixels",
        )
    }

    pub(crate) fn check_audio(&self, samples: usize, rate: u32) -> Result<()> {
        // Whole seconds, rounded up, so that a limit of N seconds takes N seconds.
        let seconds = (samples as u128).div_ceil(rate.max(1) as u128);
        Self::check(
            "seconds of audio",
            seconds,
            self.max_audio_seconds as u128,
            "max_audio_seconds",
        )
    }
}
