//! Audio: WAV decoding, mixdown to mono, resampling as `torchaudio.functional.resample`
//! does (what transformers' speech pipelines call), Whisper's log-mel spectrogram and
//! Wav2Vec2's normalized waveform.

use std::path::Path;

use crate::error::{Error, Result};

/// Mono audio: samples in [-1, 1] at `sample_rate` Hz.
#[derive(Clone, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
}

impl std::fmt::Debug for Audio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Audio({} samples at {} Hz)",
            self.samples.len(),
            self.sample_rate
        )
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl Audio {
    /// Decode a RIFF/WAVE file: PCM 8/16/24/32-bit integer or 32/64-bit float
    /// (plain or `WAVE_FORMAT_EXTENSIBLE`), any number of channels, mixed down to
    /// mono by averaging (as ffmpeg's `-ac 1` does). `what` names the input in errors.
    pub fn decode_wav(bytes: &[u8], what: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidInput(format!("{what}: {reason}"));
        if bytes.is_empty() {
            return Err(bad("the file is empty"));
        }
        if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err(bad("not a WAV file (no RIFF/WAVE header); convert it with `ffmpeg -i input -ar 16000 -ac 1 output.wav`"));
        }
        let mut pos = 12;
        let mut format: Option<(u16, u16, u32, u16)> = None;
        let mut data: Option<&[u8]> = None;
        while pos + 8 <= bytes.len() {
            let id = &bytes[pos..pos + 4];
            let size = u32_at(bytes, pos + 4) as usize;
            let start = pos + 8;
            let end = start.saturating_add(size).min(bytes.len());
            let body = &bytes[start..end];
            match id {
                b"fmt " => {
                    if body.len() < 16 {
                        return Err(bad("truncated `fmt ` chunk"));
                    }
                    let mut tag = u16_at(body, 0);
                    let channels = u16_at(body, 2);
                    let rate = u32_at(body, 4);
                    let bits = u16_at(body, 14);
                    if tag == 0xFFFE && body.len() >= 26 {
                        // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the tag.
                        tag = u16_at(body, 24);
                    }
                    format = Some((tag, channels, rate, bits));
                }
                b"data" => {
                    // Streaming writers leave the size 0 or all ones: the rest of the file.
                    if size == 0 || size == u32::MAX as usize {
                        data = Some(&bytes[start..]);
                    } else if start + size > bytes.len() {
                        return Err(bad(&format!(
                            "the file is truncated: its data chunk declares {size} bytes, {} are there",
                            bytes.len().saturating_sub(start)
                        )));
                    } else {
                        data = Some(body);
                    }
                    break;
                }
                _ => {}
            }
            // Chunks are padded to an even size.
            pos = start.saturating_add(size).saturating_add(size & 1);
        }
        let (tag, channels, rate, bits) = format.ok_or_else(|| bad("no `fmt ` chunk"))?;
        let data = data.ok_or_else(|| bad("no `data` chunk (truncated file?)"))?;
        if channels == 0 {
            return Err(bad("0 channels"));
        }
        if rate == 0 {
            return Err(bad("a sample rate of 0 Hz"));
        }
        if rate > MAX_SAMPLE_RATE {
            return Err(bad(&format!(
                "a sample rate of {rate} Hz (more than {MAX_SAMPLE_RATE} Hz is no audio a model was trained on)"
            )));
        }
        let width = match (tag, bits) {
            (1, 8) => 1,
            (1, 16) => 2,
            (1, 24) => 3,
            (1, 32) | (3, 32) => 4,
            (3, 64) => 8,
            _ => {
                return Err(bad(&format!(
                    "unsupported WAV encoding (format tag {tag}, {bits} bits): 8/16/24/32-bit PCM or 32/64-bit float are read"
                )))
            }
        };
        let frame = width * channels as usize;
        let frames = data.len() / frame;
        let sample = |i: usize| -> f32 {
            let b = &data[i * width..(i + 1) * width];
            match (tag, width) {
                (1, 1) => (b[0] as f32 - 128.0) / 128.0,
                (1, 2) => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
                (1, 3) => (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0,
                (1, 4) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0,
                (3, 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                _ => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32,
            }
        };
        let c = channels as usize;
        let mut samples = Vec::with_capacity(frames);
        for f in 0..frames {
            if c == 1 {
                samples.push(sample(f));
            } else {
                let sum: f32 = (0..c).map(|ch| sample(f * c + ch)).sum();
                samples.push(sum / c as f32);
            }
        }
        if samples.iter().any(|s| !s.is_finite()) {
            return Err(bad("the samples contain NaN or infinity"));
        }
        Ok(Audio {
            samples,
            sample_rate: rate,
        })
    }

    /// Read and decode a WAV file.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes =
            crate::checkpoint::read_regular_file(path, MAX_AUDIO_FILE)?.ok_or_else(|| {
                Error::MissingFile {
                    path: path.to_path_buf(),
                    what: "audio file",
                    hint: None,
                }
            })?;
        Self::decode_wav(&bytes, &path.display().to_string())
    }

    /// The audio at `rate` Hz ([`resample`]).
    pub fn resampled(self, rate: u32) -> Result<Audio> {
        if rate == self.sample_rate {
            return Ok(self);
        }
        Ok(Audio {
            samples: resample(&self.samples, self.sample_rate, rate)?,
            sample_rate: rate,
        })
    }

    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The largest WAV file read (4 GiB: a RIFF file cannot be larger).
const MAX_AUDIO_FILE: u64 = 4 << 30;

/// The highest sample rate a WAV file may declare (16 x 96 kHz).
pub const MAX_SAMPLE_RATE: u32 = 1_536_000;
/// The most inputs one resampled output sample may read.
const MAX_RESAMPLE_TAPS: usize = 8192;
/// The most coefficients of a resampling filter (16 MiB of f32).
const MAX_RESAMPLE_COEFFICIENTS: usize = 4 << 20;

/// Band-limited resampling, `torchaudio.functional.resample(x, from, to)` with its
/// defaults (`sinc_interp_hann`, 6 zero crossings, rolloff 0.99): a windowed-sinc
/// polyphase filter, output length `ceil(len * to / from)`.
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == 0 || to == 0 {
        return Err(Error::InvalidInput(format!(
            "cannot resample from {from} Hz to {to} Hz"
        )));
    }
    if from == to {
        return Ok(x.to_vec());
    }
    let g = gcd(from as u64, to as u64);
    let orig = (from as u64 / g) as usize;
    let new = (to as u64 / g) as usize;
    const ZEROS: f64 = 6.0;
    const ROLLOFF: f64 = 0.99;
    let base = orig.min(new) as f64 * ROLLOFF;
    let width = (ZEROS * orig as f64 / base).ceil() as usize;
    let taps = 2 * width + orig;
    // torchaudio's filter has `new` phases of `taps` coefficients each, and every
    // output sample reads `taps` inputs: between two rates with a tiny common divisor
    // (99,991 Hz to 16 kHz: 16,000 x 100,067) that is gigabytes and minutes. The common
    // rates need at most a few hundred thousand coefficients.
    if taps > MAX_RESAMPLE_TAPS || new.saturating_mul(taps) > MAX_RESAMPLE_COEFFICIENTS {
        return Err(Error::InvalidInput(format!(
            "resampling {from} Hz to {to} Hz needs a {new} x {taps} polyphase filter (their greatest common divisor is {g} Hz): convert the audio to a common rate first (`ffmpeg -i in.wav -ar {to} out.wav`)"
        )));
    }
    // kernels[j][k]: output phase j, input offset k - width (torchaudio computes it in
    // f64 when no dtype is given, then casts to f32).
    let mut kernels = vec![0f32; new * taps];
    for j in 0..new {
        for k in 0..taps {
            let idx = (k as f64 - width as f64) / orig as f64;
            let mut t = (-(j as f64) / new as f64 + idx) * base;
            t = t.clamp(-ZEROS, ZEROS);
            let window = (t * std::f64::consts::PI / ZEROS / 2.0).cos().powi(2);
            let t = t * std::f64::consts::PI;
            let scale = base / orig as f64;
            let v = if t == 0.0 { 1.0 } else { t.sin() / t };
            kernels[j * taps + k] = (v * window * scale) as f32;
        }
    }
    let len = x.len();
    let padded = |i: isize| -> f32 {
        // Zero padding of `width` before and `width + orig` after.
        let i = i - width as isize;
        if i >= 0 && (i as usize) < len {
            x[i as usize]
        } else {
            0.0
        }
    };
    let padded_len = len + 2 * width + orig;
    let frames = (padded_len - taps) / orig + 1;
    let target = ((new as u128 * len as u128).div_ceil(orig as u128)) as usize;
    let mut out = Vec::with_capacity(target);
    'outer: for f in 0..frames {
        for j in 0..new {
            if out.len() == target {
                break 'outer;
            }
            let kernel = &kernels[j * taps..(j + 1) * taps];
            let start = (f * orig) as isize;
            let mut acc = 0f32;
            for (k, &w) in kernel.iter().enumerate() {
                acc += padded(start + k as isize) * w;
            }
            out.push(acc);
        }
    }
    Ok(out)
}

