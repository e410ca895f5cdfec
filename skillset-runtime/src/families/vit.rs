//! The vit family: ViT, DeiT and DINOv2. Patches -> linear embedding, a class token
//! (DeiT: plus a distillation token), learned positions, pre-norm transformer layers, a
//! final layer norm. Image classification reads the class token (DINOv2: the class token
//! and the mean of the patch tokens). DINOv2 scales each branch per channel (layer scale)
//! and interpolates its position embeddings to the image's patch grid.

use super::nn::LayerNorm;
use candle_core::{DType, Module, Tensor};

use super::config::{hf_config, ConfigReader};
use super::encoder::{self, LayerDims, DINOV2_NAMES, VIT_NAMES};
use super::nn::{Linear, Weights};
use crate::error::{Error, Result};
use crate::Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Vit,
    Deit,
    Dinov2,
}

impl Variant {
    fn of(architecture: &str, model_type: &str) -> Self {
        if architecture.starts_with("DeiT") || model_type == "deit" {
            Variant::Deit
        } else if architecture.starts_with("Dinov2") || model_type == "dinov2" {
            Variant::Dinov2
        } else {
            Variant::Vit
        }
    }

    /// Where a task checkpoint nests the encoder.
    fn prefix(self) -> &'static str {
        match self {
            Variant::Vit => "vit",
            Variant::Deit => "deit",
            Variant::Dinov2 => "dinov2",
        }
    }
}

hf_config! {
    /// `ViTConfig` and `DeiTConfig` (transformers 5.23, the same defaults): the fields
    /// the model reads.
    pub(crate) struct ViTConfig {
        hidden_size: usize = 768,
        num_hidden_layers: usize = 12,
        num_attention_heads: usize = 12,
        intermediate_size: usize = 3072,
        hidden_act: String = "gelu".into(),
        layer_norm_eps: f64 = 1e-12,
        image_size: usize = 224,
        patch_size: usize = 16,
        num_channels: usize = 3,
    }
}

hf_config! {
    /// `Dinov2Config` (transformers 5.23): the fields the model reads.
    pub(crate) struct Dinov2Config {
        hidden_size: usize = 768,
        num_hidden_layers: usize = 12,
        num_attention_heads: usize = 12,
        mlp_ratio: f64 = 4.0,
        hidden_act: String = "gelu".into(),
        layer_norm_eps: f64 = 1e-6,
        image_size: usize = 224,
        patch_size: usize = 14,
        num_channels: usize = 3,
        use_swiglu_ffn: bool = false,
    }
}

