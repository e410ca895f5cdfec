//! Conformance checks: run a fixture's inputs through the runtime and compare with the
//! outputs HF transformers gave for the same checkpoint (`reference.json`, written by
//! `scripts/make_fixtures.py`). Shared by the test suite, `skillset --run-tests` and the
//! GPU check script, so all three judge the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use skillset_codegen::CheckResult;
use skillset_runtime::pipeline::RunOptions;
use skillset_runtime::{Backend, DType, DeviceSpec, LoadOptions, Pipeline, Scope, Task};

/// `reference.json` of a fixture directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reference {
    pub model_type: String,
    pub transformers_version: String,
    #[serde(default)]
    pub description: String,
    pub checks: Vec<ReferenceCheck>,
    /// Conversations through the checkpoint's chat template (text-generation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chats: Vec<ChatCheck>,
}

/// A conversation and what transformers did with it: `apply_chat_template`'s text and
/// ids, and the text-generation pipeline's greedy output for the chat; or the error
/// the template raised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatCheck {
    pub name: String,
    pub messages: Vec<skillset_runtime::ChatMessage>,
    /// The clock `strftime_now` read (ISO, UTC).
    pub now: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ids: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<serde_json::Value>,
    /// The template's `raise_exception` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ChatCheck {
    /// Run the conversation through `pipeline` (a text-generation pipeline) and compare
    /// with transformers: the rendered text, the ids and the output exactly, or the
    /// template's error message.
    pub fn run(&self, pipeline: &Pipeline) -> Result<(), String> {
        let now = skillset_runtime::chat::parse_iso_time(&self.now)
            .ok_or_else(|| format!("chat `{}`: bad time {:?}", self.name, self.now))?;
        let rendered = pipeline.render_chat(&self.messages, now);
        if let Some(expected) = &self.error {
            return match rendered {
                Ok(_) => Err(format!(
                    "chat `{}`: rendered, but transformers' template raised {expected:?}",
                    self.name
                )),
                Err(e) if e.to_string().ends_with(expected.as_str()) => Ok(()),
                Err(e) => Err(format!(
                    "chat `{}`: {e}; transformers' template raised {expected:?}",
                    self.name
                )),
            };
        }
        let (text, _) = rendered.map_err(|e| format!("chat `{}`: {e}", self.name))?;
        if Some(&text) != self.rendered.as_ref() {
            return Err(format!(
                "chat `{}`: renders {text:?}, transformers renders {:?}",
                self.name, self.rendered
            ));
        }
        let tok = pipeline.tokenizer().ok_or("no tokenizer")?;
        let ids = tok.encode_prompt(&text, false).map_err(|e| e.to_string())?;
        if Some(&ids) != self.input_ids.as_ref() {
            return Err(format!(
                "chat `{}`: ids {ids:?}, transformers has {:?}",
                self.name, self.input_ids
            ));
        }
        let mut opts = pipeline.generation_defaults().clone();
        if let Some(n) = self.max_new_tokens {
            opts.max_new_tokens = n;
            opts.max_length = None;
        }
        let out = pipeline
            .chat_at(std::slice::from_ref(&self.messages), &opts, now)
            .map_err(|e| format!("chat `{}`: {e}", self.name))?;
        let ours = serde_json::to_value(&out[0]).map_err(|e| e.to_string())?;
        let mut expected = self.output.clone().unwrap_or_default();
        if let Some(o) = expected.as_object_mut() {
            o.remove("step_margins");
        }
        compare(&ours, &expected, 0.0)
            .map(|_| ())
            .map_err(|e| format!("chat `{}`: {e}", self.name))
    }
}

/// One task's inputs and transformers' outputs for them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReferenceCheck {
    pub task: Task,
    pub inputs: Vec<String>,
    #[serde(default)]
    pub options: CheckOptions,
    /// One output per input, in the schema of `pipeline()` (= `skillset run --json`).
    pub outputs: Vec<serde_json::Value>,
    /// A looser bar on numbers than the dtype's, for a check whose inputs decode
    /// differently by design (JPEG), with the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_note: Option<String>,
    /// The token ids transformers' pipeline fed the model for each input (its own
    /// preprocessing): ours must be the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_ids: Option<Vec<Vec<u32>>>,
}

impl ReferenceCheck {
    /// The bar on numbers for this check in `dtype`.
    pub fn tolerance(&self, dtype: DType) -> f64 {
        tolerance(dtype).max(self.tolerance.unwrap_or(0.0))
    }
}

