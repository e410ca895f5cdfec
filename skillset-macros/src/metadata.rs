//! Reading `model_types.json` once per compiler process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use once_cell::sync::Lazy;
use skillset_codegen::Metadata;

/// The file the macro reads: `$SKILLSET_MODEL_TYPES`, else the workspace's copy.
pub fn path() -> PathBuf {
    match std::env::var_os("SKILLSET_MODEL_TYPES") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../model_types.json")),
    }
}

type Cached = Arc<Result<Metadata, String>>;
type Cache = HashMap<PathBuf, (Option<SystemTime>, Cached)>;

/// Parsed metadata, cached across macro invocations in one compiler process and
/// re-read when the file's modification time changes (rust-analyzer keeps the macro
/// loaded across edits).
static CACHE: Lazy<Mutex<Cache>> = Lazy::new(Default::default);

pub fn load() -> (PathBuf, Cached) {
    let path = path();
    let path = path.canonicalize().unwrap_or(path);
    let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((t, meta)) = cache.get(&path) {
        if *t == mtime {
            return (path, meta.clone());
        }
    }
    let parsed = match std::fs::read_to_string(&path) {
        Ok(text) => skillset_codegen::parse_metadata(&text, &path.display().to_string()).map_err(|e| e.to_string()),
        Err(e) => Err(format!(
            "#[skillset] cannot read {}: {e} (set SKILLSET_MODEL_TYPES to the path of model_types.json)",
            path.display()
        )),
    };
    let parsed = Arc::new(parsed);
    cache.insert(path.clone(), (mtime, parsed.clone()));
    (path, parsed)
}