pub(crate) struct VitModel {
    variant: Variant,
    patch_weight: Tensor,
    patch_bias: Option<Tensor>,
    patch: usize,
    image_size: usize,
    /// The class token, then DeiT's distillation token: `[1, k, hidden]`.
    special: Tensor,
    positions: Tensor,
    /// DINOv2: the patch position table on the CPU in f32 (`[grid * grid, hidden]`,
    /// row-major over the grid), for the interpolation to other grids.
    patch_positions: Option<(Vec<f32>, usize)>,
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
    let variant = Variant::of(architecture, config.str_or("model_type", ""));
    // (hidden, heads, layers, intermediate, act, eps, image size, patch, channels)
    let (hidden, heads, layers, intermediate, act, eps, image_size, patch, channels) = if variant
        == Variant::Dinov2
    {
        let v: Dinov2Config = config.typed()?;
        if v.use_swiglu_ffn {
            return Err(config.invalid(
                    "use_swiglu_ffn",
                    "true (DINOv2 giant's SwiGLU feed-forward) is not supported yet; the vit family runs DINOv2 with the GELU MLP (small, base, large)".to_string(),
                ));
        }
        let ratio = v.mlp_ratio;
        let intermediate = (v.hidden_size as f64 * ratio) as usize;
        let (h, eps) = (v.hidden_size, v.layer_norm_eps);
        (
            h,
            v.num_attention_heads,
            v.num_hidden_layers,
            intermediate,
            v.hidden_act,
            eps,
            v.image_size,
            v.patch_size,
            v.num_channels,
        )
    } else {
        let v: ViTConfig = config.typed()?;
        let (h, eps) = (v.hidden_size, v.layer_norm_eps);
        (
            h,
            v.num_attention_heads,
            v.num_hidden_layers,
            v.intermediate_size,
            v.hidden_act,
            eps,
            v.image_size,
            v.patch_size,
            v.num_channels,
        )
    };
    let heads = config.check_heads("num_attention_heads", heads, hidden)?;
    if patch == 0 || image_size < patch {
        return Err(config.invalid("patch_size", format!("{patch} for images of {image_size}")));
    }
    let base = variant.prefix();
    // A task checkpoint nests the encoder under `vit.` / `deit.` / `dinov2.`; a bare one
    // does not.
    let w = if weights.contains(&format!("{base}.embeddings.cls_token")) {
        weights.pp(base)
    } else {
        weights.clone()
    };
    let dims = LayerDims {
        hidden,
        heads,
        intermediate,
        eps: config.check_eps("layer_norm_eps", eps)?,
        act: config.activation_named("hidden_act", &act)?,
        pre_norm: true,
    };
    let grid = image_size / patch;
    let n_patches = grid * grid;
    let emb = w.pp("embeddings");
    let pe = emb.pp("patch_embeddings.projection");
    let patch_weight = pe.get((hidden, channels, patch, patch), "weight")?;
    let patch_bias = if pe.contains("bias") {
        Some(pe.get(hidden, "bias")?)
    } else {
        None
    };
    let cls = emb.get((1, 1, hidden), "cls_token")?;
    let special = if variant == Variant::Deit {
        Tensor::cat(&[cls, emb.get((1, 1, hidden), "distillation_token")?], 1)?
    } else {
        cls
    };
    let k = special.dim(1)?;
    let positions = emb.get((1, n_patches + k, hidden), "position_embeddings")?;
    let patch_positions = if variant == Variant::Dinov2 {
        let table = positions
            .narrow(1, k, n_patches)?
            .squeeze(0)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Some((table, grid))
    } else {
        None
    };
    let classifier = match task {
        Task::ImageClassification => {
            let inputs = if variant == Variant::Dinov2 {
                2 * hidden
            } else {
                hidden
            };
            Some(weights.linear(inputs, config.num_labels(), "classifier")?)
        }
        _ => None,
    };
    let names = if variant == Variant::Dinov2 {
        &DINOV2_NAMES
    } else {
        &VIT_NAMES
    };
    Ok(VitModel {
        variant,
        patch_weight,
        patch_bias,
        patch,
        image_size,
        special,
        positions,
        patch_positions,
        layers: encoder::load_layers(&w, "encoder.layer", layers, dims, names)?,
        norm: w.layer_norm(hidden, dims.eps, "layernorm")?,
        classifier,
    })
}

/// torch's cubic convolution coefficients (`A = -0.75`) for a fractional offset `t`.
fn cubic_coefficients(t: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// For each output index: the four clamped source indices and their weights, as
/// `torch.nn.functional.interpolate(mode="bicubic", align_corners=False)` takes them.
fn bicubic_taps(input: usize, output: usize) -> Vec<([usize; 4], [f64; 4])> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|i| {
            let real = (scale * (i as f32 + 0.5) - 0.5) as f64;
            let index = (real.floor() as i64).min(input as i64 - 1);
            let t = (real - index as f64).clamp(0.0, 1.0);
            let tap = |j: i64| (index - 1 + j).clamp(0, input as i64 - 1) as usize;
            ([tap(0), tap(1), tap(2), tap(3)], cubic_coefficients(t))
        })
        .collect()
}

