//! Runs skillsets on candle: devices, checkpoint loading, tokenization, the model
//! families and one handler per task.
//!
//! Most users reach this crate through a typed skillset: a struct generated for every
//! HF model type (`skillsets::Bert`) or one of their own under `#[skillset(...)]`:
//!
//! ```no_run
//! use skillset_runtime::{skillset, task::FeatureExtraction, Skillset};
//!
//! #[skillset(model_type = "bert")]
//! struct MiniLm;
//!
//! # fn main() -> skillset_runtime::Result<()> {
//! let embed = MiniLm::init_cpu::<FeatureExtraction>("path/to/all-MiniLM-L6-v2")?;
//! let vectors = embed.embed(&["A sentence.", "Another one."])?;
//! println!("{} x {}", vectors.len(), vectors[0].len());
//! # Ok(()) }
//! ```
//!
//! Tools that pick the task at run time use [`Pipeline`] directly.

pub mod beam;
pub mod chat;
pub mod checkpoint;
pub mod device;
mod endpoints;
pub mod error;
pub mod families;
pub mod generation;
pub mod info;
pub mod limits;
pub mod media;
mod ops;
pub mod outputs;
pub mod pipeline;
pub mod pooling;
pub mod pytorch;
mod skillset;
pub mod speech;
pub mod tokenize;

pub use skillset_codegen::{Backend, BackendStatus, Family, InputKind, Modality, Task};
/// `#[skillset(family = "...")]` / `#[skillset(model_type = "...")]` on a struct.
pub use skillset_macros::skillset;

pub use chat::{ChatGeneration, ChatMessage, ChatTemplate};
pub use checkpoint::Checkpoint;
pub use device::{backend_compiled, DType, DeviceSpec, ResolvedDevice};
pub use endpoints::{GenerativeTask, TokenStream};
pub use error::{Error, Result};
pub use generation::{Generation, GenerationOptions, TokenEvent};
pub use info::{FamilyInfo, ModelTypeInfo, Scope};
pub use limits::Limits;
pub use outputs::{
    Features, FillMaskPrediction, ImageTextGeneration, LabelScore, TokenEntity, Transcription,
};
pub use pipeline::{LoadOptions, Pipeline, RunOptions, TopK};
pub use pooling::Pooling;
pub use skillset::{task, Endpoint, Skillset, Supports, TaskType};
