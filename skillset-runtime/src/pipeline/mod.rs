//! The untyped pipeline: a checkpoint loaded for one task on one device, with one
//! method per task. Typed [`Endpoint`](crate::Endpoint)s and `skillset run` both sit
//! on it.

use std::path::Path;

use candle_core::Device;

use crate::checkpoint::Checkpoint;
use crate::device::DType;
use crate::error::{Error, Result};

use crate::families::Loading;
use crate::generation::{Generation, GenerationOptions, Generator, OnToken, Stepper};
use crate::info::Scope;
use crate::media::{Audio, ImageProcessor, RgbImage};
use crate::ops::non_finite;
use crate::outputs::{Features, FillMaskPrediction, LabelScore, TokenEntity, Transcription};
use crate::pooling::{Pooling, SentenceTransformersConfig};
use crate::speech::AudioFrontEnd;
use crate::tokenize::{EncodedBatch, TextTokenizer};
use crate::{Family, Task};

mod audio;
mod build;
mod generate;
mod handler;
mod options;
mod text;
mod vision;

use handler::{Context, Handler, Inputs};
pub use options::{LoadOptions, PoolingChoice, RunOptions, TopK};

/// A checkpoint loaded for one task on one device. `Send + Sync`: share it between
/// threads behind an `Arc` (an `Endpoint` does).
///
/// It holds its task's handler, built at load time and owning only what the task
/// needs (the model with the task's head, its tokenizer or processor, its labels).
/// The task methods below reach that handler; one called on a pipeline loaded for
/// another task is an error (a typed [`Endpoint`](crate::Endpoint) has only its own
/// task's methods).
pub struct Pipeline {
    model_type: String,
    family: Family,
    cx: Context,
    handler: Box<dyn Handler>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("task", &self.cx.task)
            .field("model_type", &self.model_type)
            .field("family", &self.family)
            .field("device", &self.cx.device.name)
            .field("dtype", &self.cx.dtype)
            .field("dir", &self.cx.dir)
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
        let loading = Loading::new(
            family,
            architecture,
            &ckpt,
            task,
            options.dtype.to_candle(),
            &device.device,
        )?;
        let handler = build::handler(&loading, &ckpt, options)?;
        Ok(Pipeline {
            model_type: ckpt.model_type.clone(),
            family,
            cx: Context {
                task,
                device,
                dtype: options.dtype,
                limits: options.limits,
                max_batch_size: options.max_batch_size.max(1),
                dir: ckpt.dir.clone(),
            },
            handler,
        })
    }

    pub fn task(&self) -> Task {
        self.cx.task
    }
    pub fn model_type(&self) -> &str {
        &self.model_type
    }
    pub fn family(&self) -> Family {
        self.family
    }
    /// `cpu`, `cuda:0`, ...
    pub fn device_name(&self) -> &str {
        &self.cx.device.name
    }
    pub fn device(&self) -> &Device {
        self.cx.device()
    }
    pub fn dtype(&self) -> DType {
        self.cx.dtype
    }
    pub fn checkpoint_dir(&self) -> &Path {
        &self.cx.dir
    }
    /// The text tokenizer (`None` for a model that reads no text, such as ViT).
    pub fn tokenizer(&self) -> Option<&TextTokenizer> {
        self.handler.tokenizer()
    }

    /// The resource budget it checks requests against.
    pub fn limits(&self) -> &crate::Limits {
        &self.cx.limits
    }

    /// Inputs per forward pass.
    pub fn max_batch_size(&self) -> usize {
        self.cx.max_batch_size
    }

    /// `id2label` in id order (empty for a task that does not classify).
    pub fn labels(&self) -> &[String] {
        self.handler.labels()
    }
    /// The sentence-transformers configuration, for such a directory (loaded for
    /// feature-extraction).
    pub fn sentence_transformers(&self) -> Option<&SentenceTransformersConfig> {
        self.handler.sentence_transformers()
    }

    /// The checkpoint's generation defaults (generation_config.json), to adjust and
    /// pass to [`Pipeline::text_generation`]; transformers' defaults (greedy) for a
    /// pipeline whose task does not generate.
    pub fn generation_defaults(&self) -> &GenerationOptions {
        static NONE: std::sync::OnceLock<GenerationOptions> = std::sync::OnceLock::new();
        self.handler
            .generation_defaults()
            .unwrap_or_else(|| NONE.get_or_init(GenerationOptions::default))
    }

    /// The handler of type `H`, which the pipeline has when it was loaded for `task`.
    fn handler<H: Handler>(&self, task: Task) -> Result<&H> {
        let any: &dyn std::any::Any = self.handler.as_ref();
        any.downcast_ref::<H>().ok_or_else(|| {
            Error::InvalidOption(format!(
                "this pipeline was loaded for `{}`, not `{task}`",
                self.cx.task
            ))
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
        if inputs.is_empty() {
            return Err(Error::InvalidInput("no input".into()));
        }
        let values = match self.cx.task.input_kind() {
            crate::InputKind::Text => {
                let texts: Vec<&str> = inputs.iter().map(String::as_str).collect();
                self.handler.run(&self.cx, Inputs::Text(&texts), opts)?
            }
            crate::InputKind::Image => {
                let images = inputs
                    .iter()
                    .map(|p| RgbImage::open(Path::new(p)))
                    .collect::<Result<Vec<_>>>()?;
                self.run_images_json(&images, opts)?
            }
            crate::InputKind::Audio => {
                let audio = inputs
                    .iter()
                    .map(|p| Audio::open(Path::new(p)))
                    .collect::<Result<Vec<_>>>()?;
                self.run_audio_json(&audio, opts)?
            }
        };
        for (i, v) in values.iter().enumerate() {
            if has_null(v) {
                return Err(non_finite(&format!("the output for input {i}")));
            }
        }
        Ok(values)
    }

    /// [`Pipeline::run_json`] for decoded images.
    pub fn run_images_json(
        &self,
        images: &[RgbImage],
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        self.handler.run(&self.cx, Inputs::Images(images), opts)
    }

    /// [`Pipeline::run_json`] for decoded audio.
    pub fn run_audio_json(
        &self,
        audio: &[Audio],
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        self.handler.run(&self.cx, Inputs::Audio(audio), opts)
    }
}

/// The text tasks of encoder models.
impl Pipeline {
    /// feature-extraction: the last hidden states of each text, per token (special
    /// tokens included), or pooled into one vector.
    pub fn feature_extraction(
        &self,
        texts: &[&str],
        pooling: Option<Pooling>,
        normalize: bool,
    ) -> Result<Vec<Features>> {
        self.handler::<text::FeatureExtractor>(Task::FeatureExtraction)?
            .feature_extraction(&self.cx, texts, pooling, normalize)
    }

    /// The encoder's last hidden states for a batch tokenized already: the bare
    /// forward pass under the feature-extraction handler (`skillset bench` measures
    /// the handler's overhead over it).
    pub fn hidden_states(&self, batch: &EncodedBatch) -> Result<candle_core::Tensor> {
        self.handler::<text::FeatureExtractor>(Task::FeatureExtraction)?
            .hidden_states(batch)
    }

    /// The pooling and normalization of [`Pipeline::sentence_embeddings`]: a
    /// sentence-transformers directory's own, or mean pooling without normalization
    /// for any other checkpoint (as sentence-transformers loads a plain one).
    pub fn sentence_pooling(&self) -> (Pooling, bool) {
        match self.sentence_transformers() {
            Some(st) => (st.pooling, st.normalize),
            None => (Pooling::Mean, false),
        }
    }

    /// Sentence embeddings, pooled and normalized as [`Pipeline::sentence_pooling`] says,
    /// each text after the directory's default prompt when it has one.
    pub fn sentence_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.sentence_embeddings_with_prompt(texts, None)
    }

    /// [`Pipeline::sentence_embeddings`] of each text after the sentence-transformers
    /// prompt called `prompt_name` (`query`, ...: config_sentence_transformers.json's
    /// `prompts`), as `SentenceTransformer.encode(texts, prompt_name=...)` gives them.
    pub fn sentence_embeddings_with_prompt(
        &self,
        texts: &[&str],
        prompt_name: Option<&str>,
    ) -> Result<Vec<Vec<f32>>> {
        let (pooling, normalize) = self.sentence_pooling();
        let h = self.handler::<text::FeatureExtractor>(Task::FeatureExtraction)?;
        let texts = h.prompted(texts, prompt_name)?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        h.embeddings(&self.cx, &texts, pooling, normalize)
    }

    /// Pooled embeddings with explicit pooling.
    pub fn embeddings(
        &self,
        texts: &[&str],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        self.handler::<text::FeatureExtractor>(Task::FeatureExtraction)?
            .embeddings(&self.cx, texts, pooling, normalize)
    }

    /// fill-mask: for each text, for each mask token in it, the `top_k` best tokens.
    pub fn fill_mask(
        &self,
        texts: &[&str],
        top_k: usize,
    ) -> Result<Vec<Vec<Vec<FillMaskPrediction>>>> {
        self.handler::<text::MaskFiller>(Task::FillMask)?
            .fill_mask(&self.cx, texts, top_k)
    }

    /// text-classification: each text's labels with scores, best first.
    pub fn text_classification(&self, texts: &[&str], top_k: TopK) -> Result<Vec<Vec<LabelScore>>> {
        self.handler::<text::TextClassifier>(Task::TextClassification)?
            .text_classification(&self.cx, texts, top_k)
    }

    /// token-classification (aggregation `none`): every non-special token whose best
    /// label is not `O`.
    pub fn token_classification(&self, texts: &[&str]) -> Result<Vec<Vec<TokenEntity>>> {
        self.handler::<text::TokenClassifier>(Task::TokenClassification)?
            .token_classification(&self.cx, texts)
    }
}

