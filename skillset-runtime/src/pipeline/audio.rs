//! The audio tasks on a pipeline: audio classification and speech recognition
//! (CTC models and Whisper).

use super::handler::{json_each, Context, Handler, Inputs, Labels};
use super::options::{RunOptions, TopK};
use crate::error::{Error, Result};
use crate::families::wav2vec2::Wav2Vec2;
use crate::families::whisper::Whisper;
use crate::media::audio::{Audio, LogMel};
use crate::ops::softmax;
use crate::outputs::{LabelScore, Transcription};
use crate::speech::{
    AudioFrontEnd, CtcVocab, WhisperDecoding, WAV2VEC2_WINDOW_FRAMES, WAV2VEC2_WINDOW_SECONDS,
    WHISPER_DEFAULT_BEAMS,
};
use crate::tokenize::TextTokenizer;
use candle_core::{Device, Tensor};
use std::borrow::Cow;

/// The waveform the model hears: mono, at the feature extractor's rate.
pub(crate) fn prepare_audio<'a>(
    cx: &Context,
    front: &AudioFrontEnd,
    audio: &'a Audio,
) -> Result<Cow<'a, Audio>> {
    // The budget first: a 2 MB WAV declaring 1 Hz is 23 days of audio, which
    // resampling to 16 kHz would make 128 GB.
    cx.limits
        .check_audio(audio.samples.len(), audio.sample_rate)?;
    let prepared = front.prepare(audio)?;
    cx.limits
        .check_audio(prepared.samples.len(), prepared.sample_rate)?;
    Ok(prepared)
}

/// A Wav2Vec2-style speech encoder with its feature extractor (CTC or classifier head).
pub(crate) struct SpeechEncoder {
    pub model: Wav2Vec2,
    pub front: AudioFrontEnd,
}

impl SpeechEncoder {
    /// Wav2Vec2/HuBERT logits of one utterance (CTC: `[frames, vocab]`; classifier:
    /// `[labels]`). With `windowed` (CTC), long audio runs in windows of
    /// `WAV2VEC2_WINDOW_SECONDS` (frames concatenated), so memory stays bounded.
    fn logits(&self, cx: &Context, audio: &Audio, windowed: bool) -> Result<Tensor> {
        let model = &self.model;
        let front = &self.front;
        let audio = prepare_audio(cx, front, audio)?;
        let run = |samples: &[f32]| -> Result<Tensor> {
            let values = front.input_values(samples);
            let input = Tensor::from_vec(values, (1, samples.len()), &Device::Cpu)?
                .to_dtype(cx.candle_dtype())?
                .to_device(cx.device())?;
            model.head_logits(&model.hidden_states(&input)?)
        };
        if audio.samples.len() < model.min_samples() {
            return Err(Error::InvalidInput(format!(
                "the audio is {:.3} s long, shorter than the {} samples ({:.3} s) the model needs for one frame",
                audio.seconds(),
                model.min_samples(),
                model.min_samples() as f64 / audio.sample_rate as f64
            )));
        }
        // At most 30 s and at most `WAV2VEC2_WINDOW_FRAMES` frames (a real Wav2Vec2
        // makes 1500 frames of 30 s; a model with a finer stride would otherwise build
        // a quadratic attention over tens of thousands of frames).
        let window = (WAV2VEC2_WINDOW_SECONDS * audio.sample_rate as usize)
            .min(WAV2VEC2_WINDOW_FRAMES * model.stride());
        if !windowed || audio.samples.len() <= window {
            return run(&audio.samples);
        }
        // Windows on frame boundaries; a last piece too short for a frame is dropped.
        let window = window / model.stride() * model.stride();
        let mut parts = Vec::new();
        for piece in audio.samples.chunks(window) {
            if piece.len() >= model.min_samples() {
                parts.push(run(piece)?);
            }
        }
        Ok(Tensor::cat(&parts, 0)?)
    }
}

/// automatic-speech-recognition on a CTC model.
pub(crate) struct CtcRecognizer {
    pub encoder: SpeechEncoder,
    pub vocab: CtcVocab,
}

/// audio-classification on a speech encoder with a classifier head.
pub(crate) struct AudioClassifier {
    pub encoder: SpeechEncoder,
    pub labels: Labels,
}

/// automatic-speech-recognition on Whisper.
pub(crate) struct WhisperRecognizer {
    pub model: Whisper,
    pub rules: WhisperDecoding,
    /// The feature extractor (`front`) and its log-mel settings (`mel`).
    pub front: AudioFrontEnd,
    pub mel: LogMel,
    pub tok: TextTokenizer,
}

