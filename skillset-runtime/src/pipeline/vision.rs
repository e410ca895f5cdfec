//! The image tasks of [`Pipeline`]: image-classification, image-feature-extraction and
//! zero-shot-image-classification.

use candle_core::{Device, Tensor};

use super::generate::{check_generation, GenSetup};
use super::handler::{json_each, Context, Handler, Inputs, Labels};
use super::options::{RunOptions, TopK};
use crate::error::{Error, Result};
use crate::families::clip::{ClipModel, Kind, VisionTower};
use crate::families::llava::LlavaModel;
use crate::families::vit::VitModel;
use crate::generation::GenerationOptions;
use crate::media::{ImageProcessor, RgbImage};
use crate::ops::{ranked, softmax};
use crate::outputs::LabelScore;
use crate::tokenize::TextTokenizer;

/// `pixel_values` `[b, 3, H, W]` of a batch of images, on the pipeline's device in its
/// dtype.
pub(crate) fn pixel_values(
    cx: &Context,
    processor: &ImageProcessor,
    images: &[RgbImage],
) -> Result<Tensor> {
    if images.is_empty() {
        return Err(Error::InvalidInput("no image".into()));
    }
    for img in images {
        check_image(cx, processor, img)?;
    }
    let (h, w) = processor.output_size(&images[0]);
    let mut data = Vec::with_capacity(images.len() * 3 * h * w);
    for img in images {
        if processor.output_size(img) != (h, w) {
            return Err(Error::InvalidInput(
                "the images of one batch come out of the processor in different sizes".into(),
            ));
        }
        data.extend(processor.preprocess(img));
    }
    let t = Tensor::from_vec(data, (images.len(), 3, h, w), &Device::Cpu)?;
    Ok(t.to_dtype(cx.candle_dtype())?.to_device(cx.device())?)
}

/// The image and what the processor makes of it (its resize, then its crop) within the
/// pixel budget, before anything is allocated for them: a 1 x 16384 image resized to a
/// shortest edge of 224 would be 224 x 3.7M pixels.
pub(crate) fn check_image(
    cx: &Context,
    processor: &ImageProcessor,
    image: &RgbImage,
) -> Result<()> {
    let limits = &cx.limits;
    limits.check_image_pixels("pixels of input image", image.height, image.width)?;
    let (h, w) = processor.resized_size_of(image);
    limits.check_image_pixels("pixels of the processor's resized image", h, w)?;
    let (h, w) = processor.output_size(image);
    limits.check_image_pixels("pixels of the processor's output", h, w)
}

/// image-classification on a ViT-style classifier.
pub(crate) struct ImageClassifier {
    pub model: VitModel,
    pub processor: ImageProcessor,
    pub labels: Labels,
}

impl ImageClassifier {
    /// image-classification: each image's labels with softmax scores, best first.
    pub fn image_classification(
        &self,
        cx: &Context,
        images: &[RgbImage],
        top_k: TopK,
    ) -> Result<Vec<Vec<LabelScore>>> {
        let model = &self.model;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(cx.max_batch_size) {
            let hidden = model.hidden_states(&pixel_values(cx, &self.processor, chunk)?)?;
            let logits: Vec<Vec<f32>> = model
                .logits(&hidden)?
                .to_dtype(candle_core::DType::F32)?
                .to_device(&Device::Cpu)?
                .to_vec2()?;
            for row in logits {
                out.push(self.labels.rank(&softmax(&row), top_k));
            }
        }
        Ok(out)
    }
}

/// The image encoder of image-feature-extraction.
pub(crate) enum Tower {
    Vit(Box<VitModel>),
    /// A CLIP / SigLIP vision tower alone.
    Clip(Box<VisionTower>),
}

/// image-feature-extraction on an image encoder.
pub(crate) struct ImageFeatureExtractor {
    pub tower: Tower,
    pub processor: ImageProcessor,
}

impl ImageFeatureExtractor {
    /// image-feature-extraction: each image's last hidden states `[tokens][hidden]`
    /// (class token first), as transformers' pipeline returns them.
    pub fn image_features(&self, cx: &Context, images: &[RgbImage]) -> Result<Vec<Vec<Vec<f32>>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(cx.max_batch_size) {
            let pixels = pixel_values(cx, &self.processor, chunk)?;
            let hidden = match &self.tower {
                Tower::Clip(tower) => tower.last_hidden_state(&pixels)?,
                Tower::Vit(model) => model.hidden_states(&pixels)?,
            };
            let hidden = hidden
                .to_dtype(candle_core::DType::F32)?
                .to_device(&Device::Cpu)?;
            for i in 0..chunk.len() {
                out.push(hidden.get(i)?.to_vec2()?);
            }
        }
        Ok(out)
    }
}

