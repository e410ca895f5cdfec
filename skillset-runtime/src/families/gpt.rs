//! The `gpt` family: decoder-only transformers with LayerNorm (with bias) and GELU
//! MLPs, in the layouts of GPT-2 (learned positions, fused `Conv1D` qkv), GPT-Neo
//! (learned positions, unscaled attention, alternating local attention), GPT-J
//! (interleaved partial rotary, one LayerNorm feeding attention and MLP in parallel),
//! GPT-NeoX (rotary on part of each head, fused per-head qkv, parallel residual),
//! GPTBigCode (multi-query attention) and OPT (positions offset by 2, ReLU, pre- or
//! post-LayerNorm).
//! candle-transformers ships none of GPT-2 or GPT-Neo; this is our own implementation.

use candle_core::{DType, Device};

use super::config::ConfigReader;
use super::decoder::{
    self, linear, Decoder, Layer, Layout, LearnedPositions, Mlp, Norm, Qkv, Residual, Rope,
};
use super::nn::{Activation, Linear, Weights};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Gpt2,
    GptNeo,
    GptJ,
    GptNeoX,
    /// GPT-2 layout with `Linear` layers and multi-query attention (StarCoder 1).
    GptBigCode,
    /// OPT: learned positions offset by 2, ReLU, pre- or post-LayerNorm, optional
    /// projections between the embedding and hidden widths.
    Opt,
}

#[derive(Debug, Clone)]
struct Config {
    flavor: Flavor,
    vocab_size: usize,
    hidden: usize,
    inner: usize,
    layers: usize,
    heads: usize,
    eps: f64,
    act: Activation,
    max_positions: usize,
    /// Rotary dims per head (GPT-J, GPT-NeoX); 0 = learned absolute positions.
    rotary_dim: usize,
    rope_theta: f64,
    /// Attention score scale.
    scale: f64,
    /// GPT-2: also divide by `layer + 1`.
    scale_by_layer: bool,
    parallel_residual: bool,
    attention_bias: bool,
    /// GPT-Neo: which layers attend locally, and over how many positions.
    local_layers: Vec<bool>,
    window: Option<usize>,
    tie_word_embeddings: bool,
    /// Key/value heads (1 for multi-query GPTBigCode).
    kv_heads: usize,
    /// OPT: width of the embeddings, offset of position ids, LayerNorm placement.
    embed_dim: usize,
    position_offset: u32,
    pre_layer_norm: bool,
    final_layer_norm: bool,
}

fn num(c: &ConfigReader, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|k| {
        c.value
            .get("rope_parameters")
            .and_then(|p| p.get(*k))
            .or_else(|| c.value.get(*k))
            .and_then(|v| v.as_f64())
    })
}

impl Flavor {
    /// The member an architecture class is (`None`: not a gpt-family class).
    pub(crate) fn of(architecture: &str) -> Option<Self> {
        Some(match architecture {
            "GPT2LMHeadModel" | "GPT2Model" => Flavor::Gpt2,
            "GPTNeoForCausalLM" | "GPTNeoModel" => Flavor::GptNeo,
            "GPTJForCausalLM" | "GPTJModel" => Flavor::GptJ,
            "GPTNeoXForCausalLM" | "GPTNeoXModel" => Flavor::GptNeoX,
            "GPTBigCodeForCausalLM" | "GPTBigCodeModel" => Flavor::GptBigCode,
            "OPTForCausalLM" | "OPTModel" => Flavor::Opt,
            _ => return None,
        })
    }
}

