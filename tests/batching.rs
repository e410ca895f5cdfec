//! More inputs than fit one batch run in length-sorted batches; the outputs come back
//! in input order and equal what one big batch gives.

use std::path::Path;

use skillsets::runtime::pipeline::RunOptions;
use skillsets::runtime::{LoadOptions, Pipeline, Scope};
use skillsets::Task;

fn max_diff(a: &serde_json::Value, b: &serde_json::Value) -> f64 {
    match (a, b) {
        (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter()
                .zip(y)
                .map(|(a, b)| max_diff(a, b))
                .fold(0.0, f64::max)
        }
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
            x.iter()
                .map(|(k, v)| max_diff(v, &y[k]))
                .fold(0.0, f64::max)
        }
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs()
        }
        _ => {
            assert_eq!(a, b);
            0.0
        }
    }
}

#[test]
fn length_sorted_batches_keep_input_order() {
    let inputs: Vec<String> = [
        "short",
        "a much longer sentence that needs many more tokens than the others around it do",
        "",
        "medium length text here",
        "x",
        "another fairly long input sentence with quite a few words in it",
        "two words",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (fixture, task, model_type) in [
        ("bert-tiny-cls", "text-classification", "bert"),
        ("bert-tiny-mlm", "feature-extraction", "bert"),
        ("bert-tiny-ner", "token-classification", "bert"),
    ] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture);
        let task: Task = task.parse().unwrap();
        let scope = Scope::ModelType(skillsets::lookup(model_type).unwrap());
        let load = |n: usize| {
            let opts = LoadOptions {
                max_batch_size: n,
                ..LoadOptions::default()
            };
            Pipeline::load_for_scope(scope, &dir, task, &opts).unwrap()
        };
        let run = RunOptions::default();
        let one_batch = serde_json::Value::from(load(32).run_json(&inputs, &run).unwrap());
        let sorted = serde_json::Value::from(load(2).run_json(&inputs, &run).unwrap());
        let one_by_one: Vec<serde_json::Value> = inputs
            .iter()
            .map(|i| load(1).run_json(std::slice::from_ref(i), &run).unwrap()[0].clone())
            .collect();
        let d = max_diff(&sorted, &one_batch);
        assert!(
            d < 1e-5,
            "{fixture}: batches of 2 differ from one batch by {d}"
        );
        let d = max_diff(&sorted, &serde_json::Value::from(one_by_one));
        assert!(
            d < 1e-5,
            "{fixture}: batches of 2 differ from one by one by {d}"
        );
    }
}
