//! `skillset run`: load a checkpoint for a task and print the outputs.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde_json::json;
use skillset_runtime::pipeline::{PoolingChoice, RunOptions, TopK};
use skillset_runtime::{Checkpoint, DType, DeviceSpec, LoadOptions, Pipeline, Scope};

use super::generate::parse_task;
use super::Failure;

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Checkpoint directory (config.json, tokenizer.json, model.safetensors), or a
    /// model id in the local Hugging Face cache.
    #[arg(long, value_name = "DIR")]
    pub model_dir: PathBuf,
    /// The task, e.g. feature-extraction, fill-mask, image-classification,
    /// automatic-speech-recognition [default: the model type's task, when it has one].
    /// `translate` / `transcribe`: speech recognition with Whisper's task token.
    #[arg(long)]
    pub task: Option<String>,
    /// auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// An input text (repeatable; all inputs run as one batch).
    #[arg(long = "input", value_name = "TEXT")]
    pub inputs: Vec<String>,
    /// An image file (PNG or JPEG) for an image task (repeatable).
    #[arg(long = "image", value_name = "PATH")]
    pub images: Vec<PathBuf>,
    /// An audio file (WAV) for a speech task (repeatable).
    #[arg(long = "audio", value_name = "PATH")]
    pub audio: Vec<PathBuf>,
    /// zero-shot-image-classification: the labels to choose from, comma-separated.
    #[arg(long, value_name = "A,B,C")]
    pub candidate_labels: Option<String>,
    /// zero-shot-image-classification: the sentence each label goes into (`{}`)
    /// [default: "This is a photo of {}."].
    #[arg(long, value_name = "TEMPLATE")]
    pub hypothesis_template: Option<String>,
    /// image-text-to-text: the prompt, with `<image>` where the image goes.
    #[arg(long, value_name = "PROMPT")]
    pub text: Option<String>,
    /// Whisper: the spoken language (en, fr, english, ...) [default: detected].
    #[arg(long)]
    pub language: Option<String>,
    /// Read more inputs from a file, one per line (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// text-generation: a conversation to answer, a JSON list of `{"role", "content"}`
    /// messages (or a list of such lists), rendered with the checkpoint's chat template
    /// (`-` for standard input; repeatable). The output is the conversation with the new
    /// assistant message, plus `token_ids`.
    #[arg(long = "chat", value_name = "FILE")]
    pub chats: Vec<PathBuf>,
    /// How many results ranking tasks return: a number or `all`.
    #[arg(long, value_name = "K|all")]
    pub top_k: Option<String>,
    /// feature-extraction pooling: none, mean, cls, max, mean-sqrt-len, last-token or
    /// auto [default: auto, a sentence-transformers directory's own, else none].
    #[arg(long)]
    pub pooling: Option<String>,
    /// L2-normalize pooled embeddings.
    #[arg(long)]
    pub normalize: bool,
    /// feature-extraction: put the sentence-transformers prompt of this name
    /// (config_sentence_transformers.json, e.g. `query`) before each input.
    #[arg(long, value_name = "NAME")]
    pub prompt_name: Option<String>,
    /// Generation: how many tokens to generate [default: the checkpoint's, else 20].
    #[arg(long, value_name = "N")]
    pub max_new_tokens: Option<usize>,
    /// Generation: sample instead of greedy decoding (implied by --temperature,
    /// --top-p, --seed and, for generation, --top-k).
    #[arg(long)]
    pub do_sample: bool,
    /// Generation: sampling temperature.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f64>,
    /// Generation: nucleus sampling threshold.
    #[arg(long, value_name = "P")]
    pub top_p: Option<f64>,
    /// Generation: seed of the sampler (same seed, same tokens).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Generation: penalty for tokens already in the sequence (1.0 = none).
    #[arg(long, value_name = "R")]
    pub repetition_penalty: Option<f64>,
    /// Generation and Whisper: beam search over N beams [default: the checkpoint's
    /// generation_config.json; Whisper: else 5, as transformers' speech pipeline; else 1]
    #[arg(long, value_name = "N")]
    pub num_beams: Option<usize>,
    /// Generation: print tokens as they are generated.
    #[arg(long)]
    pub stream: bool,
    /// Inputs per forward pass.
    #[arg(long, default_value_t = 32)]
    pub max_batch_size: usize,
    /// Print `{"model_type", "task", "device", "dtype", "outputs"}` as JSON.
    #[arg(long)]
    pub json: bool,
    /// Log what happens.
    #[arg(long, short)]
    pub verbose: bool,
}