impl CtcRecognizer {
    /// automatic-speech-recognition: the text of each utterance.
    pub fn speech_recognition(
        &self,
        cx: &Context,
        audio: &[Audio],
        opts: &RunOptions,
    ) -> Result<Vec<Transcription>> {
        audio
            .iter()
            .map(|a| {
                    let vocab = &self.vocab;
                    if opts.language.is_some() || opts.speech_task.is_some() {
                        return Err(Error::InvalidOption(
                            "--language and --task translate are Whisper options: a CTC model transcribes in its one vocabulary".into(),
                        ));
                    }
                    if opts.num_beams.is_some_and(|n| n > 1) {
                        return Err(Error::InvalidOption(
                            "--num-beams is for Whisper: a CTC model decodes every frame at once (greedy CTC, as transformers' pipeline without a language-model decoder)".into(),
                        ));
                    }
                    let logits = self.encoder.logits(cx, a, true)?;
                    let ids: Vec<u32> = logits.argmax(candle_core::D::Minus1)?.to_vec1()?;
                    Ok(Transcription {
                        text: vocab.decode(&ids),
                    })
            })
            .collect()
    }
}

impl AudioClassifier {
    /// audio-classification: each utterance's labels with softmax scores, best first.
    pub fn audio_classification(
        &self,
        cx: &Context,
        audio: &[Audio],
        top_k: TopK,
    ) -> Result<Vec<Vec<LabelScore>>> {
        audio
            .iter()
            .map(|a| {
                let logits: Vec<f32> = self
                    .encoder
                    .logits(cx, a, false)?
                    .to_dtype(candle_core::DType::F32)?
                    .to_device(&Device::Cpu)?
                    .to_vec1()?;
                Ok(self.labels.rank(&softmax(&logits), top_k))
            })
            .collect()
    }
}

impl WhisperRecognizer {
    /// The log-mel features `[n_mels, frames]` (flat) of each 30-second window (the
    /// feature extractor's `chunk_length`) of `audio`.
    pub fn whisper_features(&self, cx: &Context, audio: &Audio) -> Result<Vec<Vec<f32>>> {
        let mel = &self.mel;
        let audio = prepare_audio(cx, &self.front, audio)?;
        Ok(audio
            .samples
            .chunks(mel.n_samples)
            .map(|w| mel.features(w))
            .collect())
    }

    /// automatic-speech-recognition: the text of each utterance.
    pub fn speech_recognition(
        &self,
        cx: &Context,
        audio: &[Audio],
        opts: &RunOptions,
    ) -> Result<Vec<Transcription>> {
        audio.iter().map(|a| self.transcribe(cx, a, opts)).collect()
    }

    fn transcribe(&self, cx: &Context, audio: &Audio, opts: &RunOptions) -> Result<Transcription> {
        let (model, rules, mel) = (&self.model, &self.rules, &self.mel);
        // The prompt: start of transcript, language, task, no timestamps.
        let mut prompt = vec![rules.decoder_start];
        let language = match &opts.language {
            Some(l) => Some(rules.language_token(l)?),
            None => None,
        };
        if let Some(l) = language {
            prompt.push(l);
        }
        match &opts.speech_task {
            Some(t) => {
                let id = rules.task_to_id.get(t.as_str()).copied().ok_or_else(|| {
                    Error::InvalidOption(if rules.task_to_id.is_empty() {
                        format!("task `{t}`: this checkpoint is English-only and only transcribes")
                    } else {
                        format!(
                            "unknown Whisper task `{t}` (expected {})",
                            rules
                                .task_to_id
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(" or ")
                        )
                    })
                })?;
                prompt.push(id);
            }
            None if language.is_some() => {
                if let Some(&id) = rules.task_to_id.get("transcribe") {
                    prompt.push(id);
                }
            }
            None => {}
        }
        let max_new = match opts.max_new_tokens {
            Some(n) => n,
            None => rules
                .max_length
                .unwrap_or(model.max_target_positions)
                .saturating_sub(prompt.len() + 1),
        };
        let num_beams = opts
            .num_beams
            .or(rules.num_beams)
            .unwrap_or(WHISPER_DEFAULT_BEAMS);
        if num_beams == 0 {
            return Err(Error::InvalidOption("num_beams must be at least 1".into()));
        }
        cx.limits.check_beams(num_beams)?;
        cx.limits.check_new_tokens(max_new)?;
        let audio = prepare_audio(cx, &self.front, audio)?;
        let tok = &self.tok;
        let mut text = String::new();
        for window in audio.samples.chunks(mel.n_samples) {
            let features = Tensor::from_vec(
                mel.features(window),
                (1, mel.n_mels, mel.frames()),
                &Device::Cpu,
            )?
            .to_dtype(cx.candle_dtype())?
            .to_device(cx.device())?;
            let encoded = model.encode(&features)?;
            let mut state = model.start(&encoded)?;
            let mut window_prompt = prompt.clone();
            if language.is_none() && rules.multilingual && !rules.lang_to_id.is_empty() {
                // Language detection: the most likely language token after the start.
                let mut probe = model.start(&encoded)?;
                let logits = model.step(&mut probe, &[rules.decoder_start])?;
                let best = rules
                    .lang_to_id
                    .values()
                    .copied()
                    .max_by(|&a, &b| logits[a as usize].total_cmp(&logits[b as usize]))
                    .unwrap_or(rules.decoder_start);
                window_prompt.insert(1, best);
            }
            if let Some(nt) = rules.no_timestamps {
                if window_prompt.last() != Some(&nt) {
                    window_prompt.push(nt);
                }
            }
            let limit = max_new.min(
                model
                    .max_target_positions
                    .saturating_sub(window_prompt.len()),
            );
            if num_beams > 1 {
                let settings = crate::beam::BeamSettings {
                    num_beams,
                    max_new_tokens: limit,
                    eos: rules.eos.clone(),
                    length_penalty: rules.length_penalty,
                    early_stopping: rules.early_stopping,
                };
                let mut beams = WhisperBeams {
                    model,
                    first: Some((state, window_prompt.clone())),
                    state: None,
                    rows: num_beams,
                };
                // As transformers' logits processors, on the log-probabilities.
                let best = crate::beam::beam_search(&mut beams, &settings, |lp, generated| {
                    suppress(lp, &rules.suppress);
                    if generated.is_empty() {
                        suppress(lp, &rules.begin_suppress);
                    }
                })?;
                text.push_str(&tok.decode(&best, true)?);
                continue;
            }
            let mut generated = Vec::new();
            let mut feed = window_prompt.clone();
            while generated.len() < limit {
                let mut logits = model.step(&mut state, &feed)?;
                suppress(&mut logits, &rules.suppress);
                if generated.is_empty() {
                    suppress(&mut logits, &rules.begin_suppress);
                }
                let next = logits
                    .iter()
                    .enumerate()
                    .fold((0usize, f32::NEG_INFINITY), |best, (i, &x)| {
                        if x > best.1 {
                            (i, x)
                        } else {
                            best
                        }
                    })
                    .0 as u32;
                if rules.eos.contains(&next) {
                    break;
                }
                generated.push(next);
                feed = vec![next];
            }
            text.push_str(&tok.decode(&generated, true)?);
        }
        Ok(Transcription { text })
    }
}

