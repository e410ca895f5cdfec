//! Gemma 3's text model (`Gemma3ForCausalLM`, model type `gemma3_text`) as a delta
//! over Gemma 2, as transformers' `modular_gemma3.py` states it: (1 + weight) RMSNorms
//! on each query and key head (`q_norm`, `k_norm`), five sliding-window layers to each
//! global one (`layer_types`; absent: layer `i` is global when
//! `(i + 1) % sliding_window_pattern == 0`), and a rotary base per layer type
//! (`rope_parameters` keyed by `sliding_attention` and `full_attention`; older configs:
//! `rope_local_base_freq` for the sliding layers, `rope_theta` and `rope_scaling` for
//! the global ones). No soft-capping by default.

use candle_core::{DType, Device};

use super::config::{hf_config, ConfigReader};
use super::decoder::{self, Decoder, DecoderFile, LayerRope, Norm, QkNorm, Rope, RopeFreqs};
use super::gemma2::{self, Gemma2Fields};
use super::llama::{self, Defaults};
use super::nn::Weights;
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Llama,
    classes: &[
        "Gemma3ForCausalLM",
        "Gemma3TextModel",
        "Gemma3TextForSequenceClassification",
    ],
    load,
    defaults,
};

/// `Gemma3TextConfig`'s defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    class: "Gemma3TextConfig",
    vocab_size: 262208,
    max_position_embeddings: 131072,
    // The global layers' base; the sliding ones' is `rope_local_base_freq`.
    rope_theta: 1e6,
    ..gemma2::DEFAULTS
};

hf_config! {
    /// The fields `Gemma3TextConfig` adds (transformers 5.23), and the names older
    /// configs give its layer pattern and local rotary base.
    pub(crate) struct Gemma3Fields {
        sliding_window_pattern: usize = 6,
        rope_local_base_freq: f64 = 10000.0,
    }
}

hf_config! {
    /// `Gemma3TextConfig`'s soft-caps: Gemma 2's fields, off by default.
    pub(crate) struct Gemma3Caps {
        attn_logit_softcapping: Option<f64> = None,
        final_logit_softcapping: Option<f64> = None,
    }
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    // Gemma 2's fields, with Gemma 3's soft-cap defaults (none).
    let caps: Gemma3Caps = config.typed()?;
    let f = Gemma2Fields {
        attn_logit_softcapping: caps.attn_logit_softcapping,
        final_logit_softcapping: caps.final_logit_softcapping,
        ..config.typed()?
    };
    let g: Gemma3Fields = config.typed()?;
    if g.sliding_window_pattern == 0 {
        return Err(config.invalid("sliding_window_pattern", "is 0".into()));
    }
    let pattern = g.sliding_window_pattern;
    let (mut c, mut layout) = gemma2::read(config, &DEFAULTS, &f, |i| (i + 1) % pattern != 0)?;
    let nested = config
        .value
        .get("rope_parameters")
        .and_then(|p| p.get("sliding_attention"))
        .is_some_and(|v| v.is_object());
    let local = if nested {
        decoder::rope_freqs(
            config,
            Some("sliding_attention"),
            c.rotary_dim,
            g.rope_local_base_freq,
            c.max_positions,
        )?
    } else {
        let theta = config.check_rope_theta(g.rope_local_base_freq)?;
        RopeFreqs::plain(
            decoder::plain_inv_freq(theta, c.rotary_dim)
                .into_iter()
                .map(|x| x as f32)
                .collect(),
        )
    };
    let global = decoder::rope_freqs(
        config,
        Some("full_attention"),
        c.rotary_dim,
        c.default_theta,
        c.max_positions,
    )?;
    layout.rope = Some(Rope {
        freqs: global,
        dim: c.rotary_dim,
        interleaved: false,
    });
    layout.local_rope = Some(Rope {
        freqs: local,
        dim: c.rotary_dim,
        interleaved: false,
    });
    c.rope_by_window(LayerRope::Local, LayerRope::Global);
    let final_norm = Norm::rms_f32(&weights.pp("model"), c.hidden_size, c.eps, "norm", 1.0)?;
    let layers = |w: &Weights| {
        let mut layer = gemma2::layer(w, &c)?;
        let a = w.pp("self_attn");
        layer.qk_norm = Some(QkNorm::PerHead(
            Norm::rms_f32(&a, c.head_dim, c.eps, "q_norm", 1.0)?,
            Norm::rms_f32(&a, c.head_dim, c.eps, "k_norm", 1.0)?,
        ));
        Ok(layer)
    };
    llama::assemble(&c, weights, layout, layers, final_norm, dtype, device)
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    let local = Gemma3Fields::default().rope_local_base_freq;
    let d = llama::stated_per_layer_type(gemma2::stated(&DEFAULTS), local);
    vec![
        (DEFAULTS.class, d),
        (DEFAULTS.class, serde_json::json!(Gemma3Caps::default())),
        (
            DEFAULTS.class,
            serde_json::json!({"_sliding_window_pattern": Gemma3Fields::default().sliding_window_pattern}),
        ),
    ]
}