/// `Wav2Vec2FeatureExtractor` with `do_normalize`: zero mean, unit variance
/// (`(x - mean) / sqrt(var + 1e-7)`).
pub fn zero_mean_unit_var(x: &[f32]) -> Vec<f32> {
    if x.is_empty() {
        return vec![];
    }
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let denom = (var + 1e-7).sqrt();
    x.iter()
        .map(|&v| ((v as f64 - mean) / denom) as f32)
        .collect()
}

/// Whisper's log-mel front end (`WhisperFeatureExtractor`).
#[derive(Clone)]
pub struct LogMel {
    pub n_fft: usize,
    pub hop_length: usize,
    pub sampling_rate: u32,
    /// Samples per window (`chunk_length * sampling_rate`).
    pub n_samples: usize,
    pub n_mels: usize,
    /// Per mel band: the first frequency bin and the band's (non-zero) weights, slaney-
    /// normalized triangles on the slaney mel scale.
    filters: Vec<(usize, Vec<f64>)>,
    window: Vec<f64>,
    fft: std::sync::Arc<dyn rustfft::Fft<f64>>,
}

fn hz_to_mel(f: f64) -> f64 {
    // Slaney: linear below 1 kHz, logarithmic above.
    let min_log_hz = 1000.0;
    let min_log_mel = 15.0;
    let logstep = 27.0 / 6.4f64.ln();
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() * logstep
    } else {
        3.0 * f / 200.0
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let min_log_hz = 1000.0;
    let min_log_mel = 15.0;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        200.0 * m / 3.0
    }
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LogMel({} mels, n_fft {}, hop {}, {} samples per window at {} Hz)",
            self.n_mels, self.n_fft, self.hop_length, self.n_samples, self.sampling_rate
        )
    }
}

