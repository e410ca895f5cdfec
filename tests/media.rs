//! Images and audio: the processors against transformers' own outputs on the committed
//! inputs (`processor.safetensors`, written by scripts/make_media_fixtures.py), and bad
//! media inputs, each a typed error or a real result, never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use skillsets::runtime::media::{Audio, ImageProcessor, ResizeEngine, RgbImage};
use skillsets::runtime::{LoadOptions, Pipeline, RunOptions, Scope};
use skillsets::{task, Error, Skillset, Task};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn media(name: &str) -> PathBuf {
    fixture("media").join(name)
}

/// `processor.safetensors` and `processor.json` of a fixture.
fn processor_reference(name: &str) -> (HashMap<String, Tensor>, serde_json::Value) {
    let dir = fixture(name);
    let tensors =
        candle_core::safetensors::load(dir.join("processor.safetensors"), &Device::Cpu).unwrap();
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("processor.json")).unwrap())
            .unwrap();
    (tensors, info)
}

fn inputs_of(name: &str, info: &serde_json::Value) -> Vec<PathBuf> {
    info["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| fixture(name).join(p.as_str().unwrap()))
        .collect()
}

fn max_diff(ours: &[f32], theirs: &Tensor) -> f32 {
    let theirs: Vec<f32> = theirs.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(ours.len(), theirs.len(), "lengths differ");
    ours.iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// The largest difference of each kind, printed (`cargo test --test media -- --nocapture`).
fn report(what: &str, diffs: &[f32]) {
    let max = diffs.iter().copied().fold(0.0, f32::max);
    println!(
        "{what}: max |diff| vs transformers {max:.2e} over {} tensors",
        diffs.len()
    );
}

fn load(name: &str, task: Task) -> Pipeline {
    let info = skillsets::lookup(
        &skillsets::runtime::Checkpoint::open(&fixture(name))
            .unwrap()
            .model_type,
    )
    .unwrap();
    Pipeline::load_for_scope(
        Scope::ModelType(info),
        &fixture(name),
        task,
        &LoadOptions::default(),
    )
    .unwrap()
}

const TOL: f32 = 1e-4;

#[test]
fn image_processors_match_transformers_both_engines() {
    for (name, task) in [
        ("vit-tiny-cls", Task::ImageClassification),
        ("deit-tiny-cls", Task::ImageClassification),
        ("dinov2-tiny-cls", Task::ImageClassification),
        ("clip-tiny", Task::ZeroShotImageClassification),
        ("siglip-tiny", Task::ZeroShotImageClassification),
    ] {
        let (tensors, info) = processor_reference(name);
        let pipeline = load(name, task);
        let ckpt = skillsets::runtime::Checkpoint::open(&fixture(name)).unwrap();
        let mut pil = ImageProcessor::from_checkpoint(&ckpt).unwrap();
        assert_eq!(
            pil.engine,
            ResizeEngine::Torchvision,
            "{name}: transformers 5's default"
        );
        pil.engine = ResizeEngine::Pil;
        let (mut tv, mut pl) = (vec![], vec![]);
        for (i, path) in inputs_of(name, &info).iter().enumerate() {
            let img = RgbImage::open(path).unwrap();
            // The torchvision-backed processor transformers' pipeline uses.
            let d = max_diff(
                &pipeline.preprocess_image(&img).unwrap(),
                &tensors[&format!("pixel_values.{i}")],
            );
            assert!(d < TOL, "{name} input {i}: {d}");
            tv.push(d);
            // And the Pillow one, which rounds some pixels differently.
            let d = max_diff(
                &pil.preprocess(&img),
                &tensors[&format!("pixel_values_pil.{i}")],
            );
            assert!(d < TOL, "{name} input {i} (Pillow): {d}");
            pl.push(d);
        }
        report(&format!("{name} pixel_values (torchvision)"), &tv);
        report(&format!("{name} pixel_values (Pillow)"), &pl);
    }
}

#[test]
fn clip_and_siglip_embeddings_match_transformers() {
    // SigLIP is a model type of its own; a family skillset takes both.
    #[skillsets::skillset(family = "clip")]
    struct AnyClip;

    for name in ["clip-tiny", "siglip-tiny"] {
        let (tensors, info) = processor_reference(name);
        let ep = AnyClip::init_cpu::<task::ZeroShotImageClassification>(fixture(name)).unwrap();
        let images: Vec<RgbImage> = inputs_of(name, &info)
            .iter()
            .map(|p| RgbImage::open(p).unwrap())
            .collect();
        let mut diffs = vec![];
        for (i, e) in ep.image_embeddings(&images).unwrap().iter().enumerate() {
            let d = max_diff(e, &tensors[&format!("image_embeds.{i}")]);
            assert!(d < TOL, "{name} image {i}: {d}");
            diffs.push(d);
        }
        let texts: Vec<&str> = info["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for (i, e) in ep.text_embeddings(&texts).unwrap().iter().enumerate() {
            let d = max_diff(e, &tensors[&format!("text_embeds.{i}")]);
            assert!(d < TOL, "{name} text {i}: {d}");
            diffs.push(d);
        }
        report(&format!("{name} image and text embeddings"), &diffs);
    }
}

#[test]
fn audio_front_ends_match_transformers() {
    // Wav2Vec2FeatureExtractor: resampled (44.1 kHz stereo float -> 16 kHz mono) and
    // normalized waveforms.
    for name in ["wav2vec2-tiny-ctc", "hubert-tiny-ctc", "wav2vec2-tiny-cls"] {
        let (tensors, info) = processor_reference(name);
        let task = if name.ends_with("cls") {
            Task::AudioClassification
        } else {
            Task::AutomaticSpeechRecognition
        };
        let pipeline = load(name, task);
        let (mut values, mut resampled) = (vec![], vec![]);
        for (i, path) in inputs_of(name, &info).iter().enumerate() {
            let audio = Audio::open(path).unwrap();
            let d = max_diff(
                &pipeline.audio_input_values(&audio).unwrap(),
                &tensors[&format!("input_values.{i}")],
            );
            assert!(d < TOL, "{name} input {i}: {d}");
            values.push(d);
            if let Some(r) = tensors.get(&format!("resampled.{i}")) {
                assert_ne!(audio.sample_rate, 16_000);
                let d = max_diff(&pipeline.prepare_audio(&audio).unwrap().samples, r);
                assert!(d < TOL, "{name} resampled {i}: {d}");
                resampled.push(d);
            }
        }
        report(&format!("{name} input_values"), &values);
        report(&format!("{name} resampled to 16 kHz"), &resampled);
    }
    // WhisperFeatureExtractor: log-mel features of the first window.
    let (tensors, info) = processor_reference("whisper-tiny");
    let pipeline = load("whisper-tiny", Task::AutomaticSpeechRecognition);
    let mut features = vec![];
    for (i, path) in inputs_of("whisper-tiny", &info).iter().enumerate() {
        let audio = Audio::open(path).unwrap();
        let windows = pipeline.whisper_features(&audio).unwrap();
        let d = max_diff(&windows[0], &tensors[&format!("input_features.{i}")]);
        assert!(d < TOL, "whisper input {i}: {d}");
        features.push(d);
        if let Some(r) = tensors.get(&format!("resampled.{i}")) {
            let d = max_diff(&pipeline.prepare_audio(&audio).unwrap().samples, r);
            assert!(d < TOL, "whisper resampled {i}: {d}");
        }
    }
    report("whisper-tiny log-mel input_features", &features);
}

// ---------------------------------------------------------------------------
// Bad media inputs.
// ---------------------------------------------------------------------------

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("skillset-media-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn err_text<T: std::fmt::Debug>(r: skillsets::Result<T>) -> (Error, String) {
    let e = r.expect_err("should fail");
    let s = e.to_string();
    (e, s)
}

#[test]
fn bad_image_files_are_typed_errors() {
    let ep =
        skillsets::Vit::init_cpu::<task::ImageClassification>(fixture("vit-tiny-cls")).unwrap();
    let (e, s) = err_text(ep.call("/no/such/image.png"));
    assert!(matches!(e, Error::MissingFile { .. }), "{s}");
    assert!(s.contains("image not found"), "{s}");

    let empty = scratch("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let (e, s) = err_text(ep.call(&empty));
    assert!(
        matches!(e, Error::InvalidInput(_)) && s.contains("empty"),
        "{s}"
    );

    let png = std::fs::read(media("gradient.png")).unwrap();
    let truncated = scratch("truncated.png");
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    let (_, s) = err_text(ep.call(&truncated));
    assert!(s.contains("truncated.png"), "{s}");

    // A WAV file where an image should be.
    let (_, s) = err_text(ep.call(media("tone16k.wav")));
    assert!(s.contains("not an image"), "{s}");

    // The endpoint still works afterwards.
    assert_eq!(ep.call(media("gradient.png")).unwrap().len(), 3);
}

fn assert_probabilities(labels: &[skillsets::runtime::LabelScore]) {
    let sum: f32 = labels.iter().map(|l| l.score).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{labels:?}");
    assert!(labels.iter().all(|l| l.score.is_finite() && l.score >= 0.0));
}

/// Images stored sideways with an EXIF orientation come out upright, as transformers'
/// `load_image` (`exif_transpose`) gives them (`*-upright.png`, written by Pillow).
#[test]
fn exif_orientation_is_applied_as_transformers_does() {
    for (name, lossless) in [
        ("exif6.png", true),
        ("exif8.png", true),
        ("exif2.png", true),
        ("exif3.jpg", false),
    ] {
        let ours = RgbImage::open(&media(name)).unwrap();
        let upright = media(
            &name
                .replace(".png", "-upright.png")
                .replace(".jpg", "-upright.png"),
        );
        let theirs = RgbImage::open(&upright).unwrap();
        assert_eq!(
            (ours.width, ours.height),
            (theirs.width, theirs.height),
            "{name}: size"
        );
        let diffs: Vec<u8> = ours
            .data
            .iter()
            .zip(&theirs.data)
            .map(|(a, b)| a.abs_diff(*b))
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        if lossless {
            assert_eq!(max, 0, "{name}: pixels differ from load_image's");
        } else {
            // JPEG: the image crate's decoder and libjpeg-turbo differ by a few levels
            // (see photo.jpg); a wrong turn would differ by tens on average.
            assert!(mean < 2.0 && max <= 8, "{name}: mean {mean}, max {max}");
        }
    }
}

#[test]
fn tiny_and_huge_images_are_resized() {
    let ep =
        skillsets::Vit::init_cpu::<task::ImageClassification>(fixture("vit-tiny-cls")).unwrap();
    let one = RgbImage::new(1, 1, vec![200, 30, 90]).unwrap();
    assert_probabilities(&ep.call_image(&one).unwrap());

    // 10000 x 10000 through a PNG file: decoded within the limits, resized to 32 x 32.
    let path = scratch("huge.png");
    let mut data = vec![0u8; 10_000 * 10_000 * 3];
    for (i, px) in data.chunks_mut(3).enumerate().step_by(7919) {
        px.copy_from_slice(&[(i % 251) as u8, (i % 13) as u8 * 19, 128]);
    }
    image::save_buffer(&path, &data, 10_000, 10_000, image::ExtendedColorType::Rgb8).unwrap();
    drop(data);
    assert_probabilities(&ep.call(&path).unwrap());
    std::fs::remove_file(&path).unwrap();

    // Beyond the decoder's limit: a typed error that says what to do.
    let (e, s) = err_text(RgbImage::decode(
        &huge_png_header(20_000, 20_000),
        "big.png",
    ));
    assert!(matches!(e, Error::InvalidInput(_)), "{s}");
    assert!(s.contains("downscale"), "{s}");
}

/// A PNG that declares `w x h` pixels (header only: the decoder must refuse it before
/// allocating).
fn huge_png_header(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn zero_shot_needs_labels() {
    #[skillsets::skillset(family = "clip")]
    struct AnyClip;
    let ep = AnyClip::init_cpu::<task::ZeroShotImageClassification>(fixture("clip-tiny")).unwrap();
    let (e, s) = err_text(ep.call(media("gradient.png"), &[]));
    assert!(
        matches!(e, Error::InvalidInput(_)) && s.contains("--candidate-labels"),
        "{s}"
    );
    let (_, s) = err_text(ep.call(media("gradient.png"), &["a cat", " "]));
    assert!(s.contains("empty candidate label"), "{s}");
    let img = RgbImage::open(&media("gray.png")).unwrap();
    let (_, s) = err_text(ep.call_image(&img, &["a cat"], Some("no placeholder")));
    assert!(s.contains("no `{}`"), "{s}");
    // One label: CLIP's softmax gives it everything.
    let one = ep.call(media("gray.png"), &["a cat"]).unwrap();
    assert!((one[0].score - 1.0).abs() < 1e-6, "{one:?}");
    // The family also runs vision towers alone for image features; a dual encoder's
    // checkpoint is not one (transformers' pipeline fails on it too).
    let (e, s) = err_text(AnyClip::init_cpu::<task::ImageFeatureExtraction>(fixture(
        "clip-tiny",
    )));
    assert!(
        matches!(e, Error::UnsupportedTask { .. })
            && s.contains("model type `clip` does not run the task `image-feature-extraction`")
            && s.contains("zero-shot-image-classification"),
        "{s}"
    );
    let tower =
        AnyClip::init_cpu::<task::ImageFeatureExtraction>(fixture("clip-vision-tiny")).unwrap();
    assert_eq!(
        tower.call(media("gray.png")).unwrap().len(),
        17,
        "16 patches and the class token"
    );
}

fn wav_bytes(rate: u32, samples: &[i16]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = b"RIFF".to_vec();
    b.extend(((36 + data.len()) as u32).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend(16u32.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(rate.to_le_bytes());
    b.extend((rate * 2).to_le_bytes());
    b.extend(2u16.to_le_bytes());
    b.extend(16u16.to_le_bytes());
    b.extend(b"data");
    b.extend((data.len() as u32).to_le_bytes());
    b.extend(data);
    b
}

#[test]
fn bad_audio_files_are_typed_errors() {
    let ep = skillsets::Wav2vec2::init_cpu::<task::AutomaticSpeechRecognition>(fixture(
        "wav2vec2-tiny-ctc",
    ))
    .unwrap();
    let (e, s) = err_text(ep.call("/no/such/audio.wav"));
    assert!(
        matches!(e, Error::MissingFile { .. }) && s.contains("audio file not found"),
        "{s}"
    );

    let empty = scratch("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let (_, s) = err_text(ep.call(&empty));
    assert!(s.contains("empty"), "{s}");

    let wav = std::fs::read(media("tone16k.wav")).unwrap();
    let truncated = scratch("truncated.wav");
    std::fs::write(&truncated, &wav[..wav.len() / 2]).unwrap();
    let (_, s) = err_text(ep.call(&truncated));
    assert!(s.contains("truncated"), "{s}");

    let (_, s) = err_text(ep.call(media("gradient.png")));
    assert!(s.contains("not a WAV file"), "{s}");

    // Shorter than one frame of the feature encoder.
    let audio = Audio::decode_wav(&wav_bytes(16_000, &[100; 10]), "tiny.wav").unwrap();
    let (_, s) = err_text(ep.call_audio(&audio, &RunOptions::default()));
    assert!(s.contains("too short") || s.contains("shorter than"), "{s}");

    // Whisper options on a CTC model.
    let opts = RunOptions {
        language: Some("fr".into()),
        ..Default::default()
    };
    let audio = Audio::open(&media("tone16k.wav")).unwrap();
    let (_, s) = err_text(ep.call_audio(&audio, &opts));
    assert!(s.contains("Whisper options"), "{s}");

    // Still works.
    ep.call(media("tone16k.wav")).unwrap();
}

#[test]
fn silent_short_and_resampled_audio() {
    let whisper =
        skillsets::Whisper::init_cpu::<task::AutomaticSpeechRecognition>(fixture("whisper-tiny"))
            .unwrap();
    let ctc = skillsets::Wav2vec2::init_cpu::<task::AutomaticSpeechRecognition>(fixture(
        "wav2vec2-tiny-ctc",
    ))
    .unwrap();
    let opts = RunOptions {
        language: Some("en".into()),
        max_new_tokens: Some(4),
        ..Default::default()
    };
    // Silence: real (finite) features, a transcription, no NaN.
    let silence = Audio {
        samples: vec![0.0; 16_000],
        sample_rate: 16_000,
    };
    whisper.call_audio(&silence, &opts).unwrap();
    ctc.call_audio(&silence, &RunOptions::default()).unwrap();
    // 0.05 s at 8 kHz: resampled to 16 kHz, then heard.
    let short = Audio {
        samples: (0..400).map(|i| (i as f32 * 0.3).sin() * 0.5).collect(),
        sample_rate: 8_000,
    };
    assert!(short.seconds() < 0.1);
    whisper.call_audio(&short, &opts).unwrap();
    ctc.call_audio(&short, &RunOptions::default()).unwrap();
    // Unknown language / task: typed errors naming what the checkpoint knows.
    let bad = RunOptions {
        language: Some("xx".into()),
        ..Default::default()
    };
    let (_, s) = err_text(whisper.call_audio(&short, &bad));
    assert!(
        s.contains("unknown language `xx`") && s.contains("fr"),
        "{s}"
    );
    let bad = RunOptions {
        speech_task: Some("summarize".into()),
        ..Default::default()
    };
    let (_, s) = err_text(whisper.call_audio(&short, &bad));
    assert!(s.contains("translate"), "{s}");
    // Beams: none is an error; a CTC model has no beams to search.
    let (_, s) = err_text(whisper.call_audio(
        &short,
        &RunOptions {
            num_beams: Some(0),
            ..Default::default()
        },
    ));
    assert!(s.contains("num_beams must be at least 1"), "{s}");
    let (_, s) = err_text(ctc.call_audio(
        &short,
        &RunOptions {
            num_beams: Some(4),
            ..Default::default()
        },
    ));
    assert!(s.contains("--num-beams is for Whisper"), "{s}");
}

#[test]
fn ten_minutes_of_audio_run_in_windows() {
    // 10.5 minutes at 16 kHz: Whisper hears it in the feature extractor's windows (2 s
    // for this checkpoint, 30 s for real ones), one window's activations at a time.
    let samples: Vec<f32> = (0..16_000 * 630)
        .map(|i| ((i as f32) * 0.01).sin() * 0.1)
        .collect();
    let long = Audio {
        samples,
        sample_rate: 16_000,
    };
    assert!(long.seconds() > 600.0);
    let whisper = load("whisper-tiny", Task::AutomaticSpeechRecognition);
    assert_eq!(whisper.whisper_features(&long).unwrap().len(), 315);
    let opts = RunOptions {
        language: Some("en".into()),
        max_new_tokens: Some(1),
        ..Default::default()
    };
    let text = whisper
        .speech_recognition(std::slice::from_ref(&long), &opts)
        .unwrap();
    // One token per window at most.
    assert!(!text[0].text.is_empty());
    // The tiny CTC fixture makes a frame every 20 samples (a real Wav2Vec2 every 320),
    // so its windows are 5000 frames (6.25 s): 70 s is 12 windows.
    let ctc = load("wav2vec2-tiny-ctc", Task::AutomaticSpeechRecognition);
    let minute = Audio {
        samples: long.samples[..16_000 * 70].to_vec(),
        sample_rate: 16_000,
    };
    let out = ctc
        .speech_recognition(&[minute], &RunOptions::default())
        .unwrap();
    assert!(!out[0].text.is_empty());
}