/// `--device` and `--dtype`, as usage errors when they do not parse.
pub fn parse_device_dtype(device: &str, dtype: &str) -> Result<(DeviceSpec, DType), Failure> {
    let usage = |e: skillset_runtime::Error| Failure::usage(e.to_string());
    Ok((
        device.parse().map_err(usage)?,
        dtype.parse().map_err(usage)?,
    ))
}

pub fn run(args: &RunArgs) -> Result<ExitCode, Failure> {
    // `--task translate` / `--task transcribe`: speech recognition with that task.
    let (task_name, speech_task) = match args.task.as_deref() {
        Some(t @ ("translate" | "transcribe")) => {
            (Some("automatic-speech-recognition"), Some(t.to_string()))
        }
        other => (other, None),
    };
    let (device, dtype) = parse_device_dtype(&args.device, &args.dtype)?;
    let top_k = args
        .top_k
        .as_deref()
        .map(str::parse::<TopK>)
        .transpose()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let pooling = match args.pooling.as_deref() {
        None => PoolingChoice::Auto,
        Some(p) => p
            .parse()
            .map_err(|e: skillset_runtime::Error| Failure::usage(e.to_string()))?,
    };
    let mut inputs = args.inputs.clone();
    if let Some(file) = &args.input_file {
        inputs.extend(read_lines(file)?);
    }
    let path_inputs = |paths: &[PathBuf]| -> Vec<String> {
        paths
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
    };
    inputs.extend(path_inputs(&args.images));
    inputs.extend(path_inputs(&args.audio));
    let mut conversations = Vec::new();
    for file in &args.chats {
        conversations.extend(read_chat(file)?);
    }
    if !conversations.is_empty() && !inputs.is_empty() {
        return Err(Failure::usage(
            "--chat takes the conversation; give no --input, --image or --audio with it",
        ));
    }
    if inputs.is_empty() && conversations.is_empty() {
        return Err(Failure::usage(
            "no input: pass --input TEXT (repeatable), --input-file FILE, --chat FILE, --image PATH or --audio PATH",
        ));
    }

    let ckpt = Checkpoint::open(&args.model_dir)?;
    let info = crate::lookup(&ckpt.model_type).ok_or_else(|| {
        let near = skillset_codegen::suggest(
            &ckpt.model_type,
            crate::MODEL_TYPES.iter().map(|i| i.model_type),
        );
        Failure::failed(
            skillset_runtime::Error::UnknownModelType {
                path: ckpt.config_path(),
                model_type: ckpt.model_type.clone(),
                transformers_version: crate::TRANSFORMERS_VERSION,
                suggestion: skillset_codegen::names::did_you_mean(&near),
            }
            .to_string(),
        )
    })?;
    // Without --task: the model type's one task, else the task of the checkpoint's
    // architecture (`Wav2Vec2ForCTC` -> automatic-speech-recognition).
    let architectures: Vec<&str> = ckpt
        .config
        .get("architectures")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let by_architecture: Vec<skillset_runtime::Task> = info
        .hf_tasks
        .iter()
        .filter(|(t, a)| architectures.contains(a) && info.tasks.contains(t))
        .map(|(t, _)| *t)
        .collect();
    let task = match task_name {
        Some(t) => parse_task(t)?,
        // A chat is text-generation.
        None if !conversations.is_empty() => skillset_runtime::Task::TextGeneration,
        None => match (info.tasks, by_architecture.as_slice()) {
            ([only], _) | (_, [only]) => *only,
            (tasks, _) => {
                let names: Vec<&str> = tasks.iter().map(|t| t.as_str()).collect();
                return Err(Failure::usage(if names.is_empty() {
                    format!("model type `{}` runs no task in skillsets", info.model_type)
                } else {
                    format!(
                        "pass --task: model type `{}` runs {}",
                        info.model_type,
                        names.join(", ")
                    )
                }));
            }
        },
    };
    if !conversations.is_empty() && task != skillset_runtime::Task::TextGeneration {
        return Err(Failure::usage(format!(
            "--chat is for text-generation; `{task}` takes no conversation"
        )));
    }
    let kind = task.input_kind();
    let wrong = |flag: &str, wants: &str| {
        Failure::usage(format!(
            "{flag} is for {wants} tasks; `{task}` takes {}",
            match kind {
                skillset_runtime::InputKind::Text => "text (--input)",
                skillset_runtime::InputKind::Image => "images (--image)",
                skillset_runtime::InputKind::Audio => "audio (--audio)",
            }
        ))
    };
    if !args.images.is_empty() && kind != skillset_runtime::InputKind::Image {
        return Err(wrong("--image", "image"));
    }
    if !args.audio.is_empty() && kind != skillset_runtime::InputKind::Audio {
        return Err(wrong("--audio", "speech"));
    }
    let started = Instant::now();
    let options = LoadOptions {
        max_batch_size: args.max_batch_size.max(1),
        ..LoadOptions::new(device, dtype)
    };
    let pipeline =
        Pipeline::load_for_scope(Scope::ModelType(info), &args.model_dir, task, &options)?;
    tracing::debug!(
        "loaded {} for {} on {} ({}) in {:.0} ms",
        pipeline.checkpoint_dir().display(),
        task,
        pipeline.device_name(),
        dtype,
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let run_options = RunOptions {
        top_k,
        pooling,
        normalize: args.normalize,
        prompt_name: args.prompt_name.clone(),
        max_new_tokens: args.max_new_tokens,
        do_sample: args.do_sample,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        repetition_penalty: args.repetition_penalty,
        candidate_labels: args.candidate_labels.as_deref().map(|l| {
            l.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        }),
        hypothesis_template: args.hypothesis_template.clone(),
        language: args.language.clone(),
        speech_task,
        text: args.text.clone(),
        num_beams: args.num_beams,
    };
    let outputs = if !conversations.is_empty() {
        let opts = run_options.generation(pipeline.generation_defaults())?;
        let generations = pipeline.chat(&conversations, &opts)?;
        inputs = conversations
            .iter()
            .map(|c| c.last().map(|m| m.content.clone()).unwrap_or_default())
            .collect();
        generations
            .iter()
            .map(|g| serde_json::to_value(g).expect("json"))
            .collect()
    } else if args.stream && task == skillset_runtime::Task::TextGeneration {
        stream_generation(&pipeline, &inputs, &run_options, args.json)?
    } else {
        pipeline.run_json(&inputs, &run_options)?
    };
    tracing::debug!(
        "ran {} inputs in {:.1} ms",
        inputs.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    if args.json {
        let doc = json!({
            "model_type": pipeline.model_type(),
            "task": task,
            "device": pipeline.device_name(),
            "dtype": dtype.as_str(),
            "outputs": outputs,
        });
        outln!("{}", serde_json::to_string(&doc).expect("json"));
    } else {
        errln!(
            "{} ({}) for {} on {} in {}",
            pipeline.checkpoint_dir().display(),
            pipeline.model_type(),
            task,
            pipeline.device_name(),
            dtype
        );
        for (input, output) in inputs.iter().zip(&outputs) {
            outln!("{input}");
            print_human(output);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Generate with tokens printed as they come (to stderr under --json, so that stdout
/// stays one JSON document).
fn stream_generation(
    pipeline: &Pipeline,
    inputs: &[String],
    options: &RunOptions,
    json: bool,
) -> Result<Vec<serde_json::Value>, Failure> {
    use std::io::Write;
    let opts = options.generation(pipeline.generation_defaults())?;
    let mut outputs = Vec::new();
    for input in inputs {
        let mut out: Box<dyn Write> = if json {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        let _ = write!(out, "{input}");
        let mut on_token = |e: &skillset_runtime::TokenEvent| {
            let _ = write!(out, "{}", e.text);
            let _ = out.flush();
            std::ops::ControlFlow::Continue(())
        };
        let g = pipeline.text_generation(&[input.as_str()], &opts, Some(&mut on_token))?;
        let _ = writeln!(out);
        outputs.push(serde_json::to_value(&g[0]).expect("json"));
    }
    Ok(outputs)
}

/// A named input file must be a regular file: a FIFO or a device (`/dev/urandom`)
/// would block or never end (standard input is `-`).
fn regular_file(file: &std::path::Path) -> Result<(), Failure> {
    match std::fs::metadata(file) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(Failure::failed(format!(
            "{}: not a regular file (a FIFO, a device or a directory); pass `-` to read standard input",
            file.display()
        ))),
        Err(e) => Err(Failure::failed(format!("cannot read {}: {e}", file.display()))),
    }
}

/// The conversations of a `--chat` file: a list of messages, or a list of such lists.
fn read_chat(file: &PathBuf) -> Result<Vec<Vec<skillset_runtime::ChatMessage>>, Failure> {
    use std::io::Read;
    let mut text = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().lock().read_to_string(&mut text)
    } else {
        regular_file(file)?;
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::failed(format!("cannot read {}: {e}", file.display())))?;
    let bad = |e: String| {
        Failure::failed(format!(
            "{}: not a conversation ({e}): expected a JSON list of {{\"role\": ..., \"content\": ...}} messages, or a list of such lists",
            file.display()
        ))
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let several = value
        .as_array()
        .is_some_and(|a| a.first().is_some_and(|m| m.is_array()));
    let conversations: Vec<Vec<skillset_runtime::ChatMessage>> = if several {
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))?
    } else {
        vec![serde_json::from_value(value).map_err(|e| bad(e.to_string()))?]
    };
    if conversations.iter().any(|c| c.is_empty()) {
        return Err(bad("an empty conversation".into()));
    }
    Ok(conversations)
}

fn read_lines(file: &PathBuf) -> Result<Vec<String>, Failure> {
    let reader: Box<dyn BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        regular_file(file)?;
        let f = std::fs::File::open(file)
            .map_err(|e| Failure::failed(format!("cannot read {}: {e}", file.display())))?;
        Box::new(std::io::BufReader::new(f))
    };
    let mut out = Vec::new();
    for line in reader.lines() {
        let line =
            line.map_err(|e| Failure::failed(format!("cannot read {}: {e}", file.display())))?;
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

/// A short human-readable rendering of one output.
fn print_human(v: &serde_json::Value) {
    match v {
        serde_json::Value::Array(items) if items.first().is_some_and(|x| x.is_object()) => {
            for item in items {
                let score = item
                    .get("score")
                    .and_then(|s| s.as_f64())
                    .unwrap_or(f64::NAN);
                let rest: Vec<String> = item
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| *k != "score")
                    .map(|(k, v)| format!("{k}={}", v))
                    .collect();
                outln!("  {score:>8.4}  {}", rest.join("  "));
            }
        }
        serde_json::Value::Array(items) if items.first().is_some_and(|x| x.is_array()) => {
            let inner = items[0].as_array().map(|a| a.len()).unwrap_or(0);
            if items[0]
                .as_array()
                .is_some_and(|a| a.first().is_some_and(|x| x.is_object()))
            {
                for (i, m) in items.iter().enumerate() {
                    outln!("  mask {i}:");
                    print_human(m);
                }
            } else {
                outln!("  hidden states: {} tokens x {inner}", items.len());
            }
        }
        serde_json::Value::Array(items) if items.is_empty() => outln!("  (nothing)"),
        serde_json::Value::Array(items) => {
            let head: Vec<String> = items
                .iter()
                .take(6)
                .map(|x| format!("{:.5}", x.as_f64().unwrap_or(f64::NAN)))
                .collect();
            outln!(
                "  [{}{}] ({} values)",
                head.join(", "),
                if items.len() > 6 { ", ..." } else { "" },
                items.len()
            );
        }
        // A chat: the new (or continued) assistant message.
        serde_json::Value::Object(o) if o.get("generated_text").is_some_and(|t| t.is_array()) => {
            if let Some(m) = o["generated_text"].as_array().and_then(|a| a.last()) {
                outln!(
                    "  {}: {}",
                    m["role"].as_str().unwrap_or_default(),
                    m["content"].as_str().unwrap_or_default()
                );
            }
        }
        serde_json::Value::Object(o) if o.get("text").is_some_and(|t| t.is_string()) => {
            outln!("  {}", o["text"].as_str().unwrap_or_default())
        }
        other => outln!("  {other}"),
    }
}