/// The `skillset run` options a check was recorded with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub normalize: bool,
    /// feature-extraction: the sentence-transformers prompt put before each text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis_template: Option<String>,
    /// Whisper's spoken language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Whisper's task: `transcribe` or `translate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Decoding beams (transformers' speech pipeline needs `1` said explicitly to
    /// decode greedily; absent, it searches 5 beams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_beams: Option<usize>,
    /// image-text-to-text: the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CheckOptions {
    /// The same options as `skillset run` flags.
    pub fn to_run_options(&self) -> Result<RunOptions, String> {
        let json = serde_json::to_value(self).map_err(|e| e.to_string())?;
        RunOptions::from_json(&json).map_err(|e| e.to_string())
    }

    /// The options as `skillset run` arguments.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(k) = &self.top_k {
            args.push("--top-k".into());
            args.push(match k {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            });
        }
        if let Some(p) = &self.pooling {
            args.push("--pooling".into());
            args.push(p.clone());
        }
        if self.normalize {
            args.push("--normalize".into());
        }
        if let Some(p) = &self.prompt_name {
            args.push("--prompt-name".into());
            args.push(p.clone());
        }
        if let Some(n) = self.max_new_tokens {
            args.push("--max-new-tokens".into());
            args.push(n.to_string());
        }
        if let Some(r) = self.repetition_penalty {
            args.push("--repetition-penalty".into());
            args.push(r.to_string());
        }
        if let Some(labels) = &self.candidate_labels {
            args.push("--candidate-labels".into());
            args.push(labels.join(","));
        }
        if let Some(t) = &self.hypothesis_template {
            args.push("--hypothesis-template".into());
            args.push(t.clone());
        }
        if let Some(l) = &self.language {
            args.push("--language".into());
            args.push(l.clone());
        }
        if let Some(t) = &self.text {
            args.push("--text".into());
            args.push(t.clone());
        }
        if let Some(n) = self.num_beams {
            args.push("--num-beams".into());
            args.push(n.to_string());
        }
        args
    }

    /// `skillset run`'s `--task` for a check of `task`: Whisper's `translate` /
    /// `transcribe` where the check sets one.
    pub fn task_arg(&self, task: Task) -> String {
        self.task
            .clone()
            .unwrap_or_else(|| task.as_str().to_string())
    }
}

/// A fixture: a checkpoint directory with its `reference.json`.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub name: String,
    pub dir: PathBuf,
    pub reference: Reference,
}

impl Fixture {
    pub fn open(dir: &Path) -> Result<Fixture, String> {
        let path = dir.join("reference.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let reference: Reference =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Fixture {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir: dir.to_path_buf(),
            reference,
        })
    }
}

impl Fixture {
    /// A check's inputs as `run_json` takes them: texts as they are, image and audio
    /// files (stored relative to the fixture directory) as paths.
    pub fn inputs(&self, check: &ReferenceCheck) -> Vec<String> {
        match check.task.input_kind() {
            skillset_runtime::InputKind::Text => check.inputs.clone(),
            _ => check
                .inputs
                .iter()
                .map(|p| self.dir.join(p).to_string_lossy().into_owned())
                .collect(),
        }
    }
}

/// Every fixture under `root` (directories holding a `reference.json`), sorted by name.
pub fn discover(root: &Path) -> Result<Vec<Fixture>, String> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(format!("{}: {e}", root.display())),
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if dir.join("reference.json").is_file() {
            out.push(Fixture::open(&dir)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The tolerance on scores and hidden states for a dtype (DESIGN.md §5, issue 5).
pub fn tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-4,
        DType::F16 | DType::BF16 => 1e-2,
    }
}

/// Compare `ours` with `reference`: structure, strings and integers exactly, other
/// numbers within `tol`. Returns the largest numeric difference, or where they differ.
pub fn compare(
    ours: &serde_json::Value,
    reference: &serde_json::Value,
    tol: f64,
) -> Result<f64, String> {
    let mut max = 0.0f64;
    walk(ours, reference, tol, &mut String::new(), &mut max)?;
    Ok(max)
}

/// The largest numeric difference between two outputs with the same structure,
/// labels, tokens and strings; `None` where those differ or a number is not finite
/// (NaN serializes as `null`).
pub fn distance(a: &serde_json::Value, b: &serde_json::Value) -> Option<f64> {
    compare(a, b, f64::INFINITY).ok()
}

