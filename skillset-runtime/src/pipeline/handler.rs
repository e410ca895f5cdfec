//! Per-task handlers. A pipeline builds one at load time for its one task (as TEI
//! builds its backend for one kind of model), and the handler owns only what that
//! task needs: its model (with the task's head), its tokenizer or processor, its
//! labels, its generation defaults. What every task shares (device, dtype, budget,
//! batch size) is the pipeline's [`Context`].

use std::any::Any;
use std::path::PathBuf;

use candle_core::Device;

use crate::device::{DType, ResolvedDevice};
use crate::error::{Error, Result};
use crate::generation::GenerationOptions;
use crate::media::{Audio, ImageProcessor, RgbImage};
use crate::ops::{ranked, softmax};
use crate::outputs::LabelScore;
use crate::pooling::SentenceTransformersConfig;
use crate::speech::AudioFrontEnd;
use crate::tokenize::{EncodedBatch, TextTokenizer};
use crate::Task;

use super::options::{RunOptions, TopK};

/// What every handler of a pipeline shares: the task, where and how it runs.
pub(crate) struct Context {
    pub task: Task,
    pub device: ResolvedDevice,
    pub dtype: DType,
    pub limits: crate::Limits,
    /// Inputs per forward pass.
    pub max_batch_size: usize,
    /// The checkpoint directory (for messages).
    pub dir: PathBuf,
}

impl Context {
    pub fn device(&self) -> &Device {
        &self.device.device
    }

    pub fn candle_dtype(&self) -> candle_core::DType {
        self.dtype.to_candle()
    }
}

/// A task's inputs, decoded.
pub(crate) enum Inputs<'a> {
    Text(&'a [&'a str]),
    Images(&'a [RgbImage]),
    Audio(&'a [Audio]),
}

impl<'a> Inputs<'a> {
    /// The texts of a text task's inputs.
    pub fn texts(self, task: Task) -> Result<&'a [&'a str]> {
        match self {
            Inputs::Text(t) => Ok(t),
            other => Err(other.wrong_kind(task)),
        }
    }

    /// The images of an image task's inputs.
    pub fn images(self, task: Task) -> Result<&'a [RgbImage]> {
        match self {
            Inputs::Images(i) => Ok(i),
            other => Err(other.wrong_kind(task)),
        }
    }

    /// The audio of an audio task's inputs.
    pub fn audio(self, task: Task) -> Result<&'a [Audio]> {
        match self {
            Inputs::Audio(a) => Ok(a),
            other => Err(other.wrong_kind(task)),
        }
    }

    /// The error of a handler given inputs of a kind its task does not read.
    pub fn wrong_kind(&self, task: Task) -> Error {
        let kind = match self {
            Inputs::Text(_) => "text",
            Inputs::Images(_) => "images",
            Inputs::Audio(_) => "audio",
        };
        Error::InvalidInput(format!("`{task}` does not read {kind}"))
    }
}

/// The handler of one task: built at load time, it runs the task on decoded inputs
/// and says which of the pipeline's parts it has. `Any`, so that the pipeline's typed
/// methods reach the handler type they need.
pub(crate) trait Handler: Send + Sync + Any {
    /// Run the task and return one JSON value per input, in the schema of
    /// transformers' `pipeline()`.
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>>;

    /// The text tokenizer, for a task that reads or writes text.
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        None
    }
    /// `id2label` in id order, for a classification task.
    fn labels(&self) -> &[String] {
        &[]
    }
    /// The image processor, for a task that reads images.
    fn image_processor(&self) -> Option<&ImageProcessor> {
        None
    }
    /// The feature extractor, for a task that reads audio.
    fn audio_front_end(&self) -> Option<&AudioFrontEnd> {
        None
    }
    /// The checkpoint's generation defaults, for a task that generates.
    fn generation_defaults(&self) -> Option<&GenerationOptions> {
        None
    }
    /// The sentence-transformers configuration, for feature-extraction.
    fn sentence_transformers(&self) -> Option<&SentenceTransformersConfig> {
        None
    }
}

/// One JSON value per output, as `run` returns them.
pub(crate) fn json_each<T: serde::Serialize>(outputs: &[T]) -> Vec<serde_json::Value> {
    outputs.iter().map(crate::ops::to_json).collect()
}

/// How text-classification turns logits into scores (transformers' rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScoreFn {
    Softmax,
    Sigmoid,
    Identity,
}

impl ScoreFn {
    /// transformers' choice from config.json's `problem_type` and the label count.
    pub fn of(problem_type: &str, labels: usize) -> Self {
        match problem_type {
            "regression" => ScoreFn::Identity,
            "multi_label_classification" => ScoreFn::Sigmoid,
            _ if labels == 1 => ScoreFn::Sigmoid,
            _ => ScoreFn::Softmax,
        }
    }

    pub fn apply(self, row: &[f32]) -> Vec<f32> {
        match self {
            ScoreFn::Identity => row.to_vec(),
            ScoreFn::Sigmoid => row.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
            ScoreFn::Softmax => softmax(row),
        }
    }
}

/// A classifier's labels: config.json's `id2label` in id order.
pub(crate) struct Labels(pub Vec<String>);

impl Labels {
    /// The label of class `i` (`LABEL_i` past `id2label`, as transformers names it).
    pub fn name(&self, i: usize) -> String {
        self.0
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("LABEL_{i}"))
    }

    /// The labels with scores, best first.
    pub fn rank(&self, scores: &[f32], top_k: TopK) -> Vec<LabelScore> {
        ranked(scores, |i| self.name(i), top_k.take(scores.len()))
    }
}

/// Run `f` on batches of at most `max_batch_size` texts, returning the outputs in
/// input order. More texts than fit one batch are sorted by token count first
/// (longest first, as sentence-transformers' `encode` does), so that each batch pads
/// to nearly its own length instead of computing padding.
pub(crate) fn chunked<T>(
    cx: &Context,
    tok: &TextTokenizer,
    texts: &[&str],
    mut f: impl FnMut(&[&str], EncodedBatch) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    if texts.len() <= cx.max_batch_size {
        let batch = tok.encode_batch(texts, cx.device())?;
        return f(texts, batch);
    }
    let encodings = tok.encode_all(texts)?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
    let mut encodings: Vec<Option<_>> = encodings.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = (0..texts.len()).map(|_| None).collect();
    for group in order.chunks(cx.max_batch_size) {
        let chunk: Vec<&str> = group.iter().map(|&i| texts[i]).collect();
        let encs: Vec<_> = group.iter().filter_map(|&i| encodings[i].take()).collect();
        let results = f(&chunk, tok.pad(encs, cx.device())?)?;
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
