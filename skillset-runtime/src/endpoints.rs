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

    /// Sentence embeddings: a sentence-transformers directory's own pooling and
    /// normalization (as `SentenceTransformer.encode` gives), mean pooling otherwise.
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
