//! PyTorch `.bin` checkpoints (`pytorch_model.bin`, or the shards of
//! `pytorch_model.bin.index.json`), weights only.
//!
//! `torch.save` writes a zip archive: `<root>/data.pkl`, a pickle of the state dict
//! whose tensors refer by key to raw storages `<root>/data/<key>`. The pickle is read
//! by candle's pickle reader, which interprets its opcodes as data and never imports or
//! runs anything; on top of that, a pickle that names any callable besides the few a
//! state dict of tensors uses (`collections.OrderedDict`, `torch._utils._rebuild_*`,
//! `torch.*Storage`) is refused outright, as `torch.load(weights_only=True)` refuses
//! it. Storages are read with their offsets, shared between the tensors that view them,
//! and checked against their sizes before anything is sized from them.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// The callables a weights-only state dict may name (torch's `weights_only` unpickler
/// allows these and little more).
fn allowed(module: &str, name: &str) -> bool {
    matches!(
        (module, name),
        ("collections", "OrderedDict")
            | ("torch._utils", "_rebuild_tensor_v2")
            | ("torch._utils", "_rebuild_parameter")
    ) || (module == "torch" && name.ends_with("Storage"))
}

/// The first callable the pickle names that a state dict never does.
fn forbidden(obj: &Object) -> Option<String> {
    match obj {
        Object::Class {
            module_name,
            class_name,
        } => (!allowed(module_name, class_name)).then(|| format!("{module_name}.{class_name}")),
        Object::Reduce { callable, args } | Object::Build { callable, args } => {
            forbidden(callable).or_else(|| forbidden(args))
        }
        Object::Tuple(v) | Object::List(v) => v.iter().find_map(forbidden),
        Object::Dict(kv) => kv
            .iter()
            .find_map(|(k, v)| forbidden(k).or_else(|| forbidden(v))),
        Object::PersistentLoad(inner) => forbidden(inner),
        _ => None,
    }
}

/// The largest pickle read (a state dict's pickle is kilobytes to a few megabytes; the
/// tensors are in the storages).
const MAX_PICKLE: u64 = 256 << 20;

/// Every tensor of a `.bin` file (on the CPU, in its stored dtype), by name.
pub fn load_file(path: &Path) -> Result<HashMap<String, Tensor>> {
    let f = std::fs::File::open(path).map_err(|e| Error::invalid_file(path, e))?;
    if !f
        .metadata()
        .map_err(|e| Error::invalid_file(path, e))?
        .is_file()
    {
        return Err(Error::invalid_file(path, "is not a regular file"));
    }
    load(path, std::io::BufReader::new(f))
}

/// As [`load_file`], for the bytes of one (a checkpoint given as bytes).
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    load(path, std::io::Cursor::new(bytes))
}

