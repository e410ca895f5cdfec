//! Finding and reading a Hugging Face checkpoint: a local directory, or a model id in
//! the local Hugging Face cache (`$HF_HOME/hub/models--org--name/snapshots/<rev>/`),
//! offline.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::VarBuilder;

use crate::error::{Error, Result};

const CHECKPOINT_HINT: &str =
    "a Hugging Face checkpoint directory holds config.json, tokenizer.json and model.safetensors";

/// An opened checkpoint: its directory and parsed config.json.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: serde_json::Value,
    /// `model_type` from config.json.
    pub model_type: String,
}

impl Checkpoint {
    /// Open a checkpoint directory, or look a model id (`org/name`, optionally
    /// `org/name@revision`) up in the local Hugging Face cache.
    ///
    /// ```
    /// use skillset_runtime::Checkpoint;
    ///
    /// let ckpt = Checkpoint::open("../tests/fixtures/roberta-tiny-mlm".as_ref())?;
    /// assert_eq!(ckpt.model_type, "roberta");
    /// assert_eq!(ckpt.weight_files()?.len(), 1);
    /// // Not there, and not a cached model id either: an error that says what to do.
    /// let err = Checkpoint::open("acme/not-downloaded".as_ref()).unwrap_err();
    /// assert!(err.to_string().contains("Hugging Face cache"));
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn open(path: &Path) -> Result<Self> {
        let dir = if path.is_dir() {
            path.to_path_buf()
        } else if path.exists() {
            return Err(Error::invalid_file(
                path,
                format!("is a file, not a checkpoint directory ({CHECKPOINT_HINT})"),
            ));
        } else {
            match path.to_str().filter(|s| looks_like_model_id(s)) {
                Some(id) => resolve_from_cache(id)?,
                None => {
                    return Err(Error::MissingFile {
                        path: path.to_path_buf(),
                        what: "checkpoint directory",
                        hint: Some(CHECKPOINT_HINT.into()),
                    })
                }
            }
        };
        let config_path = dir.join("config.json");
        let config = read_json(&config_path, "config.json")?;
        let model_type = config
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::invalid_file(&config_path, "has no string field `model_type`"))?
            .to_string();
        Ok(Checkpoint {
            dir,
            config,
            model_type,
        })
    }

    /// A file of the checkpoint, if present.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let p = self.dir.join(name);
        p.is_file().then_some(p)
    }

    /// Read a JSON file of the checkpoint, `None` when it is absent.
    pub fn json(&self, name: &str) -> Result<Option<serde_json::Value>> {
        match self.file(name) {
            Some(p) => read_json(&p, "JSON file").map(Some),
            None => Ok(None),
        }
    }

    /// The path of config.json (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The tokenizer from tokenizer.json.
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer> {
        let path = self.dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(Error::MissingFile {
                path,
                what: "tokenizer.json",
                hint: Some(
                    "save the fast tokenizer with `AutoTokenizer.from_pretrained(...).save_pretrained(dir)`".into(),
                ),
            });
        }
        tokenizers::Tokenizer::from_file(&path).map_err(|e| Error::invalid_file(&path, e))
    }

    /// The safetensors files holding the weights: `model.safetensors`, or the shards
    /// named by `model.safetensors.index.json`.
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        if let Some(p) = self.file("model.safetensors") {
            return Ok(vec![p]);
        }
        if let Some(index_path) = self.file("model.safetensors.index.json") {
            let index = read_json(&index_path, "model.safetensors.index.json")?;
            let map = index
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| Error::invalid_file(&index_path, "has no object `weight_map`"))?;
            let files: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
            if files.is_empty() {
                return Err(Error::invalid_file(
                    &index_path,
                    "`weight_map` names no file",
                ));
            }
            let mut out = Vec::with_capacity(files.len());
            for f in files {
                let p = self.dir.join(f);
                if !p.is_file() {
                    return Err(Error::MissingFile {
                        path: p,
                        what: "weight shard",
                        hint: Some(format!("listed in {}", index_path.display())),
                    });
                }
                out.push(p);
            }
            return Ok(out);
        }
        let hint = if self.file("pytorch_model.bin").is_some() {
            "only safetensors weights load; convert pytorch_model.bin with \
             `AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`"
                .to_string()
        } else {
            CHECKPOINT_HINT.to_string()
        };
        Err(Error::MissingFile {
            path: self.dir.join("model.safetensors"),
            what: "model weights",
            hint: Some(hint),
        })
    }

    /// A `VarBuilder` over the memory-mapped weights, converting to `dtype` on load.
    pub fn var_builder(
        &self,
        dtype: candle_core::DType,
        device: &Device,
    ) -> Result<VarBuilder<'static>> {
        let files = self.weight_files()?;
        for f in &files {
            check_safetensors_header(f)?;
        }
        // SAFETY: the files are memory-mapped read-only; like every safetensors
        // loader we rely on them not being truncated while mapped.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&files, dtype, device) }
            .map_err(|e| Error::invalid_file(&files[0], format!("cannot load weights: {e}")))?;
        Ok(vb)
    }
}

