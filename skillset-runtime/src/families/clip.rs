//! The clip family: contrastive image-text dual encoders. CLIP (class token, pre- and
//! post-layernorm, causal text encoder pooled at the end-of-text token, projections,
//! softmax over the labels) and SigLIP (no class token, attention-pooling head, text
//! pooled at the last position, sigmoid scores). Every size comes from config.json's
//! `vision_config` / `text_config`.

use super::nn::LayerNorm;
use candle_core::{DType, Device, Module, Tensor, D};

use super::config::{hf_config, ConfigReader};
use super::encoder::{self, Attention, LayerDims, CLIP_NAMES};
use super::nn::{self, Activation, Linear, Weights};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Clip,
    Siglip,
}

/// SigLIP's multihead attention pooling: a learned probe attends over the tokens.
struct MapHead {
    probe: Tensor,
    attn: Attention,
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    act: Activation,
}

pub(crate) struct VisionTower {
    kind: Kind,
    patch_weight: Tensor,
    patch_bias: Option<Tensor>,
    patch: usize,
    image_size: usize,
    class_embedding: Option<Tensor>,
    positions: Tensor,
    pre_norm: Option<LayerNorm>,
    layers: Vec<encoder::Layer>,
    post_norm: LayerNorm,
    head: Option<MapHead>,
    projection: Option<Linear>,
}

#[derive(Debug, Clone, Copy)]
enum TextPool {
    /// The first end-of-text token (CLIP with a real `eos_token_id`).
    Eos(u32),
    /// The largest id (CLIP's legacy rule, when `eos_token_id` is 2).
    ArgMax,
    /// The last position (SigLIP).
    Last,
}

struct TextTower {
    tokens: candle_nn::Embedding,
    positions: Tensor,
    layers: Vec<encoder::Layer>,
    final_norm: LayerNorm,
    causal: bool,
    pool: TextPool,
    head: Option<Linear>,
    projection: Option<Linear>,
    max_positions: usize,
}

pub(crate) struct ClipModel {
    pub kind: Kind,
    vision: VisionTower,
    text: TextTower,
    logit_scale: f64,
    logit_bias: f64,
}

hf_config! {
    /// The fields of a tower's config (`text_config`, `vision_config`, or the root of a
    /// tower alone), as given: a missing (or `null`) field takes the tower class's
    /// default ([`TowerDefaults`]), one of the wrong type is an error naming it.
    pub(crate) struct TowerFields {
        vocab_size: Option<usize> = None,
        hidden_size: Option<usize> = None,
        intermediate_size: Option<usize> = None,
        num_hidden_layers: Option<usize> = None,
        num_attention_heads: Option<usize> = None,
        max_position_embeddings: Option<usize> = None,
        hidden_act: Option<String> = None,
        layer_norm_eps: Option<f64> = None,
        image_size: Option<usize> = None,
        patch_size: Option<usize> = None,
        num_channels: Option<usize> = None,
        /// SigLIP's text head width (`None`: the hidden size).
        projection_size: Option<usize> = None,
        vision_use_head: Option<bool> = None,
    }
}

/// A tower config class's defaults (transformers 5.23; checked against
/// `tests/config_defaults.json` by the defaults test in `families`). `None` for a field
/// the class does not have.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TowerDefaults {
    #[cfg_attr(not(test), allow(dead_code))]
    pub class: &'static str,
    pub vocab_size: Option<usize>,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: Option<usize>,
    pub hidden_act: &'static str,
    pub layer_norm_eps: f64,
    pub image_size: Option<usize>,
    pub patch_size: Option<usize>,
    pub num_channels: Option<usize>,
}