fn load<R: Read + Seek>(path: &Path, mut reader: R) -> Result<HashMap<String, Tensor>> {
    let bad = |why: String| Error::invalid_file(path, why);
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut reader, &mut magic).map_err(|e| bad(e.to_string()))?;
    reader
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| bad(e.to_string()))?;
    if magic[..n] != *b"PK\x03\x04" {
        return Err(bad(if n >= 1 && magic[0] == 0x80 {
            "is a pickle in torch.save's legacy (before PyTorch 1.6) format, which is not read: save it again with a current PyTorch (`torch.save(torch.load(path, weights_only=True), path)`) or convert the checkpoint to safetensors".into()
        } else {
            "is not a PyTorch checkpoint (torch.save's zip archive)".into()
        }));
    }
    let mut zip = zip::ZipArchive::new(reader)
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    let names = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<std::result::Result<Vec<String>, _>>()
        .map_err(|e| bad(format!("not a readable zip archive: {e}")))?;
    let pickles: Vec<String> = names
        .into_iter()
        .filter(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
        .collect();
    let pkl = match pickles.as_slice() {
        [one] => one.clone(),
        [] => return Err(bad("has no data.pkl: not a torch.save archive".into())),
        _ => {
            return Err(bad(format!(
                "has {} data.pkl files: not one state dict",
                pickles.len()
            )))
        }
    };
    let root = pkl.strip_suffix("data.pkl").unwrap_or_default().to_string();
    let mut pickle = Vec::new();
    zip.by_name(&pkl)
        .map_err(|e| bad(e.to_string()))?
        .take(MAX_PICKLE + 1)
        .read_to_end(&mut pickle)
        .map_err(|e| bad(format!("cannot read {pkl}: {e}")))?;
    if pickle.len() as u64 > MAX_PICKLE {
        return Err(bad(format!(
            "its {pkl} is over {} MiB: not a state dict",
            MAX_PICKLE >> 20
        )));
    }
    let mut stack = Stack::empty();
    stack
        .read_loop(&mut std::io::Cursor::new(&pickle))
        .map_err(|e| bad(format!("cannot read its pickle ({pkl}): {e}")))?;
    let obj = stack
        .finalize()
        .map_err(|e| bad(format!("cannot read its pickle ({pkl}): {e}")))?;
    if let Some(name) = forbidden(&obj) {
        return Err(bad(format!(
            "its pickle refers to `{name}`, which a checkpoint of weights never does: refused (nothing in it was run); load it only if you trust it, and save it as safetensors"
        )));
    }
    let entries = match obj {
        Object::Dict(kv) => kv,
        Object::Build { callable, .. } if matches!(*callable, Object::Dict(_)) => match *callable {
            Object::Dict(kv) => kv,
            _ => unreachable!(),
        },
        _ => {
            return Err(bad(
                "its pickle is not a state dict (a dict of tensors)".into()
            ))
        }
    };
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut tensors = HashMap::new();
    for (name, value) in entries {
        let Object::Unicode(key) = name else {
            continue;
        };
        let Some(t) = tensor_entry(&value).map_err(|why| bad(format!("tensor `{key}`: {why}")))?
        else {
            continue; // not a tensor (`_metadata`, a step count, ...)
        };
        let path = format!("{root}data/{}", t.storage_key);
        if !storages.contains_key(&path) {
            let mut entry = zip
                .by_name(&path)
                .map_err(|e| bad(format!("tensor `{key}`: storage {path}: {e}")))?;
            let declared = t
                .storage_len
                .checked_mul(t.dtype.size_in_bytes())
                .ok_or_else(|| bad(format!("tensor `{key}`: storage size overflows")))?;
            if entry.size() != declared as u64 {
                return Err(bad(format!(
                    "tensor `{key}`: its storage {path} holds {} bytes, the pickle declares {declared}",
                    entry.size()
                )));
            }
            let mut bytes = Vec::with_capacity(declared);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("tensor `{key}`: {e}")))?;
            storages.insert(path.clone(), bytes);
        }
        let storage = &storages[&path];
        // Row-major strides for the shape: anything else is a view this does not copy.
        let mut expected = vec![0usize; t.shape.len()];
        let mut acc = 1usize;
        for (i, &d) in t.shape.iter().enumerate().rev() {
            expected[i] = acc;
            acc = acc.saturating_mul(d);
        }
        let elems = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let real_dims: Vec<(usize, usize)> = t
            .shape
            .iter()
            .zip(&t.stride)
            .zip(&expected)
            .filter(|((&d, _), _)| d > 1)
            .map(|((_, &s), &e)| (s, e))
            .collect();
        if real_dims.iter().any(|(s, e)| s != e) {
            return Err(bad(format!(
                "tensor `{key}` is stored with strides {:?} for its shape {:?}, not contiguous: save the checkpoint as safetensors",
                t.stride, t.shape
            )));
        }
        let size = t.dtype.size_in_bytes();
        let start = t.offset.checked_mul(size);
        let end = elems
            .and_then(|n| n.checked_mul(size))
            .and_then(|n| start.and_then(|s| s.checked_add(n)));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(bad(format!("tensor `{key}`: its size overflows")));
        };
        if end > storage.len() {
            return Err(bad(format!(
                "tensor `{key}` ends at byte {end} of a {}-byte storage",
                storage.len()
            )));
        }
        let tensor = Tensor::from_raw_buffer(&storage[start..end], t.dtype, &t.shape, &Device::Cpu)
            .map_err(|e| bad(format!("tensor `{key}`: {e}")))?;
        tensors.insert(legacy_name(key), tensor);
    }
    if tensors.is_empty() {
        return Err(bad("holds no tensors".into()));
    }
    Ok(tensors)
}

