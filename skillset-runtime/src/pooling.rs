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
                    pooling = Some(pooling_from_config(&cfg, &ckpt.dir.join(&cfg_name))?);
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
        Ok(Some(SentenceTransformersConfig {
            pooling: pooling.unwrap_or(Pooling::Mean),
            normalize,
            max_seq_length,
        }))
    }
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
