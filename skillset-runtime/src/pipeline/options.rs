//! How a pipeline is loaded and run: load options, run options, top-k.

use crate::device::{DType, DeviceSpec};
use crate::error::{Error, Result};

use crate::generation::GenerationOptions;
use crate::pooling::Pooling;

/// How to load a checkpoint.
///
/// ```
/// use skillset_runtime::{skillset, task::FeatureExtraction, DType, DeviceSpec, LoadOptions, Skillset};
///
/// #[skillset(family = "bert")]
/// struct Encoder;
///
/// let options = LoadOptions { max_batch_size: 8, ..LoadOptions::new(DeviceSpec::Cpu, DType::F32) };
/// let embed = Encoder::init_with::<FeatureExtraction>("../tests/fixtures/bert-tiny-mlm", &options)?;
/// assert_eq!(embed.pipeline().dtype(), DType::F32);
/// # Ok::<(), skillset_runtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    pub device: DeviceSpec,
    pub dtype: DType,
    /// Inputs per forward pass; longer input lists run in several passes.
    pub max_batch_size: usize,
    /// The resource budget: ceilings on sizes from files and calls.
    pub limits: crate::Limits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: DeviceSpec::Cpu,
            dtype: DType::F32,
            max_batch_size: 32,
            limits: crate::Limits::default(),
        }
    }
}

impl LoadOptions {
    pub fn new(device: DeviceSpec, dtype: DType) -> Self {
        LoadOptions {
            device,
            dtype,
            ..Default::default()
        }
    }
}

/// How many results a ranking task returns.
///
/// ```
/// use skillset_runtime::TopK;
///
/// assert_eq!("3".parse::<TopK>().unwrap(), TopK::N(3));
/// assert_eq!("all".parse::<TopK>().unwrap(), TopK::All);
/// assert!("0".parse::<TopK>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopK {
    N(usize),
    All,
}

impl std::str::FromStr for TopK {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "all" {
            return Ok(TopK::All);
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(TopK::N(n)),
            _ => Err(Error::InvalidOption(format!(
                "invalid top-k `{s}`: expected a positive integer or `all`"
            ))),
        }
    }
}

impl TopK {
    pub(crate) fn take(self, n: usize) -> usize {
        match self {
            TopK::N(k) => k.min(n),
            TopK::All => n,
        }
    }
}

/// Pooling for feature-extraction in [`Pipeline::run_json`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolingChoice {
    /// A sentence-transformers directory's own pooling and normalization; per-token
    /// states for any other checkpoint.
    #[default]
    Auto,
    /// Per-token hidden states.
    None,
    Pool(Pooling),
}

/// `none` (per-token states), `auto` (the default) or a pooling name (`mean`, `cls`,
/// `max`, ...), as `skillset run --pooling` takes it.
impl std::str::FromStr for PoolingChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(PoolingChoice::None),
            "auto" => Ok(PoolingChoice::Auto),
            p => Ok(PoolingChoice::Pool(p.parse()?)),
        }
    }
}

/// Per-call options of [`Pipeline::run_json`] (what `skillset run` passes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// Ranking tasks: how many results. Generation: sample among the top k tokens.
    pub top_k: Option<TopK>,
    pub pooling: PoolingChoice,
    /// L2-normalize pooled embeddings.
    pub normalize: bool,
    /// feature-extraction: the sentence-transformers prompt (instruction) put before
    /// each text, by its name in config_sentence_transformers.json (`query`, ...).
    pub prompt_name: Option<String>,
    /// Generation: tokens to generate (default: the checkpoint's, else 20).
    pub max_new_tokens: Option<usize>,
    /// Generation: sample (also implied by `temperature`, `top_p`, `top_k` or `seed`).
    pub do_sample: bool,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub repetition_penalty: Option<f64>,
    /// zero-shot-image-classification: the labels to choose from.
    pub candidate_labels: Option<Vec<String>>,
    /// zero-shot-image-classification: the sentence each label is put in (`{}` marks
    /// the place); `This is a photo of {}.` by default, as in transformers.
    pub hypothesis_template: Option<String>,
    /// Whisper: the spoken language (`en`, `fr`, `english`, `<|fr|>`, ...); detected
    /// when absent on a multilingual checkpoint.
    pub language: Option<String>,
    /// Whisper: `transcribe` (default) or `translate` (into English).
    pub speech_task: Option<String>,
    /// image-text-to-text: the prompt, with `<image>` where the image goes.
    pub text: Option<String>,
    /// Generation and Whisper: beam search over this many beams (default: the
    /// checkpoint's generation_config.json; for Whisper, else 5 as transformers' speech
    /// pipeline; else 1).
    pub num_beams: Option<usize>,
}

