//! Finding and reading a Hugging Face checkpoint: a local directory, or a model id in
//! the local Hugging Face cache (`$HF_HOME/hub/models--org--name/snapshots/<rev>/`),
//! offline.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::Device;
use candle_nn::VarBuilder;

use crate::error::{Error, Result};

const CHECKPOINT_HINT: &str =
    "a Hugging Face checkpoint directory holds config.json, tokenizer.json and model.safetensors";

/// An opened checkpoint: its directory (or, for one given as bytes, a label such as
/// the URL it was fetched from) and parsed config.json.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: serde_json::Value,
    /// `model_type` from config.json.
    pub model_type: String,
    /// The files, when the checkpoint was given as bytes (the web backend: no
    /// filesystem); `None` when it is read from `dir`.
    memory: Option<Arc<BTreeMap<String, Vec<u8>>>>,
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
        } else if !path.exists() && path.symlink_metadata().is_ok() {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err(Error::invalid_file(
                path,
                format!("is a broken symbolic link (to {target}), not a checkpoint directory"),
            ));
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
        let mut ckpt = Checkpoint {
            dir,
            config: serde_json::Value::Null,
            model_type: String::new(),
            memory: None,
        };
        ckpt.read_config()?;
        Ok(ckpt)
    }

    /// A checkpoint given as bytes, file name -> contents (`config.json`,
    /// `tokenizer.json`, `model.safetensors`, ...), as the web backend gets it. `label`
    /// stands for the directory in messages (the base URL the files came from, say).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use skillset_runtime::Checkpoint;
    ///
    /// let dir = std::path::Path::new("../tests/fixtures/roberta-tiny-mlm");
    /// let mut files = BTreeMap::new();
    /// for name in ["config.json", "tokenizer.json", "model.safetensors"] {
    ///     files.insert(name.to_string(), std::fs::read(dir.join(name))?);
    /// }
    /// let ckpt = Checkpoint::from_files("https://example.org/roberta", files.clone())?;
    /// assert_eq!(ckpt.model_type, "roberta");
    /// // A missing file is named with the label.
    /// files.remove("config.json");
    /// let err = Checkpoint::from_files("https://example.org/roberta", files).unwrap_err();
    /// assert!(err.to_string().contains("https://example.org/roberta/config.json"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_files(label: &str, files: BTreeMap<String, Vec<u8>>) -> Result<Self> {
        let mut ckpt = Checkpoint {
            dir: PathBuf::from(label.trim_end_matches('/')),
            config: serde_json::Value::Null,
            model_type: String::new(),
            memory: Some(Arc::new(files)),
        };
        ckpt.read_config()?;
        Ok(ckpt)
    }

    fn read_config(&mut self) -> Result<()> {
        let config_path = self.config_path();
        self.config = self
            .read_json("config.json", "config.json")?
            .ok_or_else(|| Error::MissingFile {
                path: config_path.clone(),
                what: "config.json",
                hint: Some(CHECKPOINT_HINT.into()),
            })?;
        self.model_type = self
            .config
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::invalid_file(&config_path, "has no string field `model_type`"))?
            .to_string();
        Ok(())
    }

    /// Whether the checkpoint was given as bytes rather than read from a directory.
    pub fn in_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// A file of the checkpoint, if present (for one given as bytes, its name under
    /// the label).
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let p = self.dir.join(name);
        match &self.memory {
            Some(files) => files.contains_key(name).then_some(p),
            None => p.is_file().then_some(p),
        }
    }

    /// The bytes of a file of the checkpoint, `None` when it is absent.
    pub fn read(&self, name: &str) -> Result<Option<std::borrow::Cow<'_, [u8]>>> {
        match &self.memory {
            Some(files) => Ok(files
                .get(name)
                .map(|b| std::borrow::Cow::Borrowed(b.as_slice()))),
            None => {
                let p = self.dir.join(name);
                read_regular_file(&p, MAX_CHECKPOINT_FILE).map(|b| b.map(std::borrow::Cow::Owned))
            }
        }
    }

    fn read_json(&self, name: &str, what: &'static str) -> Result<Option<serde_json::Value>> {
        let path = self.dir.join(name);
        let Some(bytes) = self.read(name)? else {
            return Ok(None);
        };
        // A UTF-8 byte order mark (some Windows editors write one) is not JSON.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        if bytes.is_empty() {
            return Err(Error::invalid_file(
                &path,
                format!("not valid JSON: the {what} is empty"),
            ));
        }
        serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|e| Error::invalid_file(&path, format!("not valid JSON: {e}")))
    }

    /// Read a JSON file of the checkpoint, `None` when it is absent.
    pub fn json(&self, name: &str) -> Result<Option<serde_json::Value>> {
        self.read_json(name, "JSON file")
    }

    /// The path of config.json (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The tokenizer from tokenizer.json.
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer> {
        let path = self.dir.join("tokenizer.json");
        let Some(bytes) = self.read("tokenizer.json")? else {
            // A slow tokenizer's files only (sentencepiece's tokenizer.model, BERT's
            // vocab.txt, GPT-2's vocab.json + merges.txt): transformers converts them
            // when it loads them; no Rust crate converts them exactly, so say how to once.
            let slow = [
                "tokenizer.model",
                "spiece.model",
                "sentencepiece.bpe.model",
                "vocab.txt",
                "vocab.json",
            ]
            .into_iter()
            .find(|f| self.file(f).is_some());
            let convert = format!(
                "python -c \"from transformers import AutoTokenizer; AutoTokenizer.from_pretrained('{0}').save_pretrained('{0}')\"",
                self.dir.display()
            );
            return Err(Error::MissingFile {
                path,
                what: "tokenizer.json",
                hint: Some(match slow {
                    Some(f) => format!(
                        "the checkpoint has only the slow tokenizer's {f}; write tokenizer.json from it once with `{convert}`"
                    ),
                    None => format!("save the fast tokenizer with `{convert}`"),
                }),
            });
        };
        tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| Error::invalid_file(&path, e))
    }

    /// The files holding the weights: `model.safetensors` or the shards named by
    /// `model.safetensors.index.json`; without safetensors, PyTorch's
    /// `pytorch_model.bin` or the shards of `pytorch_model.bin.index.json` (read weights
    /// only, see [`crate::pytorch`]).
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        for (single, index) in [
            ("model.safetensors", "model.safetensors.index.json"),
            ("pytorch_model.bin", "pytorch_model.bin.index.json"),
        ] {
            if let Some(p) = self.file(single) {
                return Ok(vec![p]);
            }
            if let Some(index_path) = self.file(index) {
                return self.shards(index, &index_path);
            }
        }
        let other = ["tf_model.h5", "flax_model.msgpack", "model.ckpt.index"]
            .iter()
            .find(|f| self.file(f).is_some());
        let hint = match other {
            Some(f) => format!(
                "only {f} is there (TensorFlow / Flax weights): convert it once with transformers (`AutoModel.from_pretrained(dir, from_tf=True).save_pretrained(dir)`, or from_flax)"
            ),
            None => CHECKPOINT_HINT.to_string(),
        };
        Err(Error::MissingFile {
            path: self.dir.join("model.safetensors"),
            what: "model weights",
            hint: Some(hint),
        })
    }

    /// The shard files an index (`*.index.json`) names.
    fn shards(&self, name: &str, index_path: &Path) -> Result<Vec<PathBuf>> {
        let index = self.read_json(name, "weight index")?.unwrap_or_default();
        let map = index
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| Error::invalid_file(index_path, "has no object `weight_map`"))?;
        let files: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        if files.is_empty() {
            return Err(Error::invalid_file(
                index_path,
                "`weight_map` names no file",
            ));
        }
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            if f.contains("..") || f.starts_with('/') {
                return Err(Error::invalid_file(
                    index_path,
                    format!("`weight_map` names {f:?}, outside the checkpoint directory"),
                ));
            }
            let Some(p) = self.file(f) else {
                return Err(Error::MissingFile {
                    path: self.dir.join(f),
                    what: "weight shard",
                    hint: Some(format!("listed in {}", index_path.display())),
                });
            };
            out.push(p);
        }
        Ok(out)
    }

    /// For a checkpoint given as bytes, the bytes of one of its files (`path` under its
    /// label; empty when absent); `None` for one read from a directory.
    fn memory_bytes(&self, path: &Path) -> Option<&[u8]> {
        let memory = self.memory.as_ref()?;
        let name = path
            .strip_prefix(&self.dir)
            .ok()
            .and_then(|p| p.to_str())
            .unwrap_or_default();
        Some(memory.get(name).map(Vec::as_slice).unwrap_or_default())
    }

    /// A `VarBuilder` over the memory-mapped weights, converting to `dtype` on load.
    pub fn var_builder(
        &self,
        dtype: candle_core::DType,
        device: &Device,
    ) -> Result<VarBuilder<'static>> {
        let files = self.weight_files()?;
        if files[0].extension().is_some_and(|e| e == "bin") {
            // PyTorch pickles: every tensor read (weights only), then converted on use.
            let mut tensors = HashMap::new();
            for path in &files {
                let loaded = match self.memory_bytes(path) {
                    Some(bytes) => crate::pytorch::load_bytes(path, bytes)?,
                    None => crate::pytorch::load_file(path)?,
                };
                tensors.extend(loaded);
            }
            return Ok(VarBuilder::from_tensors(tensors, dtype, device));
        }
        if self.memory.is_some() {
            // Given as bytes: decode every shard into tensors (the bytes are the
            // caller's and stay with the checkpoint, so nothing borrows them later).
            let mut tensors = HashMap::new();
            for path in &files {
                let bytes = self.memory_bytes(path).unwrap_or_default();
                check_header(path, bytes.len() as u64, &mut std::io::Cursor::new(bytes))?;
                let loaded = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
                    .map_err(|e| Error::invalid_file(path, format!("cannot load weights: {e}")))?;
                tensors.extend(loaded);
            }
            return Ok(VarBuilder::from_tensors(tensors, dtype, device));
        }
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