fn finite(v: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match v {
        V::Null => false,
        V::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        V::Array(a) => a.iter().all(finite),
        V::Object(o) => o.values().all(finite),
        _ => true,
    }
}

/// Half precision judged by what it costs transformers itself. `ours` and
/// `reference` are the distances ([`distance`]) of our f16/bf16 outputs and of
/// transformers' own f16/bf16 outputs from transformers' f32 outputs. Ours is within
/// the reference's error when it is no farther from f32 than twice transformers' own
/// run (and at least the dtype's tolerance), or keeps the f32 labels and tokens where
/// transformers' own run changes them; it is not when it changes labels or tokens that
/// transformers keeps. Where both change them, it is (when every number is finite):
/// neither side is the f32 answer.
pub fn within_half_precision_budget(
    ours: Option<f64>,
    reference: Option<f64>,
    dtype: DType,
) -> bool {
    match (ours, reference) {
        (Some(o), Some(r)) => o <= (2.0 * r).max(tolerance(dtype)),
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => true,
    }
}

fn is_generation(task: Task) -> bool {
    matches!(task, Task::TextGeneration | Task::Text2TextGeneration)
}

/// The half-precision budget of a generation: for every input, ours keeps at least as
/// many of transformers' f32 tokens (from the start) as transformers' own half-precision
/// run keeps.
pub fn generation_within_budget(
    ours: &serde_json::Value,
    reference: &serde_json::Value,
    f32_outputs: &serde_json::Value,
) -> bool {
    let ids = |v: &serde_json::Value| -> Vec<u64> {
        v["token_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default()
    };
    let common = |a: &[u64], b: &[u64]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (Some(ours), Some(theirs), Some(f32s)) = (
        ours.as_array(),
        reference.as_array(),
        f32_outputs.as_array(),
    ) else {
        return false;
    };
    ours.len() == f32s.len()
        && theirs.len() == f32s.len()
        && ours.iter().zip(theirs).zip(f32s).all(|((o, t), f)| {
            let f = ids(f);
            common(&ids(o), &f) >= common(&ids(t), &f)
        })
}

/// A ranking (entries with a `score`) in `ours`, its tied entries put in the reference's
/// order: entries of exactly equal score have no order of their own (torch's `topk`
/// returns ties in an order of its implementation's, on CPU often the higher index
/// first; in bf16 two labels 1e-3 apart in f32 often round to one value). A run of
/// neighbours tied on either side is reordered only when both sides hold the same
/// entries there (all but the score equal); anything else is left to the comparison.
fn align_ties(
    ours: &[serde_json::Value],
    reference: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    let score = |v: &serde_json::Value| v.get("score").and_then(serde_json::Value::as_f64);
    let mut out = ours.to_vec();
    if ours.len() != reference.len()
        || ours.len() < 2
        || !ours.iter().chain(reference).all(|v| score(v).is_some())
    {
        return out;
    }
    let identity = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("score");
        }
        v
    };
    let tied = |side: &[serde_json::Value], i: usize| score(&side[i]) == score(&side[i + 1]);
    let mut start = 0;
    while start < ours.len() {
        let mut end = start + 1;
        while end < ours.len() && (tied(ours, end - 1) || tied(reference, end - 1)) {
            end += 1;
        }
        if end - start > 1 {
            let mut pool: Vec<serde_json::Value> = ours[start..end].to_vec();
            let mut reordered = Vec::with_capacity(end - start);
            for r in &reference[start..end] {
                let want = identity(r);
                match pool.iter().position(|o| identity(o) == want) {
                    Some(k) => reordered.push(pool.remove(k)),
                    None => break,
                }
            }
            if pool.is_empty() {
                out.splice(start..end, reordered);
            }
        }
        start = end;
    }
    out
}

