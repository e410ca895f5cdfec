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
    let (_, s) = err_of(skillsets::Llama::init_cpu::<task::TextGeneration>(&d));
    assert!(
        s.contains("config.json: field `num_hidden_layers`: is missing"),
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
    let (_, s) = err_of(ep.call_with("Paris", &huge));
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
        let reference = skillsets::conformance::Fixture::open(dir)
            .unwrap()
            .reference;
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
