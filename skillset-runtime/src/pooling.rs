//! Sentence embeddings: pooling of per-token hidden states, and the
//! sentence-transformers layout (`modules.json`, `1_Pooling/config.json`, `Normalize`).

use std::fmt;
use std::str::FromStr;

use candle_core::{DType, Tensor, D};

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};

/// How per-token hidden states become one vector.
///
/// ```
/// use skillset_runtime::{skillset, task::FeatureExtraction, Pooling, Skillset};
///
/// #[skillset(model_type = "bert")]
/// struct Bert;
///
/// let embed = Bert::init_cpu::<FeatureExtraction>("../tests/fixtures/bert-tiny-mlm")?;
/// let v = embed.embed_with(&["a sentence"], "cls".parse::<Pooling>()?, true)?;
/// let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
/// assert!((norm - 1.0).abs() < 1e-5);
/// # Ok::<(), skillset_runtime::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// The first token's state (`[CLS]`/`<s>`).
    Cls,
    /// The mean over real (unpadded) tokens.
    Mean,
    /// The element-wise max over real tokens.
    Max,
    /// The mean times sqrt(number of tokens) (sentence-transformers' `mean_sqrt_len`).
    MeanSqrtLen,
    /// The last real token's state.
    LastToken,
}

impl FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            "max" => Ok(Pooling::Max),
            "mean-sqrt-len" | "mean_sqrt_len" => Ok(Pooling::MeanSqrtLen),
            "last" | "last-token" | "lasttoken" => Ok(Pooling::LastToken),
            _ => Err(Error::InvalidOption(format!(
                "unknown pooling `{s}`: expected `none`, `cls`, `mean`, `max`, `mean-sqrt-len` or `last-token`"
            ))),
        }
    }
}

impl fmt::Display for Pooling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pooling::Cls => "cls",
            Pooling::Mean => "mean",
            Pooling::Max => "max",
            Pooling::MeanSqrtLen => "mean-sqrt-len",
            Pooling::LastToken => "last-token",
        })
    }
}

/// What a sentence-transformers directory asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SentenceTransformersConfig {
    pub pooling: Pooling,
    pub normalize: bool,
    /// `max_seq_length` of sentence_bert_config.json.
    pub max_seq_length: Option<usize>,
    /// The named instructions of config_sentence_transformers.json (`prompts`), put
    /// before a text as `SentenceTransformer.encode(prompt_name=...)` puts them.
    pub prompts: std::collections::BTreeMap<String, String>,
    /// `default_prompt_name`: the prompt put before every text when none is named.
    pub default_prompt_name: Option<String>,
}

impl SentenceTransformersConfig {
    /// Read `modules.json` and the pooling config; `None` when the checkpoint is not a
    /// sentence-transformers directory.
    pub fn read(ckpt: &Checkpoint) -> Result<Option<Self>> {
        let Some(modules) = ckpt.json("modules.json")? else {
            return Ok(None);
        };
        let path = ckpt.dir.join("modules.json");
        let modules = modules
            .as_array()
            .ok_or_else(|| Error::invalid_file(&path, "is not a list of modules"))?;
        let mut pooling = None;
        let mut normalize = false;
        let mut include_prompt = true;
        for m in modules {
            let ty = m.get("type").and_then(|t| t.as_str()).unwrap_or("");
            let sub = m.get("path").and_then(|p| p.as_str()).unwrap_or("");
            let kind = ty.rsplit('.').next().unwrap_or(ty);
            match kind {
                "Transformer" => {}
                "Pooling" => {
                    let cfg_name = format!("{}/config.json", sub.trim_end_matches('/'));
                    let cfg = ckpt.json(&cfg_name)?.ok_or_else(|| Error::MissingFile {
                        path: ckpt.dir.join(&cfg_name),
                        what: "sentence-transformers pooling config",
                        hint: Some(format!("named by {}", path.display())),
                    })?;
                    let cfg_path = ckpt.dir.join(&cfg_name);
                    pooling = Some(pooling_from_config(&cfg, &cfg_path)?);
                    include_prompt = cfg
                        .get("include_prompt")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(true);
                }
                "Normalize" => normalize = true,
                other => {
                    return Err(Error::invalid_file(
                        &path,
                        format!("sentence-transformers module `{other}` is not supported (Transformer, Pooling and Normalize are)"),
                    ))
                }
            }
        }
        let max_seq_length = ckpt
            .json("sentence_bert_config.json")?
            .and_then(|c| c.get("max_seq_length").and_then(|v| v.as_u64()))
            .map(|v| v as usize);
        let (prompts, default_prompt_name) = read_prompts(ckpt)?;
        if !include_prompt && prompts.values().any(|p| !p.is_empty()) {
            return Err(Error::invalid_file(
                &path,
                "a pooling that leaves the prompt's tokens out (`include_prompt: false`) is not supported",
            ));
        }
        Ok(Some(SentenceTransformersConfig {
            pooling: pooling.unwrap_or(Pooling::Mean),
            normalize,
            max_seq_length,
            prompts,
            default_prompt_name,
        }))
    }

