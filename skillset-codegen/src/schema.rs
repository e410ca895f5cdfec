//! The schema of `model_types.json` and of the backend results file.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::{Backend, Family, Modality, Task};

/// The `schema_version` this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole of `model_types.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub schema_version: u32,
    /// The transformers release the file was read from.
    pub transformers_version: String,
    /// The script that wrote the file.
    pub generated_by: String,
    pub tasks: Vec<TaskEntry>,
    pub families: Vec<FamilyEntry>,
    pub model_types: Vec<ModelTypeEntry>,
}

/// One task and the transformers auto classes that serve it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEntry {
    pub name: Task,
    /// `true` for a transformers 5.x pipeline task, `false` for a 4.x task that 5.x
    /// keeps only as an auto class.
    pub pipeline: bool,
    pub auto_classes: Vec<String>,
}

/// One skillset family: which architectures its runtime implementation runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyEntry {
    pub name: Family,
    pub description: String,
    pub modality: Modality,
    /// Base model classes (`AutoModel`'s) whose model types belong to the family.
    pub base_architectures: Vec<String>,
    /// For each task the family runs, the architecture classes it can load for it.
    pub tasks: OrderedMap<Task, Vec<String>>,
}

/// One model type of transformers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTypeEntry {
    /// `model_type` in config.json, e.g. `xlm-roberta`.
    pub model_type: String,
    pub config_class: String,
    pub display_name: String,
    pub modality: Modality,
    /// The skillset family that runs it, `null` where none can yet.
    pub family: Option<Family>,
    /// Auto class -> the architecture class(es) transformers maps the model type to.
    pub architectures: OrderedMap<String, Vec<String>>,
    /// Every task transformers serves for the model type, with the class it loads.
    pub tasks: OrderedMap<Task, String>,
    /// The tasks the skillset family runs for this model type.
    pub skillset_tasks: Vec<Task>,
}

impl Metadata {
    /// The entry of a model type.
    pub fn model_type(&self, name: &str) -> Option<&ModelTypeEntry> {
        self.model_types.iter().find(|e| e.model_type == name)
    }

    /// The entry of a family.
    pub fn family(&self, family: Family) -> Option<&FamilyEntry> {
        self.families.iter().find(|f| f.name == family)
    }

    /// The model types a family runs.
    pub fn family_members(&self, family: Family) -> impl Iterator<Item = &ModelTypeEntry> {
        self.model_types
            .iter()
            .filter(move |e| e.family == Some(family))
    }

    /// Model types that serve `task` in transformers.
    pub fn with_task(&self, task: Task) -> impl Iterator<Item = &ModelTypeEntry> {
        self.model_types
            .iter()
            .filter(move |e| e.tasks.contains_key(&task))
    }
}

impl FamilyEntry {
    /// The tasks the family runs, in file order.
    pub fn task_names(&self) -> impl Iterator<Item = Task> + '_ {
        self.tasks.keys().copied()
    }
}

/// A JSON object read in file order that rejects duplicate keys (serde's maps keep
/// the last value silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedMap<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<K: PartialEq, V> OrderedMap<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Serialize, V: Serialize> Serialize for OrderedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, K, V> Deserialize<'de> for OrderedMap<K, V>
where
    K: Deserialize<'de> + PartialEq + fmt::Display,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<K, V>(PhantomData<(K, V)>);
        impl<'de, K, V> Visitor<'de> for V2<K, V>
        where
            K: Deserialize<'de> + PartialEq + fmt::Display,
            V: Deserialize<'de>,
        {
            type Value = OrderedMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(K, V)> = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(key) = map.next_key::<K>()? {
                    if out.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    let value = map.next_value()?;
                    out.push((key, value));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

// ---------------------------------------------------------------------------
// Backend results: what `skillset --run-tests` measured.
// ---------------------------------------------------------------------------

/// The results file `skillset --run-tests` writes and generation reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendResults {
    pub schema_version: u32,
    /// model type -> its runs, one per backend.
    pub results: std::collections::BTreeMap<String, Vec<BackendRun>>,
}

/// One model type's conformance run on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendRun {
    pub backend: Backend,
    pub outcome: Outcome,
    /// The device that ran it (e.g. `cpu`, `cuda:0 (NVIDIA H200)`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Why it failed or did not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// One line per (fixture, task) checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// Median latency of one call over the checks that ran, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Seconds since the Unix epoch when the run ended.
    pub measured_at: u64,
    /// The skillsets version that measured it.
    pub skillsets_version: String,
}

