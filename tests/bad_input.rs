//! Broken checkpoints and bad inputs give typed errors that say what is wrong; no
//! panic, and the process goes on.

use std::path::{Path, PathBuf};

use skillsets::{task, Bert, Error, Skillset};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A scratch copy of a fixture to break.
fn copy_of(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("skillset-bad-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    dst
}

fn err_of<T: std::fmt::Debug>(r: skillsets::Result<T>) -> (Error, String) {
    let e = r.expect_err("should fail");
    let s = e.to_string();
    (e, s)
}

#[test]
fn missing_and_malformed_files() {
    let (e, s) = err_of(Bert::init_cpu::<task::FillMask>("/definitely/not/here"));
    assert!(matches!(e, Error::MissingFile { .. }), "{s}");
    assert!(s.contains("checkpoint directory not found"), "{s}");

    let d = copy_of("bert-tiny-mlm", "noconfig");
    std::fs::remove_file(d.join("config.json")).unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("config.json not found"), "{s}");

    std::fs::write(d.join("config.json"), "{ broken").unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("config.json: not valid JSON"), "{s}");

    std::fs::write(d.join("config.json"), "{\"hidden_size\": 36}").unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("has no string field `model_type`"), "{s}");
    std::fs::remove_dir_all(&d).unwrap();

    let d = copy_of("bert-tiny-mlm", "notok");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("tokenizer.json not found"), "{s}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn broken_weights() {
    let d = copy_of("bert-tiny-mlm", "weights");
    let w = d.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();

    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("is truncated"), "{s}");

    std::fs::write(&w, b"").unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("not a safetensors file"), "{s}");

    std::fs::write(&w, b"PK\x03\x04 this is a zip, not weights").unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("not a safetensors file"), "{s}");

    // Without safetensors, pytorch_model.bin is read: this one is no torch.save archive.
    std::fs::remove_file(&w).unwrap();
    std::fs::write(d.join("pytorch_model.bin"), b"pickle").unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(
        s.contains("pytorch_model.bin: is not a PyTorch checkpoint"),
        "{s}"
    );
    // Only TensorFlow weights: the error names the conversion.
    std::fs::remove_file(d.join("pytorch_model.bin")).unwrap();
    std::fs::write(d.join("tf_model.h5"), b"hdf5").unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(
        s.contains("tf_model.h5") && s.contains("from_tf=True"),
        "{s}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn weights_that_do_not_fit_the_config() {
    let d = copy_of("bert-tiny-mlm", "shape");
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"hidden_size\": 36", "\"hidden_size\": 40"),
    )
    .unwrap();
    let (e, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(matches!(e, Error::WeightMismatch { .. }), "{s}");
    assert!(
        s.contains("shape mismatch") && s.contains("expected: [40"),
        "{s}"
    );

    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"num_attention_heads\": 4", "\"num_attention_heads\": 5"),
    )
    .unwrap();
    let (_, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(s.contains("5 does not divide the hidden size 36"), "{s}");
    std::fs::remove_dir_all(&d).unwrap();

    // A base-model checkpoint has no head for a task that needs one.
    let (_, s) = err_of(skillsets::Camembert::init_cpu::<task::FillMask>(fixture(
        "camembert-tiny",
    )));
    assert!(
        s.contains("fill-mask needs a `*ForMaskedLM` checkpoint"),
        "{s}"
    );
    let (_, s) = err_of(Bert::init_cpu::<task::TextClassification>(fixture(
        "bert-tiny-mlm",
    )));
    assert!(
        s.contains("text-classification needs a `*ForSequenceClassification` checkpoint"),
        "{s}"
    );
}

#[test]
fn wrong_model_type_and_inputs() {
    let (e, s) = err_of(Bert::init_cpu::<task::FillMask>(fixture(
        "roberta-tiny-mlm",
    )));
    assert!(matches!(e, Error::ModelTypeMismatch { .. }), "{s}");

    let ep = Bert::init_cpu::<task::FillMask>(fixture("bert-tiny-mlm")).unwrap();
    let (_, s) = err_of(ep.call("no mask in here"));
    assert!(s.contains("no mask token `[MASK]`"), "{s}");
    let (_, s) = err_of(ep.call_batch(&[], 5));
    assert!(s.contains("no input text"), "{s}");
    // The endpoint still works after the errors.
    assert_eq!(ep.call("a [MASK] b").unwrap().len(), 5);

    // Inputs longer than the model's positions are truncated, like transformers does.
    let fe = Bert::init_cpu::<task::FeatureExtraction>(fixture("bert-tiny-mlm")).unwrap();
    let long = "word ".repeat(5000);
    let states = fe.call(&long).unwrap();
    assert_eq!(states.len(), 64);
    assert!(states.iter().flatten().all(|x| x.is_finite()));
    assert_eq!(fe.call("").unwrap().len(), 2, "[CLS] [SEP]");
}

