//! The llava family: LLaVA. A CLIP vision tower (features from one of its layers,
//! class token dropped by the `default` strategy), a two-layer projector into the
//! language model's embedding space, and a llama-family decoder whose `<image>` token
//! embeddings are replaced by the projected image features. Generation is the llama
//! family's (same stepper, cache and decoding rules).

use candle_core::{Module, Tensor};
use candle_nn::kv_cache::KvCache;

use super::causal::{CausalLm, Masks};
use super::clip::{self, VisionTower};
use super::config::{hf_config, ConfigReader};
use super::decoder::Decoder;
use super::nn::{Activation, Linear, Weights};
use super::{gemma, llama, mistral, qwen2};
use crate::error::{Error, Result};

pub(crate) struct LlavaModel {
    vision: VisionTower,
    /// `hidden_states[feature_layer]` of the tower.
    feature_layer: usize,
    /// `default`: drop the class token; `full`: keep it.
    drop_class_token: bool,
    proj1: Linear,
    proj2: Linear,
    act: Activation,
    pub llm: Decoder,
    pub image_token: u32,
}

hf_config! {
    /// `LlavaConfig` (transformers 5.23): the fields the model reads beside its towers'
    /// configs, with its defaults.
    pub(crate) struct LlavaConfig {
        #[serde(alias = "image_token_id")]
        image_token_index: u32 = 32000,
        projector_hidden_act: String = "gelu".into(),
        vision_feature_select_strategy: String = "default".into(),
        vision_feature_layer: i64 = -2,
        multimodal_projector_bias: bool = true,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: candle_core::DType,
    device: &candle_core::Device,
) -> Result<LlavaModel> {
    let vc = config.sub("vision_config")?;
    let tc = config.sub("text_config")?;
    let vision_type = vc.str_or("model_type", "clip_vision_model");
    if vision_type != "clip_vision_model" {
        return Err(vc.invalid(
            "model_type",
            format!("a `{vision_type}` vision tower: the llava family runs CLIP vision towers"),
        ));
    }
    // Hub checkpoints nest the tower as `vision_tower.vision_model.`; transformers 5
    // saves it as `vision_tower.`. The projector and decoder are under
    // `multi_modal_projector.` and `language_model.` in both.
    let vw = if weights.contains("vision_tower.vision_model.embeddings.class_embedding") {
        weights.pp("vision_tower.vision_model")
    } else if weights.contains("vision_tower.embeddings.class_embedding") {
        weights.pp("vision_tower")
    } else {
        return Err(Error::WeightMismatch {
            path: weights.path.clone(),
            reason: "no `vision_tower.` CLIP weights: expected a LlavaForConditionalGeneration checkpoint (vision_tower., multi_modal_projector., language_model.)".into(),
        });
    };
    let proj = weights.pp("multi_modal_projector");
    let lw = weights.pp("language_model");
    let vision = clip::load_vision(&vc, &vw, clip::Kind::Clip)?;
    let layers = vision.num_layers() as i64;
    let lc: LlavaConfig = config.typed()?;
    let requested = lc.vision_feature_layer;
    // hidden_states has layers + 1 entries; negative counts from the end.
    let feature_layer = if requested < 0 {
        layers + 1 + requested
    } else {
        requested
    };
    if !(0..=layers).contains(&feature_layer) {
        return Err(config.invalid(
            "vision_feature_layer",
            format!("{requested} for a tower of {layers} layers"),
        ));
    }
    let drop_class_token = match lc.vision_feature_select_strategy.as_str() {
        "default" => true,
        "full" => false,
        other => {
            return Err(config.invalid(
                "vision_feature_select_strategy",
                format!("`{other}`: expected `default` or `full`"),
            ))
        }
    };
    let load_llm = match tc.str_or("model_type", "llama") {
        "llama" => llama::load,
        "mistral" => mistral::load,
        "qwen2" => qwen2::load,
        "gemma" => gemma::load,
        other => {
            return Err(tc.invalid(
                "model_type",
                format!("a `{other}` language model: the llava family runs llama-family decoders"),
            ))
        }
    };
    let llm = load_llm(&tc, &lw, dtype, device)?;
    llm.check_lm_head(&lw)?;
    let (vh, th) = (vision.hidden(), llm.embedding_width());
    let bias = lc.multimodal_projector_bias;
    let linear = |d_in, d_out, name: &str| {
        if bias {
            proj.linear(d_in, d_out, name)
        } else {
            proj.linear_no_bias(d_in, d_out, name)
        }
    };
    Ok(LlavaModel {
        feature_layer: feature_layer as usize,
        drop_class_token,
        proj1: linear(vh, th, "linear_1")?,
        proj2: linear(th, th, "linear_2")?,
        act: config.activation_named("projector_hidden_act", &lc.projector_hidden_act)?,
        llm,
        image_token: lc.image_token_index,
        vision,
    })
}

impl LlavaModel {
    /// How many `<image>` tokens stand for one image.
    pub fn image_tokens(&self) -> usize {
        self.vision.tokens() - usize::from(self.drop_class_token)
    }

    /// Projected image features `[tokens, text hidden]` of `pixel_values` `[1, 3, H, W]`.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let h = self.vision.hidden_states(pixels, self.feature_layer)?;
        let h = if self.drop_class_token {
            h.narrow(1, 1, h.dim(1)? - 1)?
        } else {
            h
        };
        let x = self.act.forward(&self.proj1.forward(&h)?)?;
        Ok(self.proj2.forward(&x)?.squeeze(0)?)
    }
}

