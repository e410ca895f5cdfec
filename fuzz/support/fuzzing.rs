//! The fuzz targets' logic (`fuzz/fuzz_targets/`), here so that the committed corpora
//! and the crashes fuzzing found replay as ordinary tests (`tests/fuzz_regressions.rs`).
//! Nothing here may panic, abort or exceed the budget for any input.

use std::collections::BTreeMap;

use skillsets::runtime::media::audio::{resample, zero_mean_unit_var};
use skillsets::runtime::media::{Audio, ImageProcessor, LogMel, RgbImage};
use skillsets::runtime::{Checkpoint, InputKind, LoadOptions, Pipeline, RunOptions, Scope};

const TOKENIZERS: [&[u8]; 3] = [
    include_bytes!("../../tests/fixtures/bert-tiny-mlm/tokenizer.json"),
    include_bytes!("../../tests/fixtures/llama-tiny/tokenizer.json"),
    include_bytes!("../../tests/fixtures/t5-tiny/tokenizer.json"),
];
const NAMES: [&str; 4] = [
    "config.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "generation_config.json",
];
/// The most zero bytes of tensor data a checkpoint input is given.
const MAX_DATA: u64 = 4 << 20;

/// A safetensors file from a header: the header as written, then zeros up to the end of
/// the last tensor it declares (no more than 4 MiB).
fn safetensors(header: &[u8]) -> Vec<u8> {
    let end = serde_json::from_slice::<serde_json::Value>(header)
        .ok()
        .and_then(|h| {
            h.as_object().map(|o| {
                o.values()
                    .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
                    .max()
                    .unwrap_or(0)
            })
        })
        .unwrap_or(0)
        .min(MAX_DATA);
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.resize(out.len() + end as usize, 0);
    out
}

/// A whole checkpoint from one input: its first byte picks one of three real tokenizers
/// (WordPiece, sentencepiece-style BPE, Unigram); the rest, split at 0xFF bytes, is
/// config.json, tokenizer_config.json, preprocessor_config.json, generation_config.json
/// and a safetensors header (the tensors zero-filled to the sizes it declares). Every
/// task the model type runs is loaded and, where that works, run on a small input.
/// Returns how many tasks ran to an output.
pub fn checkpoint(data: &[u8]) -> usize {
    let Some((&pick, rest)) = data.split_first() else {
        return 0;
    };
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0xFF).collect();
    let mut files = BTreeMap::new();
    files.insert(
        "tokenizer.json".to_string(),
        TOKENIZERS[pick as usize % TOKENIZERS.len()].to_vec(),
    );
    for (name, part) in NAMES.iter().zip(&parts) {
        if !part.is_empty() {
            files.insert(name.to_string(), part.to_vec());
        }
    }
    if let Some(header) = parts.get(NAMES.len()) {
        files.insert("model.safetensors".to_string(), safetensors(header));
    }
    let Ok(ckpt) = Checkpoint::from_files("fuzz", files) else {
        return 0;
    };
    let Some(info) = skillsets::lookup(&ckpt.model_type) else {
        return 0;
    };
    let options = LoadOptions::default();
    let mut ran = 0;
    for &task in info.tasks {
        let Ok(p) = Pipeline::load_checkpoint(Scope::ModelType(info), ckpt.clone(), task, &options)
        else {
            continue;
        };
        let run = RunOptions {
            max_new_tokens: Some(2),
            candidate_labels: Some(vec!["a".into(), "b".into()]),
            text: Some("<image> what".into()),
            num_beams: Some(1),
            ..Default::default()
        };
        let out = match task.input_kind() {
            InputKind::Text => p.run_json(&["Hello [MASK] <mask> world".to_string()], &run),
            InputKind::Image => {
                let pixels = (0..9 * 7 * 3).map(|i| i as u8).collect();
                match RgbImage::new(9, 7, pixels) {
                    Ok(img) => p.run_images_json(&[img], &run),
                    Err(e) => Err(e),
                }
            }
            InputKind::Audio => {
                let audio = Audio {
                    samples: (0..4000).map(|i| ((i as f32) * 0.01).sin()).collect(),
                    sample_rate: 16_000,
                };
                p.run_audio_json(&[audio], &run)
            }
        };
        ran += usize::from(out.is_ok());
    }
    ran
}

fn image_processors() -> Vec<ImageProcessor> {
    [
        r#"{"do_resize": true, "size": {"height": 32, "width": 32}, "resample": 2, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#,
        r#"{"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 24}, "do_center_crop": true, "crop_size": {"height": 24, "width": 24}, "resample": 3}"#,
        r#"{"image_processor_type": "ViTImageProcessorPil", "size": 17, "resample": 1}"#,
    ]
    .iter()
    .filter_map(|c| {
        let config = serde_json::from_str(c).ok()?;
        ImageProcessor::from_config(&config, std::path::Path::new("preprocessor_config.json")).ok()
    })
    .collect()
}

/// Arbitrary bytes as a WAV file (when they start with `RIFF`) or an image (PNG, JPEG),
/// decoded and prepared as the processors prepare them: audio resampled to 16 kHz, a
/// Whisper log-mel window and Wav2Vec2's normalization; images through three image
/// processors (exact size, shortest edge with a center crop, Pillow's engine), after the
/// budget's pixel check, as the pipelines run them.
pub fn media(data: &[u8]) {
    if data.starts_with(b"RIFF") {
        let Ok(audio) = Audio::decode_wav(data, "fuzz.wav") else {
            return;
        };
        // The pipelines' budget (fuzzing keeps the audio short).
        if audio.samples.len() as u64 > 30 * audio.sample_rate as u64 {
            return;
        }
        let Ok(samples) = resample(&audio.samples, audio.sample_rate, 16_000) else {
            return;
        };
        let Ok(mel) = LogMel::new(80, 16_000, 160, 1, 400) else {
            return;
        };
        for window in samples.chunks(mel.n_samples.max(1)).take(2) {
            let features = mel.features(window);
            assert_eq!(features.len(), 80 * mel.frames());
        }
        let _ = zero_mean_unit_var(&samples);
        return;
    }
    let Ok(image) = RgbImage::decode(data, "fuzz.png") else {
        return;
    };
    for p in image_processors() {
        let (h, w) = p.resized_size_of(&image);
        if (h as u128) * (w as u128) > 1 << 24 {
            continue; // over the budget: the pipelines refuse it before resizing
        }
        let (oh, ow) = p.output_size(&image);
        assert_eq!(p.preprocess(&image).len(), 3 * oh * ow);
    }
}