/// One fixture checked on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    pub fixture: String,
    pub task: Task,
    pub dtype: String,
    pub passed: bool,
    /// The largest difference from the reference (score or hidden state), if numeric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_abs_diff: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// f16/bf16: how far our outputs are from transformers' f32 outputs (largest
    /// numeric difference; absent where a label, token or shape differs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_vs_f32: Option<f64>,
    /// f16/bf16: the same for transformers' own run in this dtype: what half precision
    /// costs the reference implementation itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_error_vs_f32: Option<f64>,
    /// f16/bf16: whether ours is as close to the f32 outputs as transformers' own
    /// half-precision run (see `conformance::within_half_precision_budget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_reference_error: Option<bool>,
    /// Recorded, but not deciding the run's outcome: a beam search in f16/bf16. No
    /// margin guards which hypothesis wins (one rounding step can prune a prefix that
    /// f32 keeps), so a different winner is no evidence of a fault; the same fixture's
    /// f32 beam search and half-precision greedy checks decide.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub informational: bool,
    pub latency_ms: f64,
}

/// The outcome of one backend run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every check matched the transformers reference (f16/bf16: within 1e-2 of
    /// transformers in that dtype, or no farther from its f32 outputs than its own
    /// half-precision run; the check records which).
    Pass,
    /// At least one check failed or errored (f16/bf16: beyond transformers' own error).
    Fail,
    /// This build does not have the backend (cargo feature off).
    NotCompiled,
    /// The backend is compiled in but this machine has no such device.
    NoDevice,
    /// No skillset family runs the model type yet.
    NoFamily,
    /// A family runs it but no fixture of this model type exists to check it against.
    NoFixture,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NotCompiled => "not-compiled",
            Outcome::NoDevice => "no-device",
            Outcome::NoFamily => "no-family",
            Outcome::NoFixture => "no-fixture",
        }
    }
}

/// What generated code declares about one backend of a model type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendStatus {
    /// `--run-tests` ran the conformance checks on it and they passed.
    Verified,
    /// `--run-tests` ran them and at least one failed.
    Failed,
    /// A family runs the model type, but nothing was measured on this backend.
    Untested,
    /// No family runs the model type (so no backend can), or nothing runs on the
    /// backend yet (WebGPU, WebNN).
    Unsupported,
}

impl BackendStatus {
    pub const ALL: &'static [BackendStatus] = &[
        BackendStatus::Verified,
        BackendStatus::Failed,
        BackendStatus::Untested,
        BackendStatus::Unsupported,
    ];
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendStatus::Verified => "verified",
            BackendStatus::Failed => "failed",
            BackendStatus::Untested => "untested",
            BackendStatus::Unsupported => "unsupported",
        }
    }
    pub const fn rust_name(self) -> &'static str {
        match self {
            BackendStatus::Verified => "Verified",
            BackendStatus::Failed => "Failed",
            BackendStatus::Untested => "Untested",
            BackendStatus::Unsupported => "Unsupported",
        }
    }
}

impl BackendResults {
    pub fn new() -> Self {
        BackendResults {
            schema_version: SCHEMA_VERSION,
            results: Default::default(),
        }
    }

    /// Record a run, replacing any earlier run of the same model type and backend.
    pub fn record(&mut self, model_type: &str, run: BackendRun) {
        let runs = self.results.entry(model_type.to_string()).or_default();
        runs.retain(|r| r.backend != run.backend);
        runs.push(run);
        runs.sort_by_key(|r| r.backend);
    }

    /// The status generated code declares for a model type's backend.
    pub fn status(&self, entry: &ModelTypeEntry, backend: Backend) -> BackendStatus {
        if entry.family.is_none() || !backend.implemented() {
            return BackendStatus::Unsupported;
        }
        let run = self
            .results
            .get(&entry.model_type)
            .and_then(|runs| runs.iter().find(|r| r.backend == backend));
        match run.map(|r| r.outcome) {
            Some(Outcome::Pass) => BackendStatus::Verified,
            Some(Outcome::Fail) => BackendStatus::Failed,
            _ => BackendStatus::Untested,
        }
    }

    /// The statuses of every backend, in `Backend::ALL` order.
    pub fn statuses(&self, entry: &ModelTypeEntry) -> Vec<(Backend, BackendStatus)> {
        Backend::ALL
            .iter()
            .map(|&b| (b, self.status(entry, b)))
            .collect()
    }
}
