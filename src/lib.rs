//! Typed, ready-to-run inference skillsets for every model type of HF transformers.
//!
//! `cargo build` generates one struct per model type from `model_types.json`
//! (`skillsets::Bert`, `skillsets::XlmRoberta`, `skillsets::Llama`, ... 800+ of them),
//! each with the tasks its skillset family runs as `Supports<Task>` impls:
//!
//! ```no_run
//! use skillsets::{task::FillMask, Bert, Skillset};
//!
//! # fn main() -> skillsets::Result<()> {
//! let fill = Bert::init_cpu::<FillMask>("tests/fixtures/bert-tiny-mlm")?;
//! for p in fill.call("Paris is the [MASK] of France.")? {
//!     println!("{:>8.4} {}", p.score, p.token_str);
//! }
//! # Ok(()) }
//! ```
//!
//! A task the model type does not run is a compile error:
//!
//! ```compile_fail
//! use skillsets::{task::ImageClassification, Bert, Skillset};
//! let _ = Bert::init_cpu::<ImageClassification>("checkpoint");
//! ```
//!
//! The [`info`] module has each model type's metadata as a static, [`MODEL_TYPES`]
//! lists them all and [`lookup`] finds one by name.

pub use skillset_runtime as runtime;
pub use skillset_runtime::{
    skillset, task, Backend, BackendStatus, DType, DeviceSpec, Endpoint, Error, Family, FamilyInfo,
    InputKind, Modality, ModelTypeInfo, Result, Scope, Skillset, Supports, Task,
};

#[cfg(feature = "cli")]
pub mod cli;

include!(concat!(env!("OUT_DIR"), "/model_types.rs"));

/// The metadata of a model type by its `model_type` name (as in config.json).
pub fn lookup(model_type: &str) -> Option<&'static ModelTypeInfo> {
    MODEL_TYPES
        .binary_search_by(|info| info.model_type.cmp(model_type))
        .ok()
        .map(|i| MODEL_TYPES[i])
}

/// The metadata of a family.
pub fn family_info(family: Family) -> &'static FamilyInfo {
    FAMILIES
        .iter()
        .find(|f| f.family == family)
        .expect("build.rs generates every family of the Family enum")
}

/// The text of `model_types.json` this crate was built from.
pub const MODEL_TYPES_JSON: &str = skillset_codegen::embedded::MODEL_TYPES_JSON;