/// One tensor of a state dict, as its pickle describes it.
struct TensorEntry {
    storage_key: String,
    dtype: DType,
    storage_len: usize,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// A state dict's value as a tensor (`_rebuild_tensor_v2(storage, offset, size, stride,
/// ...)`, possibly in `_rebuild_parameter(tensor, ...)`); `None` for a value that is
/// not a tensor; an error for a tensor described wrongly.
fn tensor_entry(value: &Object) -> std::result::Result<Option<TensorEntry>, String> {
    let Object::Reduce { callable, args } = value else {
        return Ok(None);
    };
    let Object::Class {
        module_name,
        class_name,
    } = callable.as_ref()
    else {
        return Ok(None);
    };
    let Object::Tuple(args) = args.as_ref() else {
        return Err("its arguments are not a tuple".into());
    };
    match (module_name.as_str(), class_name.as_str()) {
        ("torch._utils", "_rebuild_parameter") => match args.first() {
            Some(inner) => tensor_entry(inner),
            None => Err("a parameter without its tensor".into()),
        },
        ("torch._utils", "_rebuild_tensor_v2") => {
            let [storage, offset, size, stride, ..] = args.as_slice() else {
                return Err("_rebuild_tensor_v2 takes storage, offset, size and stride".into());
            };
            let Object::PersistentLoad(storage) = storage else {
                return Err("its storage is not a persistent reference".into());
            };
            let Object::Tuple(storage) = storage.as_ref() else {
                return Err("its storage reference is not a tuple".into());
            };
            let [Object::Unicode(kind), Object::Class { class_name, .. }, Object::Unicode(key), _, numel] =
                storage.as_slice()
            else {
                return Err(
                    "its storage reference is not ('storage', type, key, location, size)".into(),
                );
            };
            if kind != "storage" {
                return Err(format!("unknown persistent reference `{kind}`"));
            }
            let dtype = match class_name.as_str() {
                "FloatStorage" => DType::F32,
                "DoubleStorage" => DType::F64,
                "HalfStorage" => DType::F16,
                "BFloat16Storage" => DType::BF16,
                "ByteStorage" | "BoolStorage" => DType::U8,
                "ShortStorage" => DType::I16,
                "IntStorage" => DType::I32,
                "LongStorage" => DType::I64,
                other => return Err(format!("storage type {other} is not supported")),
            };
            Ok(Some(TensorEntry {
                storage_key: key.clone(),
                dtype,
                storage_len: count(numel).ok_or("its storage size is not a count")?,
                offset: count(offset).ok_or("its offset is not a count")?,
                shape: counts(size).ok_or("its size is not a tuple of counts")?,
                stride: counts(stride).ok_or("its stride is not a tuple of counts")?,
            }))
        }
        _ => Ok(None),
    }
}

fn count(o: &Object) -> Option<usize> {
    match o {
        Object::Int(i) => usize::try_from(*i).ok(),
        Object::Long(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}

fn counts(o: &Object) -> Option<Vec<usize>> {
    match o {
        Object::Tuple(v) => v.iter().map(count).collect(),
        _ => None,
    }
}

/// transformers' legacy renaming on load: `LayerNorm.gamma` / `LayerNorm.beta` (old
/// TF-converted checkpoints) are `LayerNorm.weight` / `LayerNorm.bias`.
fn legacy_name(key: String) -> String {
    if let Some(stem) = key.strip_suffix("LayerNorm.gamma") {
        format!("{stem}LayerNorm.weight")
    } else if let Some(stem) = key.strip_suffix("LayerNorm.beta") {
        format!("{stem}LayerNorm.bias")
    } else {
        key
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callables_outside_a_state_dict_are_forbidden() {
        let class = |m: &str, n: &str| Object::Class {
            module_name: m.into(),
            class_name: n.into(),
        };
        let tensor = Object::Reduce {
            callable: Box::new(class("torch._utils", "_rebuild_tensor_v2")),
            args: Box::new(Object::Tuple(vec![Object::PersistentLoad(Box::new(
                Object::Tuple(vec![
                    Object::Unicode("storage".into()),
                    class("torch", "FloatStorage"),
                ]),
            ))])),
        };
        let ok = Object::Dict(vec![(Object::Unicode("w".into()), tensor.clone())]);
        assert_eq!(forbidden(&ok), None);
        let evil = Object::Dict(vec![
            (Object::Unicode("w".into()), tensor),
            (
                Object::Unicode("x".into()),
                Object::Reduce {
                    callable: Box::new(class("posix", "system")),
                    args: Box::new(Object::Tuple(vec![Object::Unicode("echo".into())])),
                },
            ),
        ]);
        assert_eq!(forbidden(&evil).as_deref(), Some("posix.system"));
        assert_eq!(
            legacy_name("bert.encoder.LayerNorm.gamma".into()),
            "bert.encoder.LayerNorm.weight"
        );
        assert_eq!(legacy_name("a.beta".into()), "a.beta");
    }

    #[test]
    fn not_zip_archives() {
        let p = Path::new("x/pytorch_model.bin");
        let legacy = load_bytes(p, b"\x80\x02}q\x00.").unwrap_err().to_string();
        assert!(legacy.contains("legacy"), "{legacy}");
        let junk = load_bytes(p, b"hello").unwrap_err().to_string();
        assert!(junk.contains("not a PyTorch checkpoint"), "{junk}");
        let empty = load_bytes(p, b"").unwrap_err().to_string();
        assert!(empty.contains("not a PyTorch checkpoint"), "{empty}");
    }
}