/// `CLIPTextConfig`'s defaults.
pub(crate) const CLIP_TEXT: TowerDefaults = TowerDefaults {
    class: "CLIPTextConfig",
    vocab_size: Some(49408),
    hidden_size: 512,
    intermediate_size: 2048,
    num_hidden_layers: 12,
    num_attention_heads: 8,
    max_position_embeddings: Some(77),
    hidden_act: "quick_gelu",
    layer_norm_eps: 1e-5,
    image_size: None,
    patch_size: None,
    num_channels: None,
};
/// `CLIPVisionConfig`'s defaults.
pub(crate) const CLIP_VISION: TowerDefaults = TowerDefaults {
    class: "CLIPVisionConfig",
    vocab_size: None,
    hidden_size: 768,
    intermediate_size: 3072,
    num_attention_heads: 12,
    max_position_embeddings: None,
    image_size: Some(224),
    patch_size: Some(32),
    num_channels: Some(3),
    ..CLIP_TEXT
};
/// `SiglipTextConfig`'s defaults.
pub(crate) const SIGLIP_TEXT: TowerDefaults = TowerDefaults {
    class: "SiglipTextConfig",
    vocab_size: Some(32000),
    hidden_size: 768,
    intermediate_size: 3072,
    num_attention_heads: 12,
    max_position_embeddings: Some(64),
    hidden_act: "gelu_pytorch_tanh",
    layer_norm_eps: 1e-6,
    ..CLIP_TEXT
};
/// `SiglipVisionConfig`'s defaults.
pub(crate) const SIGLIP_VISION: TowerDefaults = TowerDefaults {
    class: "SiglipVisionConfig",
    vocab_size: None,
    max_position_embeddings: None,
    image_size: Some(224),
    patch_size: Some(16),
    num_channels: Some(3),
    ..SIGLIP_TEXT
};

/// A tower's config resolved over its class's defaults.
struct Tower {
    dims: LayerDims,
    layers: usize,
    fields: TowerFields,
    defaults: &'static TowerDefaults,
}

impl Tower {
    fn read(c: &ConfigReader, d: &'static TowerDefaults) -> Result<Self> {
        let f: TowerFields = c.typed()?;
        let hidden = f.hidden_size.unwrap_or(d.hidden_size);
        let heads = f.num_attention_heads.unwrap_or(d.num_attention_heads);
        let act = f.hidden_act.as_deref().unwrap_or(d.hidden_act);
        Ok(Tower {
            dims: LayerDims {
                hidden,
                heads: c.check_heads("num_attention_heads", heads, hidden)?,
                intermediate: f.intermediate_size.unwrap_or(d.intermediate_size),
                eps: c.check_eps(
                    "layer_norm_eps",
                    f.layer_norm_eps.unwrap_or(d.layer_norm_eps),
                )?,
                act: c.activation_named("hidden_act", act)?,
                pre_norm: true,
            },
            layers: f.num_hidden_layers.unwrap_or(d.num_hidden_layers),
            fields: f,
            defaults: d,
        })
    }

    /// A size only one kind of tower has (its class's default where absent).
    fn size(
        &self,
        c: &ConfigReader,
        key: &str,
        given: Option<usize>,
        default: Option<usize>,
    ) -> Result<usize> {
        given.or(default).ok_or_else(|| {
            c.invalid(
                key,
                format!("is missing ({} has no default)", self.defaults.class),
            )
        })
    }
}

fn tower_defaults(kind: Kind, vision: bool) -> &'static TowerDefaults {
    match (kind, vision) {
        (Kind::Clip, false) => &CLIP_TEXT,
        (Kind::Clip, true) => &CLIP_VISION,
        (Kind::Siglip, false) => &SIGLIP_TEXT,
        (Kind::Siglip, true) => &SIGLIP_VISION,
    }
}

