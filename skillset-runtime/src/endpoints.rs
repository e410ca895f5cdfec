//! Typed handlers: the `call` methods of each task's [`Endpoint`].

use std::collections::VecDeque;
use std::ops::ControlFlow;

use crate::error::{Error, Result};
use crate::generation::{Generation, GenerationOptions, Generator, Stepper, TokenEvent};
use crate::outputs::{FillMaskPrediction, LabelScore, TokenEntity};
use crate::pipeline::TopK;
use crate::pooling::Pooling;
use crate::skillset::task::{
    FeatureExtraction, FillMask, Text2TextGeneration, TextClassification, TextGeneration,
    TokenClassification,
};
use crate::skillset::Endpoint;
use crate::Features;

impl Endpoint<FeatureExtraction> {
    /// Per-token last hidden states of one text (special tokens included), as the
    /// transformers `feature-extraction` pipeline returns them.
    pub fn call(&self, text: &str) -> Result<Vec<Vec<f32>>> {
        Ok(self.call_batch(&[text])?.remove(0))
    }

    /// Per-token hidden states of several texts, in one forward pass per batch.
    pub fn call_batch(&self, texts: &[&str]) -> Result<Vec<Vec<Vec<f32>>>> {
        Ok(self
            .pipeline()
            .feature_extraction(texts, None, false)?
            .into_iter()
            .map(|f| match f {
                Features::Tokens(t) => t,
                Features::Pooled(_) => unreachable!("no pooling was requested"),
            })
            .collect())
    }

    /// Sentence embeddings: a sentence-transformers directory's own pooling,
    /// normalization and default prompt (as `SentenceTransformer.encode` gives), mean
    /// pooling otherwise.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::FeatureExtraction, Skillset};
    ///
    /// #[skillset(family = "bert")]
    /// struct Encoder;
    ///
    /// let embed = Encoder::init_cpu::<FeatureExtraction>("../tests/fixtures/camembert-tiny")?;
    /// let vectors = embed.embed(&["Le café est délicieux.", "Il pleut."])?;
    /// assert_eq!(vectors.len(), 2);
    /// assert_eq!(vectors[0].len(), 30);
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.pipeline().sentence_embeddings(texts)
    }

    /// Sentence embeddings of each text after the sentence-transformers prompt called
    /// `prompt_name` (an instruction such as Qwen3-Embedding's `query`, from
    /// config_sentence_transformers.json), as `SentenceTransformer.encode(texts,
    /// prompt_name=...)` gives them. A name the checkpoint does not define is an error
    /// listing those it does.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::FeatureExtraction, Skillset};
    ///
    /// #[skillset(model_type = "qwen3")]
    /// struct Qwen3Embedding;
    ///
    /// let dir = "../tests/fixtures/qwen3-embedding-tiny";
    /// let embed = Qwen3Embedding::init_cpu::<FeatureExtraction>(dir)?;
    /// let query = embed.embed_with_prompt(&["What is the capital of France?"], "query")?;
    /// let plain = embed.embed(&["What is the capital of France?"])?;
    /// assert_ne!(query, plain); // the instruction changes the vector
    /// assert!(embed.embed_with_prompt(&["Paris"], "passage").is_err());
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn embed_with_prompt(&self, texts: &[&str], prompt_name: &str) -> Result<Vec<Vec<f32>>> {
        self.pipeline()
            .sentence_embeddings_with_prompt(texts, Some(prompt_name))
    }

    /// Sentence embeddings with explicit pooling and normalization.
    pub fn embed_with(
        &self,
        texts: &[&str],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        self.pipeline().embeddings(texts, pooling, normalize)
    }
}

impl Endpoint<FillMask> {
    /// The 5 best fillers of the one mask token in `text`, best first.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::FillMask, Skillset};
    ///
    /// #[skillset(family = "bert")]
    /// struct Bert;
    ///
    /// let fill = Bert::init_cpu::<FillMask>("../tests/fixtures/bert-tiny-mlm")?;
    /// let predictions = fill.call("Paris is the [MASK] of France.")?;
    /// assert_eq!(predictions.len(), 5);
    /// assert!(predictions[0].score >= predictions[1].score);
    /// // No mask: a typed error, and the endpoint keeps working.
    /// assert!(fill.call("no mask").is_err());
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(&self, text: &str) -> Result<Vec<FillMaskPrediction>> {
        self.call_top_k(text, 5)
    }

