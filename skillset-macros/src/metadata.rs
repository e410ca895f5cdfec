//! The metadata the macro expands from: the copy embedded in skillset-codegen (the
//! one build.rs of `skillsets` reads), or the file `SKILLSET_MODEL_TYPES` names,
//! parsed once per compiler process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use once_cell::sync::Lazy;
use skillset_codegen::embedded::{BACKEND_RESULTS_JSON, MODEL_TYPES_JSON};
use skillset_codegen::{BackendResults, Metadata};

type Cached = Arc<Result<Metadata, String>>;
type Cache = HashMap<PathBuf, (Option<SystemTime>, Cached)>;

/// Files named by `SKILLSET_MODEL_TYPES`, cached across macro invocations in one
/// compiler process and re-read when the file's modification time changes
/// (rust-analyzer keeps the macro loaded across edits).
static CACHE: Lazy<Mutex<Cache>> = Lazy::new(Default::default);

static EMBEDDED: Lazy<Cached> = Lazy::new(|| {
    Arc::new(
        skillset_codegen::parse_metadata(MODEL_TYPES_JSON, "model_types.json")
            .map_err(|e| e.to_string()),
    )
});

type Results = Arc<Result<BackendResults, String>>;

/// The backend statuses `backend_results.json` records.
static RESULTS: Lazy<Results> = Lazy::new(|| {
    Arc::new(
        skillset_codegen::parse_results(BACKEND_RESULTS_JSON, "backend_results.json")
            .map_err(|e| e.to_string()),
    )
});

/// The metadata, the file it came from (`None`: the embedded copy) and the backend
/// results.
pub fn load() -> (Option<PathBuf>, Cached, Results) {
    let results = RESULTS.clone();
    let Some(path) = std::env::var_os("SKILLSET_MODEL_TYPES").map(PathBuf::from) else {
        return (None, EMBEDDED.clone(), results);
    };
    let path = path.canonicalize().unwrap_or(path);
    let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((t, meta)) = cache.get(&path) {
        if *t == mtime {
            return (Some(path), meta.clone(), results);
        }
    }
    let parsed = match std::fs::read_to_string(&path) {
        Ok(text) => skillset_codegen::parse_metadata(&text, &path.display().to_string())
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!(
            "#[skillset] cannot read {} (named by SKILLSET_MODEL_TYPES): {e}",
            path.display()
        )),
    };
    let parsed = Arc::new(parsed);
    cache.insert(path.clone(), (mtime, parsed.clone()));
    (Some(path), parsed, results)
}