/// A CLIP or SigLIP vision tower from its config (`vision_config`) and weights
/// (`vision_model.`), without CLIP's `visual_projection` (the caller adds it).
pub(crate) fn load_vision(vc: &ConfigReader, vw: &Weights, kind: Kind) -> Result<VisionTower> {
    let t = Tower::read(vc, tower_defaults(kind, true))?;
    let (vd, vlayers) = (t.dims, t.layers);
    let patch = t.size(vc, "patch_size", t.fields.patch_size, t.defaults.patch_size)?;
    let image_size = t.size(vc, "image_size", t.fields.image_size, t.defaults.image_size)?;
    if patch == 0 || image_size < patch {
        return Err(vc.invalid("patch_size", format!("{patch} for images of {image_size}")));
    }
    let n_patches = (image_size / patch).pow(2);
    let emb = vw.pp("embeddings");
    let channels = t.size(
        vc,
        "num_channels",
        t.fields.num_channels,
        t.defaults.num_channels,
    )?;
    let patch_weight = emb.get(
        (vd.hidden, channels, patch, patch),
        "patch_embedding.weight",
    )?;
    let patch_bias = if emb.contains("patch_embedding.bias") {
        Some(emb.get(vd.hidden, "patch_embedding.bias")?)
    } else {
        None
    };
    let class_embedding = match kind {
        Kind::Clip => Some(
            emb.get(vd.hidden, "class_embedding")?
                .reshape((1, 1, vd.hidden))?,
        ),
        Kind::Siglip => None,
    };
    let n_pos = n_patches + usize::from(class_embedding.is_some());
    let positions = emb
        .get((n_pos, vd.hidden), "position_embedding.weight")?
        .unsqueeze(0)?;
    let pre_norm = match kind {
        // Sic: transformers' CLIP names it `pre_layrnorm`.
        Kind::Clip => Some(vw.layer_norm(vd.hidden, vd.eps, "pre_layrnorm")?),
        Kind::Siglip => None,
    };
    let head = if kind == Kind::Siglip && t.fields.vision_use_head.unwrap_or(true) {
        let h = vw.pp("head");
        let in_w = h.get((3 * vd.hidden, vd.hidden), "attention.in_proj_weight")?;
        let in_b = h.get(3 * vd.hidden, "attention.in_proj_bias")?;
        let part = |i: usize| -> Result<Linear> {
            Ok(Linear::new(
                in_w.narrow(0, i * vd.hidden, vd.hidden)?.contiguous()?,
                Some(in_b.narrow(0, i * vd.hidden, vd.hidden)?.contiguous()?),
            ))
        };
        Some(MapHead {
            probe: h.get((1, 1, vd.hidden), "probe")?,
            attn: Attention {
                q: part(0)?,
                k: part(1)?,
                v: part(2)?,
                out: h.linear(vd.hidden, vd.hidden, "attention.out_proj")?,
                heads: vd.heads,
                scale: ((vd.hidden / vd.heads) as f64).powf(-0.5),
                f32_scores: false,
            },
            norm: h.layer_norm(vd.hidden, vd.eps, "layernorm")?,
            fc1: h.linear(vd.hidden, vd.intermediate, "mlp.fc1")?,
            fc2: h.linear(vd.intermediate, vd.hidden, "mlp.fc2")?,
            act: vd.act,
        })
    } else {
        None
    };
    Ok(VisionTower {
        kind,
        patch_weight,
        patch_bias,
        patch,
        image_size,
        class_embedding,
        positions,
        pre_norm,
        layers: encoder::load_layers(vw, "encoder.layers", vlayers, vd, &CLIP_NAMES)?,
        post_norm: vw.layer_norm(vd.hidden, vd.eps, "post_layernorm")?,
        head,
        projection: None,
    })
}

/// A vision tower alone (`CLIPVisionModel`, `SiglipVisionModel`): its config at the
/// root of config.json, its weights at the root (transformers 5) or under
/// `vision_model.` (checkpoints saved by transformers 4).
pub(crate) fn load_vision_model(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
) -> Result<VisionTower> {
    let model_type = config.str_or("model_type", "");
    if config.sub("vision_config").is_ok() {
        return Err(Error::InvalidOption(format!(
            "image-feature-extraction runs a vision tower alone (CLIPVisionModel, SiglipVisionModel); this `{model_type}` checkpoint is a dual encoder: run zero-shot-image-classification, or take its image embeddings"
        )));
    }
    let kind = if architecture.starts_with("Siglip") || model_type.starts_with("siglip") {
        Kind::Siglip
    } else {
        Kind::Clip
    };
    let w = if weights.contains("vision_model.embeddings.patch_embedding.weight") {
        weights.pp("vision_model")
    } else {
        weights.clone()
    };
    load_vision(config, &w, kind)
}

pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
) -> Result<ClipModel> {
    let kind = if architecture.starts_with("Siglip") {
        Kind::Siglip
    } else {
        Kind::Clip
    };
    let vc = config.sub("vision_config")?;
    let mut vision = load_vision(&vc, &weights.pp("vision_model"), kind)?;
    // Text tower.
    let tc = config.sub("text_config")?;
    let t = Tower::read(&tc, tower_defaults(kind, false))?;
    let (td, tlayers) = (t.dims, t.layers);
    let tw = weights.pp("text_model");
    let vocab = t.size(
        &tc,
        "vocab_size",
        t.fields.vocab_size,
        t.defaults.vocab_size,
    )?;
    let max_positions = t.size(
        &tc,
        "max_position_embeddings",
        t.fields.max_position_embeddings,
        t.defaults.max_position_embeddings,
    )?;
    let projection_dim = config.usize_or("projection_dim", 512)?;
    let pool = match kind {
        Kind::Siglip => TextPool::Last,
        // transformers: the legacy rule (largest id) when `eos_token_id` is 2, else the
        // first end-of-text token (49407, CLIP's, by default).
        Kind::Clip => match tc.value.get("eos_token_id").and_then(|v| v.as_u64()) {
            Some(2) => TextPool::ArgMax,
            Some(id) => TextPool::Eos(id as u32),
            None => TextPool::Eos(49407),
        },
    };
    let text = TextTower {
        tokens: tw.embedding(vocab, td.hidden, "embeddings.token_embedding")?,
        positions: tw.get(
            (max_positions, td.hidden),
            "embeddings.position_embedding.weight",
        )?,
        layers: encoder::load_layers(&tw, "encoder.layers", tlayers, td, &CLIP_NAMES)?,
        final_norm: tw.layer_norm(td.hidden, td.eps, "final_layer_norm")?,
        causal: kind == Kind::Clip,
        pool,
        head: match kind {
            Kind::Siglip => {
                let out = t.fields.projection_size.unwrap_or(td.hidden);
                Some(tw.linear(td.hidden, out, "head")?)
            }
            Kind::Clip => None,
        },
        projection: match kind {
            Kind::Clip => {
                Some(weights.linear_no_bias(td.hidden, projection_dim, "text_projection")?)
            }
            Kind::Siglip => None,
        },
        max_positions,
    };
    let scalar = |name: &str| -> Result<f64> {
        let t = weights.get(1, name).or_else(|_| weights.get((), name))?;
        Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?[0])
    };
    if kind == Kind::Clip {
        let hidden = vision.hidden();
        vision.projection =
            Some(weights.linear_no_bias(hidden, projection_dim, "visual_projection")?);
    }
    let logit_scale = scalar("logit_scale")?;
    let logit_bias = match kind {
        Kind::Siglip => scalar("logit_bias")?,
        Kind::Clip => 0.0,
    };
    Ok(ClipModel {
        kind,
        vision,
        text,
        logit_scale,
        logit_bias,
    })
}

impl VisionTower {
    /// The width of its hidden states.
    pub fn hidden(&self) -> usize {
        self.positions.dims()[2]
    }

    /// The number of transformer layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The tokens per image the tower outputs (patches, plus CLIP's class token).
    pub fn tokens(&self) -> usize {
        (self.image_size / self.patch).pow(2) + usize::from(self.class_embedding.is_some())
    }

    /// `hidden_states[layers]` in transformers' numbering (0: the embeddings after
    /// CLIP's pre-layernorm; `n`: after `n` layers), `[b, tokens, hidden]`, before the
    /// post-layernorm.
    pub fn hidden_states(&self, pixels: &Tensor, layers: usize) -> Result<Tensor> {
        let (b, _, h, w) = pixels.dims4()?;
        if h != self.image_size || w != self.image_size {
            return Err(Error::InvalidInput(format!(
                "the model takes {s}x{s} images, the processor made {h}x{w}: preprocessor_config.json and config.json disagree",
                s = self.image_size
            )));
        }
        let mut x = encoder::patch_embed(
            pixels,
            &self.patch_weight,
            self.patch_bias.as_ref(),
            self.patch,
        )?;
        let hidden = x.dim(2)?;
        if let Some(cls) = &self.class_embedding {
            let cls = cls.broadcast_as((b, 1, hidden))?.to_dtype(x.dtype())?;
            x = Tensor::cat(&[&cls, &x], 1)?;
        }
        x = x.broadcast_add(&self.positions)?;
        if let Some(norm) = &self.pre_norm {
            x = norm.forward(&x)?;
        }
        encoder::run_layers(&self.layers[..layers.min(self.layers.len())], x, None)
    }
}

impl VisionTower {
    /// `last_hidden_state` of the tower alone, as `CLIPVisionModel` /
    /// `SiglipVisionModel` return it: after the last layer (SigLIP: and its
    /// post-layernorm; CLIP applies that to the pooled class token only).
    pub fn last_hidden_state(&self, pixels: &Tensor) -> Result<Tensor> {
        let x = self.hidden_states(pixels, self.layers.len())?;
        Ok(match self.kind {
            Kind::Clip => x,
            Kind::Siglip => self.post_norm.forward(&x)?,
        })
    }
}

