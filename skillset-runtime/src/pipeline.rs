//! The untyped pipeline: a checkpoint loaded for one task on one device, with one
//! method per task. Typed [`Endpoint`](crate::Endpoint)s and `skillset run` both sit
//! on it.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::checkpoint::Checkpoint;
use crate::device::{DType, DeviceSpec, ResolvedDevice};
use crate::error::{Error, Result};
use std::ops::ControlFlow;

use crate::families::causal::CausalStepper;
use crate::families::t5::T5Stepper;
use crate::families::{self, ConfigReader, EncoderModel, Head, Model};
use crate::generation::{Generation, GenerationOptions, Generator, OnToken, Stepper};
use crate::info::Scope;
use crate::outputs::{Features, FillMaskPrediction, LabelScore, TokenEntity};
use crate::pooling::{self, Pooling, SentenceTransformersConfig};
use crate::tokenize::{EncodedBatch, TextTokenizer};
use crate::{Family, Task};

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

/// `none` (per-token states) or a pooling name (`mean`, `cls`, `max`, ...), as
/// `skillset run --pooling` takes it.
impl std::str::FromStr for PoolingChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(PoolingChoice::None),
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
    /// (`top_k` as a number or `"all"`, `pooling`, `normalize`, `max_new_tokens`,
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
                        "unknown option `{other}` (top_k, pooling, normalize, max_new_tokens, do_sample, temperature, top_p, seed, repetition_penalty, candidate_labels, hypothesis_template, language, task, num_beams, text)"
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

/// A model's stepper over a batch of prompts, and per row the tokens the repetition
/// penalty sees before the new ones.
type PromptStepper<'a> = (Box<dyn Stepper + 'a>, Vec<Vec<u32>>);

/// How text-classification turns logits into scores (transformers' rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScoreFn {
    Softmax,
    Sigmoid,
    Identity,
}

/// A checkpoint loaded for one task on one device. `Send + Sync`: share it between
/// threads behind an `Arc` (an `Endpoint` does).
pub struct Pipeline {
    task: Task,
    model_type: String,
    family: Family,
    device: ResolvedDevice,
    dtype: DType,
    dir: PathBuf,
    tokenizer: Option<TextTokenizer>,
    pub(crate) image_processor: Option<crate::media::ImageProcessor>,
    pub(crate) audio: Option<crate::speech::AudioFrontEnd>,
    pub(crate) ctc: Option<crate::speech::CtcVocab>,
    pub(crate) whisper: Option<crate::speech::WhisperDecoding>,
    pub(crate) model: Model,
    labels: Vec<String>,
    score_fn: ScoreFn,
    sentence_transformers: Option<SentenceTransformersConfig>,
    generation: GenerationOptions,
    limits: crate::Limits,
    /// config.json's `vocab_size`, where it has one.
    vocab: Option<usize>,
    /// config.json's `prefix`, which transformers' generation pipelines put before
    /// every input.
    prefix: Option<String>,
    /// The checkpoint's chat template (text-generation).
    chat_template: Option<crate::chat::ChatTemplate>,
    max_batch_size: usize,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("task", &self.task)
            .field("model_type", &self.model_type)
            .field("family", &self.family)
            .field("device", &self.device.name)
            .field("dtype", &self.dtype)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Pipeline {
    /// Load `checkpoint` (a directory or a cached model id) for `task`, checking that
    /// it is a checkpoint `scope` accepts and that `scope` runs the task.
    ///
    /// ```
    /// use skillset_runtime::{skillset, LoadOptions, Pipeline, RunOptions, Skillset, Task};
    ///
    /// #[skillset(family = "bert")]
    /// struct AnyBert;
    ///
    /// // The task is chosen at run time, as `skillset run` does.
    /// let task: Task = "text-classification".parse()?;
    /// let pipeline = Pipeline::load_for_scope(AnyBert::SCOPE, "../tests/fixtures/bert-tiny-cls".as_ref(), task, &LoadOptions::default())?;
    /// let outputs = pipeline.run_json(&["I love it".to_string()], &RunOptions::default())?;
    /// assert!(outputs[0][0]["label"].is_string());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_for_scope(
        scope: Scope,
        checkpoint: &Path,
        task: Task,
        options: &LoadOptions,
    ) -> Result<Self> {
        Self::load_checkpoint(scope, Checkpoint::open(checkpoint)?, task, options)
    }