impl Config {
    fn read(architecture: &str, c: &ConfigReader) -> Result<Self> {
        let flavor =
            Flavor::of(architecture).ok_or_else(|| c.not_of_family("gpt", architecture))?;
        let first = |keys: &[&str]| -> Result<usize> {
            for k in keys {
                if c.value.get(*k).is_some_and(|v| !v.is_null()) {
                    return c.usize(k);
                }
            }
            Err(c.invalid(keys[0], "is missing".into()))
        };
        let hidden = first(&["n_embd", "hidden_size"])?;
        let heads = first(&["n_head", "num_heads", "num_attention_heads"])?;
        if heads == 0 || hidden % heads != 0 {
            return Err(c.invalid(
                "n_head",
                format!("{heads} does not divide the hidden size {hidden}"),
            ));
        }
        let head_dim = hidden / heads;
        let layers = first(&["n_layer", "num_layers", "num_hidden_layers"])?;
        let inner = match c
            .value
            .get("n_inner")
            .or_else(|| c.value.get("intermediate_size"))
            .or_else(|| c.value.get("ffn_dim"))
        {
            Some(v) if !v.is_null() => v
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| c.invalid("n_inner", format!("expected an integer, found {v}")))?,
            _ => 4 * hidden,
        };
        let act_key = if c.value.get("activation_function").is_some() {
            "activation_function"
        } else {
            "hidden_act"
        };
        let act = c.activation(
            act_key,
            match flavor {
                Flavor::GptNeoX => "gelu",
                Flavor::Opt => "relu",
                Flavor::GptBigCode => "gelu_pytorch_tanh",
                _ => "gelu_new",
            },
        )?;
        let eps = c.f64_or(
            if flavor == Flavor::GptNeoX {
                "layer_norm_eps"
            } else {
                "layer_norm_epsilon"
            },
            1e-5,
        )?;
        let max_positions = first(&["n_positions", "max_position_embeddings"]).unwrap_or(2048);
        let rotary_dim = match flavor {
            Flavor::GptJ => c
                .value
                .get("rotary_dim")
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .unwrap_or(head_dim),
            Flavor::GptNeoX => {
                let pct = num(c, &["partial_rotary_factor", "rotary_pct"]).unwrap_or(1.0);
                (head_dim as f64 * pct) as usize
            }
            _ => 0,
        };
        if (flavor == Flavor::GptJ || flavor == Flavor::GptNeoX)
            && (rotary_dim == 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim)
        {
            return Err(c.invalid(
                "rotary_dim",
                format!("{rotary_dim} is not an even size up to the head size {head_dim}"),
            ));
        }
        let (local_layers, window) = if flavor == Flavor::GptNeo {
            let kinds = c
                .value
                .get("attention_layers")
                .and_then(|v| v.as_array())
                .ok_or_else(|| c.invalid("attention_layers", "is missing".into()))?;
            let local: Vec<bool> = kinds.iter().map(|k| k.as_str() == Some("local")).collect();
            if local.len() != layers {
                return Err(c.invalid(
                    "attention_layers",
                    format!("lists {} layers, the model has {layers}", local.len()),
                ));
            }
            (local, Some(c.usize_or("window_size", 256)?))
        } else {
            (vec![false; layers], None)
        };
        let scale = match flavor {
            // GPT-Neo does not scale its attention scores.
            Flavor::GptNeo => 1.0,
            Flavor::Gpt2 if !c.bool_or("scale_attn_weights", true) => 1.0,
            _ => 1.0 / (head_dim as f64).sqrt(),
        };
        if flavor == Flavor::Opt && !c.bool_or("layer_norm_elementwise_affine", true) {
            return Err(c.invalid(
                "layer_norm_elementwise_affine",
                "OPT LayerNorms without weights are not supported".into(),
            ));
        }
        let pre_layer_norm = flavor != Flavor::Opt || c.bool_or("do_layer_norm_before", true);
        Ok(Config {
            flavor,
            vocab_size: c.usize("vocab_size")?,
            hidden,
            inner,
            layers,
            heads,
            eps,
            act,
            max_positions,
            rotary_dim,
            rope_theta: c
                .check_rope_theta(num(c, &["rope_theta", "rotary_emb_base"]).unwrap_or(10000.0))?,
            scale,
            scale_by_layer: flavor == Flavor::Gpt2
                && c.bool_or("scale_attn_by_inverse_layer_idx", false),
            parallel_residual: match flavor {
                Flavor::GptJ => true,
                Flavor::GptNeoX => c.bool_or("use_parallel_residual", true),
                _ => false,
            },
            attention_bias: c.bool_or("attention_bias", true),
            local_layers,
            window,
            tie_word_embeddings: c.bool_or(
                "tie_word_embeddings",
                matches!(
                    flavor,
                    Flavor::Gpt2 | Flavor::GptNeo | Flavor::GptBigCode | Flavor::Opt
                ),
            ),
            kv_heads: if flavor == Flavor::GptBigCode && c.bool_or("multi_query", true) {
                1
            } else {
                heads
            },
            embed_dim: if flavor == Flavor::Opt {
                c.usize_or("word_embed_proj_dim", hidden)?
            } else {
                hidden
            },
            position_offset: if flavor == Flavor::Opt { 2 } else { 0 },
            pre_layer_norm,
            final_layer_norm: flavor != Flavor::Opt
                || (pre_layer_norm && !c.bool_or("_remove_final_layer_norm", false)),
        })
    }

    fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// GPT-2's `Conv1D` stores `[in, out]`: transpose into a `Linear`.
