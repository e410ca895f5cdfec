//! The runtime's errors: each says what is wrong and, where there is one, the fix.

use std::path::PathBuf;

use crate::{Backend, Task};

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a checkpoint on disk and a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend exists but this build does not have it.
    #[error("the {backend} backend is not compiled into this build: rebuild with `--features {feature}`")]
    BackendNotCompiled {
        backend: Backend,
        feature: &'static str,
    },

    /// The backend is compiled in but the device cannot be used.
    #[error("device `{device}` is not available: {reason}")]
    DeviceUnavailable { device: String, reason: String },

    /// A device or dtype string that does not parse.
    #[error("{0}")]
    InvalidOption(String),

    /// The dtype cannot be used on the device.
    #[error("dtype {dtype} is not supported on {device}: {reason}")]
    UnsupportedDType {
        dtype: String,
        device: String,
        reason: String,
    },

    /// The skillset does not run the task (for dynamic loading; typed loading makes
    /// this a compile error).
    #[error(
        "{scope} does not run the task `{task}`; it runs: {}",
        list_tasks(supported)
    )]
    UnsupportedTask {
        scope: String,
        task: Task,
        supported: Vec<Task>,
    },

    /// No skillset family runs this model type yet.
    #[error("no skillset family runs model type `{model_type}` yet (transformers serves it with {architectures}); \
             `skillset --list-families` shows what runs")]
    NoFamily {
        model_type: String,
        architectures: String,
    },

    /// config.json names a model type transformers does not know.
    #[error("{path}: `model_type` is `{model_type}`, which is not a model type of transformers {transformers_version}{suggestion}")]
    UnknownModelType {
        path: PathBuf,
        model_type: String,
        transformers_version: &'static str,
        suggestion: String,
    },

    /// The checkpoint is of another model type than the skillset's.
    #[error("{path} is a `{found}` checkpoint, but this skillset is for {expected}")]
    ModelTypeMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },

    /// A request over the pipeline's resource budget ([`crate::Limits`]).
    #[error("{value} {what} is over the limit of {limit} (`Limits::{field}`; raise it in LoadOptions::limits if you mean it)")]
    OverLimit {
        what: String,
        value: u128,
        limit: u128,
        field: String,
    },

    /// A file the checkpoint needs is not there.
    #[error("{path}: {what} not found{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    MissingFile {
        path: PathBuf,
        what: &'static str,
        hint: Option<String>,
    },

    /// A file is there but unreadable or malformed.
    #[error("{path}: {reason}")]
    InvalidFile { path: PathBuf, reason: String },

    /// A model id that is not in the local Hugging Face cache.
    #[error(
        "`{model_id}` is neither a checkpoint directory nor in the Hugging Face cache at {cache}: \
             download it first (e.g. `huggingface-cli download {model_id}`) or pass a directory"
    )]
    NotInCache { model_id: String, cache: PathBuf },

    /// The checkpoint's weights do not match what its config.json describes.
    #[error("{path}: the weights do not fit the config: {reason}")]
    WeightMismatch { path: PathBuf, reason: String },

    /// Input the task cannot take.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The device ran out of memory.
    #[error("out of memory on the device: {0} (use a smaller batch (`max_batch_size`), a shorter input, f16/bf16, or another device)")]
    OutOfMemory(String),

    /// A tensor operation failed.
    #[error("tensor operation failed: {}", first_line(.0))]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        let message = first_line(&e);
        if message.contains("OUT_OF_MEMORY")
            || message.to_ascii_lowercase().contains("out of memory")
        {
            Error::OutOfMemory(message)
        } else {
            Error::Candle(e)
        }
    }
}

/// candle errors carry a backtrace when RUST_BACKTRACE is set: keep the message.
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or("").to_string()
}

fn list_tasks(tasks: &[Task]) -> String {
    if tasks.is_empty() {
        "no task".into()
    } else {
        tasks
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Error {
    pub(crate) fn invalid_file(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::InvalidFile {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_memory_is_its_own_error() {
        let e: Error = candle_core::Error::Msg(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
        )
        .into();
        assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
        assert!(e.to_string().contains("smaller batch"));
        let e: Error = candle_core::Error::Msg("shape mismatch".into()).into();
        assert!(matches!(e, Error::Candle(_)));
    }
}
