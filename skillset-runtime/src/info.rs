//! What generated code says about a model type or a family.

use crate::{Backend, BackendStatus, Family, Modality, Task};

/// Everything transformers and skillsets know of one model type. build.rs generates
/// one static per model type (`skillsets::info::BERT`), the `#[skillset]` macro one
/// per annotated struct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelTypeInfo {
    /// `model_type` in config.json.
    pub model_type: &'static str,
    /// The generated Rust type (`XlmRoberta`).
    pub type_name: &'static str,
    /// The transformers configuration class (`XLMRobertaConfig`).
    pub config_class: &'static str,
    /// The configuration class without its `Config` suffix (`XLMRoberta`).
    pub display_name: &'static str,
    pub modality: Modality,
    /// The skillset family that runs it; `None` where none can yet.
    pub family: Option<Family>,
    /// Every task transformers serves for the model type, with the class it loads.
    pub hf_tasks: &'static [(Task, &'static str)],
    /// The tasks skillsets runs for it (each has a `Supports` impl).
    pub tasks: &'static [Task],
    /// Per backend, what `skillset --run-tests` measured.
    pub backends: &'static [(Backend, BackendStatus)],
    /// The transformers release the metadata was read from.
    pub transformers_version: &'static str,
}

impl ModelTypeInfo {
    /// The architecture class transformers loads for `task`, if it serves it.
    pub fn architecture(&self, task: Task) -> Option<&'static str> {
        self.hf_tasks
            .iter()
            .find(|(t, _)| *t == task)
            .map(|(_, a)| *a)
    }

    /// Whether skillsets runs `task` for this model type.
    pub fn runs(&self, task: Task) -> bool {
        self.tasks.contains(&task)
    }

    /// What was measured for `backend`.
    pub fn backend_status(&self, backend: Backend) -> BackendStatus {
        self.backends
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, s)| *s)
            .unwrap_or(if self.family.is_some() {
                BackendStatus::Untested
            } else {
                BackendStatus::Unsupported
            })
    }
}

/// One skillset family: the tasks it runs and the model types it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyInfo {
    pub family: Family,
    pub description: &'static str,
    pub modality: Modality,
    pub tasks: &'static [Task],
    /// `model_type`s whose checkpoints the family loads.
    pub model_types: &'static [&'static str],
    /// `(model_type, task, architecture class)` for every task a member runs.
    pub architectures: &'static [(&'static str, Task, &'static str)],
    pub transformers_version: &'static str,
}

/// What a skillset type stands for: one model type, or a whole family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    ModelType(&'static ModelTypeInfo),
    Family(&'static FamilyInfo),
}

impl Scope {
    /// The model type or family name.
    pub fn name(&self) -> &'static str {
        match self {
            Scope::ModelType(i) => i.model_type,
            Scope::Family(f) => f.family.as_str(),
        }
    }

    /// The family that runs it.
    pub fn family(&self) -> Option<Family> {
        match self {
            Scope::ModelType(i) => i.family,
            Scope::Family(f) => Some(f.family),
        }
    }

    /// The tasks it runs.
    pub fn tasks(&self) -> &'static [Task] {
        match self {
            Scope::ModelType(i) => i.tasks,
            Scope::Family(f) => f.tasks,
        }
    }

    /// Whether a checkpoint whose config.json says `model_type` can be loaded by it.
    pub fn accepts(&self, model_type: &str) -> bool {
        match self {
            Scope::ModelType(i) => i.model_type == model_type,
            Scope::Family(f) => f.model_types.contains(&model_type),
        }
    }

    /// The model types it accepts.
    pub fn model_types(&self) -> Vec<&'static str> {
        match self {
            Scope::ModelType(i) => vec![i.model_type],
            Scope::Family(f) => f.model_types.to_vec(),
        }
    }

    /// The architecture class transformers uses for `task` on a `model_type`
    /// checkpoint this scope accepts; the family implementation follows it.
    pub fn architecture(&self, model_type: &str, task: Task) -> Option<&'static str> {
        match self {
            Scope::ModelType(i) if i.model_type == model_type => i.architecture(task),
            Scope::ModelType(_) => None,
            Scope::Family(f) => f
                .architectures
                .iter()
                .find(|(m, t, _)| *m == model_type && *t == task)
                .map(|(_, _, a)| *a),
        }
    }

    /// `model type \`bert\`` or `family \`bert\``, for messages.
    pub fn describe(&self) -> String {
        match self {
            Scope::ModelType(i) => format!("model type `{}`", i.model_type),
            Scope::Family(f) => format!("family `{}`", f.family),
        }
    }
}
