//! trybuild: every mistake in `#[skillset]` is a compile error at the right span with
//! a readable message (tests/ui/<mistake>.rs + .stderr); the typed API compiles and
//! runs (tests/ui-pass); and a sample of the files `skillset` generates, dropped into a
//! crate as modules, compiles against skillset-runtime.

use std::path::PathBuf;

use skillset_codegen::names::{file_stem, rust_type_name};
use skillset_codegen::{generate, parse_metadata, BackendResults};

/// Generated files for a spread of model types (every family member, each modality,
/// awkward names, every 50th model type) plus a `main.rs` that declares them as
/// modules and touches each type.
fn write_generated_sample() -> PathBuf {
    let meta = parse_metadata(skillsets::MODEL_TYPES_JSON, "model_types.json").unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-generated");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut names: Vec<&str> = meta
        .model_types
        .iter()
        .filter(|e| e.family.is_some())
        .map(|e| e.model_type.as_str())
        .collect();
    names.extend([
        "llama",
        "clip",
        "whisper",
        "wav2vec2",
        "llava",
        "vit",
        "t5",
        "qwen2_5_vl",
        "EvollaModel",
        "gpt-sw3",
        "patchtst",
    ]);
    names.extend(
        meta.model_types
            .iter()
            .step_by(50)
            .map(|e| e.model_type.as_str()),
    );
    names.sort();
    names.dedup();
    let results = BackendResults::new();
    let mut main = String::from("// Generated skillset files, dropped into a crate as modules.\n");
    let mut body = String::new();
    for name in &names {
        let entry = meta
            .model_type(name)
            .unwrap_or_else(|| panic!("{name} is in model_types.json"));
        let stem = file_stem(name);
        std::fs::write(
            dir.join(format!("{stem}.rs")),
            generate::model_type_file(&meta, entry, &results),
        )
        .unwrap();
        main.push_str(&format!("#[path = \"{stem}.rs\"]\nmod {stem};\n"));
        body.push_str(&format!(
            "    assert_eq!(<{stem}::{ty} as ::skillset_runtime::Skillset>::SCOPE.name(), {name:?});\n",
            ty = rust_type_name(name)
        ));
    }
    main.push_str("\nfn main() {\n");
    main.push_str(&body);
    main.push_str("}\n");
    let path = dir.join("main.rs");
    std::fs::write(&path, main).unwrap();
    path
}

#[test]
fn ui() {
    // trybuild builds its crates in target/tests/trybuild with cargo's default dev
    // profile (it copies no [profile] from this workspace), so candle and every other
    // dependency would carry full debug info: gigabytes, more than CI's free disk once.
    // The spawned cargo inherits this process's environment; this binary has one test.
    std::env::set_var("CARGO_PROFILE_DEV_DEBUG", "false");
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
    t.pass(write_generated_sample());
}
