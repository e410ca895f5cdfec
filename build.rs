//! Generates one typed struct per model type of `model_types.json` into
//! `$OUT_DIR/model_types.rs`, declaring each backend as `backend_results.json` (what
//! `skillset --run-tests` measured) says. `src/lib.rs` includes the file. Both files
//! are the copies embedded in skillset-codegen (the `#[skillset]` macro reads the same
//! ones); a change to them rebuilds skillset-codegen and so reruns this script.

use std::path::{Path, PathBuf};

use skillset_codegen::embedded::{BACKEND_RESULTS_JSON, MODEL_TYPES_JSON};

/// Names the crate root exports itself; a model type must not take them.
const RESERVED: &[&str] = &[
    "Skillset",
    "Supports",
    "Endpoint",
    "Task",
    "Family",
    "Modality",
    "Backend",
    "BackendStatus",
    "DeviceSpec",
    "DType",
    "ModelTypeInfo",
    "FamilyInfo",
    "Scope",
    "Pipeline",
    "LoadOptions",
    "Error",
    "Result",
];

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");

    if let Err(message) = generate(&out_dir.join("model_types.rs")) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn generate(out: &Path) -> Result<(), String> {
    let meta = skillset_codegen::parse_metadata(MODEL_TYPES_JSON, "model_types.json")
        .map_err(|e| e.to_string())?;
    let results = skillset_codegen::parse_results(BACKEND_RESULTS_JSON, "backend_results.json")
        .map_err(|e| e.to_string())?;
    for entry in &meta.model_types {
        let name = skillset_codegen::names::rust_type_name(&entry.model_type);
        if RESERVED.contains(&name.as_str()) {
            return Err(format!(
                "model type `{}` would generate `{name}`, which the skillsets crate already exports",
                entry.model_type
            ));
        }
    }
    let tokens = skillset_codegen::generate::registry(&meta, &results);
    let mut code = skillset_codegen::generate::header("build.rs", &meta);
    code.push_str(
        &skillset_codegen::generate::format_file(tokens)
            .map_err(|e| format!("generated code does not parse: {e}"))?,
    );
    // Rewrite only on change, so that touching model_types.json without changing it
    // does not recompile the crate.
    if std::fs::read_to_string(out).ok().as_deref() != Some(code.as_str()) {
        std::fs::write(out, code).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    Ok(())
}
