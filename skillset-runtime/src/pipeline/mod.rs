//! The untyped pipeline: a checkpoint loaded for one task on one device, with one
//! method per task. Typed [`Endpoint`](crate::Endpoint)s and `skillset run` both sit
//! on it.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::checkpoint::Checkpoint;
use crate::device::{DType, ResolvedDevice};
use crate::error::{Error, Result};

use crate::families::{self, ConfigReader, EncoderModel, Head, Model};
use crate::generation::GenerationOptions;
use crate::info::Scope;
use crate::ops::{non_finite, ranked, to_json};
use crate::outputs::LabelScore;
use crate::pooling::SentenceTransformersConfig;
use crate::tokenize::{EncodedBatch, TextTokenizer};
use crate::{Family, Task};

mod audio;
mod generate;
mod options;
mod text;
mod vision;

pub use options::{LoadOptions, PoolingChoice, RunOptions, TopK};

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
            top_k.take(scores.len()),
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

    fn vocab_size(&self) -> Result<usize> {
        Ok(self.tok()?.inner().get_vocab_size(true))
    }
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

/// The model's vocabulary size from config.json (or its text config).
fn config_vocab(ckpt: &Checkpoint) -> Option<usize> {
    let v = ckpt.config.get("vocab_size").or_else(|| {
        ckpt.config
            .get("text_config")
            .and_then(|t| t.get("vocab_size"))
    })?;
    v.as_u64().and_then(|n| usize::try_from(n).ok())
}