    /// The `k` best fillers of the one mask token in `text`.
    pub fn call_top_k(&self, text: &str, k: usize) -> Result<Vec<FillMaskPrediction>> {
        let mut per_mask = self.call_masks(text, k)?;
        if per_mask.len() != 1 {
            return Err(Error::InvalidInput(format!(
                "{} mask tokens in {text:?}: `call` takes one, use `call_masks` for several",
                per_mask.len()
            )));
        }
        Ok(per_mask.remove(0))
    }

    /// The `k` best fillers of every mask token in `text`, one list per mask.
    pub fn call_masks(&self, text: &str, k: usize) -> Result<Vec<Vec<FillMaskPrediction>>> {
        Ok(self.pipeline().fill_mask(&[text], k)?.remove(0))
    }

    /// One result per text (each with one list per mask), batched.
    pub fn call_batch(
        &self,
        texts: &[&str],
        k: usize,
    ) -> Result<Vec<Vec<Vec<FillMaskPrediction>>>> {
        self.pipeline().fill_mask(texts, k)
    }
}

impl Endpoint<TextClassification> {
    /// Every label of the checkpoint with its score, best first.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::TextClassification, Skillset};
    ///
    /// #[skillset(model_type = "roberta")]
    /// struct Classifier;
    ///
    /// let classify = Classifier::init_cpu::<TextClassification>("../tests/fixtures/roberta-tiny-cls")?;
    /// let labels = classify.call("A match report.")?;
    /// assert_eq!(labels.len(), 4);
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(&self, text: &str) -> Result<Vec<LabelScore>> {
        Ok(self.call_batch(&[text])?.remove(0))
    }

    /// Every label with its score for each text, batched.
    pub fn call_batch(&self, texts: &[&str]) -> Result<Vec<Vec<LabelScore>>> {
        self.pipeline().text_classification(texts, TopK::All)
    }
}

impl Endpoint<TokenClassification> {
    /// The tokens of `text` whose label is not `O`, with scores and character offsets.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::TokenClassification, Skillset};
    ///
    /// #[skillset(family = "bert")]
    /// struct Ner;
    ///
    /// let ner = Ner::init_cpu::<TokenClassification>("../tests/fixtures/xlm-roberta-tiny-ner")?;
    /// let text = "Der Zug fährt nach München.";
    /// for e in ner.call(text)? {
    ///     let span: String = text.chars().skip(e.start).take(e.end - e.start).collect();
    ///     println!("{} {span:?} {:.3}", e.entity, e.score);
    /// }
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(&self, text: &str) -> Result<Vec<TokenEntity>> {
        Ok(self.call_batch(&[text])?.remove(0))
    }

    /// Token entities for each text, batched.
    pub fn call_batch(&self, texts: &[&str]) -> Result<Vec<Vec<TokenEntity>>> {
        self.pipeline().token_classification(texts)
    }
}

/// The generation tasks: text-generation (a causal LM continues the prompt) and
/// text2text-generation (an encoder-decoder writes its own sequence from the input).
pub trait GenerativeTask: crate::TaskType + sealed::Sealed {}
impl GenerativeTask for TextGeneration {}
impl GenerativeTask for Text2TextGeneration {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TextGeneration {}
    impl Sealed for super::Text2TextGeneration {}
}

impl<T: GenerativeTask> Endpoint<T> {
    /// The checkpoint's generation defaults (generation_config.json): greedy unless it
    /// says otherwise. Adjust a copy and pass it to [`call_with`](Self::call_with).
    pub fn options(&self) -> GenerationOptions {
        self.pipeline().generation_defaults().clone()
    }