impl ClipModel {
    /// The longest text, in tokens.
    pub fn max_positions(&self) -> usize {
        self.text.max_positions
    }

    /// Image embeddings `[b, dim]` (`get_image_features`: not normalized).
    pub fn image_embeds(&self, pixels: &Tensor) -> Result<Tensor> {
        let v = &self.vision;
        let x = v.hidden_states(pixels, v.layers.len())?;
        let (b, _, hidden) = x.dims3()?;
        let pooled = match &v.head {
            None => v.post_norm.forward(&x.narrow(1, 0, 1)?.squeeze(1)?)?,
            Some(head) => {
                let x = v.post_norm.forward(&x)?;
                let probe = head.probe.broadcast_as((b, 1, hidden))?.contiguous()?;
                let h = head.attn.forward(&probe, &x, None)?;
                let m = head.norm.forward(&h)?;
                let m = head
                    .fc2
                    .forward(&head.act.forward(&head.fc1.forward(&m)?)?)?;
                (h + m)?.squeeze(1)?
            }
        };
        Ok(match &v.projection {
            Some(p) => p.forward(&pooled)?,
            None => pooled,
        })
    }

    /// Text embeddings `[b, dim]` (`get_text_features`) of token rows of one length;
    /// `mask` (1 = token) where the model takes an attention mask.
    pub fn text_embeds(
        &self,
        ids: &[Vec<u32>],
        mask: Option<&[Vec<u32>]>,
        device: &Device,
    ) -> Result<Tensor> {
        let t = &self.text;
        let len = ids.first().map(|r| r.len()).unwrap_or(0);
        if len == 0 {
            return Err(Error::InvalidInput("an empty text encoding".into()));
        }
        if len > t.max_positions {
            return Err(Error::InvalidInput(format!(
                "{len} tokens, but the text encoder takes at most {}",
                t.max_positions
            )));
        }
        let input = nn::ids_tensor(ids, device)?;
        let x = t.tokens.forward(&input)?;
        let x = x.broadcast_add(&t.positions.narrow(0, 0, len)?.unsqueeze(0)?)?;
        let dtype = x.dtype();
        // CLIP's text encoder is causal, so the tokens up to the pooled end-of-text
        // token never see the padding after it: the causal mask alone gives the same
        // result. SigLIP's attends both ways, to padding too unless a mask is given.
        let bias = if t.causal {
            let neg = nn::mask_value(dtype) as f32;
            let causal: Vec<f32> = (0..len)
                .flat_map(|i| (0..len).map(move |j| if j > i { neg } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(causal, (1, 1, len, len), device)?.to_dtype(dtype)?)
        } else {
            match mask {
                Some(mask) => Some(nn::padding_bias(&nn::ids_tensor(mask, device)?, dtype)?),
                None => None,
            }
        };
        let x = encoder::run_layers(&t.layers, x, bias.as_ref())?;
        let x = t.final_norm.forward(&x)?;
        let positions: Vec<usize> = ids
            .iter()
            .map(|row| match t.pool {
                TextPool::Last => len - 1,
                TextPool::ArgMax => {
                    row.iter()
                        .enumerate()
                        .fold(
                            (0, 0),
                            |best, (i, &id)| if id > best.1 { (i, id) } else { best },
                        )
                        .0
                }
                TextPool::Eos(eos) => row.iter().position(|&id| id == eos).unwrap_or(0),
            })
            .collect();
        let rows = positions
            .iter()
            .enumerate()
            .map(|(i, &p)| x.get(i)?.get(p))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let pooled = Tensor::stack(&rows, 0)?;
        let pooled = match &t.head {
            Some(h) => h.forward(&pooled)?,
            None => pooled,
        };
        Ok(match &t.projection {
            Some(p) => p.forward(&pooled)?,
            None => pooled,
        })
    }

    /// `logits_per_image` `[images, texts]`: scaled cosine similarities (plus SigLIP's
    /// bias).
    pub fn logits(&self, image_embeds: &Tensor, text_embeds: &Tensor) -> Result<Tensor> {
        let norm = |x: &Tensor| -> Result<Tensor> {
            let x = x.to_dtype(DType::F32)?;
            let n = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
            Ok(x.broadcast_div(&n)?)
        };
        let sims = norm(image_embeds)?.matmul(&norm(text_embeds)?.t()?)?;
        Ok(((sims * self.logit_scale.exp())? + self.logit_bias)?)
    }
}