impl LogMel {
    /// From `preprocessor_config.json`'s `feature_size`, `sampling_rate`,
    /// `hop_length`, `chunk_length` and `n_fft`.
    pub fn new(
        n_mels: usize,
        sampling_rate: u32,
        hop_length: usize,
        chunk_length: usize,
        n_fft: usize,
    ) -> Result<Self> {
        // Real feature extractors: 80 or 128 mels, n_fft 400, hop 160, 30 s at 16 kHz. The
        // ceilings keep a file's numbers from sizing gigabytes (n_fft 2^28, 1e9-second
        // windows) before anything runs.
        if n_mels == 0
            || n_mels > 1024
            || hop_length == 0
            || hop_length > n_fft.max(1) * 16
            || chunk_length == 0
            || chunk_length > 3600
            || !(2..=1 << 16).contains(&n_fft)
            || sampling_rate == 0
            || sampling_rate > MAX_SAMPLE_RATE
        {
            return Err(Error::InvalidInput(format!(
                "invalid log-mel settings: {n_mels} mels (1-1024), hop {hop_length} (1 to 16 n_fft), chunk {chunk_length} s (1-3600), n_fft {n_fft} (2-65536), {sampling_rate} Hz (1-{MAX_SAMPLE_RATE})"
            )));
        }
        let bins = n_fft / 2 + 1;
        // transformers' mel_filter_bank(norm="slaney", mel_scale="slaney"), 0 to sr/2.
        let max_f = sampling_rate as f64 / 2.0;
        let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(max_f));
        let points: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
            .collect();
        let fft_freqs: Vec<f64> = (0..bins)
            .map(|i| max_f * i as f64 / (bins - 1) as f64)
            .collect();
        let filters = (0..n_mels)
            .map(|m| {
                let (lo, center, hi) = (points[m], points[m + 1], points[m + 2]);
                let enorm = 2.0 / (hi - lo);
                let row: Vec<f64> = fft_freqs
                    .iter()
                    .map(|&f| {
                        let down = (f - lo) / (center - lo);
                        let up = (hi - f) / (hi - center);
                        down.min(up).max(0.0) * enorm
                    })
                    .collect();
                let first = row.iter().position(|&w| w != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&w| w != 0.0).map_or(first, |l| l + 1);
                (first, row[first..last].to_vec())
            })
            .collect();
        // Periodic Hann window.
        let window = (0..n_fft)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos())
            .collect();
        let fft = rustfft::FftPlanner::new().plan_fft_forward(n_fft);
        Ok(LogMel {
            n_fft,
            hop_length,
            sampling_rate,
            n_samples: chunk_length * sampling_rate as usize,
            n_mels,
            filters,
            window,
            fft,
        })
    }

    /// Frames per window (`n_samples / hop_length`).
    pub fn frames(&self) -> usize {
        self.n_samples / self.hop_length
    }

    /// The `[n_mels, frames]` features of one window: the audio zero-padded (or cut)
    /// to `n_samples`, a centred (reflect-padded) STFT with a periodic Hann window,
    /// power spectrum, mel filters, `log10(max(x, 1e-10))`, floored at the maximum
    /// minus 8, then `(x + 4) / 4`; the last frame is dropped, as transformers does.
    pub fn features(&self, window: &[f32]) -> Vec<f32> {
        let n = self.n_samples;
        let mut x = vec![0f64; n];
        for (d, &s) in x.iter_mut().zip(window) {
            *d = s as f64;
        }
        let half = self.n_fft / 2;
        // Reflect padding (numpy "reflect": the edge sample is not repeated).
        let reflect = |i: isize| -> f64 {
            let mut i = i;
            let last = n as isize - 1;
            if last == 0 {
                return x[0];
            }
            loop {
                if i < 0 {
                    i = -i;
                } else if i > last {
                    i = 2 * last - i;
                } else {
                    return x[i as usize];
                }
            }
        };
        let frames = self.frames();
        let bins = self.n_fft / 2 + 1;
        let mut mel = vec![0f64; self.n_mels * frames];
        let mut frame = vec![rustfft::num_complex::Complex::<f64>::default(); self.n_fft];
        let mut scratch = vec![
            rustfft::num_complex::Complex::<f64>::default();
            self.fft.get_inplace_scratch_len()
        ];
        let mut power = vec![0f64; bins];
        for t in 0..frames {
            let start = (t * self.hop_length) as isize - half as isize;
            for (i, f) in frame.iter_mut().enumerate() {
                *f = rustfft::num_complex::Complex::new(
                    reflect(start + i as isize) * self.window[i],
                    0.0,
                );
            }
            self.fft.process_with_scratch(&mut frame, &mut scratch);
            for (p, c) in power.iter_mut().zip(&frame) {
                *p = c.norm_sqr();
            }
            for (m, (first, filt)) in self.filters.iter().enumerate() {
                let v: f64 = filt.iter().zip(&power[*first..]).map(|(a, b)| a * b).sum();
                mel[m * frames + t] = v.max(1e-10).log10();
            }
        }
        let max = mel.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        mel.iter()
            .map(|&v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, rate: u32, bits: u16, tag: u16, data: &[u8]) -> Vec<u8> {
        let mut b = b"RIFF".to_vec();
        b.extend(((36 + data.len()) as u32).to_le_bytes());
        b.extend(b"WAVEfmt ");
        b.extend(16u32.to_le_bytes());
        b.extend(tag.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * channels as u32 * bits as u32 / 8).to_le_bytes());
        b.extend((channels * bits / 8).to_le_bytes());
        b.extend(bits.to_le_bytes());
        b.extend(b"data");
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn decodes_pcm_and_float_and_mixes_down() {
        let data: Vec<u8> = [16384i16, -16384, 32767, 0]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let a = Audio::decode_wav(&wav(2, 8000, 16, 1, &data), "x").unwrap();
        assert_eq!(a.sample_rate, 8000);
        assert_eq!(a.samples, vec![0.0, 32767.0 / 65536.0]);
        let data: Vec<u8> = [0.25f32, -1.0]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let a = Audio::decode_wav(&wav(1, 16000, 32, 3, &data), "x").unwrap();
        assert_eq!(a.samples, vec![0.25, -1.0]);
    }

    #[test]
    fn bad_wavs_are_typed_errors() {
        for (bytes, want) in [
            (vec![], "empty"),
            (b"not a wav at all".to_vec(), "not a WAV"),
            (wav(1, 16000, 16, 1, &[])[..30].to_vec(), "fmt"),
            (wav(1, 16000, 16, 1, &[0; 100])[..80].to_vec(), "truncated"),
            (wav(1, 0, 16, 1, &[0, 0]), "0 Hz"),
            (wav(1, 16000, 12, 1, &[0, 0]), "unsupported"),
        ] {
            let e = Audio::decode_wav(&bytes, "x.wav").unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn resampling_keeps_a_low_tone_and_the_length_rule() {
        let from = 44_100;
        let x: Vec<f32> = (0..4410)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / from as f32).sin())
            .collect();
        let y = resample(&x, from, 16_000).unwrap();
        assert_eq!(y.len(), 1600);
        // Away from the edges the tone is intact.
        for (i, v) in y.iter().enumerate().skip(100).take(1400) {
            let want = (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin();
            assert!((v - want).abs() < 0.02, "{i}: {v} vs {want}");
        }
    }
}