/// Bicubic interpolation of a `[grid * grid, dim]` table to `[h * w, dim]` (f32 in and
/// out, as transformers interpolates DINOv2's positions in f32 whatever the dtype).
fn interpolate_positions(table: &[f32], grid: usize, dim: usize, h: usize, w: usize) -> Vec<f32> {
    let rows = bicubic_taps(grid, h);
    let cols = bicubic_taps(grid, w);
    let mut out = vec![0f32; h * w * dim];
    let mut acc = vec![0f64; dim];
    for (y, (ry, wy)) in rows.iter().enumerate() {
        for (x, (cx, wx)) in cols.iter().enumerate() {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for (&sy, &fy) in ry.iter().zip(wy) {
                for (&sx, &fx) in cx.iter().zip(wx) {
                    let f = fy * fx;
                    let src = &table[(sy * grid + sx) * dim..][..dim];
                    for (a, &v) in acc.iter_mut().zip(src) {
                        *a += f * v as f64;
                    }
                }
            }
            let dst = &mut out[(y * w + x) * dim..][..dim];
            for (d, a) in dst.iter_mut().zip(&acc) {
                *d = *a as f32;
            }
        }
    }
    out
}

impl VitModel {
    /// The position embeddings for a `gh x gw` patch grid: as stored where it is the
    /// trained grid, else (DINOv2) the patch positions interpolated to it.
    fn positions_for(&self, gh: usize, gw: usize) -> Result<Tensor> {
        let Some((table, grid)) = &self.patch_positions else {
            return Ok(self.positions.clone());
        };
        if gh == *grid && gw == *grid {
            return Ok(self.positions.clone());
        }
        let dim = self.positions.dim(2)?;
        let patches = interpolate_positions(table, *grid, dim, gh, gw);
        let patches = Tensor::from_vec(patches, (1, gh * gw, dim), self.positions.device())?
            .to_dtype(self.positions.dtype())?;
        let cls = self.positions.narrow(1, 0, 1)?;
        Ok(Tensor::cat(&[&cls, &patches], 1)?)
    }

    /// `last_hidden_state` `[b, tokens, hidden]` of `pixel_values` `[b, 3, H, W]`.
    pub fn hidden_states(&self, pixels: &Tensor) -> Result<Tensor> {
        let (b, _, h, w) = pixels.dims4()?;
        if self.variant == Variant::Dinov2 {
            if h % self.patch != 0 || w % self.patch != 0 || h == 0 || w == 0 {
                return Err(Error::InvalidInput(format!(
                    "the processor made {h}x{w} images, which {p}x{p} patches do not tile: set preprocessor_config.json's crop_size to a multiple of {p}",
                    p = self.patch
                )));
            }
        } else if h != self.image_size || w != self.image_size {
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
        let x = x.broadcast_add(&self.positions_for(h / self.patch, w / self.patch)?)?;
        let x = encoder::run_layers(&self.layers, x, None)?;
        Ok(self.norm.forward(&x)?)
    }

    /// Classification logits `[b, labels]` from the class token (DINOv2: the class token
    /// and the mean of the patch tokens, concatenated).
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let head = self
            .classifier
            .as_ref()
            .ok_or_else(|| Error::InvalidOption("loaded without a classifier".into()))?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let input = if self.variant == Variant::Dinov2 {
            let tokens = hidden.dim(1)?;
            let mean = hidden
                .narrow(1, 1, tokens - 1)?
                .to_dtype(DType::F32)?
                .mean(1)?
                .to_dtype(hidden.dtype())?;
            Tensor::cat(&[&cls, &mean], 1)?
        } else {
            cls
        };
        Ok(head.forward(&input)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_coefficients_sum_to_one_and_interpolate() {
        for t in [0.0, 0.25, 0.5, 0.9] {
            let c = cubic_coefficients(t);
            assert!((c.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{t}: {c:?}");
        }
        assert_eq!(cubic_coefficients(0.0), [0.0, 1.0, 0.0, 0.0]);
        // The same grid comes back unchanged; a constant table stays constant.
        let table: Vec<f32> = (0..9 * 2).map(|i| i as f32 * 0.5).collect();
        assert_eq!(interpolate_positions(&table, 3, 2, 3, 3), table);
        let ones = vec![1f32; 16 * 3];
        let out = interpolate_positions(&ones, 4, 3, 2, 5);
        assert!(out.iter().all(|v| (v - 1.0).abs() < 1e-6), "{out:?}");
    }
}