/// Validate a safetensors header up front so that a truncated or foreign file is
/// an error naming the file, not a failure deep inside a layer.
fn check_safetensors_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::invalid_file(path, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::invalid_file(path, e))?
        .len();
    let mut n = [0u8; 8];
    if len < 8 || f.read_exact(&mut n).is_err() {
        return Err(Error::invalid_file(
            path,
            "is not a safetensors file (too short)",
        ));
    }
    let header_len = u64::from_le_bytes(n);
    if header_len > len - 8 || header_len > 100 * 1024 * 1024 {
        return Err(Error::invalid_file(
            path,
            "is not a safetensors file or is truncated (bad header length)",
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header)
        .map_err(|e| Error::invalid_file(path, e))?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| Error::invalid_file(path, format!("safetensors header is not JSON: {e}")))?;
    let data_len = len - 8 - header_len;
    let obj = header
        .as_object()
        .ok_or_else(|| Error::invalid_file(path, "safetensors header is not an object"))?;
    for (name, info) in obj {
        if name == "__metadata__" {
            continue;
        }
        let end = info
            .get("data_offsets")
            .and_then(|o| o.get(1))
            .and_then(|e| e.as_u64())
            .ok_or_else(|| {
                Error::invalid_file(path, format!("tensor `{name}` has no data_offsets"))
            })?;
        if end > data_len {
            return Err(Error::invalid_file(
                path,
                format!("is truncated: tensor `{name}` ends at byte {end} of {data_len}"),
            ));
        }
    }
    Ok(())
}

fn read_json(path: &Path, what: &'static str) -> Result<serde_json::Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingFile {
                path: path.to_path_buf(),
                what,
                hint: Some(CHECKPOINT_HINT.into()),
            })
        }
        Err(e) => return Err(Error::invalid_file(path, e)),
    };
    serde_json::from_str(&text)
        .map_err(|e| Error::invalid_file(path, format!("not valid JSON: {e}")))
}

fn looks_like_model_id(s: &str) -> bool {
    let id = s.split('@').next().unwrap_or(s);
    let parts: Vec<&str> = id.split('/').collect();
    !s.starts_with('.')
        && !s.starts_with('/')
        && (1..=2).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

/// The Hugging Face hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub` (the layout `huggingface_hub` and the `hf-hub` crate use).
pub fn hf_cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("HF_HOME") {
        return PathBuf::from(p).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("huggingface").join("hub")
}

/// The snapshot directory of `org/name[@revision]` in the cache.
pub fn resolve_from_cache(model_id: &str) -> Result<PathBuf> {
    resolve_in_cache(&hf_cache_dir(), model_id)
}

/// The snapshot directory of `org/name[@revision]` in the cache at `cache`.
pub fn resolve_in_cache(cache: &Path, model_id: &str) -> Result<PathBuf> {
    let (id, revision) = match model_id.split_once('@') {
        Some((id, rev)) => (id, rev),
        None => (model_id, "main"),
    };
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let not_found = || Error::NotInCache {
        model_id: model_id.to_string(),
        cache: cache.to_path_buf(),
    };
    if !repo.is_dir() {
        return Err(not_found());
    }
    // A ref name (`main`) points at a commit hash; a hash is used as is.
    let commit = match std::fs::read_to_string(repo.join("refs").join(revision)) {
        Ok(hash) => hash.trim().to_string(),
        Err(_) => revision.to_string(),
    };
    let snapshot = repo.join("snapshots").join(&commit);
    if snapshot.is_dir() {
        Ok(snapshot)
    } else {
        Err(not_found())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids() {
        assert!(looks_like_model_id(
            "sentence-transformers/all-MiniLM-L6-v2"
        ));
        assert!(looks_like_model_id("gpt2"));
        assert!(looks_like_model_id("org/name@v1.0"));
        assert!(!looks_like_model_id("./local/dir"));
        assert!(!looks_like_model_id("/abs/dir"));
        assert!(!looks_like_model_id("a/b/c"));
    }

    #[test]
    fn cache_layout() {
        let tmp = std::env::temp_dir().join(format!("skillset-cache-{}", std::process::id()));
        let snap = tmp.join("models--org--tiny/snapshots/abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::create_dir_all(tmp.join("models--org--tiny/refs")).unwrap();
        std::fs::write(tmp.join("models--org--tiny/refs/main"), "abc123\n").unwrap();
        assert_eq!(resolve_in_cache(&tmp, "org/tiny").unwrap(), snap);
        assert_eq!(resolve_in_cache(&tmp, "org/tiny@abc123").unwrap(), snap);
        let err = resolve_in_cache(&tmp, "org/other").unwrap_err().to_string();
        assert!(
            err.contains("neither a checkpoint directory nor in the Hugging Face cache"),
            "{err}"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