/// transformers' default `hypothesis_template` for zero-shot image classification.
pub const DEFAULT_HYPOTHESIS_TEMPLATE: &str = "This is a photo of {}.";

/// zero-shot-image-classification on a CLIP / SigLIP dual encoder.
pub(crate) struct ZeroShotImageClassifier {
    pub model: ClipModel,
    pub processor: ImageProcessor,
    pub tok: TextTokenizer,
}

impl ZeroShotImageClassifier {
    /// Image embeddings of a CLIP/SigLIP checkpoint (`get_image_features`: projected,
    /// not normalized).
    pub fn image_embeddings(&self, cx: &Context, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let model = &self.model;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(cx.max_batch_size) {
            let e = model.image_embeds(&pixel_values(cx, &self.processor, chunk)?)?;
            out.extend(
                e.to_dtype(candle_core::DType::F32)?
                    .to_device(&Device::Cpu)?
                    .to_vec2::<f32>()?,
            );
        }
        Ok(out)
    }

    /// Text embeddings of a CLIP/SigLIP checkpoint (`get_text_features`), tokenized as
    /// the zero-shot pipeline does (SigLIP: padded to the tokenizer's maximum length).
    pub fn text_embeddings(&self, cx: &Context, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let model = &self.model;
        if texts.is_empty() {
            return Err(Error::InvalidInput("no text".into()));
        }
        let tok = &self.tok;
        let encodings = tok.encode_all(texts)?;
        let siglip = model.kind == Kind::Siglip;
        let len = if siglip {
            tok.max_length
        } else {
            encodings
                .iter()
                .map(|e| e.get_ids().len())
                .max()
                .unwrap_or(0)
        };
        let mut ids = Vec::with_capacity(texts.len());
        let mut mask = Vec::with_capacity(texts.len());
        for e in &encodings {
            let mut row: Vec<u32> = e.get_ids().iter().copied().take(len).collect();
            let mut m = vec![1u32; row.len()];
            row.resize(len, tok.pad_id);
            m.resize(len, 0);
            ids.push(row);
            mask.push(m);
        }
        // SigLIP's tokenizer gives no attention mask (its model attends to padding).
        let e = model.text_embeds(&ids, if siglip { None } else { Some(&mask) }, cx.device())?;
        Ok(e.to_dtype(candle_core::DType::F32)?
            .to_device(&Device::Cpu)?
            .to_vec2()?)
    }

    /// zero-shot-image-classification: each image's candidate labels with scores, best
    /// first (CLIP: softmax over the labels; SigLIP: independent sigmoids). The labels
    /// are put into `template` (`{}` marks the place).
    pub fn zero_shot_image_classification(
        &self,
        cx: &Context,
        images: &[RgbImage],
        labels: &[&str],
        template: Option<&str>,
    ) -> Result<Vec<Vec<LabelScore>>> {
        let model = &self.model;
        if labels.is_empty() {
            return Err(Error::InvalidInput(
                "zero-shot-image-classification needs candidate labels (--candidate-labels cat,dog)".into(),
            ));
        }
        if let Some(l) = labels.iter().find(|l| l.trim().is_empty()) {
            return Err(Error::InvalidInput(format!(
                "an empty candidate label ({l:?})"
            )));
        }
        let template = template.unwrap_or(DEFAULT_HYPOTHESIS_TEMPLATE);
        if !template.contains("{}") {
            return Err(Error::InvalidInput(format!(
                "the hypothesis template {template:?} has no `{{}}` for the label"
            )));
        }
        let texts: Vec<String> = labels
            .iter()
            .map(|l| template.replacen("{}", l, 1))
            .collect();
        let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let text = Tensor::new(self.text_embeddings(cx, &text_refs)?, &Device::Cpu)?;
        let image = Tensor::new(self.image_embeddings(cx, images)?, &Device::Cpu)?;
        let logits: Vec<Vec<f32>> = model.logits(&image, &text)?.to_vec2()?;
        Ok(logits
            .iter()
            .map(|row| {
                let scores = match model.kind {
                    Kind::Clip => softmax(row),
                    Kind::Siglip => row.iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect(),
                };
                ranked(&scores, |i| labels[i].to_string(), scores.len())
            })
            .collect())
    }
}

/// image-text-to-text on a LLaVA-style model.
pub(crate) struct ImageTextWriter {
    pub model: LlavaModel,
    pub processor: ImageProcessor,
    pub tok: TextTokenizer,
    pub setup: GenSetup,
}