/// Generation and chats (decoder-only models and T5).
impl Pipeline {
    fn writer(&self) -> Result<&generate::TextWriter> {
        self.handler::<generate::TextWriter>(match self.cx.task {
            Task::Text2TextGeneration => Task::Text2TextGeneration,
            _ => Task::TextGeneration,
        })
    }

    /// A token-by-token generator over a batch of prompts: a causal LM continues the
    /// prompt, an encoder-decoder reads it and writes its own sequence.
    pub(crate) fn generator(
        &self,
        prompts: &[&str],
        opts: &GenerationOptions,
    ) -> Result<Generator<'_, Box<dyn Stepper + '_>>> {
        self.writer()?.generator(&self.cx, prompts, opts)
    }

    /// The token ids the model reads for each text, encoded as transformers' pipeline
    /// for this task encodes them (text-generation: the prompt with the tokenizer's
    /// special tokens, untruncated; text2text-generation: the config's `prefix` and the
    /// input; the encoder tasks: the input with special tokens, truncated to the
    /// model's positions).
    pub fn input_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        if let Ok(writer) = self.writer() {
            return writer.input_ids(texts);
        }
        let tok = self.tokenizer().ok_or_else(|| {
            Error::InvalidOption(format!(
                "the `{}` pipeline reads no text (its model has no tokenizer)",
                self.cx.task
            ))
        })?;
        Ok(tok
            .encode_all(texts)?
            .iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// The checkpoint's chat template, if it has one (text-generation).
    pub fn chat_template(&self) -> Option<&crate::chat::ChatTemplate> {
        self.writer().ok()?.chat_template.as_ref()
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
        self.writer()?.render_chat(&self.cx, messages, now)
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
        self.writer()?.chat_at(&self.cx, conversations, opts, now)
    }

    /// text-generation (continue each prompt, one left-padded batch) or
    /// text2text-generation (write a new sequence from each input), calling `on_token`
    /// for every new token; it may stop generation with `Break`.
    pub fn text_generation(
        &self,
        prompts: &[&str],
        opts: &GenerationOptions,
        on_token: Option<OnToken<'_>>,
    ) -> Result<Vec<Generation>> {
        self.writer()?
            .text_generation(&self.cx, prompts, opts, on_token)
    }
}

/// The image tasks.
impl Pipeline {
    /// The image processor (`None` for a task that reads no images).
    pub fn image_processor(&self) -> Option<&ImageProcessor> {
        self.handler.image_processor()
    }

