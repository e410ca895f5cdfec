//! The whisper family: Whisper's encoder (two convolutions over the log-mel frames,
//! stored sinusoidal positions, pre-norm layers) and decoder (learned positions,
//! causal self-attention with a key/value cache, cross-attention to the audio, output
//! projection tied to the token embedding).

use candle_core::{Module, Tensor};
use candle_nn::{Conv1d, Conv1dConfig};

use super::nn::LayerNorm;

use super::config::{hf_config, ConfigReader};
use super::encoder::{self, linear_maybe_bias, Attention, LayerDims, WHISPER_NAMES};
use super::nn::{self, Activation, Linear, Weights};
use crate::error::{Error, Result};

struct DecoderLayer {
    self_norm: LayerNorm,
    self_attn: Attention,
    cross_norm: LayerNorm,
    cross_attn: Attention,
    final_norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

pub(crate) struct Whisper {
    conv1: Conv1d,
    conv2: Conv1d,
    act: Activation,
    enc_positions: Tensor,
    enc_layers: Vec<encoder::Layer>,
    enc_norm: LayerNorm,
    tokens: candle_nn::Embedding,
    dec_positions: Tensor,
    dec_layers: Vec<DecoderLayer>,
    dec_norm: LayerNorm,
    proj_out: Linear,
    pub n_mels: usize,
    /// Frames per window the encoder takes (`2 * max_source_positions`).
    pub frames: usize,
    pub max_target_positions: usize,
}

hf_config! {
    /// `WhisperConfig` (transformers 5.23): the fields the model reads, with its
    /// defaults.
    pub(crate) struct WhisperConfig {
        vocab_size: usize = 51865,
        num_mel_bins: usize = 80,
        encoder_layers: usize = 4,
        encoder_attention_heads: usize = 6,
        decoder_layers: usize = 4,
        decoder_attention_heads: usize = 6,
        decoder_ffn_dim: usize = 1536,
        encoder_ffn_dim: usize = 1536,
        activation_function: String = "gelu".into(),
        d_model: usize = 384,
        max_source_positions: usize = 1500,
        max_target_positions: usize = 448,
    }
}

pub(crate) fn load(config: &ConfigReader, weights: &Weights) -> Result<Whisper> {
    let wc: WhisperConfig = config.typed()?;
    let d = wc.d_model;
    let n_mels = wc.num_mel_bins;
    let src = wc.max_source_positions;
    let tgt = wc.max_target_positions;
    let vocab = wc.vocab_size;
    let act = config.activation_named("activation_function", &wc.activation_function)?;
    let w = if weights.contains("model.encoder.conv1.weight") {
        weights.pp("model")
    } else {
        weights.clone()
    };
    let e = w.pp("encoder");
    let conv = |name: &str, c_in: usize, stride: usize| -> Result<Conv1d> {
        Ok(Conv1d::new(
            e.get((d, c_in, 3), &format!("{name}.weight"))?,
            Some(e.get(d, &format!("{name}.bias"))?),
            Conv1dConfig {
                padding: 1,
                stride,
                ..Default::default()
            },
        ))
    };
    let enc_dims = LayerDims {
        hidden: d,
        heads: config.check_heads("encoder_attention_heads", wc.encoder_attention_heads, d)?,
        intermediate: wc.encoder_ffn_dim,
        eps: 1e-5,
        act,
        pre_norm: true,
    };
    let dec_heads = config.check_heads("decoder_attention_heads", wc.decoder_attention_heads, d)?;
    let dec_ffn = wc.decoder_ffn_dim;
    let dw = w.pp("decoder");
    let dec_layers = (0..wc.decoder_layers)
        .map(|i| -> Result<DecoderLayer> {
            let l = dw.pp(format!("layers.{i}"));
            Ok(DecoderLayer {
                self_norm: l.layer_norm(d, 1e-5, "self_attn_layer_norm")?,
                self_attn: Attention::load(
                    &l,
                    d,
                    dec_heads,
                    (
                        "self_attn.q_proj",
                        "self_attn.k_proj",
                        "self_attn.v_proj",
                        "self_attn.out_proj",
                    ),
                )?,
                cross_norm: l.layer_norm(d, 1e-5, "encoder_attn_layer_norm")?,
                cross_attn: Attention::load(
                    &l,
                    d,
                    dec_heads,
                    (
                        "encoder_attn.q_proj",
                        "encoder_attn.k_proj",
                        "encoder_attn.v_proj",
                        "encoder_attn.out_proj",
                    ),
                )?,
                final_norm: l.layer_norm(d, 1e-5, "final_layer_norm")?,
                fc1: l.linear(d, dec_ffn, "fc1")?,
                fc2: l.linear(dec_ffn, d, "fc2")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tokens = dw.embedding(vocab, d, "embed_tokens")?;
    let proj_out = if weights.contains("proj_out.weight") {
        linear_maybe_bias(weights, d, vocab, "proj_out")?
    } else {
        Linear::new(tokens.embeddings().clone(), None)
    };
    Ok(Whisper {
        conv1: conv("conv1", n_mels, 1)?,
        conv2: conv("conv2", d, 2)?,
        act,
        enc_positions: e.get((src, d), "embed_positions.weight")?,
        enc_layers: encoder::load_layers(
            &e,
            "layers",
            wc.encoder_layers,
            enc_dims,
            &WHISPER_NAMES,
        )?,
        enc_norm: e.layer_norm(d, 1e-5, "layer_norm")?,
        tokens,
        dec_positions: dw.get((tgt, d), "embed_positions.weight")?,
        dec_layers,
        dec_norm: dw.layer_norm(d, 1e-5, "layer_norm")?,
        proj_out,
        n_mels,
        frames: 2 * src,
        max_target_positions: tgt,
    })
}

/// The decoder's state for a batch of rows decoding the same audio: cached
/// self-attention keys/values per layer (`[rows, heads, len, head_dim]`) and the
/// cross-attention keys/values of the audio. Greedy decoding has one row; beam search
/// one per beam, all fed in one decoder call per step (as transformers does), with
/// [`DecoderState::select`] carrying each beam's cache to the beams that continue it.
pub(crate) struct DecoderState {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Vec<(Tensor, Tensor)>,
    len: usize,
    rows: usize,
}

impl DecoderState {
    /// The state of rows `sources` (row i of the result continues row `sources[i]`):
    /// the self-attention caches gathered on the device. The cross-attention keys and
    /// values are the same audio's in every row, so they are only repeated when the
    /// number of rows changes (from the one-row prefill to the beams).
    pub fn select(self, sources: &[usize]) -> Result<DecoderState> {
        if sources.is_empty() {
            return Err(Error::InvalidInput("no rows to continue".into()));
        }
        let device = self.cross_kv.first().map(|(k, _)| k.device().clone());
        let Some(device) = device else {
            return Err(Error::InvalidInput("a decoder without layers".into()));
        };
        let rows = super::stepper::rows_tensor(sources, &device)?;
        let gather = |t: Tensor| -> Result<Tensor> { Ok(t.contiguous()?.index_select(&rows, 0)?) };
        let self_kv = self
            .self_kv
            .into_iter()
            .map(|kv| kv.map(|(k, v)| Ok((gather(k)?, gather(v)?))).transpose())
            .collect::<Result<Vec<_>>>()?;
        let cross_kv = if sources.len() == self.rows {
            self.cross_kv
        } else {
            // Every row holds the same audio: row 0, repeated.
            let same = super::stepper::rows_tensor(&vec![0; sources.len()], &device)?;
            self.cross_kv
                .into_iter()
                .map(|(k, v)| -> Result<(Tensor, Tensor)> {
                    Ok((k.index_select(&same, 0)?, v.index_select(&same, 0)?))
                })
                .collect::<Result<Vec<_>>>()?
        };
        Ok(DecoderState {
            self_kv,
            cross_kv,
            len: self.len,
            rows: sources.len(),
        })
    }
}

impl Whisper {
    /// Encoder output `[1, frames / 2, d_model]` of features `[1, n_mels, frames]`.
    pub fn encode(&self, features: &Tensor) -> Result<Tensor> {
        let (_, mels, frames) = features.dims3()?;
        if mels != self.n_mels || frames != self.frames {
            return Err(Error::InvalidInput(format!(
                "Whisper takes {} mel bins x {} frames, got {mels} x {frames}: preprocessor_config.json and config.json disagree",
                self.n_mels, self.frames
            )));
        }
        let x = self.act.forward(&self.conv1.forward(features)?)?;
        let x = self.act.forward(&self.conv2.forward(&x)?)?;
        let x = x.transpose(1, 2)?;
        let t = x.dim(1)?;
        let x = x.broadcast_add(&self.enc_positions.narrow(0, 0, t)?.unsqueeze(0)?)?;
        let x = encoder::run_layers(&self.enc_layers, x, None)?;
        Ok(self.enc_norm.forward(&x)?)
    }

    /// A fresh decoder state over an encoder output.
    pub fn start(&self, audio: &Tensor) -> Result<DecoderState> {
        let cross_kv = self
            .dec_layers
            .iter()
            .map(|l| -> Result<(Tensor, Tensor)> {
                let a = &l.cross_attn;
                Ok((
                    nn::split_heads(&a.k.forward(audio)?, a.heads)?,
                    nn::split_heads(&a.v.forward(audio)?, a.heads)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState {
            self_kv: vec![None; self.dec_layers.len()],
            cross_kv,
            len: 0,
            rows: 1,
        })
    }

    /// Feed `ids` (the prompt, then one token per step) to a one-row state and return
    /// the logits of the last one, `[vocab]` in f32.
    pub fn step(&self, state: &mut DecoderState, ids: &[u32]) -> Result<Vec<f32>> {
        let mut rows = self.step_rows(state, &[ids.to_vec()])?;
        rows.pop()
            .ok_or_else(|| Error::InvalidInput("no decoder output".into()))
    }

    /// Feed one equally long run of ids per row of `state` and return each row's logits
    /// of its last one, `[rows][vocab]` in f32.
    pub fn step_rows(&self, state: &mut DecoderState, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let n = ids.first().map_or(0, Vec::len);
        if n == 0 {
            return Err(Error::InvalidInput("no decoder input".into()));
        }
        if ids.len() != state.rows || ids.iter().any(|r| r.len() != n) {
            return Err(Error::InvalidInput(format!(
                "internal: {} rows of decoder input for a state of {} rows",
                ids.len(),
                state.rows
            )));
        }
        if state.len + n > self.max_target_positions {
            return Err(Error::InvalidInput(format!(
                "the decoder takes at most {} tokens",
                self.max_target_positions
            )));
        }
        let device = self.dec_positions.device();
        let input = nn::ids_tensor(ids, device)?;
        let mut x = self
            .tokens
            .forward(&input)?
            .broadcast_add(&self.dec_positions.narrow(0, state.len, n)?.unsqueeze(0)?)?;
        let dtype = x.dtype();
        let total = state.len + n;
        let bias = if n > 1 {
            let neg = nn::mask_value(dtype) as f32;
            let offset = state.len;
            let m: Vec<f32> = (0..n)
                .flat_map(|i| (0..total).map(move |j| if j > offset + i { neg } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(m, (1, 1, n, total), device)?.to_dtype(dtype)?)
        } else {
            None
        };
        for (i, l) in self.dec_layers.iter().enumerate() {
            let a = &l.self_attn;
            let h = l.self_norm.forward(&x)?;
            let q = nn::split_heads(&a.q.forward(&h)?, a.heads)?;
            let k = nn::split_heads(&a.k.forward(&h)?, a.heads)?;
            let v = nn::split_heads(&a.v.forward(&h)?, a.heads)?;
            let (k, v) = match state.self_kv[i].take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                None => (k, v),
            };
            let ctx = nn::attention(&q, &k, &v, bias.as_ref(), a.scale)?;
            state.self_kv[i] = Some((k, v));
            x = (x + a.out.forward(&nn::merge_heads(&ctx)?)?)?;
            let c = &l.cross_attn;
            let h = l.cross_norm.forward(&x)?;
            let q = nn::split_heads(&c.q.forward(&h)?, c.heads)?;
            let (ck, cv) = &state.cross_kv[i];
            let ctx = nn::attention(&q, ck, cv, None, c.scale)?;
            x = (x + c.out.forward(&nn::merge_heads(&ctx)?)?)?;
            let h = l.final_norm.forward(&x)?;
            let h = l.fc2.forward(&nn::linear_act(&l.fc1, self.act, &h)?)?;
            x = (x + h)?;
        }
        state.len = total;
        let last = self.dec_norm.forward(&x.narrow(1, n - 1, 1)?)?;
        let logits = self.proj_out.forward(&last)?;
        Ok(logits
            .squeeze(1)?
            .to_dtype(candle_core::DType::F32)?
            .to_device(&candle_core::Device::Cpu)?
            .to_vec2()?)
    }
}