    /// As [`Pipeline::load_for_scope`], from a checkpoint already opened (one given as
    /// bytes with [`Checkpoint::from_files`], say: the web backend's way).
    pub fn load_checkpoint(
        scope: Scope,
        ckpt: Checkpoint,
        task: Task,
        options: &LoadOptions,
    ) -> Result<Self> {
        if !scope.accepts(&ckpt.model_type) {
            return Err(Error::ModelTypeMismatch {
                path: ckpt.config_path(),
                found: ckpt.model_type.clone(),
                expected: scope.describe(),
            });
        }
        let Some(family) = scope.family() else {
            let architectures = match scope {
                Scope::ModelType(info) => info
                    .hf_tasks
                    .iter()
                    .map(|(_, a)| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Scope::Family(_) => String::new(),
            };
            return Err(Error::NoFamily {
                model_type: ckpt.model_type.clone(),
                architectures: if architectures.is_empty() {
                    "no task class".into()
                } else {
                    architectures
                },
            });
        };
        if !scope.tasks().contains(&task) {
            return Err(Error::UnsupportedTask {
                scope: scope.describe(),
                task,
                supported: scope.tasks().to_vec(),
            });
        }
        let architecture =
            scope
                .architecture(&ckpt.model_type, task)
                .ok_or_else(|| Error::UnsupportedTask {
                    scope: format!("model type `{}`", ckpt.model_type),
                    task,
                    // What this checkpoint's model type runs within the scope.
                    supported: scope
                        .tasks()
                        .iter()
                        .copied()
                        .filter(|&t| scope.architecture(&ckpt.model_type, t).is_some())
                        .collect(),
                })?;
        Self::load_family(family, architecture, ckpt, task, options)
    }

    fn load_family(
        family: Family,
        architecture: &str,
        ckpt: Checkpoint,
        task: Task,
        options: &LoadOptions,
    ) -> Result<Self> {
        let device = options.device.resolve()?;
        device.check_dtype(options.dtype)?;
        let model = families::load(
            family,
            architecture,
            &ckpt,
            task,
            options.dtype.to_candle(),
            &device.device,
        )?;
        let sentence_transformers = SentenceTransformersConfig::read(&ckpt)?;
        let max_positions = model.max_positions();
        let generation = GenerationOptions::from_checkpoint(&ckpt)?;
        let vocab = config_vocab(&ckpt);
        if matches!(
            task,
            Task::TextGeneration | Task::Text2TextGeneration | Task::ImageTextToText
        ) {
            if let Some(vocab) = vocab {
                generation.check_ids(vocab, &ckpt.dir.join("generation_config.json"))?;
            }
        }
        let max_len = sentence_transformers
            .as_ref()
            .and_then(|s| s.max_seq_length)
            .unwrap_or(max_positions)
            .min(max_positions);
        // Image features read no text (a CLIP / SigLIP vision tower has no tokenizer).
        let tokenizer = if family.reads_text() && task != Task::ImageFeatureExtraction {
            let mut tok = TextTokenizer::load(&ckpt, max_len)?;
            tok.apply_ceiling(options.limits.max_input_tokens);
            tok.model_vocab = vocab;
            Some(tok)
        } else {
            None
        };
        let image_processor = if family.reads_images() {
            let p = crate::media::ImageProcessor::from_checkpoint(&ckpt)?;
            p.check(&options.limits, &ckpt.dir.join("preprocessor_config.json"))?;
            Some(p)
        } else {
            None
        };
        let audio = crate::speech::AudioFrontEnd::for_family(family, &ckpt)?;
        let ctc = if family == Family::Wav2Vec2 && task == Task::AutomaticSpeechRecognition {
            Some(crate::speech::CtcVocab::load(&ckpt)?)
        } else {
            None
        };
        let whisper = if family == Family::Whisper {
            let rules = crate::speech::WhisperDecoding::load(&ckpt)?;
            if let Some(vocab) = vocab {
                rules.check_ids(vocab, &ckpt.dir.join("generation_config.json"))?;
            }
            Some(rules)
        } else {
            None
        };
        let config = ConfigReader::new(&ckpt);
        config.check_labels()?;
        let labels = config.labels();
        let problem_type = config.str_or("problem_type", "");
        let score_fn = match problem_type {
            "regression" => ScoreFn::Identity,
            "multi_label_classification" => ScoreFn::Sigmoid,
            _ if labels.len() == 1 => ScoreFn::Sigmoid,
            _ => ScoreFn::Softmax,
        };
        if task == Task::FillMask && tokenizer.as_ref().is_some_and(|t| t.mask.is_none()) {
            return Err(Error::invalid_file(
                ckpt.dir.join("tokenizer.json"),
                "the tokenizer has no mask token, which fill-mask needs",
            ));
        }
        Ok(Pipeline {
            task,
            model_type: ckpt.model_type.clone(),
            family,
            device,
            dtype: options.dtype,
            dir: ckpt.dir.clone(),
            tokenizer,
            image_processor,
            audio,
            ctc,
            whisper,
            model,
            labels,
            score_fn,
            sentence_transformers,
            generation,
            limits: options.limits,
            vocab,
            chat_template: if task == Task::TextGeneration {
                crate::chat::ChatTemplate::load(&ckpt)?
            } else {
                None
            },
            prefix: ckpt
                .config
                .get("prefix")
                .and_then(|v| v.as_str())
                .filter(|p| !p.is_empty())
                .map(String::from),
            max_batch_size: options.max_batch_size.max(1),
        })
    }

    pub fn task(&self) -> Task {
        self.task
    }
    pub fn model_type(&self) -> &str {
        &self.model_type
    }
    pub fn family(&self) -> Family {
        self.family
    }
    /// `cpu`, `cuda:0`, ...
    pub fn device_name(&self) -> &str {
        &self.device.name
    }
    pub fn device(&self) -> &Device {
        &self.device.device
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn checkpoint_dir(&self) -> &Path {
        &self.dir
    }
    /// The text tokenizer (`None` for a model that reads no text, such as ViT).
    pub fn tokenizer(&self) -> Option<&TextTokenizer> {
        self.tokenizer.as_ref()
    }

    /// The resource budget it checks requests against.
    pub fn limits(&self) -> &crate::Limits {
        &self.limits
    }

    /// Inputs per forward pass.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    pub(crate) fn tok(&self) -> Result<&TextTokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::InvalidOption(format!(
                "the `{}` pipeline reads no text (its model has no tokenizer)",
                self.task
            ))
        })
    }
    /// `id2label` in id order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    /// The sentence-transformers configuration, for such a directory.
    pub fn sentence_transformers(&self) -> Option<&SentenceTransformersConfig> {
        self.sentence_transformers.as_ref()
    }

    /// The checkpoint's labels (`id2label`, else `LABEL_i`) with scores, best first.
    pub(crate) fn rank(&self, scores: &[f32], top_k: TopK) -> Vec<LabelScore> {
        ranked(
            scores,
            |i| {
                self.labels
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("LABEL_{i}"))
            },
            top_k,
        )
    }

    pub(crate) fn expect_task(&self, task: Task) -> Result<()> {
        if self.task == task {
            Ok(())
        } else {
            Err(Error::InvalidOption(format!(
                "this pipeline was loaded for `{}`, not `{task}`",
                self.task
            )))
        }
    }

    fn encoder(&self, head: Head) -> Result<&dyn EncoderModel> {
        match &self.model {
            Model::Encoder(m) if m.head() == head => Ok(m.as_ref()),
            _ => Err(Error::InvalidOption(format!(
                "this pipeline was loaded for `{}`",
                self.task
            ))),
        }
    }

    /// The checkpoint's generation defaults (generation_config.json), to adjust and
    /// pass to [`Pipeline::text_generation`].
    pub fn generation_defaults(&self) -> &GenerationOptions {
        &self.generation
    }

    /// Encode generation prompts as transformers' text-generation pipeline does: with
    /// the tokenizer's defaults, so that its post-processor's special tokens (the BOS
    /// of Llama, Mistral, Gemma, Phi-3, OPT checkpoints) are there, and no truncation.
    /// A prompt that encodes to nothing starts from the checkpoint's `bos_token_id`, as
    /// `generate` does without input ids.
    fn prompt_ids(&self, prompts: &[&str]) -> Result<Vec<Vec<u32>>> {
        if prompts.is_empty() {
            return Err(Error::InvalidInput("no prompt".into()));
        }
        let tok = self.tok()?;
        prompts
            .iter()
            .map(|p| {
                let ids = tok.encode_prompt(&self.with_prefix(p), true)?;
                if ids.is_empty() {
                    if let Some(bos) = self.generation.bos_token_id {
                        if self.vocab.is_none_or(|v| (bos as usize) < v) {
                            return Ok(vec![bos]);
                        }
                    }
                }
                Ok(ids)
            })
            .collect()
    }

    /// A token-by-token generator over a batch of prompts: a causal LM continues the
    /// prompt, an encoder-decoder reads it and writes its own sequence.
    pub(crate) fn generator(
        &self,
        prompts: &[&str],
        opts: &GenerationOptions,
    ) -> Result<Generator<'_, Box<dyn Stepper + '_>>> {
        if opts.num_beams > 1 {
            return Err(Error::InvalidOption(
                "tokens cannot be streamed from a beam search (the best hypothesis is known only at the end, as in transformers): use num_beams 1 to stream".into(),
            ));
        }
        self.check_generation(opts)?;
        let (stepper, seen) = self.stepper(prompts, opts)?;
        Generator::new(stepper, self.tok()?, seen, opts.clone())
    }

    /// The model's stepper over a batch of prompts, and per row the tokens the
    /// repetition penalty sees before the new ones.
    fn stepper(&self, prompts: &[&str], opts: &GenerationOptions) -> Result<PromptStepper<'_>> {
        match (&self.model, self.task) {
            (Model::Causal(model), Task::TextGeneration) => {
                let ids = self.prompt_ids(prompts)?;
                let stepper = self.causal_stepper(model.as_ref(), &ids, opts)?;
                Ok((Box::new(stepper), ids))
            }
            (Model::T5(model), Task::Text2TextGeneration) => {
                if prompts.is_empty() {
                    return Err(Error::InvalidInput("no input text".into()));
                }
                // The last 4.x text2text pipeline prepends the config's `prefix`.
                let prefixed: Vec<_> = prompts.iter().map(|p| self.with_prefix(p)).collect();
                let prompts: Vec<&str> = prefixed.iter().map(|p| p.as_ref()).collect();
                let batch = self.tok()?.encode_batch(&prompts, self.device())?;
                let start = decoder_start(model, opts);
                // The decoder's sequence starts with its start token.
                let seen = vec![vec![start]; prompts.len()];
                let limit = Self::longest_limit(&seen, opts)?;
                let stepper =
                    T5Stepper::new(model, &batch.input_ids, &batch.attention_mask, limit, start)?;
                Ok((Box::new(stepper), seen))
            }
            _ => Err(Error::InvalidOption(format!(
                "this pipeline was loaded for `{}`, which does not generate",
                self.task
            ))),
        }
    }

    /// The token ids the model reads for each text, encoded as transformers' pipeline
    /// for this task encodes them (text-generation: the prompt with the tokenizer's
    /// special tokens, untruncated; text2text-generation: the config's `prefix` and the
    /// input; the encoder tasks: the input with special tokens, truncated to the
    /// model's positions).
    pub fn input_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        if self.task == Task::TextGeneration {
            return self.prompt_ids(texts);
        }
        let prefixed: Vec<_> = texts
            .iter()
            .map(|t| match self.task {
                Task::Text2TextGeneration => self.with_prefix(t),
                _ => std::borrow::Cow::Borrowed(*t),
            })
            .collect();
        let refs: Vec<&str> = prefixed.iter().map(|t| t.as_ref()).collect();
        Ok(self
            .tok()?
            .encode_all(&refs)?
            .iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// The checkpoint's chat template, if it has one.
    pub fn chat_template(&self) -> Option<&crate::chat::ChatTemplate> {
        self.chat_template.as_ref()
    }

    /// A conversation rendered with the checkpoint's chat template as the
    /// text-generation pipeline renders a chat: with the generation prompt, or, when the
    /// last message is the assistant's, continuing that message; `now` is the clock
    /// `strftime_now` reads. Returns the text and whether the final message is continued.
    pub fn render_chat(
        &self,
        messages: &[crate::chat::ChatMessage],
        now: std::time::SystemTime,
    ) -> Result<(String, bool)> {
        let template = self.chat_template.as_ref().ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} has no chat template (chat_template.jinja or tokenizer_config.json's `chat_template`): give the prompt as text instead, or add the template the model was trained with",
                self.dir.display()
            ))
        })?;
        let continue_final = messages.last().is_some_and(|m| m.role == "assistant");
        let text = template.render(
            messages,
            !continue_final,
            continue_final,
            &self.tok()?.special_tokens,
            now,
        )?;
        Ok((text, continue_final))
    }

    /// Generate the assistant's answer to each conversation (rendered with the chat
    /// template, encoded without adding special tokens, as `apply_chat_template` does;
    /// several conversations run as one left-padded batch). The output is the
    /// conversation with the new assistant message, or with its last assistant message
    /// continued.
    pub fn chat(
        &self,
        conversations: &[Vec<crate::chat::ChatMessage>],
        opts: &GenerationOptions,
    ) -> Result<Vec<crate::chat::ChatGeneration>> {
        self.chat_at(conversations, opts, std::time::SystemTime::now())
    }

    /// [`Pipeline::chat`] with the clock the template's `strftime_now` reads.
    pub fn chat_at(
        &self,
        conversations: &[Vec<crate::chat::ChatMessage>],
        opts: &GenerationOptions,
        now: std::time::SystemTime,
    ) -> Result<Vec<crate::chat::ChatGeneration>> {
        let Model::Causal(model) = &self.model else {
            return Err(Error::InvalidOption(format!(
                "a chat needs a text-generation pipeline; this one was loaded for `{}`",
                self.task
            )));
        };
        self.check_generation(opts)?;
        if conversations.is_empty() {
            return Err(Error::InvalidInput("no conversation".into()));
        }
        let tok = self.tok()?;
        let mut prompts = Vec::with_capacity(conversations.len());
        for messages in conversations {
            let (text, continued) = self.render_chat(messages, now)?;
            prompts.push((tok.encode_prompt(&text, false)?, continued));
        }
        let mut new_tokens: Vec<Vec<u32>> = Vec::with_capacity(prompts.len());
        if opts.num_beams > 1 {
            for (ids, _) in &prompts {
                let rows = vec![ids.clone(); opts.num_beams];
                let stepper = self.causal_stepper(model.as_ref(), &rows, opts)?;
                new_tokens.push(crate::generation::beam_generate(stepper, ids, opts)?);
            }
        } else {
            for chunk in prompts.chunks(self.max_batch_size) {
                let ids: Vec<Vec<u32>> = chunk.iter().map(|(ids, _)| ids.clone()).collect();
                let stepper = self.causal_stepper(model.as_ref(), &ids, opts)?;
                let mut gen = Generator::new(
                    Box::new(stepper) as Box<dyn Stepper + '_>,
                    tok,
                    ids,
                    opts.clone(),
                )?;
                gen.run(&mut |_| ControlFlow::Continue(()))?;
                new_tokens.extend(gen.new_tokens().iter().cloned());
            }
        }
        conversations
            .iter()
            .zip(prompts)
            .zip(new_tokens)
            .map(|((messages, (_, continued)), tokens)| {
                let text = tok.decode(&tokens, true)?;
                let mut generated_text = messages.clone();
                if continued {
                    let last = generated_text.last_mut().expect("rendered, so not empty");
                    last.content.push_str(&text);
                } else {
                    generated_text.push(crate::chat::ChatMessage::assistant(text));
                }
                Ok(crate::chat::ChatGeneration {
                    generated_text,
                    token_ids: tokens,
                })
            })
            .collect()
    }

    /// `text` after config.json's `prefix`, which transformers' generation pipelines put
    /// before every input.
    fn with_prefix<'t>(&self, text: &'t str) -> std::borrow::Cow<'t, str> {
        match &self.prefix {
            Some(prefix) => std::borrow::Cow::Owned(format!("{prefix}{text}")),
            None => std::borrow::Cow::Borrowed(text),
        }
    }

    /// A causal LM's stepper over these (left-padded) rows of prompt ids, its cache
    /// sized for the most new tokens any row may get.
    pub(crate) fn causal_stepper<'m>(
        &self,
        model: &'m dyn crate::families::causal::CausalLm,
        rows: &[Vec<u32>],
        opts: &GenerationOptions,
    ) -> Result<CausalStepper<'m>> {
        CausalStepper::new(
            model,
            rows,
            self.padding_id(opts)?,
            Self::longest_limit(rows, opts)?,
            self.dtype.to_candle(),
            self.device(),
        )
    }

    /// The id that pads a batch of prompts: the generation config's pad token (else the
    /// tokenizer's), or 0 when it is beyond the vocabulary (padding is masked, so any
    /// valid id does; transformers' `pad_token_id: -1` and ids past the embeddings
    /// would index out of bounds).
    pub(crate) fn padding_id(&self, opts: &GenerationOptions) -> Result<u32> {
        let pad = opts.pad_token_id.unwrap_or(self.tok()?.pad_id);
        Ok(match self.vocab {
            Some(v) if pad as usize >= v => 0,
            _ => pad,
        })
    }

    /// Generation options within the budget (beams, new tokens), checked before any
    /// cache or beam is sized from them.
    pub(crate) fn check_generation(&self, opts: &GenerationOptions) -> Result<()> {
        self.limits.check_beams(opts.num_beams)?;
        self.limits.check_new_tokens(match opts.max_length {
            Some(n) => opts.max_new_tokens.min(n),
            None => opts.max_new_tokens,
        })?;
        opts.check()
    }

    /// The most new tokens any of these rows may get (the cache size of a stepper).
    fn longest_limit(rows: &[Vec<u32>], opts: &GenerationOptions) -> Result<usize> {
        rows.iter()
            .try_fold(0, |m, r| Ok(m.max(opts.new_token_limit(r.len())?)))
    }

    /// Beam search for one prompt: `num_beams` copies of it decoded together; the best
    /// hypothesis' new tokens.
    /// (`opts` checked by the caller, [`Pipeline::check_generation`].)
    fn beam_generation(&self, prompt: &str, opts: &GenerationOptions) -> Result<Vec<u32>> {
        let copies = vec![prompt; opts.num_beams];
        let (stepper, seen) = self.stepper(&copies, opts)?;
        let before = seen.into_iter().next().unwrap_or_default();
        crate::generation::beam_generate(stepper, &before, opts)
    }

    /// text-generation (continue each prompt, one left-padded batch) or
    /// text2text-generation (write a new sequence from each input), calling `on_token`
    /// for every new token; it may stop generation with `Break`.
    pub fn text_generation(
        &self,
        prompts: &[&str],
        opts: &GenerationOptions,
        mut on_token: Option<OnToken<'_>>,
    ) -> Result<Vec<Generation>> {
        let mut out = Vec::with_capacity(prompts.len());
        if opts.num_beams > 1 {
            self.check_generation(opts)?;
            if on_token.is_some() {
                return Err(Error::InvalidOption(
                    "tokens cannot be streamed from a beam search (the best hypothesis is known only at the end, as in transformers): use num_beams 1 to stream".into(),
                ));
            }
            for prompt in prompts {
                let tokens = self.beam_generation(prompt, opts)?;
                out.push(Generation {
                    generated_text: self.generated_text(prompt, &tokens, opts)?,
                    token_ids: tokens,
                });
            }
            return Ok(out);
        }
        for chunk in prompts.chunks(self.max_batch_size) {
            let mut gen = self.generator(chunk, opts)?;
            match on_token {
                Some(ref mut f) => gen.run(&mut **f)?,
                None => gen.run(&mut |_| ControlFlow::Continue(()))?,
            }
            for (prompt, tokens) in chunk.iter().zip(gen.new_tokens()) {
                out.push(Generation {
                    generated_text: self.generated_text(prompt, tokens, opts)?,
                    token_ids: tokens.clone(),
                });
            }
        }
        Ok(out)
    }

    /// The pipeline's text of a generation: text-generation (transformers 5's
    /// pipeline) returns the prompt followed by the new tokens decoded alone;
    /// text2text-generation (the last 4.x pipeline) decodes the whole decoder sequence,
    /// its start token included (skipped when it is a special token, as T5's pad is).
    fn generated_text(
        &self,
        prompt: &str,
        tokens: &[u32],
        opts: &GenerationOptions,
    ) -> Result<String> {
        let tok = self.tok()?;
        match &self.model {
            Model::T5(model) if self.task == Task::Text2TextGeneration => {
                let start = decoder_start(model, opts);
                let sequence: Vec<u32> = std::iter::once(start)
                    .chain(tokens.iter().copied())
                    .collect();
                tok.decode(&sequence, true)
            }
            _ => Ok(format!("{prompt}{}", tok.decode(tokens, true)?)),
        }
    }

    /// Run `f` over `texts` in chunks of at most `max_batch_size`.
    /// Run `f` on batches of at most `max_batch_size` texts, returning the outputs in
    /// input order. More texts than fit one batch are sorted by token count first
    /// (longest first, as sentence-transformers' `encode` does), so that each batch
    /// pads to nearly its own length instead of computing padding.
    fn chunked<T>(
        &self,
        texts: &[&str],
        mut f: impl FnMut(&[&str], EncodedBatch) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        if texts.len() <= self.max_batch_size {
            let batch = self.tok()?.encode_batch(texts, self.device())?;
            return f(texts, batch);
        }
        let encodings = self.tok()?.encode_all(texts)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
        let mut encodings: Vec<Option<_>> = encodings.into_iter().map(Some).collect();
        let mut out: Vec<Option<T>> = (0..texts.len()).map(|_| None).collect();
        for group in order.chunks(self.max_batch_size) {
            let chunk: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
            let encs: Vec<_> = group.iter().filter_map(|&i| encodings[i].take()).collect();
            let results = f(&chunk, self.tok()?.pad(encs, self.device())?)?;
            if results.len() != group.len() {
                return Err(Error::InvalidInput(format!(
                    "internal: {} outputs for a batch of {}",
                    results.len(),
                    group.len()
                )));
            }
            for (&i, r) in group.iter().zip(results) {
                out[i] = Some(r);
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// feature-extraction: the last hidden states of each text, per token (special
    /// tokens included), or pooled into one vector.
    pub fn feature_extraction(
        &self,
        texts: &[&str],
        pooling: Option<Pooling>,
        normalize: bool,
    ) -> Result<Vec<Features>> {
        self.expect_task(Task::FeatureExtraction)?;
        let model = self.encoder(Head::None)?;
        self.chunked(texts, |_, batch| {
            let hidden = model.hidden_states(&batch)?;
            match pooling {
                None => {
                    let hidden = hidden
                        .to_dtype(candle_core::DType::F32)?
                        .to_device(&Device::Cpu)?;
                    batch
                        .lengths
                        .iter()
                        .enumerate()
                        .map(|(i, &n)| {
                            Ok(Features::Tokens(hidden.get(i)?.narrow(0, 0, n)?.to_vec2()?))
                        })
                        .collect()
                }
                Some(p) => {
                    let mut pooled = pooling::pool(&hidden, &batch.attention_mask, p)?;
                    if normalize {
                        pooled = pooling::l2_normalize(&pooled)?;
                    }
                    let rows: Vec<Vec<f32>> = pooled.to_device(&Device::Cpu)?.to_vec2()?;
                    Ok(rows.into_iter().map(Features::Pooled).collect())
                }
            }
        })
    }

    /// The encoder's last hidden states for a batch tokenized already: the bare
    /// forward pass under the feature-extraction handler (`skillset bench` measures
    /// the handler's overhead over it).
    pub fn hidden_states(&self, batch: &EncodedBatch) -> Result<Tensor> {
        self.expect_task(Task::FeatureExtraction)?;
        self.encoder(Head::None)?.hidden_states(batch)
    }

    /// The pooling and normalization of [`Pipeline::sentence_embeddings`]: a
    /// sentence-transformers directory's own, or mean pooling without normalization
    /// for any other checkpoint (as sentence-transformers loads a plain one).
    pub fn sentence_pooling(&self) -> (Pooling, bool) {
        match &self.sentence_transformers {
            Some(st) => (st.pooling, st.normalize),
            None => (Pooling::Mean, false),
        }
    }

    /// Sentence embeddings, pooled and normalized as [`Pipeline::sentence_pooling`] says.
    pub fn sentence_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let (pooling, normalize) = self.sentence_pooling();
        self.embeddings(texts, pooling, normalize)
    }

    /// Pooled embeddings with explicit pooling.
    pub fn embeddings(
        &self,
        texts: &[&str],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        Ok(self
            .feature_extraction(texts, Some(pooling), normalize)?
            .into_iter()
            .map(|f| match f {
                Features::Pooled(v) => v,
                Features::Tokens(_) => unreachable!("pooling was requested"),
            })
            .collect())
    }

    /// fill-mask: for each text, for each mask token in it, the `top_k` best tokens.
    pub fn fill_mask(
        &self,
        texts: &[&str],
        top_k: usize,
    ) -> Result<Vec<Vec<Vec<FillMaskPrediction>>>> {
        self.expect_task(Task::FillMask)?;
        let model = self.encoder(Head::MaskedLm)?;
        let (mask_token, mask_id) = self
            .tok()?
            .mask
            .clone()
            .ok_or_else(|| Error::InvalidInput("the tokenizer has no mask token".into()))?;
        let top_k = top_k.max(1);
        self.chunked(texts, |chunk, batch| {
            let ids: Vec<Vec<u32>> = batch
                .encodings
                .iter()
                .map(|e| e.get_ids().to_vec())
                .collect();
            // Find the masks first, so that a text without one fails before the forward pass.
            let positions: Vec<Vec<usize>> = ids
                .iter()
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .filter(|(_, &t)| t == mask_id)
                        .map(|(i, _)| i)
                        .collect()
                })
                .collect();
            for ((text, pos), enc) in chunk.iter().zip(&positions).zip(&batch.encodings) {
                if pos.is_empty() {
                    let cut = !enc.get_overflowing().is_empty() && text.contains(mask_token.as_str());
                    return Err(Error::InvalidInput(if cut {
                        format!(
                            "the mask token `{mask_token}` is past the first {} tokens the model reads, and was cut off with the rest of the input: shorten it",
                            self.tok()?.max_length
                        )
                    } else {
                        format!("no mask token `{mask_token}` in {text:?}: fill-mask needs one")
                    }));
                }
            }
            let hidden = model.hidden_states(&batch)?;
            let mut out = Vec::with_capacity(chunk.len());
            for (i, pos) in positions.iter().enumerate() {
                let rows: Vec<Tensor> = pos
                    .iter()
                    .map(|&p| hidden.get(i)?.get(p))
                    .collect::<candle_core::Result<_>>()?;
                let logits = model
                    .head_logits(&Tensor::stack(&rows, 0)?.unsqueeze(0)?)?
                    .squeeze(0)?;
                let probs = families::nn::softmax_rows(&logits)?;
                let single = pos.len() == 1;
                let mut per_mask = Vec::with_capacity(pos.len());
                for (m, &p) in pos.iter().enumerate() {
                    let best = top_indices(&probs[m], top_k);
                    let mut preds = Vec::with_capacity(best.len());
                    for (token, score) in best {
                        let mut seq = ids[i].clone();
                        seq[p] = token;
                        let pad = self.tok()?.pad_id;
                        seq.retain(|&t| t != pad);
                        preds.push(FillMaskPrediction {
                            score,
                            token,
                            token_str: self.tok()?.decode(&[token], false)?,
                            sequence: self.tok()?.decode(&seq, single)?,
                        });
                    }
                    per_mask.push(preds);
                }
                out.push(per_mask);
            }
            Ok(out)
        })
    }

    /// text-classification: each text's labels with scores, best first.
    pub fn text_classification(&self, texts: &[&str], top_k: TopK) -> Result<Vec<Vec<LabelScore>>> {
        self.expect_task(Task::TextClassification)?;
        let model = self.encoder(Head::SequenceClassification)?;
        self.chunked(texts, |_, batch| {
            let logits = model.head_logits(&model.hidden_states(&batch)?)?;
            let logits: Vec<Vec<f32>> = logits
                .to_dtype(candle_core::DType::F32)?
                .to_device(&Device::Cpu)?
                .to_vec2()?;
            ensure_finite(
                logits.iter().map(Vec::as_slice),
                "a text-classification logit",
            )?;
            Ok(logits
                .iter()
                .map(|row| self.rank(&self.apply_score_fn(row), top_k))
                .collect())
        })
    }

    fn apply_score_fn(&self, row: &[f32]) -> Vec<f32> {
        match self.score_fn {
            ScoreFn::Identity => row.to_vec(),
            ScoreFn::Sigmoid => row.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
            ScoreFn::Softmax => softmax(row),
        }
    }

    /// token-classification (aggregation `none`): every non-special token whose best
    /// label is not `O`.
    pub fn token_classification(&self, texts: &[&str]) -> Result<Vec<Vec<TokenEntity>>> {
        self.expect_task(Task::TokenClassification)?;
        let model = self.encoder(Head::TokenClassification)?;
        self.chunked(texts, |chunk, batch| {
            let logits = model.head_logits(&model.hidden_states(&batch)?)?;
            let logits = logits
                .to_dtype(candle_core::DType::F32)?
                .to_device(&Device::Cpu)?;
            let mut out = Vec::with_capacity(chunk.len());
            for (i, enc) in batch.encodings.iter().enumerate() {
                let rows: Vec<Vec<f32>> =
                    logits.get(i)?.narrow(0, 0, batch.lengths[i])?.to_vec2()?;
                ensure_finite(
                    rows.iter().map(Vec::as_slice),
                    "a token-classification logit",
                )?;
                let text = chunk[i];
                let chars: Vec<char> = text.chars().collect();
                let mut entities = Vec::new();
                for (idx, row) in rows.iter().enumerate() {
                    if enc.get_special_tokens_mask()[idx] == 1 {
                        continue;
                    }
                    let probs = softmax(row);
                    let (best, score) = argmax(&probs);
                    let entity = self
                        .labels
                        .get(best)
                        .cloned()
                        .unwrap_or_else(|| format!("LABEL_{best}"));
                    if entity == "O" {
                        continue;
                    }
                    let (start, end) = enc.get_offsets()[idx];
                    let id = enc.get_ids()[idx];
                    let word = if self.tok()?.unk_id == Some(id) {
                        chars[start.min(chars.len())..end.min(chars.len())]
                            .iter()
                            .collect()
                    } else {
                        self.tok()?.id_to_token(id).unwrap_or_default()
                    };
                    entities.push(TokenEntity {
                        entity,
                        score,
                        index: idx,
                        word,
                        start,
                        end,
                    });
                }
                out.push(entities);
            }
            Ok(out)
        })
    }

    /// Run the pipeline's task on `inputs` and return one JSON value per input, in the
    /// schema of transformers' `pipeline()` (what `skillset run --json` prints).
    ///
    /// Image and audio tasks read each input as a file path (PNG/JPEG, WAV).
    /// A number that is not finite (NaN or infinity, from broken weights or config:
    /// `rms_norm_eps: -1`, `rope_theta: 0`, NaN tensors) is an error, never a `null`
    /// score in the output.
    pub fn run_json(&self, inputs: &[String], opts: &RunOptions) -> Result<Vec<serde_json::Value>> {
        let values = self.run_json_values(inputs, opts)?;
        for (i, v) in values.iter().enumerate() {
            if has_null(v) {
                return Err(non_finite(&format!("the output for input {i}")));
            }
        }
        Ok(values)
    }

    fn run_json_values(
        &self,
        inputs: &[String],
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
        if inputs.is_empty() {
            return Err(Error::InvalidInput("no input".into()));
        }
        match self.task.input_kind() {
            crate::InputKind::Text => {}
            crate::InputKind::Image => {
                let images = inputs
                    .iter()
                    .map(|p| crate::media::RgbImage::open(Path::new(p)))
                    .collect::<Result<Vec<_>>>()?;
                return self.run_images_json(&images, opts);
            }
            crate::InputKind::Audio => {
                let audio = inputs
                    .iter()
                    .map(|p| crate::media::Audio::open(Path::new(p)))
                    .collect::<Result<Vec<_>>>()?;
                return self.run_audio_json(&audio, opts);
            }
        }
        let values = match self.task {
            Task::FeatureExtraction => {
                let (pooling, normalize) = match opts.pooling {
                    PoolingChoice::None => (None, false),
                    PoolingChoice::Pool(p) => (Some(p), opts.normalize),
                    PoolingChoice::Auto => match &self.sentence_transformers {
                        Some(st) => (Some(st.pooling), st.normalize || opts.normalize),
                        None => (None, false),
                    },
                };
                if pooling.is_none() && opts.normalize {
                    return Err(Error::InvalidOption(
                        "--normalize needs pooled embeddings: add --pooling mean (or cls, max)"
                            .into(),
                    ));
                }
                self.feature_extraction(&texts, pooling, normalize)?
                    .iter()
                    .map(to_json)
                    .collect()
            }
            Task::FillMask => {
                let k = match opts.top_k {
                    Some(TopK::N(k)) => k,
                    Some(TopK::All) => usize::MAX,
                    None => 5,
                };
                let k = k.min(self.vocab_size()?);
                self.fill_mask(&texts, k)?
                    .iter()
                    .map(|per_mask| {
                        if per_mask.len() == 1 {
                            to_json(&per_mask[0])
                        } else {
                            to_json(per_mask)
                        }
                    })
                    .collect()
            }
            Task::TextClassification => self
                .text_classification(&texts, opts.top_k.unwrap_or(TopK::N(1)))?
                .iter()
                .map(to_json)
                .collect(),
            Task::TokenClassification => self
                .token_classification(&texts)?
                .iter()
                .map(to_json)
                .collect(),
            Task::TextGeneration | Task::Text2TextGeneration => {
                let opts = opts.generation(&self.generation)?;
                self.text_generation(&texts, &opts, None)?
                    .iter()
                    .map(to_json)
                    .collect()
            }
            other => {
                return Err(Error::UnsupportedTask {
                    scope: format!("family `{}`", self.family),
                    task: other,
                    supported: vec![],
                })
            }
        };
        Ok(values)
    }

    fn vocab_size(&self) -> Result<usize> {
        Ok(self.tok()?.inner().get_vocab_size(true))
    }
}

