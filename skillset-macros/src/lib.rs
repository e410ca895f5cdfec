//! `#[skillset(...)]`: give a user's struct the typed skillset API of a family or a
//! model type of HF transformers.
//!
//! ```ignore
//! use skillset_runtime::{skillset, task::FillMask, Skillset};
//!
//! #[skillset(family = "bert")]
//! struct MyBert;
//!
//! let fill = MyBert::init_cpu::<FillMask>("path/to/checkpoint")?;
//! ```
//!
//! The entry point only parses and hands over to [`expand`]; mistakes become
//! `compile_error!`s at the span of the token that is wrong, all of them at once.

mod attr;
mod expand;
mod metadata;

use proc_macro::TokenStream;

/// Implement `skillset_runtime::Skillset` (and `Supports<Task>` for every task it runs)
/// for a struct.
///
/// Keys (exactly one): `family = "bert"` for every model type of a family, or
/// `model_type = "roberta"` for one model type. The names come from the
/// `model_types.json` embedded in skillset-codegen (set `SKILLSET_MODEL_TYPES` to read
/// another copy); a model type's backend statuses from its `backend_results.json`, as
/// for the types `skillsets` generates.
///
/// Optional: `crate = path`, the path of skillset-runtime in the calling crate
/// (default `::skillset_runtime`). A crate that depends only on `skillsets` writes
/// `#[skillsets::skillset(family = "bert", crate = skillsets::runtime)]`.
#[proc_macro_attribute]
pub fn skillset(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