    /// The image processor's output for one image: `[3, H, W]` as a flat vector (what
    /// the model sees).
    pub fn preprocess_image(&self, image: &RgbImage) -> Result<Vec<f32>> {
        let processor = self.image_processor().ok_or_else(|| {
            Error::InvalidOption(format!("the `{}` pipeline reads no images", self.cx.task))
        })?;
        vision::check_image(&self.cx, processor, image)?;
        Ok(processor.preprocess(image))
    }

    /// image-classification: each image's labels with softmax scores, best first.
    pub fn image_classification(
        &self,
        images: &[RgbImage],
        top_k: TopK,
    ) -> Result<Vec<Vec<LabelScore>>> {
        self.handler::<vision::ImageClassifier>(Task::ImageClassification)?
            .image_classification(&self.cx, images, top_k)
    }

    /// image-feature-extraction: each image's last hidden states `[tokens][hidden]`
    /// (class token first), as transformers' pipeline returns them.
    pub fn image_features(&self, images: &[RgbImage]) -> Result<Vec<Vec<Vec<f32>>>> {
        self.handler::<vision::ImageFeatureExtractor>(Task::ImageFeatureExtraction)?
            .image_features(&self.cx, images)
    }

    fn dual_encoder(&self) -> Result<&vision::ZeroShotImageClassifier> {
        self.handler(Task::ZeroShotImageClassification)
    }

