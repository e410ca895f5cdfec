//! `skillset bench`: time the real handler on a synthetic batch. Warm-up runs are
//! excluded, the device is synchronised before the clock stops, and the median of the
//! timed iterations is reported (tokenization is included and also reported alone).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use skillset_runtime::pipeline::{PoolingChoice, RunOptions};
use skillset_runtime::{Checkpoint, LoadOptions, Pipeline, Scope, Task};

use super::generate::parse_task;
use super::Failure;

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Checkpoint directory or cached model id.
    #[arg(long, value_name = "DIR")]
    pub model_dir: PathBuf,
    /// feature-extraction or text-generation.
    #[arg(long, default_value = "feature-extraction")]
    pub task: String,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Inputs per call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Tokens per input (special tokens included).
    #[arg(long, default_value_t = 16)]
    pub seq: usize,
    /// text-generation: tokens generated per input (greedy).
    #[arg(long, default_value_t = 32)]
    pub max_new_tokens: usize,
    /// feature-extraction output: `auto` (the checkpoint's sentence-transformers pooling
    /// and normalization, else mean pooling: what sentence-transformers' `encode`, the
    /// peer in scripts/bench_peer.py, does with a plain checkpoint), `mean`, `cls`,
    /// `max`, ..., or `none` (every token's hidden state copied out).
    #[arg(long, default_value = "auto")]
    pub pooling: String,
    /// Timed iterations.
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    #[arg(long)]
    pub json: bool,
}

