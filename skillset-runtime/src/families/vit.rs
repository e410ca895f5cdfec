//! The vit family: ViT and DeiT. Patches -> linear embedding, a class token (DeiT:
//! plus a distillation token), learned positions, pre-norm transformer layers, a
//! final layer norm; image classification reads the class token.

use candle_core::{Module, Tensor};
use candle_nn::LayerNorm;

use super::encoder::{self, LayerDims, VIT_NAMES};
use super::nn::{Linear, Weights};
use super::ConfigReader;
use crate::error::{Error, Result};
use crate::Task;

pub(crate) struct VitModel {
    patch_weight: Tensor,
    patch_bias: Option<Tensor>,
    patch: usize,
    image_size: usize,
    /// The class token, then DeiT's distillation token: `[1, k, hidden]`.
    special: Tensor,
    positions: Tensor,
    layers: Vec<encoder::Layer>,
    norm: LayerNorm,
    classifier: Option<Linear>,
}

pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
    task: Task,
) -> Result<VitModel> {
    let hidden = config.usize("hidden_size")?;
    let heads = config.heads("num_attention_heads", hidden)?;
    let layers = config.usize("num_hidden_layers")?;
    let patch = config.usize("patch_size")?;
    let image_size = config.usize("image_size")?;
    let channels = config.usize_or("num_channels", 3)?;
    if patch == 0 || image_size < patch {
        return Err(config.invalid("patch_size", format!("{patch} for images of {image_size}")));
    }
    let deit = architecture.starts_with("DeiT") || config.str_or("model_type", "") == "deit";
    let base = if deit { "deit" } else { "vit" };
    // A task checkpoint nests the encoder under `vit.` / `deit.`; a bare one does not.
    let w = if weights.contains(&format!("{base}.embeddings.cls_token")) {
        weights.pp(base)
    } else {
        weights.clone()
    };
    let dims = LayerDims {
        hidden,
        heads,
        intermediate: config.usize("intermediate_size")?,
        eps: config.f64_or("layer_norm_eps", 1e-12)?,
        act: config.activation("hidden_act", "gelu")?,
        pre_norm: true,
    };
    let n_patches = (image_size / patch) * (image_size / patch);
    let emb = w.pp("embeddings");
    let pe = emb.pp("patch_embeddings.projection");
    let patch_weight = pe.get((hidden, channels, patch, patch), "weight")?;
    let patch_bias = if pe.contains("bias") {
        Some(pe.get(hidden, "bias")?)
    } else {
        None
    };
    let cls = emb.get((1, 1, hidden), "cls_token")?;
    let special = if deit {
        Tensor::cat(&[cls, emb.get((1, 1, hidden), "distillation_token")?], 1)?
    } else {
        cls
    };
    let k = special.dim(1)?;
    let positions = emb.get((1, n_patches + k, hidden), "position_embeddings")?;
    let classifier = match task {
        Task::ImageClassification => {
            Some(weights.linear(hidden, config.num_labels(), "classifier")?)
        }
        _ => None,
    };
    Ok(VitModel {
        patch_weight,
        patch_bias,
        patch,
        image_size,
        special,
        positions,
        layers: encoder::load_layers(&w, "encoder.layer", layers, dims, &VIT_NAMES)?,
        norm: w.layer_norm(hidden, dims.eps, "layernorm")?,
        classifier,
    })
}

impl VitModel {
    /// `last_hidden_state` `[b, tokens, hidden]` of `pixel_values` `[b, 3, H, W]`.
    pub fn hidden_states(&self, pixels: &Tensor) -> Result<Tensor> {
        let (b, _, h, w) = pixels.dims4()?;
        if h != self.image_size || w != self.image_size {
            return Err(Error::InvalidInput(format!(
                "the model takes {s}x{s} images, the processor made {h}x{w}: preprocessor_config.json and config.json disagree",
                s = self.image_size
            )));
        }
        let x = encoder::patch_embed(
            pixels,
            &self.patch_weight,
            self.patch_bias.as_ref(),
            self.patch,
        )?;
        let hidden = x.dim(2)?;
        let special = self
            .special
            .broadcast_as((b, self.special.dim(1)?, hidden))?;
        let x = Tensor::cat(&[&special.to_dtype(x.dtype())?, &x], 1)?;
        let x = x.broadcast_add(&self.positions)?;
        let x = encoder::run_layers(&self.layers, x, None)?;
        Ok(self.norm.forward(&x)?)
    }

    /// Classification logits `[b, labels]` from the class token.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let head = self
            .classifier
            .as_ref()
            .ok_or_else(|| Error::InvalidOption("loaded without a classifier".into()))?;
        Ok(head.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)?)
    }
}