fn walk(
    a: &serde_json::Value,
    b: &serde_json::Value,
    tol: f64,
    path: &mut String,
    max: &mut f64,
) -> Result<(), String> {
    use serde_json::Value as V;
    let at = |p: &str| {
        if p.is_empty() {
            "the output".to_string()
        } else {
            format!("`{p}`")
        }
    };
    match (a, b) {
        (V::Number(x), V::Number(y)) => {
            let ints = (x.is_i64() || x.is_u64()) && (y.is_i64() || y.is_u64());
            if ints {
                if x != y {
                    return Err(format!("{}: {x}, transformers has {y}", at(path)));
                }
            } else {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                let d = (x - y).abs();
                if !d.is_finite() || d > tol {
                    return Err(format!(
                        "{}: {x}, transformers has {y} (|diff| {d:.3e} > {tol:.0e})",
                        at(path)
                    ));
                }
                *max = max.max(d);
            }
        }
        (V::Array(x), V::Array(y)) => {
            if x.len() != y.len() {
                return Err(format!(
                    "{}: {} entries, transformers has {}",
                    at(path),
                    x.len(),
                    y.len()
                ));
            }
            let x = align_ties(x, y);
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(x, y, tol, path, max)?;
                path.truncate(len);
            }
        }
        (V::Object(x), V::Object(y)) => {
            let mut keys: Vec<&String> = y.keys().collect();
            keys.sort();
            for k in x.keys() {
                if !y.contains_key(k) {
                    return Err(format!(
                        "{}: key `{k}` that transformers does not have",
                        at(path)
                    ));
                }
            }
            for k in keys {
                let Some(xv) = x.get(k) else {
                    return Err(format!("{}: no key `{k}`", at(path)));
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(xv, &y[k], tol, path, max)?;
                path.truncate(len);
            }
        }
        (x, y) if x == y => {}
        (x, y) => return Err(format!("{}: {x}, transformers has {y}", at(path))),
    }
    Ok(())
}