/// The first token of T5's decoder: generation_config.json's `decoder_start_token_id`,
/// else config.json's (else its pad token).
fn decoder_start(model: &crate::families::t5::T5Model, opts: &GenerationOptions) -> u32 {
    opts.decoder_start_token_id
        .unwrap_or_else(|| T5Stepper::start_token(model))
}

/// Whether a task output holds a `null`: what a NaN or an infinity serializes to (no
/// output schema has a null of its own).
fn has_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(has_null),
        serde_json::Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

/// The error for non-finite model outputs.
pub(crate) fn non_finite(what: &str) -> Error {
    Error::InvalidInput(format!(
        "{what} is not finite (NaN or infinity): the checkpoint's weights or config (an epsilon, rope_theta, image_std, ...) are broken"
    ))
}

/// `Err` when any value of `rows` is NaN or infinite.
pub(crate) fn ensure_finite<'a>(
    rows: impl IntoIterator<Item = &'a [f32]>,
    what: &str,
) -> Result<()> {
    if rows.into_iter().any(|r| r.iter().any(|x| !x.is_finite())) {
        return Err(non_finite(what));
    }
    Ok(())
}

/// The model's vocabulary size from config.json (or its text config).
fn config_vocab(ckpt: &Checkpoint) -> Option<usize> {
    let v = ckpt.config.get("vocab_size").or_else(|| {
        ckpt.config
            .get("text_config")
            .and_then(|t| t.get("vocab_size"))
    })?;
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// Labels with scores, best first, cut to `top_k`.
pub(crate) fn ranked(
    scores: &[f32],
    label: impl Fn(usize) -> String,
    top_k: TopK,
) -> Vec<LabelScore> {
    let mut ranked: Vec<LabelScore> = scores
        .iter()
        .enumerate()
        .map(|(i, &score)| LabelScore {
            label: label(i),
            score,
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked.truncate(top_k.take(ranked.len()));
    ranked
}

/// A task output as JSON (`run_json`'s values).
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("task outputs are plain data and always serialize")
}

/// Softmax of one row, computed like numpy/torch (subtract the max first).
pub(crate) fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = row.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}

fn argmax(row: &[f32]) -> (usize, f32) {
    row.iter()
        .copied()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
}

/// The `k` largest entries of `row` as `(index, value)`, best first (ties: lower index).
pub(crate) fn top_indices(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    let k = k.min(row.len());
    if k < row.len() {
        idx.select_nth_unstable_by(k, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        idx.truncate(k);
    }
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.into_iter().map(|i| (i as u32, row[i])).collect()
}