/// The largest file read whole from a checkpoint (its JSON files and tokenizer; weights
/// are memory-mapped or read tensor by tensor).
const MAX_CHECKPOINT_FILE: u64 = 1 << 30;

/// Read a file only if it is a regular file of at most `max` bytes: `None` when it is
/// not there; a FIFO, a device (`/dev/urandom`) or a directory in its place is an error,
/// never a read that blocks or does not end.
pub fn read_regular_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if path.symlink_metadata().is_ok() {
                return Err(Error::invalid_file(path, "is a broken symbolic link"));
            }
            return Ok(None);
        }
        Err(e) => return Err(Error::invalid_file(path, e)),
    };
    if !meta.is_file() {
        return Err(Error::invalid_file(
            path,
            "is not a regular file (a directory, a FIFO or a device): not read",
        ));
    }
    if meta.len() > max {
        return Err(Error::invalid_file(
            path,
            format!("is {} bytes, over the {max} bytes read whole", meta.len()),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .map_err(|e| Error::invalid_file(path, e))?;
    if bytes.len() as u64 > max {
        return Err(Error::invalid_file(
            path,
            format!("is over the {max} bytes read whole"),
        ));
    }
    Ok(Some(bytes))
}

/// Validate a safetensors header up front so that a truncated or foreign file is
/// an error naming the file, not a failure deep inside a layer.
fn check_safetensors_header(path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::invalid_file(path, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::invalid_file(path, e))?
        .len();
    check_header(path, len, &mut f)
}

/// Check the safetensors header read from `f`, a file of `len` bytes.
fn check_header(path: &Path, len: u64, f: &mut impl std::io::Read) -> Result<()> {
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