impl RunOptions {
    /// The options from a JSON object keyed as `skillset run`'s flags in snake_case
    /// (`top_k` as a number or `"all"`, `pooling`, `normalize`, `prompt_name`, `max_new_tokens`,
    /// `do_sample`, `temperature`, `top_p`, `seed`, `repetition_penalty`): what the web
    /// API and the fixtures' `reference.json` pass. An unknown key is an error.
    ///
    /// ```
    /// use skillset_runtime::pipeline::{RunOptions, TopK};
    ///
    /// let o = RunOptions::from_json(&serde_json::json!({"top_k": "all", "normalize": true}))?;
    /// assert_eq!((o.top_k, o.normalize), (Some(TopK::All), true));
    /// assert!(RunOptions::from_json(&serde_json::json!({"topk": 3})).is_err());
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn from_json(options: &serde_json::Value) -> Result<Self> {
        let bad =
            |key: &str, what: &str| Error::InvalidOption(format!("option `{key}` must be {what}"));
        let mut o = RunOptions::default();
        let Some(map) = options.as_object() else {
            return Err(Error::InvalidOption("options must be a JSON object".into()));
        };
        for (key, v) in map {
            if v.is_null() {
                continue;
            }
            let float = || v.as_f64().ok_or_else(|| bad(key, "a number"));
            let count = || {
                v.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| bad(key, "a non-negative integer"))
            };
            match key.as_str() {
                "top_k" => {
                    o.top_k = Some(match v {
                        serde_json::Value::String(s) => s.parse()?,
                        n => n.to_string().parse()?,
                    })
                }
                "pooling" => {
                    o.pooling = v.as_str().ok_or_else(|| bad(key, "a string"))?.parse()?
                }
                "normalize" => o.normalize = v.as_bool().ok_or_else(|| bad(key, "true or false"))?,
                "prompt_name" => o.prompt_name = Some(v.as_str().ok_or_else(|| bad(key, "a string"))?.into()),
                "do_sample" => o.do_sample = v.as_bool().ok_or_else(|| bad(key, "true or false"))?,
                "max_new_tokens" => o.max_new_tokens = Some(count()?),
                "seed" => o.seed = Some(count()? as u64),
                "temperature" => o.temperature = Some(float()?),
                "top_p" => o.top_p = Some(float()?),
                "repetition_penalty" => o.repetition_penalty = Some(float()?),
                "candidate_labels" => {
                    let labels = match v {
                        serde_json::Value::String(s) => {
                            s.split(',').map(|l| l.trim().to_string()).collect()
                        }
                        serde_json::Value::Array(a) => a
                            .iter()
                            .map(|l| l.as_str().map(String::from))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| bad(key, "a list of strings"))?,
                        _ => return Err(bad(key, "a list of strings")),
                    };
                    o.candidate_labels = Some(labels);
                }
                "hypothesis_template" => {
                    o.hypothesis_template = Some(v.as_str().ok_or_else(|| bad(key, "a string"))?.into())
                }
                "language" => o.language = Some(v.as_str().ok_or_else(|| bad(key, "a string"))?.into()),
                "task" => o.speech_task = Some(v.as_str().ok_or_else(|| bad(key, "a string"))?.into()),
                "text" => o.text = Some(v.as_str().ok_or_else(|| bad(key, "a string"))?.into()),
                "num_beams" => o.num_beams = Some(count()?),
                other => {
                    return Err(Error::InvalidOption(format!(
                        "unknown option `{other}` (top_k, pooling, normalize, prompt_name, max_new_tokens, do_sample, temperature, top_p, seed, repetition_penalty, candidate_labels, hypothesis_template, language, task, num_beams, text)"
                    )))
                }
            }
        }
        Ok(o)
    }

    /// Generation options: the checkpoint's defaults with these overrides. Greedy
    /// unless a sampling option is given.
    pub fn generation(&self, defaults: &GenerationOptions) -> Result<GenerationOptions> {
        let mut o = defaults.clone();
        if let Some(n) = self.max_new_tokens {
            o.max_new_tokens = n;
            o.max_length = None;
        }
        if let Some(p) = self.repetition_penalty {
            o.repetition_penalty = Some(p);
        }
        if let Some(n) = self.num_beams {
            o.num_beams = n;
        }
        let sampling = self.do_sample
            || self.temperature.is_some()
            || self.top_p.is_some()
            || self.seed.is_some()
            || matches!(self.top_k, Some(TopK::N(_)));
        if sampling {
            o = o.sampling();
            if let Some(t) = self.temperature {
                o.temperature = t;
            }
            if let Some(p) = self.top_p {
                o.top_p = Some(p);
            }
            match self.top_k {
                Some(TopK::N(k)) => o.top_k = Some(k),
                Some(TopK::All) => o.top_k = None,
                None => {}
            }
            if let Some(seed) = self.seed {
                o.seed = seed;
            }
        }
        Ok(o)
    }
}