impl Fixture {
    /// The reference to compare a run in `dtype` on `backend` with: `reference.json`
    /// (transformers in f32) for f32; for f16/bf16, transformers' own run in that dtype
    /// on that backend (`reference.<backend>-<dtype>.json`, written by
    /// `scripts/make_fixtures.py --recompute`), so that both sides round alike.
    pub fn reference_for(&self, backend: Backend, dtype: DType) -> Result<Reference, String> {
        if dtype == DType::F32 {
            return Ok(self.reference.clone());
        }
        let name = format!("reference.{}-{}.json", backend.as_str(), dtype.as_str());
        // `SKILLSET_REFERENCES=DIR` (what scripts/gpu-check.sh sets) holds references
        // recomputed elsewhere, as DIR/<fixture>/reference.<backend>-<dtype>.json.
        let path = std::env::var_os("SKILLSET_REFERENCES")
            .map(|d| std::path::PathBuf::from(d).join(&self.name).join(&name))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| self.dir.join(&name));
        let text = std::fs::read_to_string(&path).map_err(|_| {
            let script = if self
                .reference
                .checks
                .iter()
                .any(|c| c.task.input_kind() != skillset_runtime::InputKind::Text)
            {
                "make_media_fixtures.py"
            } else {
                "make_fixtures.py"
            };
            format!(
                "no {name}: record transformers' {dtype} outputs on {backend} first \
                 (python scripts/{script} --recompute {} --device {backend} --dtype {dtype})",
                self.dir.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Greedy steps whose best and second-best logits are closer than this (in the
/// reference's own precision) may pick either token: the tokens after one are not
/// compared.
pub fn low_margin(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 0.0,
        DType::F16 => 0.05,
        DType::BF16 => 0.25,
    }
}

/// Compare generations with a reference that recorded its per-step margins: tokens
/// must agree up to the first near tie; text only when there was none.
fn compare_generations(
    ours: &serde_json::Value,
    reference: &serde_json::Value,
    dtype: DType,
) -> Result<f64, String> {
    let (Some(ours), Some(refs)) = (ours.as_array(), reference.as_array()) else {
        return Err("generation outputs are not lists".into());
    };
    if ours.len() != refs.len() {
        return Err(format!(
            "{} outputs, transformers has {}",
            ours.len(),
            refs.len()
        ));
    }
    for (i, (o, r)) in ours.iter().zip(refs).enumerate() {
        let ids = |v: &serde_json::Value| -> Vec<u64> {
            v["token_ids"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                .unwrap_or_default()
        };
        let (mine, theirs) = (ids(o), ids(r));
        let margins: Vec<f64> = r["step_margins"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        let sure = margins
            .iter()
            .position(|m| *m < low_margin(dtype))
            .unwrap_or(theirs.len());
        if sure >= theirs.len() {
            if mine != theirs || o["generated_text"] != r["generated_text"] {
                return Err(format!(
                    "[{i}]: tokens {mine:?}, transformers has {theirs:?}"
                ));
            }
        } else if mine.get(..sure) != theirs.get(..sure) {
            return Err(format!(
                "[{i}]: tokens {mine:?}, transformers has {theirs:?} (which agree up to its near tie at step {sure})"
            ));
        }
    }
    Ok(0.0)
}

/// Compare the outputs of one check (`ours`, one per input) with transformers'
/// (`expected`, the check of the reference for this dtype): generations token by
/// token up to the first near tie, everything else with [`compare`] at the dtype's
/// tolerance. The web backend's browser tests use the same rule.
pub fn check_outputs(
    expected: &ReferenceCheck,
    ours: &serde_json::Value,
    dtype: DType,
) -> Result<f64, String> {
    let expected_outputs = serde_json::Value::from(expected.outputs.clone());
    if is_generation(expected.task)
        && expected_outputs
            .get(0)
            .is_some_and(|o| o.get("step_margins").is_some())
    {
        compare_generations(ours, &expected_outputs, dtype)
    } else {
        compare(ours, &expected_outputs, expected.tolerance(dtype))
    }
}

/// Run every check of a fixture through the runtime (loading through `scope`) and
/// compare with transformers. One [`CheckResult`] per check.
pub fn run_fixture(
    fixture: &Fixture,
    scope: Scope,
    device: DeviceSpec,
    dtype: DType,
) -> Vec<CheckResult> {
    let backend = device.backend().unwrap_or(Backend::Cpu);
    let reference = fixture.reference_for(backend, dtype);
    let mut loaded: HashMap<Task, Pipeline> = HashMap::new();
    let mut out = Vec::new();
    for (i, check) in fixture.reference.checks.iter().enumerate() {
        let started = Instant::now();
        type Budget = Option<(Option<f64>, Option<f64>, bool)>;
        let result = (|| -> Result<(Result<f64, String>, Budget), String> {
            let reference = reference.as_ref().map_err(Clone::clone)?;
            let expected = reference
                .checks
                .get(i)
                .ok_or("the dtype reference has fewer checks")?;
            let pipeline = match loaded.entry(check.task) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    Pipeline::load_for_scope(
                        scope,
                        &fixture.dir,
                        check.task,
                        &LoadOptions::new(device, dtype),
                    )
                    .map_err(|e| e.to_string())?,
                ),
            };
            let opts = check.options.to_run_options()?;
            let inputs = fixture.inputs(check);
            if let Some(expected_ids) = &check.input_ids {
                let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
                let ours = pipeline.input_ids(&texts).map_err(|e| e.to_string())?;
                if &ours != expected_ids {
                    return Err(format!(
                        "the model reads token ids {ours:?}, transformers' pipeline encodes {expected_ids:?}"
                    ));
                }
            }
            let ours = serde_json::Value::from(
                pipeline
                    .run_json(&inputs, &opts)
                    .map_err(|e| e.to_string())?,
            );
            // How far half precision takes ours and transformers' own run from
            // transformers' f32 outputs: by numbers, or for generations by how many
            // tokens stay those of f32.
            let budget = (dtype != DType::F32).then(|| {
                let f32_outputs = serde_json::Value::from(check.outputs.clone());
                let theirs = serde_json::Value::from(expected.outputs.clone());
                if is_generation(check.task) {
                    let within = generation_within_budget(&ours, &theirs, &f32_outputs);
                    (None, None, within)
                } else {
                    let (e_ours, e_theirs) = (
                        distance(&ours, &f32_outputs),
                        distance(&theirs, &f32_outputs),
                    );
                    let within =
                        finite(&ours) && within_half_precision_budget(e_ours, e_theirs, dtype);
                    (e_ours, e_theirs, within)
                }
            });
            Ok((check_outputs(expected, &ours, dtype), budget))
        })();
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let (passed, max_abs_diff, detail, budget) = match result {
            Ok((Ok(d), budget)) => (true, Some(d), None, budget),
            Ok((Err(e), budget)) => (false, None, Some(e), budget),
            Err(e) => (false, None, Some(e), None),
        };
        let (error_vs_f32, reference_error_vs_f32, within) = match budget {
            // A check that passes the dtype's own bar is within budget too.
            Some((o, r, w)) => (o, r, Some(w || passed)),
            None => (None, None, None),
        };
        // transformers' speech pipeline searches beams for Whisper unless told 1.
        let beams = check.options.num_beams.unwrap_or(
            if fixture.reference.model_type == "whisper"
                && check.task == Task::AutomaticSpeechRecognition
            {
                skillset_runtime::speech::WHISPER_DEFAULT_BEAMS
            } else {
                1
            },
        );
        let informational = dtype != DType::F32 && beams > 1;
        let detail = detail.map(|d| {
            if informational {
                format!("{d} (a half-precision beam search: recorded, not counted)")
            } else {
                d
            }
        });
        out.push(CheckResult {
            fixture: fixture.name.clone(),
            task: check.task,
            dtype: dtype.to_string(),
            passed,
            max_abs_diff,
            detail,
            error_vs_f32,
            reference_error_vs_f32,
            within_reference_error: within,
            informational,
            latency_ms,
        });
    }
    // Chats: f32 references only (no half-precision run of them is recorded).
    if dtype == DType::F32 && !fixture.reference.chats.is_empty() {
        let started = Instant::now();
        let result = Pipeline::load_for_scope(
            scope,
            &fixture.dir,
            Task::TextGeneration,
            &LoadOptions::new(device, dtype),
        )
        .map_err(|e| e.to_string())
        .and_then(|p| fixture.reference.chats.iter().try_for_each(|c| c.run(&p)));
        out.push(CheckResult {
            fixture: fixture.name.clone(),
            task: Task::TextGeneration,
            dtype: dtype.to_string(),
            passed: result.is_ok(),
            max_abs_diff: result.is_ok().then_some(0.0),
            detail: Some(match result {
                Ok(()) => format!(
                    "{} chats through the chat template",
                    fixture.reference.chats.len()
                ),
                Err(e) => e,
            }),
            error_vs_f32: None,
            reference_error_vs_f32: None,
            within_reference_error: None,
            informational: false,
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tied_scores_have_no_order_of_their_own() {
        // transformers' bf16 run: `ter` and `ot` tied, `ter` first (torch's topk order);
        // ours: tied too, `ot` first. The same answer.
        let theirs = json!([{"token_str": "'", "score": 0.155}, {"token_str": "ter", "score": 0.0369},
                            {"token_str": "ot", "score": 0.0369}]);
        let ours = json!([{"token_str": "'", "score": 0.158}, {"token_str": "ot", "score": 0.0364},
                          {"token_str": "ter", "score": 0.0364}]);
        assert!(compare(&ours, &theirs, 1e-2).is_ok());
        // Ours tied, the f32 reference not: ours is compared label by label.
        let f32s = json!([{"token_str": "'", "score": 0.1723}, {"token_str": "ter", "score": 0.0369},
                          {"token_str": "ot", "score": 0.0366}]);
        assert!(distance(&ours, &f32s).is_some_and(|d| d < 0.02));
        // Not tied on either side: the order is the answer.
        let swapped = json!([{"token_str": "'", "score": 0.1723}, {"token_str": "ot", "score": 0.0366},
                             {"token_str": "ter", "score": 0.0369}]);
        assert!(compare(&swapped, &f32s, 1e-2).is_err());
        // Tied, but other entries: not excused.
        let other = json!([{"token_str": "'", "score": 0.158}, {"token_str": "ot", "score": 0.0364},
                           {"token_str": "m", "score": 0.0364}]);
        assert!(compare(&other, &theirs, 1e-2).is_err());
    }

    #[test]
    fn compare_rules() {
        let r = json!([{"label": "A", "score": 0.5, "index": 3}]);
        assert!(compare(
            &json!([{"label": "A", "score": 0.50005, "index": 3}]),
            &r,
            1e-4
        )
        .is_ok());
        let e = compare(&json!([{"label": "A", "score": 0.6, "index": 3}]), &r, 1e-4).unwrap_err();
        assert!(e.contains("`[0].score`: 0.6, transformers has 0.5"), "{e}");
        let e = compare(&json!([{"label": "B", "score": 0.5, "index": 3}]), &r, 1e-4).unwrap_err();
        assert!(e.contains("`[0].label`"), "{e}");
        let e = compare(&json!([{"label": "A", "score": 0.5, "index": 4}]), &r, 1e-4).unwrap_err();
        assert!(e.contains("`[0].index`: 4, transformers has 3"), "{e}");
        let e = compare(&json!([]), &r, 1e-4).unwrap_err();
        assert!(e.contains("0 entries, transformers has 1"), "{e}");
        let e = compare(&json!([{"label": "A", "score": 0.5}]), &r, 1e-4).unwrap_err();
        assert!(e.contains("no key `index`"), "{e}");
        assert!(compare(&json!(f64::NAN), &json!(1.0), 1.0).is_err());
    }

    #[test]
    fn half_precision_generations_are_compared_up_to_the_first_near_tie() {
        let reference = json!([{"generated_text": "ab", "token_ids": [1, 2, 3], "step_margins": [2.0, 0.01, 3.0]}]);
        // Agrees up to step 1, where the reference's margin is below the bf16 bar.
        assert!(compare_generations(
            &json!([{"generated_text": "x", "token_ids": [1, 9, 9]}]),
            &reference,
            DType::BF16
        )
        .is_ok());
        let e = compare_generations(
            &json!([{"generated_text": "x", "token_ids": [7, 2, 3]}]),
            &reference,
            DType::BF16,
        )
        .unwrap_err();
        assert!(e.contains("agree up to its near tie at step 1"), "{e}");
        // Without a near tie every token and the text must match.
        let sure =
            json!([{"generated_text": "ab", "token_ids": [1, 2], "step_margins": [2.0, 3.0]}]);
        assert!(compare_generations(
            &json!([{"generated_text": "ab", "token_ids": [1, 2]}]),
            &sure,
            DType::F16
        )
        .is_ok());
        assert!(compare_generations(
            &json!([{"generated_text": "ab", "token_ids": [1, 3]}]),
            &sure,
            DType::F16
        )
        .is_err());
    }

    #[test]
    fn half_precision_needs_its_own_reference() {
        // The repository's fixture (the package has none of its own).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bert-tiny-mlm");
        let f = Fixture::open(&dir).unwrap();
        assert_eq!(
            f.reference_for(Backend::Cpu, DType::F32)
                .unwrap()
                .checks
                .len(),
            f.reference.checks.len()
        );
        let e = f.reference_for(Backend::Cuda, DType::F16).unwrap_err();
        assert!(
            e.contains("no reference.cuda-f16.json") && e.contains("--recompute"),
            "{e}"
        );
    }

    #[test]
    fn half_precision_budget_is_transformers_own_error() {
        let f32s = json!([[1.0, 2.0], [3.0, 4.0]]);
        let theirs = json!([[1.0, 2.1], [3.0, 4.0]]);
        let close = json!([[1.05, 2.0], [3.0, 4.1]]);
        let far = json!([[1.0, 2.0], [3.0, 4.3]]);
        let r = distance(&theirs, &f32s);
        assert!((r.unwrap() - 0.1).abs() < 1e-9);
        assert!(within_half_precision_budget(
            distance(&close, &f32s),
            r,
            DType::BF16
        ));
        assert!(!within_half_precision_budget(
            distance(&far, &f32s),
            r,
            DType::BF16
        ));
        // The dtype's tolerance is the least budget, even where transformers is exact.
        assert!(within_half_precision_budget(
            Some(0.005),
            Some(0.0),
            DType::F16
        ));
        // A label that transformers keeps and ours changes is out; one both change is in.
        let labels = |l: &str| json!([{"label": l, "score": 0.5}]);
        let f32l = labels("a");
        let d = |x: &serde_json::Value| distance(x, &f32l);
        assert!(!within_half_precision_budget(
            d(&labels("b")),
            d(&labels("a")),
            DType::F16
        ));
        assert!(within_half_precision_budget(
            d(&labels("b")),
            d(&labels("c")),
            DType::F16
        ));
        // NaN serializes as null: never a distance.
        assert_eq!(distance(&json!([null]), &json!([1.0])), None);
        assert!(!finite(&json!([[1.0, null]])));
    }

    #[test]
    fn generation_budget_counts_the_f32_tokens_kept() {
        let g = |ids: &[u64]| json!([{"generated_text": "", "token_ids": ids}]);
        let f32s = g(&[1, 2, 3, 4]);
        let theirs = g(&[1, 2, 9, 9]);
        assert!(generation_within_budget(&g(&[1, 2, 7, 7]), &theirs, &f32s));
        assert!(generation_within_budget(&g(&[1, 2, 3, 4]), &theirs, &f32s));
        assert!(!generation_within_budget(&g(&[1, 5, 3, 4]), &theirs, &f32s));
        assert!(!generation_within_budget(&json!([]), &theirs, &f32s));
    }
}
