//! Reading config.json: errors that name the file and the field.

use std::path::PathBuf;

use super::nn;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};

/// A typed config: a struct whose fields deserialize from config.json, each with the
/// default transformers' config class gives it (read with [`ConfigReader::typed`];
/// unknown fields are ignored; a field may carry serde attributes, such as the
/// `#[serde(alias = "hidden_size")]` of a class's `attribute_map`).
///
/// ```ignore
/// hf_config! {
///     /// `PhiConfig` (transformers 5.23).
///     pub(crate) struct PhiConfig {
///         vocab_size: usize = 51200,
///         num_key_value_heads: Option<usize> = None,
///     }
/// }
/// ```
macro_rules! hf_config {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $default:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
        #[serde(default)]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $( $field: $default ),* }
            }
        }
    };
}
pub(crate) use hf_config;

/// Reads config.json fields with errors that name the file and field.
pub(crate) struct ConfigReader<'a> {
    pub value: &'a serde_json::Value,
    pub path: PathBuf,
}

impl<'a> ConfigReader<'a> {
    /// The same file's reader over `value` (its config.json with fields filled in).
    pub fn with_value<'b>(&self, value: &'b serde_json::Value) -> ConfigReader<'b> {
        ConfigReader {
            value,
            path: self.path.clone(),
        }
    }

    pub fn new(ckpt: &'a Checkpoint) -> Self {
        ConfigReader {
            value: &ckpt.config,
            path: ckpt.config_path(),
        }
    }

    /// The config as a typed struct: serde's defaults are transformers' for the model
    /// type, unknown fields are ignored, and a value of the wrong type is an error
    /// naming its field.
    pub fn typed<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_path_to_error::deserialize(self.value).map_err(|e| {
            let field = e.path().to_string();
            self.invalid(&field, e.into_inner().to_string())
        })
    }

    /// The error for an architecture class the family's loader does not take.
    pub fn not_of_family(&self, family: &str, architecture: &str) -> Error {
        self.invalid(
            "architectures",
            format!("`{architecture}` is not a {family}-family architecture"),
        )
    }

    pub fn invalid(&self, field: &str, reason: String) -> Error {
        Error::invalid_file(&self.path, format!("field `{field}`: {reason}"))
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        match self.value.get(key) {
            None | Some(serde_json::Value::Null) => Err(self.invalid(key, "is missing".into())),
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                self.invalid(key, format!("expected a non-negative integer, found {v}"))
            }),
        }
    }

    /// A nested configuration (`vision_config`, `text_config`), read with the same
    /// file in errors.
    pub fn sub(&self, key: &str) -> Result<ConfigReader<'a>> {
        match self.value.get(key) {
            Some(v) if v.is_object() => Ok(ConfigReader {
                value: v,
                path: self.path.clone(),
            }),
            _ => Err(self.invalid(key, "is missing (a nested configuration)".into())),
        }
    }

    /// `heads` (read from `key`), which must divide `hidden`.
    pub fn check_heads(&self, key: &str, heads: usize, hidden: usize) -> Result<usize> {
        if heads == 0 || hidden % heads != 0 {
            return Err(self.invalid(
                key,
                format!("{heads} does not divide the hidden size {hidden}"),
            ));
        }
        Ok(heads)
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.value.get(key) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(_) => self.usize(key),
        }
    }

    /// A number; a normalization epsilon (`*_eps`, `*_epsilon`) is checked as
    /// [`ConfigReader::check_eps`] checks it.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        let x = match self.value.get(key) {
            None | Some(serde_json::Value::Null) => return Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.invalid(key, format!("expected a number, found {v}")))?,
        };
        if key.ends_with("eps") || key.ends_with("epsilon") {
            return self.check_eps(key, x);
        }
        Ok(x)
    }

    /// A normalization epsilon (read from `key`): finite and not negative (a negative
    /// one turns the variance's square root into NaN).
    pub fn check_eps(&self, key: &str, x: f64) -> Result<f64> {
        if x >= 0.0 && x.is_finite() {
            Ok(x)
        } else {
            Err(self.invalid(
                key,
                format!("{x}: a normalization epsilon is a small positive number"),
            ))
        }
    }

    /// The rotary base (`rope_theta`), where it was read: positive and finite, or the
    /// rotary angles are NaN or infinite.
    pub fn check_rope_theta(&self, theta: f64) -> Result<f64> {
        if theta > 0.0 && theta.is_finite() {
            Ok(theta)
        } else {
            Err(self.invalid(
                "rope_theta",
                format!("{theta}: the rotary base must be positive"),
            ))
        }
    }

    pub fn str_or(&self, key: &str, default: &'a str) -> &'a str {
        self.value
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or(default)
    }

    /// The activation a typed config names in `key`.
    pub fn activation_named(&self, key: &str, name: &str) -> Result<nn::Activation> {
        nn::Activation::from_hf(name)
            .ok_or_else(|| self.invalid(key, format!("activation `{name}` is not supported")))
    }

    /// `id2label` in id order (`LABEL_i` where the config has none).
    pub fn labels(&self) -> Vec<String> {
        let n = self.num_labels();
        let map = self.value.get("id2label").and_then(|v| v.as_object());
        (0..n)
            .map(|i| {
                map.and_then(|m| m.get(&i.to_string()))
                    .and_then(|v| v.as_str())
                    .map(String::from)
                    .unwrap_or_else(|| format!("LABEL_{i}"))
            })
            .collect()
    }

    /// `id2label`, when there is one, names every label id from 0 to its size - 1 (a
    /// missing or extra id would label scores with the wrong names).
    pub fn check_labels(&self) -> Result<()> {
        let Some(map) = self.value.get("id2label").and_then(|v| v.as_object()) else {
            return Ok(());
        };
        let mut ids: Vec<usize> = Vec::with_capacity(map.len());
        for (k, v) in map {
            let id = k
                .parse::<usize>()
                .map_err(|_| self.invalid("id2label", format!("key {k:?} is not a label id")))?;
            if !v.is_string() {
                return Err(self.invalid("id2label", format!("label {k} is {v}, not a name")));
            }
            ids.push(id);
        }
        ids.sort_unstable();
        if let Some(missing) = (0..ids.len()).find(|&i| ids[i] != i) {
            return Err(self.invalid(
                "id2label",
                format!(
                    "has {} labels but no id {missing} (ids must run from 0 to {})",
                    ids.len(),
                    ids.len().saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }

    /// `num_labels`: the size of `id2label`, else 2 (transformers' default).
    pub fn num_labels(&self) -> usize {
        self.value
            .get("id2label")
            .and_then(|v| v.as_object())
            .map(|m| m.len())
            .filter(|n| *n > 0)
            .or_else(|| {
                self.value
                    .get("num_labels")
                    .and_then(|v| v.as_u64())
                    .map(|n| n as usize)
            })
            .unwrap_or(2)
    }
}