impl Handler for CtcRecognizer {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let audio = inputs.audio(cx.task)?;
        Ok(json_each(&self.speech_recognition(cx, audio, opts)?))
    }
    fn audio_front_end(&self) -> Option<&AudioFrontEnd> {
        Some(&self.encoder.front)
    }
}

impl Handler for AudioClassifier {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let audio = inputs.audio(cx.task)?;
        Ok(json_each(&self.audio_classification(
            cx,
            audio,
            opts.top_k.unwrap_or(TopK::N(5)),
        )?))
    }
    fn labels(&self) -> &[String] {
        &self.labels.0
    }
    fn audio_front_end(&self) -> Option<&AudioFrontEnd> {
        Some(&self.encoder.front)
    }
}

impl Handler for WhisperRecognizer {
    fn run(
        &self,
        cx: &Context,
        inputs: Inputs<'_>,
        opts: &RunOptions,
    ) -> Result<Vec<serde_json::Value>> {
        let audio = inputs.audio(cx.task)?;
        Ok(json_each(&self.speech_recognition(cx, audio, opts)?))
    }
    fn tokenizer(&self) -> Option<&TextTokenizer> {
        Some(&self.tok)
    }
    fn audio_front_end(&self) -> Option<&AudioFrontEnd> {
        Some(&self.front)
    }
}

fn suppress(row: &mut [f32], tokens: &[u32]) {
    for &t in tokens {
        if let Some(l) = row.get_mut(t as usize) {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// Whisper's decoder over `rows` beams: one decoder state of `rows` rows, every beam
/// fed in one decoder call per step.
struct WhisperBeams<'m> {
    model: &'m crate::families::whisper::Whisper,
    /// The fresh one-row state and the prompt, until the prefill.
    first: Option<(crate::families::whisper::DecoderState, Vec<u32>)>,
    state: Option<crate::families::whisper::DecoderState>,
    rows: usize,
}

impl crate::beam::Beams for WhisperBeams<'_> {
    fn prefill(&mut self) -> Result<Vec<Vec<f32>>> {
        let (mut state, prompt) = self
            .first
            .take()
            .ok_or_else(|| Error::InvalidInput("internal: prefilled twice".into()))?;
        // The prompt once, then its cache copied to every beam.
        let logits = self.model.step(&mut state, &prompt)?;
        self.state = Some(state.select(&vec![0; self.rows])?);
        Ok(vec![logits; self.rows])
    }

    fn advance(&mut self, sources: &[usize], tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let state = self
            .state
            .take()
            .ok_or_else(|| Error::InvalidInput("internal: advanced before the prefill".into()))?;
        let mut state = state.select(sources)?;
        let ids: Vec<Vec<u32>> = tokens.iter().map(|&t| vec![t]).collect();
        let logits = self.model.step_rows(&mut state, &ids)?;
        self.state = Some(state);
        Ok(logits)
    }
}