    /// Image embeddings of a CLIP/SigLIP checkpoint (`get_image_features`: projected,
    /// not normalized).
    pub fn image_embeddings(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        self.dual_encoder()?.image_embeddings(&self.cx, images)
    }

    /// Text embeddings of a CLIP/SigLIP checkpoint (`get_text_features`), tokenized as
    /// the zero-shot pipeline does (SigLIP: padded to the tokenizer's maximum length).
    pub fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.dual_encoder()?.text_embeddings(&self.cx, texts)
    }

    /// zero-shot-image-classification: each image's candidate labels with scores, best
    /// first (CLIP: softmax over the labels; SigLIP: independent sigmoids). The labels
    /// are put into `template` (`{}` marks the place).
    pub fn zero_shot_image_classification(
        &self,
        images: &[RgbImage],
        labels: &[&str],
        template: Option<&str>,
    ) -> Result<Vec<Vec<LabelScore>>> {
        self.dual_encoder()?
            .zero_shot_image_classification(&self.cx, images, labels, template)
    }

    /// image-text-to-text (LLaVA): for each image, the prompt (with one `<image>` where
    /// the image goes) continued by the decoder, as transformers' pipeline returns it.
    pub fn image_text_to_text(
        &self,
        images: &[RgbImage],
        prompt: &str,
        opts: &GenerationOptions,
    ) -> Result<Vec<crate::outputs::ImageTextGeneration>> {
        self.handler::<vision::ImageTextWriter>(Task::ImageTextToText)?
            .image_text_to_text(&self.cx, images, prompt, opts)
    }
}

/// The audio tasks.
impl Pipeline {
    /// The feature extractor in front of the model.
    pub fn audio_front_end(&self) -> Option<&AudioFrontEnd> {
        self.handler.audio_front_end()
    }

    fn front_end(&self) -> Result<&AudioFrontEnd> {
        self.audio_front_end().ok_or_else(|| {
            Error::InvalidOption(format!("the `{}` pipeline reads no audio", self.cx.task))
        })
    }

    /// The waveform the model hears: mono, at the feature extractor's rate.
    pub fn prepare_audio<'a>(&self, audio: &'a Audio) -> Result<std::borrow::Cow<'a, Audio>> {
        audio::prepare_audio(&self.cx, self.front_end()?, audio)
    }

    /// Wav2Vec2's `input_values` for `audio` (resampled, normalized where the
    /// checkpoint says): what the model sees.
    pub fn audio_input_values(&self, audio: &Audio) -> Result<Vec<f32>> {
        let front = self.front_end()?;
        Ok(front.input_values(&self.prepare_audio(audio)?.samples))
    }

    /// The log-mel features `[n_mels, frames]` (flat) of each 30-second window (the
    /// feature extractor's `chunk_length`) of `audio` (Whisper).
    pub fn whisper_features(&self, audio: &Audio) -> Result<Vec<Vec<f32>>> {
        self.handler::<audio::WhisperRecognizer>(Task::AutomaticSpeechRecognition)?
            .whisper_features(&self.cx, audio)
    }

    /// automatic-speech-recognition: the text of each utterance.
    pub fn speech_recognition(
        &self,
        audio: &[Audio],
        opts: &RunOptions,
    ) -> Result<Vec<Transcription>> {
        let task = Task::AutomaticSpeechRecognition;
        if let Ok(whisper) = self.handler::<audio::WhisperRecognizer>(task) {
            return whisper.speech_recognition(&self.cx, audio, opts);
        }
        self.handler::<audio::CtcRecognizer>(task)?
            .speech_recognition(&self.cx, audio, opts)
    }

    /// audio-classification: each utterance's labels with softmax scores, best first.
    pub fn audio_classification(
        &self,
        audio: &[Audio],
        top_k: TopK,
    ) -> Result<Vec<Vec<LabelScore>>> {
        self.handler::<audio::AudioClassifier>(Task::AudioClassification)?
            .audio_classification(&self.cx, audio, top_k)
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
