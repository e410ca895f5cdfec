//! Metadata schema, validation and the one code generator of skillsets.
//!
//! `model_types.json` describes every model type of HF transformers. This crate reads
//! it ([`parse_metadata`]), checks it ([`validate()`]), and turns it into typed Rust
//! ([`generate`]). The same generator serves `build.rs` of the `skillsets` crate, the
//! `#[skillset]` macro and the `skillset` CLI.
//!
//! Without the default `generate` feature the crate is only the schema (the closed
//! enums [`Task`], [`Family`], [`Modality`], [`Backend`] and the metadata types), which
//! is what `skillset-runtime` needs.

pub mod embedded;
pub mod names;
pub mod registry;
pub mod schema;
pub mod validate;

#[cfg(feature = "generate")]
pub mod check;
#[cfg(feature = "generate")]
pub mod generate;

pub use names::{suggest, Backend, Family, InputKind, Modality, Task, UnknownName};
pub use schema::{
    BackendResults, BackendRun, BackendStatus, CheckResult, FamilyEntry, Metadata, ModelTypeEntry,
    Outcome, TaskEntry,
};
pub use validate::{parse_metadata, parse_results, validate, MetadataError, Problem};