    /// Generate from `prompt` with the checkpoint's defaults: text-generation continues
    /// it (the output starts with the prompt), text2text-generation writes a new
    /// sequence from it (e.g. `"translate English to German: ..."`).
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::Text2TextGeneration, Skillset};
    ///
    /// #[skillset(family = "t5")]
    /// struct T5;
    ///
    /// let t5 = T5::init_cpu::<Text2TextGeneration>("../tests/fixtures/t5-tiny")?;
    /// let out = t5.call("translate English to German: The house is wonderful.")?;
    /// assert!(!out.token_ids.is_empty());
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(&self, prompt: &str) -> Result<Generation> {
        self.call_with(prompt, &self.options())
    }

    /// Generate from `prompt` with explicit options.
    pub fn call_with(&self, prompt: &str, opts: &GenerationOptions) -> Result<Generation> {
        Ok(self.call_batch(&[prompt], opts)?.remove(0))
    }

    /// Generate from several prompts in one batch (one forward pass per step; causal
    /// LMs left-pad the prompts).
    pub fn call_batch(
        &self,
        prompts: &[&str],
        opts: &GenerationOptions,
    ) -> Result<Vec<Generation>> {
        self.pipeline().text_generation(prompts, opts, None)
    }

    /// Generate from `prompt`, calling `on_token` with each new token as it is generated;
    /// return `ControlFlow::Break(())` from it to stop early.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use skillset_runtime::{skillset, task::TextGeneration, Skillset};
    ///
    /// #[skillset(family = "llama")]
    /// struct Decoder;
    ///
    /// let generate = Decoder::init_cpu::<TextGeneration>("../tests/fixtures/llama-tiny")?;
    /// let mut options = generate.options();
    /// options.max_new_tokens = 8;
    /// let mut streamed = String::new();
    /// let out = generate.stream("Paris is", &options, |token| {
    ///     streamed.push_str(&token.text);
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!(out.generated_text, format!("Paris is{streamed}"));
    /// // The same tokens, one decoding step per `next`.
    /// let ids: Vec<u32> = generate.tokens("Paris is", &options)?.map(|t| t.unwrap().token_id).collect();
    /// assert_eq!(ids, out.token_ids);
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn stream(
        &self,
        prompt: &str,
        opts: &GenerationOptions,
        mut on_token: impl FnMut(&TokenEvent) -> ControlFlow<()>,
    ) -> Result<Generation> {
        Ok(self
            .pipeline()
            .text_generation(&[prompt], opts, Some(&mut on_token))?
            .remove(0))
    }

    /// The new tokens of `prompt` as an iterator: each `next` runs one decoding step.
    pub fn tokens(&self, prompt: &str, opts: &GenerationOptions) -> Result<TokenStream<'_>> {
        Ok(TokenStream {
            generator: self.pipeline().generator(&[prompt], opts)?,
            pending: VecDeque::new(),
            failed: false,
        })
    }
}

impl Endpoint<TextGeneration> {
    /// The assistant's answer to a conversation, with the checkpoint's generation
    /// defaults: the messages rendered with the checkpoint's chat template as
    /// transformers' `apply_chat_template(add_generation_prompt=True)` renders them (a
    /// conversation ending with an assistant message is continued instead), then
    /// generated from. The output is the conversation with the new assistant message.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::TextGeneration, ChatMessage, Skillset};
    ///
    /// #[skillset(family = "llama")]
    /// struct Decoder;
    ///
    /// let chat = Decoder::init_cpu::<TextGeneration>("../tests/fixtures/qwen2-tiny")?;
    /// let conversation = [ChatMessage::system("Be brief."), ChatMessage::user("Hello!")];
    /// let out = chat.chat(&conversation)?;
    /// assert_eq!(out.generated_text.len(), 3);
    /// assert_eq!(out.generated_text[2].role, "assistant");
    /// // A checkpoint without a chat template: a typed error that says so.
    /// let plain = Decoder::init_cpu::<TextGeneration>("../tests/fixtures/olmo-tiny")?;
    /// assert!(plain.chat(&conversation).unwrap_err().to_string().contains("no chat template"));
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn chat(&self, messages: &[crate::ChatMessage]) -> Result<crate::ChatGeneration> {
        self.chat_with(messages, &self.options())
    }

    /// [`chat`](Self::chat) with explicit generation options.
    pub fn chat_with(
        &self,
        messages: &[crate::ChatMessage],
        opts: &GenerationOptions,
    ) -> Result<crate::ChatGeneration> {
        Ok(self.pipeline().chat(&[messages.to_vec()], opts)?.remove(0))
    }

    /// The conversation as the model reads it: the chat template's text (see
    /// [`Pipeline::render_chat`](crate::Pipeline::render_chat)).
    pub fn render_chat(&self, messages: &[crate::ChatMessage]) -> Result<String> {
        Ok(self
            .pipeline()
            .render_chat(messages, std::time::SystemTime::now())?
            .0)
    }
}