    /// The text put before each input: the prompt named `name`, else the default
    /// prompt; `None` when there is neither. A name the directory does not define is
    /// an error that lists those it does.
    pub fn prompt(&self, name: Option<&str>) -> Result<Option<&str>> {
        let Some(name) = name.or(self.default_prompt_name.as_deref()) else {
            return Ok(None);
        };
        match self.prompts.get(name) {
            Some(p) => Ok(Some(p.as_str())),
            None => Err(Error::InvalidOption(format!(
                "no prompt named `{name}` in config_sentence_transformers.json (it has: {})",
                if self.prompts.is_empty() {
                    "none".to_string()
                } else {
                    self.prompts
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))),
        }
    }
}

/// `prompts` and `default_prompt_name` of config_sentence_transformers.json.
fn read_prompts(
    ckpt: &Checkpoint,
) -> Result<(std::collections::BTreeMap<String, String>, Option<String>)> {
    let Some(cfg) = ckpt.json("config_sentence_transformers.json")? else {
        return Ok(Default::default());
    };
    let path = ckpt.dir.join("config_sentence_transformers.json");
    let mut prompts = std::collections::BTreeMap::new();
    match cfg.get("prompts") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(map)) => {
            for (name, text) in map {
                let text = text.as_str().ok_or_else(|| {
                    Error::invalid_file(&path, format!("prompt `{name}` is not a string"))
                })?;
                prompts.insert(name.clone(), text.to_string());
            }
        }
        Some(_) => {
            return Err(Error::invalid_file(
                &path,
                "`prompts` is not a map of names to texts",
            ))
        }
    }
    let default = match cfg.get("default_prompt_name") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(name)) if prompts.contains_key(name) => Some(name.clone()),
        Some(v) => {
            return Err(Error::invalid_file(
                &path,
                format!("`default_prompt_name` {v} names no prompt of `prompts`"),
            ))
        }
    };
    Ok((prompts, default))
}

fn pooling_from_config(cfg: &serde_json::Value, path: &std::path::Path) -> Result<Pooling> {
    let on = |k: &str| cfg.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    if let Some(mode) = cfg.get("pooling_mode").and_then(|v| v.as_str()) {
        return match mode {
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            "max" => Ok(Pooling::Max),
            "mean_sqrt_len_tokens" => Ok(Pooling::MeanSqrtLen),
            "lasttoken" => Ok(Pooling::LastToken),
            other => Err(Error::invalid_file(
                path,
                format!("pooling mode `{other}` is not supported"),
            )),
        };
    }
    let modes = [
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_mean_tokens", Pooling::Mean),
        ("pooling_mode_max_tokens", Pooling::Max),
        ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
        ("pooling_mode_lasttoken", Pooling::LastToken),
    ];
    let chosen: Vec<Pooling> = modes
        .iter()
        .filter(|(k, _)| on(k))
        .map(|(_, p)| *p)
        .collect();
    if on("pooling_mode_weightedmean_tokens") {
        return Err(Error::invalid_file(
            path,
            "weighted-mean pooling is not supported",
        ));
    }
    match chosen.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::invalid_file(path, "no pooling mode is switched on")),
        _ => Err(Error::invalid_file(
            path,
            "several pooling modes at once (concatenated) are not supported",
        )),
    }
}

/// Pool `hidden [batch, len, dim]` under `mask [batch, len]` (1 = real token) into
/// `[batch, dim]`, computed in f32.
pub fn pool(hidden: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let maskf = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?; // [b, len, 1]
    let out = match pooling {
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        Pooling::Mean | Pooling::MeanSqrtLen => {
            let sum = hidden.broadcast_mul(&maskf)?.sum(1)?;
            let count = maskf.sum(1)?.clamp(1e-9f32, f32::MAX)?; // [b, 1]
            let mean = sum.broadcast_div(&count)?;
            if pooling == Pooling::MeanSqrtLen {
                // sentence-transformers: sum / sqrt(count)
                sum.broadcast_div(&count.sqrt()?)?
            } else {
                mean
            }
        }
        Pooling::Max => {
            // Padding gets a very negative value so it never wins.
            let neg = ((maskf.ones_like()? - &maskf)? * -1e9f64)?;
            hidden.broadcast_add(&neg)?.max(1)?
        }
        Pooling::LastToken => {
            let lengths: Vec<u32> = mask.to_dtype(DType::U32)?.sum(1)?.to_vec1()?;
            if lengths.contains(&0) {
                return Err(Error::InvalidInput(
                    "an empty text has no last token to pool (the tokenizer adds no special tokens to it)".into(),
                ));
            }
            let rows = lengths
                .iter()
                .enumerate()
                .map(|(i, &n)| hidden.get(i)?.get(n.saturating_sub(1) as usize))
                .collect::<candle_core::Result<Vec<_>>>()?;
            Tensor::stack(&rows, 0)?
        }
    };
    Ok(out)
}

/// L2-normalize rows of `[batch, dim]` (like `torch.nn.functional.normalize`).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}