fn conv1d(w: &Weights, d_in: usize, d_out: usize, name: &str) -> Result<Linear> {
    let p = w.pp(name);
    let weight = p.get((d_in, d_out), "weight")?.t()?.contiguous()?;
    Ok(Linear::new(weight, Some(p.get(d_out, "bias")?)))
}

impl Config {
    /// The model-wide layout.
    fn layout(&self, inv_freq: Vec<f32>) -> Layout {
        let mut l = Layout::new(self.heads, self.kv_heads, self.head_dim(), self.act);
        if self.rotary_dim > 0 {
            l.rope = Some(Rope {
                inv_freq,
                dim: self.rotary_dim,
                interleaved: self.flavor == Flavor::GptJ,
            });
        }
        l.scale = self.scale;
        l.scale_by_layer = self.scale_by_layer;
        l.residual = if self.parallel_residual {
            Residual::Parallel
        } else if self.pre_layer_norm {
            Residual::Sequential
        } else {
            Residual::PostNorm
        };
        l.max_positions = self.max_positions;
        l.sliding_window = self.window;
        l
    }
}

/// One block under the member's weight names.
fn layer(w: &Weights, c: &Config, windowed: bool) -> Result<Layer> {
    let (h, i) = (c.hidden, c.inner);
    let ln = |name: &str| Norm::layer(w, h, c.eps, name);
    let (attn_norm, mlp_norm, qkv, out, mlp) = match c.flavor {
        Flavor::Gpt2 => (
            ln("ln_1")?,
            Some(ln("ln_2")?),
            Qkv::Fused(conv1d(w, h, 3 * h, "attn.c_attn")?),
            conv1d(w, h, h, "attn.c_proj")?,
            Mlp::Plain {
                fc_in: conv1d(w, h, i, "mlp.c_fc")?,
                fc_out: conv1d(w, i, h, "mlp.c_proj")?,
            },
        ),
        Flavor::GptNeo => {
            let a = w.pp("attn.attention");
            (
                ln("ln_1")?,
                Some(ln("ln_2")?),
                Qkv::separate(&a, h, h, h, false)?,
                a.linear(h, h, "out_proj")?,
                Mlp::plain(w, h, i, "mlp.c_fc", "mlp.c_proj", true)?,
            )
        }
        Flavor::GptJ => {
            let a = w.pp("attn");
            (
                ln("ln_1")?,
                None,
                Qkv::separate(&a, h, h, h, false)?,
                a.linear_no_bias(h, h, "out_proj")?,
                Mlp::plain(w, h, i, "mlp.fc_in", "mlp.fc_out", true)?,
            )
        }
        Flavor::GptNeoX => {
            let a = w.pp("attention");
            (
                ln("input_layernorm")?,
                Some(ln("post_attention_layernorm")?),
                Qkv::FusedPerHead(linear(&a, h, 3 * h, "query_key_value", c.attention_bias)?),
                linear(&a, h, h, "dense", c.attention_bias)?,
                Mlp::plain(w, h, i, "mlp.dense_h_to_4h", "mlp.dense_4h_to_h", true)?,
            )
        }
        Flavor::GptBigCode => {
            let kv = c.kv_heads * c.head_dim();
            let c_attn = w.linear(h, h + 2 * kv, "attn.c_attn")?;
            (
                ln("ln_1")?,
                Some(ln("ln_2")?),
                if c.kv_heads == 1 {
                    Qkv::Fused(c_attn)
                } else {
                    Qkv::FusedPerHead(c_attn)
                },
                w.linear(h, h, "attn.c_proj")?,
                Mlp::plain(w, h, i, "mlp.c_fc", "mlp.c_proj", true)?,
            )
        }
        Flavor::Opt => {
            let a = w.pp("self_attn");
            let bias = c.attention_bias;
            (
                ln("self_attn_layer_norm")?,
                Some(ln("final_layer_norm")?),
                Qkv::separate(&a, h, h, h, bias)?,
                linear(&a, h, h, "out_proj", bias)?,
                Mlp::plain(w, h, i, "fc1", "fc2", bias)?,
            )
        }
    };
    Ok(Layer {
        attn_norm: Some(attn_norm),
        qkv,
        qk_norm: None,
        out,
        attn_out_norm: None,
        mlp_norm,
        mlp,
        mlp_out_norm: None,
        windowed,
    })
}

