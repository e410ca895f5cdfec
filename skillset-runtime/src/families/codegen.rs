//! CodeGen (`CodeGenForCausalLM`), GPT-J with its q/k/v fused in one projection laid
//! out for 4-way model parallelism: four blocks, each `[q | v | k]` for a quarter of
//! the heads (`mp_num = 4` in transformers), reordered at load into `[q | k | v]`.
//! The rest is GPT-J's (`gptj::build`), config included: interleaved rotary on
//! `rotary_dim` dims, attention and MLP in parallel from one LayerNorm, no bias on
//! q/k/v or the output projection, an output head with a bias.

use candle_core::{DType, Device, Tensor};

use super::config::ConfigReader;
use super::decoder::{Decoder, DecoderFile, Qkv};
use super::gptj::{self, GPTJConfig};
use super::nn::{Linear, Weights};
use crate::error::Result;
use crate::Family;

/// This model type's file: its family, classes, loader and stated defaults.
pub(crate) const FILE: DecoderFile = DecoderFile {
    family: Family::Gpt,
    classes: &["CodeGenForCausalLM", "CodeGenModel"],
    load,
    defaults,
};

/// The model-parallel blocks of transformers' CodeGen attention.
const MP_NUM: usize = 4;

/// `qkv_proj` (`[block: q v k]`, four blocks) as one `[q | k | v]` projection.
fn reorder(w: &Tensor, h: usize) -> Result<Linear> {
    let local = h / MP_NUM;
    let part = |block: usize, which: usize| w.narrow(0, (3 * block + which) * local, local);
    let mut rows = Vec::with_capacity(3 * MP_NUM);
    // q, k, v are at 0, 2, 1 within a block.
    for which in [0, 2, 1] {
        for block in 0..MP_NUM {
            rows.push(part(block, which)?);
        }
    }
    Ok(Linear::new(Tensor::cat(&rows, 0)?, None))
}

pub(crate) fn load(
    config: &ConfigReader,
    weights: &Weights,
    dtype: DType,
    device: &Device,
) -> Result<Decoder> {
    let heads: GPTJConfig = config.typed()?;
    if heads.n_head % MP_NUM != 0 {
        return Err(config.invalid(
            "n_head",
            format!(
                "{} is not a multiple of 4 (CodeGen splits its heads in 4 blocks)",
                heads.n_head
            ),
        ));
    }
    gptj::build(config, weights, dtype, device, |a, h| {
        let fused = a.pp("qkv_proj").get((3 * h, h), "weight")?;
        Ok(Qkv::Fused(reorder(&fused, h)?))
    })
}

/// The config defaults this file states.
fn defaults() -> Vec<(&'static str, serde_json::Value)> {
    // `CodeGenConfig` has `GPTJConfig`'s fields and defaults.
    vec![("CodeGenConfig", serde_json::json!(GPTJConfig::default()))]
}