/// `the the the ...`: one token per word in the WordPiece and BPE vocabularies at
/// hand, so `seq - 2` words make `seq` tokens with the special tokens. The peer script
/// (scripts/bench_peer.py) builds the same text.
fn synthetic_text(words: usize) -> String {
    vec!["the"; words].join(" ")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The largest batch `skillset bench` makes.
const MAX_BENCH_BATCH: usize = 1 << 16;

pub fn bench(args: &BenchArgs) -> Result<ExitCode, Failure> {
    let task = parse_task(&args.task)?;
    let (device, dtype) = super::run::parse_device_dtype(&args.device, &args.dtype)?;
    if args.batch == 0 || args.seq < 3 || args.iters == 0 {
        return Err(Failure::usage(
            "--batch and --iters must be at least 1, --seq at least 3",
        ));
    }
    let ckpt = Checkpoint::open(&args.model_dir)?;
    let info = crate::lookup(&ckpt.model_type)
        .ok_or_else(|| Failure::failed(format!("unknown model type `{}`", ckpt.model_type)))?;
    let options = LoadOptions {
        max_batch_size: args.batch,
        ..LoadOptions::new(device, dtype)
    };
    if args.batch > MAX_BENCH_BATCH {
        return Err(Failure::usage(format!(
            "--batch {} is over {MAX_BENCH_BATCH}",
            args.batch
        )));
    }
    let pipeline =
        Pipeline::load_for_scope(Scope::ModelType(info), &args.model_dir, task, &options)?;
    // The model's positions bound --seq before any text is made for it.
    if let Some(tok) = pipeline.tokenizer() {
        if args.seq > tok.max_length {
            return Err(Failure::usage(format!(
                "--seq {} is longer than the {} tokens the model takes",
                args.seq, tok.max_length
            )));
        }
    }
    let words = match task {
        Task::FeatureExtraction => args.seq - 2,
        _ => args.seq,
    };
    let inputs: Vec<String> = (0..args.batch).map(|_| synthetic_text(words)).collect();
    let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let run_options = RunOptions {
        max_new_tokens: Some(args.max_new_tokens),
        ..Default::default()
    };
    // feature-extraction is timed through the typed handler (what a Rust caller gets:
    // `Vec<Features>`), as the peer's `encode` returns arrays, not JSON.
    let (pooling, normalize) = match args.pooling.as_str() {
        "auto" => {
            let (p, normalize) = pipeline.sentence_pooling();
            (Some(p), normalize)
        }
        other => match other.parse::<PoolingChoice>() {
            Ok(PoolingChoice::Pool(p)) => (Some(p), false),
            Ok(_) => (None, false),
            Err(e) => return Err(Failure::usage(format!("--pooling: {e}"))),
        },
    };
    let tokenizer = pipeline.tokenizer().ok_or_else(|| {
        Failure::usage(format!(
            "skillset bench times text tasks; `{task}` reads no text"
        ))
    })?;
    let actual_seq = tokenizer
        .encode_batch(&texts[..1], pipeline.device())?
        .lengths[0];

    let sync = |p: &Pipeline| -> Result<(), Failure> {
        p.device()
            .synchronize()
            .map_err(|e| Failure::failed(e.to_string()))
    };
    let run_once = |p: &Pipeline| -> Result<(f64, usize), Failure> {
        let started = Instant::now();
        if task == Task::FeatureExtraction {
            p.feature_extraction(&texts, pooling, normalize)?;
            sync(p)?;
            return Ok((started.elapsed().as_secs_f64(), 0));
        }
        let out = p.run_json(&inputs, &run_options)?;
        sync(p)?;
        let generated = out
            .iter()
            .map(|o| o["token_ids"].as_array().map(|a| a.len()).unwrap_or(0))
            .sum();
        Ok((started.elapsed().as_secs_f64(), generated))
    };
    for _ in 0..args.warmup {
        run_once(&pipeline)?;
    }
    let mut times = Vec::with_capacity(args.iters);
    let mut generated = 0;
    for _ in 0..args.iters {
        let (t, g) = run_once(&pipeline)?;
        times.push(t);
        generated = g;
    }
    let mut tok_times = Vec::with_capacity(args.iters);
    for _ in 0..args.iters {
        let started = Instant::now();
        tokenizer.encode_batch(&texts, pipeline.device())?;
        tok_times.push(started.elapsed().as_secs_f64());
    }
    // The bare forward pass (feature-extraction): the same batch tokenized once, then
    // only the encoder; the handler's overhead is what it adds (tokenization, pooling,
    // copying the results out).
    let forward = if task == Task::FeatureExtraction {
        let batch = tokenizer.encode_batch(&texts, pipeline.device())?;
        let mut fwd = Vec::with_capacity(args.iters);
        for i in 0..args.warmup + args.iters {
            let started = Instant::now();
            let h = pipeline.hidden_states(&batch)?;
            sync(&pipeline)?;
            drop(h);
            if i >= args.warmup {
                fwd.push(started.elapsed().as_secs_f64());
            }
        }
        Some(median(fwd))
    } else {
        None
    };
    let t = median(times);
    let doc = json!({
        "task": task,
        "device": pipeline.device_name(),
        "dtype": dtype.as_str(),
        "batch": args.batch,
        "seq": actual_seq,
        "items_per_s": args.batch as f64 / t,
        "ms_per_iter": t * 1e3,
        "tokenize_ms": median(tok_times) * 1e3,
        "forward_ms": forward.map(|f| f * 1e3),
        "handler_overhead_pct": forward.map(|f| (t / f - 1.0) * 100.0),
        "tokens_per_s": if task == Task::FeatureExtraction { serde_json::Value::Null } else { json!(generated as f64 / t) },
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "iters": args.iters,
        "pooling": if task == Task::FeatureExtraction {
            json!(match (pooling, normalize) {
                (None, _) => "none".to_string(),
                (Some(p), false) => p.to_string(),
                (Some(p), true) => format!("{p}, normalized"),
            })
        } else {
            serde_json::Value::Null
        },
    });
    if args.json {
        outln!("{}", serde_json::to_string(&doc).expect("json"));
    } else {
        outln!(
            "{task} on {} ({}): batch {} x {actual_seq} tokens: {:.1} items/s, {:.2} ms/iter (tokenization {:.2} ms){}",
            pipeline.device_name(),
            dtype,
            args.batch,
            args.batch as f64 / t,
            t * 1e3,
            median_of(&doc, "tokenize_ms"),
            match doc["tokens_per_s"].as_f64() {
                Some(tps) => format!(", {tps:.1} generated tokens/s"),
                None => String::new(),
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn median_of(doc: &serde_json::Value, key: &str) -> f64 {
    doc[key].as_f64().unwrap_or(f64::NAN)
}