/// Tokens as they are generated (see [`Endpoint::tokens`]).
pub struct TokenStream<'a> {
    generator: Generator<'a, Box<dyn Stepper + 'a>>,
    pending: VecDeque<TokenEvent>,
    failed: bool,
}

impl Iterator for TokenStream<'_> {
    type Item = Result<TokenEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ok(e));
            }
            if self.failed || self.generator.done() {
                return None;
            }
            match self.generator.step() {
                Ok(events) => self.pending.extend(events),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

fn open_image(path: &std::path::Path) -> Result<crate::media::RgbImage> {
    crate::media::RgbImage::open(path)
}

impl Endpoint<crate::skillset::task::ImageClassification> {
    /// Every label of the checkpoint with its score for the image at `path`, best
    /// first.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::ImageClassification, Skillset};
    ///
    /// #[skillset(family = "vit")]
    /// struct Classifier;
    ///
    /// let classify = Classifier::init_cpu::<ImageClassification>("../tests/fixtures/vit-tiny-cls")?;
    /// let labels = classify.call("../tests/fixtures/media/gradient.png")?;
    /// assert_eq!(labels.len(), 3);
    /// assert!(labels[0].score >= labels[1].score);
    /// // Not an image: a typed error.
    /// assert!(classify.call("../tests/fixtures/media/tone16k.wav").is_err());
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(&self, path: impl AsRef<std::path::Path>) -> Result<Vec<LabelScore>> {
        self.call_image(&open_image(path.as_ref())?)
    }

    /// As [`call`](Self::call), for a decoded image.
    pub fn call_image(&self, image: &crate::media::RgbImage) -> Result<Vec<LabelScore>> {
        Ok(self.call_batch(std::slice::from_ref(image))?.remove(0))
    }

    /// Labels with scores for each image, batched.
    pub fn call_batch(&self, images: &[crate::media::RgbImage]) -> Result<Vec<Vec<LabelScore>>> {
        self.pipeline().image_classification(images, TopK::All)
    }
}

impl Endpoint<crate::skillset::task::ImageFeatureExtraction> {
    /// The last hidden states `[tokens][hidden]` of the image at `path` (class token
    /// first), as transformers' `image-feature-extraction` pipeline returns them.
    pub fn call(&self, path: impl AsRef<std::path::Path>) -> Result<Vec<Vec<f32>>> {
        self.call_image(&open_image(path.as_ref())?)
    }

    /// As [`call`](Self::call), for a decoded image.
    pub fn call_image(&self, image: &crate::media::RgbImage) -> Result<Vec<Vec<f32>>> {
        Ok(self.call_batch(std::slice::from_ref(image))?.remove(0))
    }

    /// Hidden states of each image, batched.
    pub fn call_batch(&self, images: &[crate::media::RgbImage]) -> Result<Vec<Vec<Vec<f32>>>> {
        self.pipeline().image_features(images)
    }
}

impl Endpoint<crate::skillset::task::ZeroShotImageClassification> {
    /// The candidate labels with scores for the image at `path`, best first (labels
    /// put into transformers' default template, `This is a photo of {}.`).
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::ZeroShotImageClassification, Skillset};
    ///
    /// #[skillset(family = "clip")]
    /// struct Clip;
    ///
    /// let zero_shot = Clip::init_cpu::<ZeroShotImageClassification>("../tests/fixtures/clip-tiny")?;
    /// let ranked = zero_shot.call("../tests/fixtures/media/gradient.png", &["a cat", "a dog"])?;
    /// assert_eq!(ranked.len(), 2);
    /// // CLIP's scores are a softmax over the labels.
    /// assert!((ranked[0].score + ranked[1].score - 1.0).abs() < 1e-5);
    /// // No labels: a typed error.
    /// assert!(zero_shot.call("../tests/fixtures/media/gradient.png", &[]).is_err());
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(
        &self,
        path: impl AsRef<std::path::Path>,
        labels: &[&str],
    ) -> Result<Vec<LabelScore>> {
        self.call_image(&open_image(path.as_ref())?, labels, None)
    }

    /// For a decoded image, with an optional hypothesis template (`{}` marks the label).
    pub fn call_image(
        &self,
        image: &crate::media::RgbImage,
        labels: &[&str],
        template: Option<&str>,
    ) -> Result<Vec<LabelScore>> {
        Ok(self
            .pipeline()
            .zero_shot_image_classification(std::slice::from_ref(image), labels, template)?
            .remove(0))
    }

    /// Image embeddings (`get_image_features`).
    pub fn image_embeddings(&self, images: &[crate::media::RgbImage]) -> Result<Vec<Vec<f32>>> {
        self.pipeline().image_embeddings(images)
    }

    /// Text embeddings (`get_text_features`).
    pub fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.pipeline().text_embeddings(texts)
    }
}