impl ImageTextWriter {
    /// image-text-to-text (LLaVA): for each image, the prompt (with one `<image>` where
    /// the image goes) continued by the decoder, as transformers' pipeline returns it.
    pub fn image_text_to_text(
        &self,
        cx: &Context,
        images: &[RgbImage],
        prompt: &str,
        opts: &GenerationOptions,
    ) -> Result<Vec<crate::outputs::ImageTextGeneration>> {
        let model = &self.model;
        let tok = &self.tok;
        let image_token = tok.id_to_token(model.image_token).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the tokenizer has no token for image_token_index {}",
                model.image_token
            ))
        })?;
        match prompt.matches(image_token.as_str()).count() {
            1 => {}
            0 => {
                return Err(Error::InvalidInput(format!(
                    "the prompt has no `{image_token}`: put it where the image goes, e.g. \"USER: {image_token}\\nWhat is in the picture? ASSISTANT:\""
                )))
            }
            n => {
                return Err(Error::InvalidInput(format!(
                    "the prompt has {n} `{image_token}` tokens for one image"
                )))
            }
        }
        // The processor's expansion: one token per image feature.
        let expanded = prompt.replace(
            image_token.as_str(),
            &image_token.repeat(model.image_tokens()),
        );
        let ids = tok.encode_prompt(&expanded, true)?;
        let prompt_text = tok.decode(&ids, true)?;
        check_generation(cx, opts)?;
        let mut out = Vec::with_capacity(images.len());
        for image in images {
            let pixels = pixel_values(cx, &self.processor, std::slice::from_ref(image))?;
            let features = model.image_features(&pixels)?;
            let request = crate::families::llava::LlavaRequest { model, features };
            // A beam search decodes `num_beams` copies of the prompt.
            let rows = vec![ids.clone(); opts.num_beams.max(1)];
            let stepper = self.setup.causal_stepper(cx, tok, &request, &rows, opts)?;
            let new = if opts.num_beams > 1 {
                crate::generation::beam_generate(stepper, &ids, opts)?
            } else {
                let mut gen = crate::generation::Generator::new(
                    Box::new(stepper) as Box<dyn crate::generation::Stepper>,
                    tok,
                    vec![ids.clone()],
                    opts.clone(),
                )?;
                gen.run(&mut |_| std::ops::ControlFlow::Continue(()))?;
                gen.new_tokens()[0].clone()
            };
            // transformers decodes the whole sequence and cuts the prompt's text off,
            // which keeps the first new token's leading space.
            let full: Vec<u32> = ids.iter().chain(&new).copied().collect();
            let full_text = tok.decode(&full, true)?;
            let continuation = full_text
                .strip_prefix(prompt_text.as_str())
                .map(String::from)
                .unwrap_or_else(|| tok.decode(&new, true).unwrap_or_default());
            out.push(crate::outputs::ImageTextGeneration {
                input_text: prompt.to_string(),
                generated_text: format!("{prompt}{continuation}"),
                token_ids: new,
            });
        }
        Ok(out)
    }
}

impl Handler for ImageClassifier {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let images = inputs.images(cx.task)?;
        Ok(json_each(&self.image_classification(
            cx,
            images,
            opts.top_k.unwrap_or(TopK::N(5)),
        )?))
    }
    fn labels(&self) -> &[String] {
        &self.labels.0
    }
    fn image_processor(&self) -> Option<&ImageProcessor> {
        Some(&self.processor)
    }
}

impl Handler for ImageFeatureExtractor {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        _opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let images = inputs.images(cx.task)?;
        Ok(json_each(&self.image_features(cx, images)?))
    }
    fn image_processor(&self) -> Option<&ImageProcessor> {
        Some(&self.processor)
    }
}

impl Handler for ZeroShotImageClassifier {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let images = inputs.images(cx.task)?;
        let labels: Vec<&str> = opts
            .candidate_labels
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let mut ranked = self.zero_shot_image_classification(
            cx,
            images,
            &labels,
            opts.hypothesis_template.as_deref(),
        )?;
        if let Some(k) = opts.top_k {
            for r in &mut ranked {
                r.truncate(k.take(r.len()));
            }
        }
        Ok(json_each(&ranked))
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
    fn image_processor(&self) -> Option<&ImageProcessor> {
        Some(&self.processor)
    }
}

impl Handler for ImageTextWriter {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let images = inputs.images(cx.task)?;
        let prompt = opts.text.as_deref().ok_or_else(|| {
            Error::InvalidInput(
                "image-text-to-text needs a prompt with `<image>` in it (--text)".into(),
            )
        })?;
        let gen = opts.generation(&self.setup.defaults)?;
        Ok(json_each(
            &self.image_text_to_text(cx, images, prompt, &gen)?,
        ))
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
    fn image_processor(&self) -> Option<&ImageProcessor> {
        Some(&self.processor)
    }
    fn generation_defaults(&self) -> Option<&GenerationOptions> {
        Some(&self.setup.defaults)
    }
}