/// Load a gpt-family causal LM.
pub(crate) fn load(
    architecture: &str,
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let c = Config::read(architecture, config)?;
    // (body prefix, token embedding, position embedding, blocks, final norm, head)
    let (prefix, embed_name, pos_name, blocks_name, ln_f_name, head_name) = match c.flavor {
        Flavor::GptNeoX => (
            "gpt_neox",
            "embed_in",
            "",
            "layers",
            "final_layer_norm",
            "embed_out",
        ),
        Flavor::Opt => (
            "model.decoder",
            "embed_tokens",
            "embed_positions",
            "layers",
            "final_layer_norm",
            "lm_head",
        ),
        Flavor::Gpt2 | Flavor::GptNeo | Flavor::GptBigCode => {
            ("transformer", "wte", "wpe", "h", "ln_f", "lm_head")
        }
        Flavor::GptJ => ("transformer", "wte", "", "h", "ln_f", "lm_head"),
    };
    // Head models keep the body under a prefix; old GPT-2 checkpoints and bare
    // models at the root (OPT's bare model keeps `decoder.`).
    let body = if weights.contains(&format!("{prefix}.{embed_name}.weight")) {
        weights.pp(prefix)
    } else if c.flavor == Flavor::Opt {
        weights.pp("decoder")
    } else {
        weights.clone()
    };
    let embed = body.embedding(c.vocab_size, c.embed_dim, embed_name)?;
    let positions = if pos_name.is_empty() {
        None
    } else {
        let n = c.max_positions + c.position_offset as usize;
        Some(LearnedPositions {
            table: body.embedding(n, c.hidden, pos_name)?,
            offset: c.position_offset,
        })
    };
    let layers = (0..c.layers)
        .map(|i| {
            layer(
                &body.pp(format!("{blocks_name}.{i}")),
                &c,
                c.local_layers[i],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let final_norm = if c.final_layer_norm {
        Some(Norm::layer(&body, c.hidden, c.eps, ln_f_name)?)
    } else {
        None
    };
    let (project_in, project_out) = if c.embed_dim != c.hidden {
        (
            Some(body.linear_no_bias(c.embed_dim, c.hidden, "project_in")?),
            Some(body.linear_no_bias(c.hidden, c.embed_dim, "project_out")?),
        )
    } else {
        (None, None)
    };
    let lm_head = decoder::lm_head(
        weights,
        &embed,
        c.tie_word_embeddings,
        head_name,
        c.embed_dim,
        c.vocab_size,
        c.flavor == Flavor::GptJ,
    )?;
    let inv_freq = (0..c.rotary_dim / 2)
        .map(|i| (1.0 / c.rope_theta.powf((2 * i) as f64 / c.rotary_dim as f64)) as f32)
        .collect();
    Ok(Decoder {
        layout: c.layout(inv_freq),
        embed,
        positions,
        project_in,
        project_out,
        layers,
        final_norm,
        lm_head,
        dtype,
        device: device.clone(),
    })
}
