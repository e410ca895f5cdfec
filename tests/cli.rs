//! The `skillset` generator CLI: listing, generation, validation, --run-tests and its
//! handling of bad input (exit codes, one clear line, never a panic).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn skillset(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skillset"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("skillset runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("skillset-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn no_panic(o: &Output) {
    assert!(!stderr(o).contains("panicked"), "panicked: {}", stderr(o));
}

#[test]
fn list_families_and_tasks_as_json() {
    let o = skillset(&["--list-families", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let families: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let families = families.as_array().unwrap();
    let bert = families.iter().find(|f| f["family"] == "bert").unwrap();
    let members: Vec<&str> = bert["model_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for m in [
        "bert",
        "roberta",
        "xlm-roberta",
        "camembert",
        "distilbert",
        "electra",
    ] {
        assert!(members.contains(&m), "{members:?}");
    }
    assert_eq!(
        bert["model_type_count"].as_u64().unwrap() as usize,
        members.len()
    );
    // Verified = a committed fixture passed (backend_results.json).
    let verified: usize = families
        .iter()
        .map(|f| f["verified"].as_array().unwrap().len())
        .sum();
    assert!(verified >= 25, "only {verified} model types verified");
    assert!(bert["verified"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "xlm-roberta"));
    // Per backend: the wasm entries are what the headless-Chromium tests measured
    // (scripts/test-web.sh with SKILLSET_WEB_RECORD=1); nothing runs on WebGPU/WebNN.
    let on = |f: &Value, b: &str| -> Vec<String> {
        f["verified_by_backend"][b]
            .as_array()
            .unwrap_or_else(|| panic!("no verified_by_backend.{b}"))
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let wasm: usize = families.iter().map(|f| on(f, "wasm").len()).sum();
    assert!(
        wasm >= 25,
        "only {wasm} model types verified in the browser"
    );
    assert!(on(bert, "wasm").contains(&"xlm-roberta".to_string()));
    for f in families {
        assert!(on(f, "webgpu").is_empty() && on(f, "webnn").is_empty());
        assert_eq!(
            f["unsupported_backends"],
            serde_json::json!(["webgpu", "webnn"])
        );
    }

    let o = skillset(&["--list-tasks", "--json"]);
    assert!(o.status.success());
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let fill = doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "fill-mask")
        .unwrap();
    assert!(fill["model_types"].as_u64().unwrap() >= 40);
    assert!(fill["skillset_model_types"].as_u64().unwrap() >= 4);

    let o = skillset(&["--list-families"]);
    assert!(stdout(&o).contains("bert"));
}

#[test]
fn all_writes_one_file_per_model_type_and_validates() {
    let dir = tmpdir("all");
    let d = dir.to_str().unwrap();
    let o = skillset(&["--all", "--max-workers", "4", "--output-dir", d, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let n = summary["model_types"].as_u64().unwrap() as usize;
    assert!(n >= 800);
    assert_eq!(summary["created"].as_u64().unwrap() as usize, n);
    let files = std::fs::read_dir(&dir).unwrap().filter(|e| {
        let p = e.as_ref().unwrap().path();
        p.extension().is_some_and(|x| x == "rs") && p.file_name().unwrap() != "mod.rs"
    });
    assert_eq!(files.count(), n);
    let bert = std::fs::read_to_string(dir.join("bert.rs")).unwrap();
    assert!(bert.starts_with("// @generated"));
    assert!(bert.contains(
        "impl ::skillset_runtime::Supports<::skillset_runtime::task::FillMask> for Bert {}"
    ));
    assert!(std::fs::read_to_string(dir.join("mod.rs"))
        .unwrap()
        .contains("pub mod xlm_roberta;"));

    // A second run keeps what is there; --force rewrites (unchanged content stays).
    let o = skillset(&["--model", "bert", "--output-dir", d]);
    assert!(stdout(&o).contains("kept existing"), "{}", stdout(&o));
    let o = skillset(&["--model", "bert", "--output-dir", d, "--force"]);
    assert!(stdout(&o).contains("up to date"), "{}", stdout(&o));

    // --validate passes on generated files ...
    let o = skillset(&[
        "--validate",
        "bert",
        "--validate",
        "llama",
        "--validate",
        "xlm-roberta",
        "--output-dir",
        d,
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("valid skillset for `bert`"));

    // ... and names what is missing when an item is removed.
    let broken = bert.replace(
        "#[automatically_derived]\nimpl ::skillset_runtime::Supports<::skillset_runtime::task::FillMask> for Bert {}",
        "",
    );
    assert_ne!(broken, bert);
    std::fs::write(dir.join("bert.rs"), &broken).unwrap();
    let o = skillset(&["--validate", "bert", "--output-dir", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("missing `impl Supports<task::FillMask> for Bert`"),
        "{}",
        stderr(&o)
    );

    let no_backend = bert.replace(
        "(::skillset_runtime::Backend::Cuda, ::skillset_runtime::BackendStatus::Untested),",
        "",
    );
    assert_ne!(no_backend, bert);
    std::fs::write(dir.join("bert.rs"), &no_backend).unwrap();
    let o = skillset(&["--validate", "bert", "--output-dir", d]);
    assert!(
        stderr(&o).contains("missing backend `Backend::Cuda` in `backends`"),
        "{}",
        stderr(&o)
    );

    // A corrupt file is one clear line.
    std::fs::write(dir.join("bert.rs"), "pub struct Bert { oops").unwrap();
    let o = skillset(&["--validate", "bert", "--output-dir", d]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("does not parse as Rust"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    no_panic(&o);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn family_and_task_selection() {
    let dir = tmpdir("sel");
    let d = dir.to_str().unwrap();
    let o = skillset(&["--family", "bert", "--output-dir", d, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let bert = skillsets::family_info(skillsets::Family::Bert)
        .model_types
        .len();
    assert!(bert >= 6);
    assert_eq!(summary["model_types"].as_u64().unwrap() as usize, bert);
    let o = skillset(&[
        "--task",
        "zero-shot-image-classification",
        "--output-dir",
        d,
        "--json",
    ]);
    let summary: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(summary["model_types"].as_u64().unwrap() >= 5);
    assert!(dir.join("clip.rs").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_names_suggest_and_exit_2() {
    for (args, expect) in [
        (
            vec!["--model", "bret"],
            "unknown model type `bret`; did you mean",
        ),
        (
            vec!["--family", "bret"],
            "unknown family `bret`; did you mean `bert`?",
        ),
        (
            vec!["--task", "fill_mask"],
            "unknown task `fill_mask`; did you mean `fill-mask`?",
        ),
        (
            vec!["--validate", "robertaa"],
            "did you mean one of `roberta`",
        ),
        (
            vec![
                "run",
                "--model-dir",
                "tests/fixtures/bert-tiny-mlm",
                "--task",
                "fil-mask",
                "--input",
                "x",
            ],
            "did you mean `fill-mask`?",
        ),
    ] {
        let o = skillset(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expect), "{args:?}: {}", stderr(&o));
        no_panic(&o);
    }
    let o = skillset(&["--model", "bret"]);
    assert!(stderr(&o).contains("`bert`"), "{}", stderr(&o));
}

#[test]
fn unwritable_output_dir_is_one_line() {
    let dir = tmpdir("ro");
    let file = dir.join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let o = skillset(&[
        "--model",
        "bert",
        "--output-dir",
        file.join("sub").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("error: cannot create output directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    no_panic(&o);

    // A malformed results file names itself.
    std::fs::write(dir.join("backend_results.json"), "{ not json").unwrap();
    let o = skillset(&["--model", "bert", "--output-dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("backend_results.json: not valid JSON"),
        "{}",
        stderr(&o)
    );
    no_panic(&o);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn merge_results_copies_one_backends_runs() {
    // A GPU session's results (as if from the GPU machine: bert's cuda run passed, with
    // a bf16 check past 1e-2 but within transformers' own error) into the repository's.
    let dir = tmpdir("merge");
    let gpu = dir.join("gpu.json");
    let mine = dir.join("mine.json");
    let run = |backend: &str, outcome: &str| {
        serde_json::json!({"backend": backend, "outcome": outcome, "measured_at": 1, "skillsets_version": "0.1.0", "checks": [
            {"fixture": "bert-tiny-mlm", "task": "feature-extraction", "dtype": "bf16",
             "passed": false, "within_reference_error": true, "latency_ms": 1.0}]})
    };
    let write = |path: &Path, runs: Vec<Value>| {
        let doc = serde_json::json!({"schema_version": 1, "results": {"bert": runs}});
        std::fs::write(path, doc.to_string()).unwrap();
    };
    write(&gpu, vec![run("cpu", "fail"), run("cuda", "pass")]);
    write(&mine, vec![run("cpu", "pass"), run("cuda", "not-compiled")]);
    let (g, m) = (gpu.to_str().unwrap(), mine.to_str().unwrap());
    // Which backends to copy must be said.
    let o = skillset(&["--merge-results", g, "--results", m]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--backends"), "{}", stderr(&o));
    let o = skillset(&["--merge-results", g, "--backends", "cuda", "--results", m]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&mine).unwrap()).unwrap();
    let runs = merged["results"]["bert"].as_array().unwrap();
    let outcome = |b: &str| runs.iter().find(|r| r["backend"] == b).unwrap()["outcome"].clone();
    assert_eq!(outcome("cuda"), "pass");
    assert_eq!(outcome("cpu"), "pass", "the cpu run must stay as recorded");
    assert_eq!(runs.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_tests_records_what_it_measured() {
    let dir = tmpdir("runtests");
    let d = dir.to_str().unwrap();
    let o = skillset(&[
        "--model",
        "bert",
        "--model",
        "mamba",
        "--model",
        "gpt-sw3",
        "--run-tests",
        "--output-dir",
        d,
        "--json",
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("backend_results.json")).unwrap())
            .unwrap();
    let bert = results["results"]["bert"].as_array().unwrap();
    let cpu = bert.iter().find(|r| r["backend"] == "cpu").unwrap();
    assert_eq!(cpu["outcome"], "pass", "{cpu}");
    assert!(cpu["checks"].as_array().unwrap().len() >= 5);
    assert!(cpu["latency_ms"].as_f64().unwrap() > 0.0);
    let cuda = bert.iter().find(|r| r["backend"] == "cuda").unwrap();
    if !cfg!(feature = "cuda") {
        assert_eq!(cuda["outcome"], "not-compiled");
    }
    // No family runs mamba, and no fixture of gpt-sw3 exists: recorded honestly, not
    // as a pass.
    let runs = |m: &str| results["results"][m].as_array().unwrap().clone();
    assert!(runs("mamba").iter().all(|r| r["outcome"] == "no-family"));
    let sw3 = runs("gpt-sw3");
    let sw3_cpu = sw3.iter().find(|r| r["backend"] == "cpu").unwrap();
    assert_eq!(sw3_cpu["outcome"], "no-fixture", "{sw3_cpu}");
    // Generation declares what was measured.
    let bert_rs = std::fs::read_to_string(dir.join("bert.rs")).unwrap();
    assert!(
        bert_rs.contains(
            "(::skillset_runtime::Backend::Cpu, ::skillset_runtime::BackendStatus::Verified)"
        ),
        "{bert_rs}"
    );
    assert!(bert_rs.contains("Backends: cpu verified"));
    let o = skillset(&["--list-families", "--json", "--output-dir", d]);
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let fam = doc
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["family"] == "bert")
        .unwrap();
    assert!(fam["verified"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "bert"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_reports_bad_input_without_panicking() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-tiny-mlm");
    let fx = fx.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "run",
                "--model-dir",
                "/nonexistent/dir",
                "--task",
                "fill-mask",
                "--input",
                "x",
            ],
            "checkpoint directory not found",
        ),
        (
            vec![
                "run",
                "--model-dir",
                fx,
                "--task",
                "fill-mask",
                "--input",
                "no mask here",
            ],
            "no mask token `[MASK]`",
        ),
        (
            vec![
                "run",
                "--model-dir",
                fx,
                "--task",
                "image-classification",
                "--input",
                "x",
            ],
            "does not run the task `image-classification`",
        ),
        (
            vec![
                "run",
                "--model-dir",
                fx,
                "--task",
                "fill-mask",
                "--device",
                "cuda",
                "--input",
                "a [MASK]",
            ],
            "rebuild with `--features cuda`",
        ),
        (
            vec![
                "run",
                "--model-dir",
                fx,
                "--task",
                "fill-mask",
                "--device",
                "tpu",
                "--input",
                "a [MASK]",
            ],
            "unknown device `tpu`",
        ),
        (
            vec![
                "run",
                "--model-dir",
                fx,
                "--task",
                "fill-mask",
                "--top-k",
                "0",
                "--input",
                "a [MASK]",
            ],
            "invalid top-k `0`",
        ),
        (
            vec!["run", "--model-dir", fx, "--task", "fill-mask"],
            "no input",
        ),
    ];
    for (args, expect) in cases {
        let o = skillset(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(expect), "{args:?}: {}", stderr(&o));
        no_panic(&o);
    }
}

#[test]
fn a_malformed_metadata_file_is_one_line() {
    let dir = tmpdir("meta");
    let bad = dir.join("model_types.json");
    std::fs::write(&bad, "{\"schema_version\": 1, \"model_types\": [").unwrap();
    let o = skillset(&["--metadata", bad.to_str().unwrap(), "--list-families"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("model_types.json: not valid JSON"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
    no_panic(&o);

    // A well-formed but inconsistent file names the entry and field.
    let good =
        skillsets::MODEL_TYPES_JSON.replacen("\"family\": \"llama\"", "\"family\": \"lama\"", 1);
    std::fs::write(&bad, good).unwrap();
    let o = skillset(&[
        "--metadata",
        bad.to_str().unwrap(),
        "--all",
        "--output-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "field `family`: unknown family `lama`; did you mean one of `llama`, `llava`?"
        ),
        "{}",
        stderr(&o)
    );
    no_panic(&o);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_finds_a_model_in_the_hugging_face_cache() {
    let cache = tmpdir("hfcache");
    let snapshot = cache.join("models--acme--tiny-bert/snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(cache.join("models--acme--tiny-bert/refs")).unwrap();
    std::fs::write(cache.join("models--acme--tiny-bert/refs/main"), "0123abcd").unwrap();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-tiny-mlm");
    for e in std::fs::read_dir(&fx).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, snapshot.join(p.file_name().unwrap())).unwrap();
    }
    let run = |id: &str| {
        Command::new(env!("CARGO_BIN_EXE_skillset"))
            .args([
                "run",
                "--json",
                "--task",
                "fill-mask",
                "--input",
                "Paris is the [MASK] of France.",
                "--model-dir",
                id,
            ])
            .env("HF_HUB_CACHE", &cache)
            .output()
            .unwrap()
    };
    let o = run("acme/tiny-bert");
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["model_type"], "bert");
    assert_eq!(doc["outputs"][0].as_array().unwrap().len(), 5);
    let o = run("acme/missing");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("neither a checkpoint directory nor in the Hugging Face cache"),
        "{}",
        stderr(&o)
    );
    no_panic(&o);
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn sampling_through_skillset_run_is_seeded() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama-tiny");
    let gen = |extra: &[&str]| -> Value {
        let mut args = vec![
            "run",
            "--json",
            "--task",
            "text-generation",
            "--max-new-tokens",
            "16",
            "--input",
            "Paris is",
            "--model-dir",
        ];
        args.push(fx.to_str().unwrap());
        args.extend_from_slice(extra);
        let o = skillset(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
        doc["outputs"][0]["token_ids"].clone()
    };
    let a = gen(&["--seed", "1", "--temperature", "1.5"]);
    assert_eq!(
        a,
        gen(&["--seed", "1", "--temperature", "1.5"]),
        "same seed, same tokens"
    );
    assert_ne!(
        a,
        gen(&["--seed", "2", "--temperature", "1.5"]),
        "another seed, other tokens"
    );
    // top-k 1 sampling is greedy decoding.
    assert_eq!(gen(&["--seed", "3", "--top-k", "1"]), gen(&[]));
    let o = skillset(&[
        "run",
        "--task",
        "text-generation",
        "--input",
        "x",
        "--temperature",
        "0",
        "--model-dir",
        fx.to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("temperature must be a positive number"),
        "{}",
        stderr(&o)
    );
    no_panic(&o);
    // Beam search has no token stream and no sampling (transformers' beam sampling is
    // not implemented): typed errors.
    for extra in [&["--stream"][..], &["--seed", "1"][..]] {
        let mut args = vec![
            "run",
            "--task",
            "text-generation",
            "--input",
            "x",
            "--num-beams",
            "3",
            "--model-dir",
            fx.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = skillset(&args);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("beam"), "{}", stderr(&o));
        no_panic(&o);
    }
}

#[test]
fn media_inputs_on_the_command_line() {
    // The task comes from the checkpoint's architecture when --task is left out.
    let o = skillset(&[
        "run",
        "--model-dir",
        "tests/fixtures/vit-tiny-cls",
        "--image",
        "tests/fixtures/media/gradient.png",
        "--image",
        "tests/fixtures/media/gray.png",
        "--top-k",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["task"], "image-classification");
    assert_eq!(doc["outputs"].as_array().unwrap().len(), 2);
    assert_eq!(doc["outputs"][0].as_array().unwrap().len(), 2);

    // Each bad input: exit 1 (2 for usage), one line naming the problem, no panic.
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "--model-dir",
                "tests/fixtures/vit-tiny-cls",
                "--image",
                "/no/such.png",
            ],
            1,
            "image not found",
        ),
        (
            &[
                "--model-dir",
                "tests/fixtures/vit-tiny-cls",
                "--image",
                "tests/fixtures/media/tone16k.wav",
            ],
            1,
            "not an image",
        ),
        (
            &[
                "--model-dir",
                "tests/fixtures/bert-tiny-mlm",
                "--task",
                "fill-mask",
                "--image",
                "tests/fixtures/media/gray.png",
            ],
            2,
            "--image is for image tasks",
        ),
        (
            &[
                "--model-dir",
                "tests/fixtures/clip-tiny",
                "--image",
                "tests/fixtures/media/gray.png",
            ],
            1,
            "--candidate-labels",
        ),
        (
            &[
                "--model-dir",
                "tests/fixtures/whisper-tiny",
                "--audio",
                "tests/fixtures/media/tone16k.wav",
                "--task",
                "translate",
                "--language",
                "xx",
            ],
            1,
            "unknown language `xx`",
        ),
        (
            &[
                "--model-dir",
                "tests/fixtures/wav2vec2-tiny-ctc",
                "--audio",
                "tests/fixtures/media/gradient.png",
            ],
            1,
            "not a WAV file",
        ),
        (
            &[
                "--model-dir",
                "tests/fixtures/llava-tiny",
                "--image",
                "tests/fixtures/media/gray.png",
                "--text",
                "no image token here",
            ],
            1,
            "has no `<image>`",
        ),
    ];
    for (args, code, want) in cases {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let o = skillset(&all);
        assert_eq!(o.status.code(), Some(*code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
        no_panic(&o);
    }
}

#[test]
fn bench_pools_as_its_peer_and_reports_the_shape_it_ran() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert-tiny-mlm");
    let bench = |extra: &[&str]| -> Output {
        let mut args = vec![
            "bench",
            "--json",
            "--iters",
            "1",
            "--warmup",
            "0",
            "--batch",
            "3",
            "--seq",
            "12",
            "--model-dir",
        ];
        args.push(fx.to_str().unwrap());
        args.extend_from_slice(extra);
        skillset(&args)
    };
    // No sentence-transformers configuration: mean pooling, as sentence-transformers'
    // encode (the peer, scripts/bench_peer.py) does with a plain checkpoint.
    for (extra, pooling) in [(&[][..], "mean"), (&["--pooling", "none"][..], "none")] {
        let o = bench(extra);
        assert!(o.status.success(), "{}", stderr(&o));
        let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(doc["pooling"], pooling, "{doc}");
        assert_eq!(doc["task"], "feature-extraction", "{doc}");
        assert_eq!(doc["batch"], 3, "{doc}");
        assert_eq!(doc["seq"], 12, "the synthetic text is 12 tokens: {doc}");
        assert!(doc["items_per_s"].as_f64().unwrap() > 0.0, "{doc}");
        assert!(doc["forward_ms"].as_f64().unwrap() > 0.0, "{doc}");
    }
    let o = bench(&["--pooling", "median"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--pooling"), "{}", stderr(&o));
    no_panic(&o);
}

/// The generator never replaces what it did not write: a hand-written `mod.rs` stays
/// (and is counted as kept) unless `--force`; concurrent runs into one directory use
/// temporary files of their own (8 at once all succeed).
#[test]
fn the_generator_keeps_hand_written_files_and_runs_concurrently() {
    let d = tmpdir("handwritten");
    std::fs::write(d.join("mod.rs"), "// mine\npub mod handwritten;\n").unwrap();
    let out = d.to_str().unwrap();
    let o = skillset(&["--model", "bert", "--output-dir", out]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1 created, 0 overwritten, 0 up to date, 1 kept"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(d.join("mod.rs")).unwrap(),
        "// mine\npub mod handwritten;\n"
    );
    let o = skillset(&["--model", "bert", "--output-dir", out, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(d.join("mod.rs"))
        .unwrap()
        .starts_with("// @generated"));
    std::fs::remove_dir_all(&d).unwrap();

    let d = tmpdir("concurrent");
    let out = d.to_str().unwrap().to_string();
    let spawned: Vec<std::process::Child> = (0..8)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_skillset"))
                .args([
                    "--family",
                    "bert",
                    "--family",
                    "llama",
                    "--force",
                    "--output-dir",
                    &out,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in spawned {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A full standard output is an error with one line on stderr and exit status 1, not a
/// panic.
#[cfg(target_os = "linux")]
#[test]
fn a_full_standard_output_is_exit_1() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_skillset"))
        .args([
            "run",
            "--json",
            "--input",
            "Hello",
            "--max-new-tokens",
            "2",
            "--model-dir",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama-tiny"))
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    no_panic(&o);
    assert!(
        stderr(&o).contains("cannot write to standard output"),
        "{}",
        stderr(&o)
    );
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_skillset"))
        .args(["--list-tasks"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    no_panic(&o);
}