#[test]
fn backends_that_are_not_there() {
    if !cfg!(feature = "cuda") {
        let (e, s) = err_of(Bert::init_cuda::<task::FillMask>(
            fixture("bert-tiny-mlm"),
            0,
        ));
        assert!(matches!(e, Error::BackendNotCompiled { .. }), "{s}");
        assert!(s.contains("--features cuda"), "{s}");
    }
    if !cfg!(feature = "metal") {
        let (_, s) = err_of(Bert::init_metal::<task::FillMask>(
            fixture("bert-tiny-mlm"),
            0,
        ));
        assert!(s.contains("--features metal"), "{s}");
    }
}

#[test]
fn a_missing_tensor_or_config_field_is_named() {
    let d = copy_of("bert-tiny-mlm", "tensor");
    let w = d.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&w, &candle_core::Device::Cpu).unwrap();
    assert!(tensors
        .remove("bert.encoder.layer.1.attention.self.key.weight")
        .is_some());
    candle_core::safetensors::save(&tensors, &w).unwrap();
    let (e, s) = err_of(Bert::init_cpu::<task::FillMask>(&d));
    assert!(matches!(e, Error::WeightMismatch { .. }), "{s}");
    assert!(
        s.contains("bert.encoder.layer.1.attention.self.key.weight"),
        "{s}"
    );
    std::fs::remove_dir_all(&d).unwrap();

    let d = copy_of("llama-tiny", "field");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    let mut cfg = cfg.as_object().unwrap().clone();
    cfg.remove("num_hidden_layers");
    std::fs::write(d.join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    // LlamaConfig's default (32 layers) applies, as in transformers, and the weights of
    // layer 2 are missing: the first missing tensor is named.
    let (e, s) = err_of(skillsets::Llama::init_cpu::<task::TextGeneration>(&d));
    assert!(matches!(e, Error::WeightMismatch { .. }), "{s}");
    assert!(s.contains("model.layers.2.self_attn.q_proj.weight"), "{s}");
    // A field of the wrong type is named with what was expected.
    cfg.insert("num_hidden_layers".into(), "two".into());
    std::fs::write(d.join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let (_, s) = err_of(skillsets::Llama::init_cpu::<task::TextGeneration>(&d));
    assert!(
        s.contains("config.json: field `num_hidden_layers`") && s.contains("expected usize"),
        "{s}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_model_type_without_a_family_says_so() {
    let d = copy_of("llama-tiny", "nofamily");
    let cfg = std::fs::read_to_string(d.join("config.json")).unwrap();
    std::fs::write(
        d.join("config.json"),
        cfg.replace("\"model_type\": \"llama\"", "\"model_type\": \"mamba\""),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skillset"))
        .args([
            "run",
            "--task",
            "text-generation",
            "--input",
            "x",
            "--model-dir",
        ])
        .arg(&d)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("no skillset family runs model type `mamba` yet"),
        "{stderr}"
    );
    assert!(stderr.contains("MambaForCausalLM"), "{stderr}");
    assert!(!stderr.contains("panicked"));
    // Through the typed API a family skillset refuses it as another model type.
    let (e, s) = err_of(skillsets::Llama::init_cpu::<task::TextGeneration>(&d));
    assert!(matches!(e, Error::ModelTypeMismatch { .. }), "{s}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn empty_and_overlong_generation_prompts() {
    // A tokenizer without a BOS and a checkpoint without a bos_token_id: an empty
    // prompt has nothing to continue (transformers' `generate` refuses it too).
    let qwen = skillsets::Qwen2::init_cpu::<task::TextGeneration>(fixture("qwen2-tiny")).unwrap();
    let (_, s) = err_of(qwen.call(""));
    assert!(s.contains("an empty prompt"), "{s}");
    // llama-tiny's tokenizer adds `<s>`: an empty prompt is `<s>`, continued.
    let ep = skillsets::Llama::init_cpu::<task::TextGeneration>(fixture("llama-tiny")).unwrap();
    let mut o = ep.options();
    o.max_new_tokens = 4;
    let empty = ep.call_with("", &o).unwrap();
    assert_eq!(empty.token_ids.len(), 4);
    assert_eq!(
        empty.generated_text,
        ep.pipeline()
            .tokenizer()
            .unwrap()
            .decode(&empty.token_ids, true)
            .unwrap()
    );
    // Prompts are not truncated: the error counts the whole prompt (`<s>` + 200 words).
    let (_, s) = err_of(ep.call(&"word ".repeat(200)));
    assert!(s.contains("exceeds the model's 64 positions"), "{s}");
    assert!(!s.contains("prompt of 64 tokens"), "{s}");
    // A limit that would wrap the position arithmetic, and a temperature so small that
    // the scores overflow: errors, not garbage (transformers' sampler refuses too).
    let huge = skillsets::runtime::GenerationOptions {
        max_new_tokens: usize::MAX,
        ..ep.options()
    };
    let (e, s) = err_of(ep.call_with("Paris", &huge));
    assert!(matches!(e, Error::OverLimit { .. }), "{s}");
    assert!(s.contains("new tokens is over the limit of 131072"), "{s}");
    let within_budget = skillsets::runtime::GenerationOptions {
        max_new_tokens: 100_000,
        ..ep.options()
    };
    let (_, s) = err_of(ep.call_with("Paris", &within_budget));
    assert!(s.contains("exceeds the model's 64 positions"), "{s}");
    let cold = skillsets::runtime::GenerationOptions {
        temperature: 1e-40,
        max_new_tokens: 3,
        ..ep.options().sampling()
    };
    let (_, s) = err_of(ep.call_with("Paris", &cold));
    assert!(s.contains("not finite"), "{s}");
    // And the endpoint still works.
    let mut o = ep.options();
    o.max_new_tokens = 3;
    assert_eq!(ep.call_with("Paris is", &o).unwrap().token_ids.len(), 3);
}

#[test]
fn truncation_is_reported_at_verbose() {
    let long = "word ".repeat(500);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skillset"))
        .args([
            "run",
            "--verbose",
            "--json",
            "--task",
            "feature-extraction",
            "--input",
            &long,
            "--model-dir",
        ])
        .arg(fixture("bert-tiny-mlm"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("were longer than 64 tokens and were truncated"),
        "{stderr}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"][0].as_array().unwrap().len(), 64);
}

/// A checkpoint given as bytes (the web backend's way) runs exactly as the directory
/// does, and its broken files are errors that name the file under the label.
#[test]
fn checkpoint_from_bytes() {
    use skillsets::runtime::pipeline::RunOptions;
    use skillsets::runtime::{Checkpoint, LoadOptions, Pipeline, Scope};
    use std::collections::BTreeMap;

    let dir = fixture("bert-tiny-mlm");
    let files: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    let task: skillsets::Task = "fill-mask".parse().unwrap();
    let scope = Scope::ModelType(skillsets::lookup("bert").unwrap());
    let opts = LoadOptions::default();
    let inputs = vec!["Paris is the [MASK] of France.".to_string()];
    let from_dir = Pipeline::load_for_scope(scope, &dir, task, &opts).unwrap();
    let ckpt = Checkpoint::from_files("https://example.org/bert", files.clone()).unwrap();
    assert!(ckpt.in_memory());
    let from_bytes = Pipeline::load_checkpoint(scope, ckpt, task, &opts).unwrap();
    let run = RunOptions::default();
    assert_eq!(
        from_dir.run_json(&inputs, &run).unwrap(),
        from_bytes.run_json(&inputs, &run).unwrap()
    );

    let broken = |name: &str, bytes: Option<Vec<u8>>| {
        let mut f = files.clone();
        match bytes {
            Some(b) => f.insert(name.to_string(), b),
            None => f.remove(name),
        };
        let r = Checkpoint::from_files("https://example.org/bert", f)
            .and_then(|c| Pipeline::load_checkpoint(scope, c, task, &opts));
        err_of(r).1
    };
    let s = broken("tokenizer.json", None);
    assert!(
        s.contains("https://example.org/bert/tokenizer.json") && s.contains("not found"),
        "{s}"
    );
    let weights = &files["model.safetensors"];
    let s = broken(
        "model.safetensors",
        Some(weights[..weights.len() / 2].to_vec()),
    );
    assert!(
        s.contains("https://example.org/bert/model.safetensors") && s.contains("truncated"),
        "{s}"
    );
    let s = broken("model.safetensors", Some(b"<html>".to_vec()));
    assert!(s.contains("is not a safetensors file"), "{s}");
    let s = broken("config.json", Some(Vec::new()));
    assert!(s.contains("config.json: not valid JSON"), "{s}");
    let s = broken("model.safetensors", None);
    assert!(s.contains("model weights"), "{s}");
}

/// PyTorch `.bin` checkpoints: a twin whose weights are pickles (single file with the
/// old `LayerNorm.gamma` names; two shards with q/k/v as views into shared storages)
/// gives exactly the outputs of its safetensors original; archives that are not
/// torch.save's, legacy pickles, pickles naming code, and broken archives are errors
/// that name the file, and nothing in them runs.
#[test]
fn pytorch_bin_checkpoints() {
    use skillsets::runtime::{LoadOptions, Pipeline, Scope};
    let run = |dir: &Path| -> Vec<serde_json::Value> {
        let reference = skillset_conformance::Fixture::open(dir).unwrap().reference;
        let info = skillsets::lookup(&reference.model_type).unwrap();
        reference
            .checks
            .iter()
            .flat_map(|c| {
                let p = Pipeline::load_for_scope(
                    Scope::ModelType(info),
                    dir,
                    c.task,
                    &LoadOptions::default(),
                )
                .unwrap();
                p.run_json(&c.inputs, &c.options.to_run_options().unwrap())
                    .unwrap()
            })
            .collect()
    };
    for (bin, original) in [
        ("bert-tiny-cls-bin", "bert-tiny-cls"),
        ("llama-tiny-bin-sharded", "llama-tiny"),
    ] {
        assert!(!fixture(bin).join("model.safetensors").exists());
        assert_eq!(
            run(&fixture(bin)),
            run(&fixture(original)),
            "{bin} vs {original}"
        );
    }

    let d = copy_of("bert-tiny-cls-bin", "bin");
    let load = |d: &Path| err_of(Bert::init_cpu::<task::TextClassification>(d)).1;
    let write_zip = |files: &[(&str, &[u8])]| {
        let f = std::fs::File::create(d.join("pytorch_model.bin")).unwrap();
        let mut z = zip::ZipWriter::new(f);
        for (name, bytes) in files {
            z.start_file(
                *name,
                zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
            std::io::Write::write_all(&mut z, bytes).unwrap();
        }
        z.finish().unwrap();
    };
    // A pickle that calls os.system('touch <marker>') when Python unpickles it.
    let marker = d.join("pwned");
    let cmd = format!("touch {}", marker.display());
    let mut evil = b"\x80\x02cposix\nsystem\nq\x00X".to_vec();
    evil.extend((cmd.len() as u32).to_le_bytes());
    evil.extend(cmd.as_bytes());
    evil.extend(b"q\x01\x85q\x02Rq\x03.");
    write_zip(&[("archive/data.pkl", &evil)]);
    let s = load(&d);
    assert!(
        s.contains("refers to `posix.system`") && s.contains("refused"),
        "{s}"
    );
    assert!(s.contains("pytorch_model.bin"), "{s}");
    assert!(!marker.exists());
    // A state dict with one entry that is code, beside real-looking ones.
    let dict = b"\x80\x02}q\x00(X\x01\x00\x00\x00xcbuiltins\neval\nX\x02\x00\x00\x001+q\x01\x85Ru."
        .to_vec();
    write_zip(&[("archive/data.pkl", &dict)]);
    let s = load(&d);
    assert!(s.contains("refers to `builtins.eval`"), "{s}");
    // Not a zip, a legacy pickle, an archive without data.pkl, a storage cut short.
    std::fs::write(d.join("pytorch_model.bin"), b"<html>404</html>").unwrap();
    assert!(load(&d).contains("is not a PyTorch checkpoint"));
    std::fs::write(d.join("pytorch_model.bin"), b"\x80\x02}q\x00.").unwrap();
    assert!(load(&d).contains("legacy"));
    write_zip(&[("archive/other.txt", b"hello")]);
    assert!(load(&d).contains("has no data.pkl"));
    let original = std::fs::read(fixture("bert-tiny-cls-bin").join("pytorch_model.bin")).unwrap();
    std::fs::write(d.join("pytorch_model.bin"), &original[..original.len() / 2]).unwrap();
    let s = load(&d);
    assert!(s.contains("pytorch_model.bin"), "{s}");
    std::fs::remove_dir_all(&d).unwrap();

    // An index naming a shard that is not there, or one outside the directory.
    let d = copy_of("llama-tiny-bin-sharded", "binindex");
    std::fs::remove_file(d.join("pytorch_model-00002-of-00002.bin")).unwrap();
    let s = err_of(skillsets::Llama::init_cpu::<task::TextGeneration>(&d)).1;
    assert!(
        s.contains("weight shard") && s.contains("pytorch_model-00002-of-00002.bin"),
        "{s}"
    );
    std::fs::write(
        d.join("pytorch_model.bin.index.json"),
        r#"{"weight_map": {"lm_head.weight": "../../etc/passwd"}}"#,
    )
    .unwrap();
    let s = err_of(skillsets::Llama::init_cpu::<task::TextGeneration>(&d)).1;
    assert!(s.contains("outside the checkpoint directory"), "{s}");
    std::fs::remove_dir_all(&d).unwrap();

    // Only the slow tokenizer's file: the error names the one-line conversion.
    let d = copy_of("llama-tiny", "slowtok");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    std::fs::write(d.join("tokenizer.model"), b"sentencepiece").unwrap();
    let s = err_of(skillsets::Llama::init_cpu::<task::TextGeneration>(&d)).1;
    assert!(
        s.contains("tokenizer.model") && s.contains("save_pretrained"),
        "{s}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// One row of tests/bad_inputs.json.
#[derive(serde::Deserialize)]
struct BadCase {
    name: String,
    fixture: String,
    #[serde(default)]
    patch: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    nan: Option<String>,
    #[serde(default)]
    fifo: Option<String>,
    #[serde(default)]
    bom: Option<String>,
    #[serde(default)]
    added_token: Option<serde_json::Value>,
    #[serde(default)]
    wav: Option<WavSpec>,
    #[serde(default)]
    png: Option<(u32, u32)>,
    #[serde(default)]
    text_kb: Option<usize>,
    args: Vec<String>,
    exit: i32,
    #[serde(default)]
    stderr: Vec<String>,
    #[serde(default)]
    stdout: Vec<String>,
}

#[derive(serde::Deserialize)]
struct WavSpec {
    rate: u32,
    samples: usize,
}

/// A 16-bit mono WAV of `samples` zero samples declaring `rate` Hz.
fn silent_wav(rate: u32, samples: usize) -> Vec<u8> {
    let data = samples * 2;
    let mut w = b"RIFF".to_vec();
    w.extend(((36 + data) as u32).to_le_bytes());
    w.extend(b"WAVEfmt ");
    w.extend(16u32.to_le_bytes());
    w.extend(1u16.to_le_bytes()); // PCM
    w.extend(1u16.to_le_bytes()); // mono
    w.extend(rate.to_le_bytes());
    w.extend(rate.wrapping_mul(2).to_le_bytes());
    w.extend(2u16.to_le_bytes());
    w.extend(16u16.to_le_bytes());
    w.extend(b"data");
    w.extend((data as u32).to_le_bytes());
    w.resize(w.len() + data, 0);
    w
}

/// Fill one f32 tensor of a safetensors file with NaN.
fn poison_tensor(path: &Path, name: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let t = &header[name];
    assert_eq!(t["dtype"], "F32", "{name}");
    let (a, b) = (
        t["data_offsets"][0].as_u64().unwrap() as usize,
        t["data_offsets"][1].as_u64().unwrap() as usize,
    );
    for c in bytes[8 + n + a..8 + n + b].chunks_mut(4) {
        c.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The largest resident set of the children this test process waited for, in bytes.
#[cfg(unix)]
fn children_max_rss() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as u64 * 1024
}

/// Every row of tests/bad_inputs.json (issue 21's reproductions and more): a clear
/// error with exit 1 or 2 (or the right result), no panic, no abort, within 10 s and
/// 1 GiB each. Add a row there for the next case.
#[cfg(target_os = "linux")]
#[test]
fn the_bad_input_corpus() {
    use std::sync::mpsc;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("tests/bad_inputs.json")).unwrap())
            .unwrap();
    let cases: Vec<BadCase> = serde_json::from_value(corpus["cases"].clone()).unwrap();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let dir = copy_of(&case.fixture, &format!("corpus{i}"));
        let scratch = dir.with_extension("inputs");
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).unwrap();
        for (file, keys) in &case.patch {
            let p = dir.join(file);
            let mut doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap_or("{}".into())).unwrap();
            for (k, v) in keys {
                if v.is_null() {
                    doc.as_object_mut().unwrap().remove(k);
                } else {
                    doc[k] = v.clone();
                }
            }
            std::fs::write(&p, serde_json::to_string(&doc).unwrap()).unwrap();
        }
        if let Some(t) = &case.nan {
            poison_tensor(&dir.join("model.safetensors"), t);
        }
        if let Some(f) = &case.fifo {
            std::fs::remove_file(dir.join(f)).unwrap();
            mkfifo(&dir.join(f));
        }
        if let Some(t) = &case.added_token {
            let p = dir.join("tokenizer.json");
            let mut tok: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let mut token = serde_json::json!({"single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
            token["content"] = t["content"].clone();
            token["id"] = t["id"].clone();
            tok["added_tokens"].as_array_mut().unwrap().push(token);
            std::fs::write(&p, tok.to_string()).unwrap();
        }
        if let Some(f) = &case.bom {
            let text = std::fs::read(dir.join(f)).unwrap();
            std::fs::write(dir.join(f), [b"\xEF\xBB\xBF".as_slice(), &text].concat()).unwrap();
        }
        let wav = scratch.join("input.wav");
        if let Some(w) = &case.wav {
            std::fs::write(&wav, silent_wav(w.rate, w.samples)).unwrap();
        }
        let png = scratch.join("input.png");
        if let Some((w, h)) = case.png {
            let data = vec![128u8; (w * h * 3) as usize];
            image::save_buffer(&png, &data, w, h, image::ExtendedColorType::Rgb8).unwrap();
        }
        let fifo = scratch.join("fifo");
        mkfifo(&fifo);
        let link = scratch.join("broken-link");
        std::os::unix::fs::symlink(scratch.join("nothing-here"), &link).unwrap();
        let text = "word ".repeat(case.text_kb.unwrap_or(0) * 1024 / 5);
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("{dir}", dir.to_str().unwrap())
                    .replace("{wav}", wav.to_str().unwrap())
                    .replace("{png}", png.to_str().unwrap())
                    .replace("{fifo}", fifo.to_str().unwrap())
                    .replace("{broken_link}", link.to_str().unwrap())
                    .replace("{text}", &text)
            })
            .collect();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_skillset"))
            .args(&args)
            .current_dir(root)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let started = std::time::Instant::now();
        let out = match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                // SAFETY: signalling the child this test spawned.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                failures.push(format!("{}: still running after 10 s", case.name));
                continue;
            }
        };
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let mut problems = Vec::new();
        if out.status.code() != Some(case.exit) {
            problems.push(format!("exit {:?}, expected {}", out.status, case.exit));
        }
        if stderr.contains("panicked") {
            problems.push("panicked".into());
        }
        for s in &case.stderr {
            if !stderr.contains(s.as_str()) {
                problems.push(format!("stderr lacks {s:?}"));
            }
        }
        for s in &case.stdout {
            if !stdout.contains(s.as_str()) {
                problems.push(format!("stdout lacks {s:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {} (after {:.1} s)\n  stderr: {}",
                case.name,
                problems.join("; "),
                started.elapsed().as_secs_f64(),
                stderr.trim()
            ));
        }
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&scratch).unwrap();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let rss = children_max_rss();
    assert!(rss < 1 << 30, "a run used {} MiB", rss >> 20);
}
