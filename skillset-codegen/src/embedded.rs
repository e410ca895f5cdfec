//! The metadata this crate is built with, embedded from the package's own files (so
//! that the packaged crate, the `#[skillset]` macro and build.rs read the same copy
//! and nothing outside the package). The repository root's `model_types.json` and
//! `backend_results.json` are links to these files.

/// `model_types.json`: every model type of HF transformers (see [`crate::parse_metadata`]).
pub const MODEL_TYPES_JSON: &str = include_str!("../model_types.json");

/// `backend_results.json`: which backends `skillset --run-tests` verified per model
/// type (see [`crate::parse_results`]).
pub const BACKEND_RESULTS_JSON: &str = include_str!("../backend_results.json");
