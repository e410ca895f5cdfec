//! automatic-speech-recognition with the generated `Whisper` skillset (language and
//! task tokens, long audio in windows), and the same WAV through a CTC model.
//!
//!     cargo run --example transcribe -- tests/fixtures/whisper-tiny tests/fixtures/media/stereo44k.wav

use skillsets::runtime::media::Audio;
use skillsets::runtime::RunOptions;
use skillsets::{task::AutomaticSpeechRecognition, Skillset, Wav2vec2, Whisper};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let checkpoint = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/whisper-tiny".into());
    let wav = args
        .next()
        .unwrap_or_else(|| "tests/fixtures/media/stereo44k.wav".into());
    // Any WAV: mixed to mono and resampled to the model's 16 kHz.
    let audio = Audio::open(wav.as_ref())?;
    println!(
        "{wav}: {:.2} s at {} Hz",
        audio.seconds(),
        audio.sample_rate
    );
    let whisper = Whisper::init_cpu::<AutomaticSpeechRecognition>(&checkpoint)?;
    for (language, task) in [("en", "transcribe"), ("fr", "translate")] {
        let opts = RunOptions {
            language: Some(language.into()),
            speech_task: Some(task.into()),
            max_new_tokens: Some(8),
            ..Default::default()
        };
        let out = whisper.call_audio(&audio, &opts)?;
        println!("  whisper {language}/{task}: {:?}", out.text);
    }
    let ctc = Wav2vec2::init_cpu::<AutomaticSpeechRecognition>("tests/fixtures/wav2vec2-tiny-ctc")?;
    let out = ctc.call_audio(&audio, &RunOptions::default())?;
    let shown: String = out.text.chars().take(60).collect();
    println!("  wav2vec2 (CTC): {shown:?}...");
    Ok(())
}