impl Endpoint<crate::skillset::task::AutomaticSpeechRecognition> {
    /// The text of the WAV file at `path` (resampled to the model's rate; long audio in
    /// windows).
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::AutomaticSpeechRecognition, Skillset};
    ///
    /// #[skillset(family = "wav2vec2")]
    /// struct Asr;
    ///
    /// let asr = Asr::init_cpu::<AutomaticSpeechRecognition>("../tests/fixtures/wav2vec2-tiny-ctc")?;
    /// let out = asr.call("../tests/fixtures/media/tone16k.wav")?;
    /// println!("{}", out.text);
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(&self, path: impl AsRef<std::path::Path>) -> Result<crate::Transcription> {
        self.call_audio(
            &crate::media::Audio::open(path.as_ref())?,
            &crate::RunOptions::default(),
        )
    }

    /// For decoded audio, with Whisper's `language` / `speech_task` / `max_new_tokens`
    /// options.
    pub fn call_audio(
        &self,
        audio: &crate::media::Audio,
        opts: &crate::RunOptions,
    ) -> Result<crate::Transcription> {
        Ok(self
            .pipeline()
            .speech_recognition(std::slice::from_ref(audio), opts)?
            .remove(0))
    }
}

impl Endpoint<crate::skillset::task::AudioClassification> {
    /// Every label with its score for the WAV file at `path`, best first.
    pub fn call(&self, path: impl AsRef<std::path::Path>) -> Result<Vec<LabelScore>> {
        self.call_audio(&crate::media::Audio::open(path.as_ref())?)
    }

    /// For decoded audio.
    pub fn call_audio(&self, audio: &crate::media::Audio) -> Result<Vec<LabelScore>> {
        Ok(self
            .pipeline()
            .audio_classification(std::slice::from_ref(audio), TopK::All)?
            .remove(0))
    }
}

impl Endpoint<crate::skillset::task::ImageTextToText> {
    /// The checkpoint's generation defaults, to adjust for
    /// [`call_with`](Self::call_with).
    pub fn options(&self) -> GenerationOptions {
        self.pipeline().generation_defaults().clone()
    }

    /// Continue `prompt` (with `<image>` where the image goes) about the image at
    /// `path`, with the checkpoint's generation defaults.
    ///
    /// ```
    /// use skillset_runtime::{skillset, task::ImageTextToText, Skillset};
    ///
    /// #[skillset(family = "llava")]
    /// struct Llava;
    ///
    /// let chat = Llava::init_cpu::<ImageTextToText>("../tests/fixtures/llava-tiny")?;
    /// let prompt = "USER: <image>\nWhat is in the picture? ASSISTANT:";
    /// let out = chat.call("../tests/fixtures/media/gradient.png", prompt)?;
    /// assert!(out.generated_text.starts_with(prompt));
    /// // A prompt without `<image>`: a typed error.
    /// assert!(chat.call("../tests/fixtures/media/gradient.png", "Describe it.").is_err());
    /// # Ok::<(), skillset_runtime::Error>(())
    /// ```
    pub fn call(
        &self,
        path: impl AsRef<std::path::Path>,
        prompt: &str,
    ) -> Result<crate::ImageTextGeneration> {
        self.call_with(&open_image(path.as_ref())?, prompt, &self.options())
    }

    /// For a decoded image, with explicit generation options.
    pub fn call_with(
        &self,
        image: &crate::media::RgbImage,
        prompt: &str,
        opts: &GenerationOptions,
    ) -> Result<crate::ImageTextGeneration> {
        Ok(self
            .pipeline()
            .image_text_to_text(std::slice::from_ref(image), prompt, opts)?
            .remove(0))
    }
}