/// One request: the decoder with one image's features spliced in at the `<image>`
/// tokens of the prompt (the first forward pass); later steps are plain tokens.
pub(crate) struct LlavaRequest<'a> {
    pub model: &'a LlavaModel,
    pub features: Tensor,
}

impl CausalLm for LlavaRequest<'_> {
    fn num_layers(&self) -> usize {
        self.model.llm.num_layers()
    }

    fn max_positions(&self) -> usize {
        self.model.llm.max_positions()
    }

    fn sliding_window(&self) -> Option<usize> {
        self.model.llm.sliding_window()
    }

    fn recompute_past_after(&self) -> Option<usize> {
        self.model.llm.recompute_past_after()
    }

    fn forward(
        &self,
        input_ids: &Tensor,
        positions: &[Vec<u32>],
        masks: &Masks,
        cache: &mut [KvCache],
    ) -> Result<Tensor> {
        let x = self.model.llm.embed(input_ids)?;
        let ids: Vec<Vec<u32>> = input_ids.to_vec2()?;
        let image_rows: Vec<usize> = ids[0]
            .iter()
            .enumerate()
            .filter(|(_, &t)| t == self.model.image_token)
            .map(|(i, _)| i)
            .collect();
        if image_rows.is_empty() {
            return self.model.llm.forward_embeds(x, positions, masks, cache);
        }
        // One prompt, or copies of it (a beam search's rows), each with this image.
        if ids.iter().any(|r| r != &ids[0]) || image_rows.len() != self.features.dim(0)? {
            return Err(Error::InvalidInput(format!(
                "{} image tokens in the prompt for {} image features (one image per request)",
                image_rows.len(),
                self.features.dim(0)?
            )));
        }
        let copies = ids.len();
        // Runs of text embeddings and image features, in order.
        let row = x.narrow(0, 0, 1)?.squeeze(0)?;
        let mut parts = Vec::new();
        let mut start = 0;
        for (feature, &r) in image_rows.iter().enumerate() {
            if r > start {
                parts.push(row.narrow(0, start, r - start)?);
            }
            parts.push(self.features.narrow(0, feature, 1)?.to_dtype(row.dtype())?);
            start = r + 1;
        }
        if start < row.dim(0)? {
            parts.push(row.narrow(0, start, row.dim(0)? - start)?);
        }
        let x = Tensor::cat(&parts, 0)?.unsqueeze(0)?;
        let x = if copies > 1 {
            x.repeat((copies, 1, 1))?
        } else {
            x
        };
        self.model.llm.forward_embeds(x, positions, masks, cache)
    }
}
