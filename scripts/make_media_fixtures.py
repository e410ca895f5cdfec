#!/usr/bin/env python3
"""Build the tiny random-weight vision and audio checkpoints under tests/fixtures/ and
record what HF transformers outputs for them.

The companion of `scripts/make_fixtures.py` (text models), whose conventions this
follows: every fixture directory is a complete Hugging Face checkpoint (config.json,
model.safetensors, tokenizer files, preprocessor_config.json, generation_config.json
where relevant) plus `README.md` and `reference.json` (the inputs of each check and
transformers' `pipeline()` outputs for them, one per input). In addition each fixture has

  * `processor.safetensors`: the exact tensor the model sees for each input of the
    first check, `<tensor>.<i>` with the batch dimension dropped (`pixel_values` [3,H,W],
    `input_features` [mels, frames], `input_values` [samples]); audio fixtures also hold
    `resampled.<i>`, the mono float32 waveform at the feature extractor's rate; CLIP and
    SigLIP also `image_embeds.<i>` / `text_embeds.<j>` (raw get_*_features outputs);
  * `processor.json`: which tensor, for which inputs, made by which processor class.

Fixtures: vit-tiny-cls, deit-tiny-cls, clip-tiny, siglip-tiny, wav2vec2-tiny-ctc,
wav2vec2-tiny-cls, hubert-tiny-ctc, whisper-tiny, llava-tiny.

The inputs are the deterministic files under `tests/fixtures/media/` (made here too).
Images are opened with PIL and given to the pipelines as PIL images; audio files are
read like a user would (int16 / 32768, float32 as is, mean over channels) and given as
`{"raw": float32 array, "sampling_rate": sr}`, so the pipeline resamples (no ffmpeg).

Usage:
    python scripts/make_media_fixtures.py [--only NAME ...]
    python scripts/make_media_fixtures.py --recompute FIXTURE_DIR... [--device D] [--dtype f16 bf16] [--out DIR]

`--recompute` is `scripts/make_fixtures.py --recompute` for these fixtures: it runs each
check of an existing fixture again with transformers on `--device` in half precision and
writes `reference.<backend>-<dtype>.json` (backend "cuda" for a CUDA device) beside
`reference.json`, or under `DIR/<fixture>/` (`SKILLSET_REFERENCES=DIR`). Directories that
are not fixtures of this script (text fixtures, `media/`) are skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import sys
import types
import wave
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_fixtures as mf  # noqa: E402  (CORPUS, to_py, check_margins, tokenizer trainers)
from make_fixtures import CORPUS, check_margins, to_py  # noqa: E402

ROOT = mf.ROOT
FIXTURES = ROOT / "tests" / "fixtures"
MEDIA = FIXTURES / "media"
GENERATED_BY = "scripts/make_media_fixtures.py"

SUMMARY: dict[str, dict] = {}  # per-fixture notes printed at the end

# Where and in which precision transformers runs (`--recompute` changes them). Whether
# near ties abort is make_fixtures' STRICT_MARGINS (`mf.STRICT_MARGINS`): fixture creation
# aborts on one; recomputed references record the margins instead (a check-level
# "margins" entry per input, which the Rust side does not read).
DEVICE = "cpu"
DTYPE = None  # torch dtype; None = float32


def on_device(enc):
    """A processor's output on DEVICE, its floating-point tensors in DTYPE (as the
    pipelines cast them)."""
    enc = enc.to(DEVICE)
    return enc.to(DTYPE) if DTYPE is not None else enc


def ranking_gap(ranked: list[dict]) -> float | None:
    """The smallest gap between consecutive scores of a ranking (None for one entry)."""
    return min((abs(a["score"] - b["score"]) for a, b in zip(ranked, ranked[1:])), default=None)


# ---------------------------------------------------------------------------
# Resampling. torchaudio does not import against this torch (CUDA build mismatch, and it
# may not be installed at all), and transformers' audio pipelines need
# `torchaudio.functional.resample` for a dict input whose sampling_rate differs from the
# feature extractor's. This is a line-for-line port of torchaudio 2.x's
# `functional.resample` with its defaults (resampling_method="sinc_interp_hann",
# lowpass_filter_width=6, rolloff=0.99): same kernel (computed in the waveform's dtype),
# same padding (width, width + orig), same strided conv1d, same target length
# ceil(new * length / orig). Where torchaudio does not import, the port is registered as the `torchaudio` module so that
# the pipelines use it exactly where they would call torchaudio.
# ---------------------------------------------------------------------------

def _sinc_resample_kernel(orig_freq: int, new_freq: int, gcd: int, lowpass_filter_width: int, rolloff: float,
                          device, dtype):
    orig_freq = int(orig_freq) // gcd
    new_freq = int(new_freq) // gcd
    base_freq = min(orig_freq, new_freq) * rolloff
    width = math.ceil(lowpass_filter_width * orig_freq / base_freq)
    idx_dtype = dtype if dtype is not None else torch.float64
    idx = torch.arange(-width, width + orig_freq, dtype=idx_dtype, device=device)[None, None] / orig_freq
    t = torch.arange(0, -new_freq, -1, dtype=dtype, device=device)[:, None, None] / new_freq + idx
    t *= base_freq
    t = t.clamp_(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2  # sinc_interp_hann
    t *= math.pi
    scale = base_freq / orig_freq
    kernels = torch.where(t == 0, torch.tensor(1.0).to(t), t.sin() / t)
    kernels *= window * scale
    if dtype is None:
        kernels = kernels.to(dtype=torch.float32)
    return kernels, width


def resample(waveform: torch.Tensor, orig_freq: int, new_freq: int, lowpass_filter_width: int = 6,
             rolloff: float = 0.99, resampling_method: str = "sinc_interp_hann", beta=None) -> torch.Tensor:
    """torchaudio.functional.resample (sinc_interp_hann only)."""
    assert resampling_method == "sinc_interp_hann", resampling_method
    if orig_freq <= 0.0 or new_freq <= 0.0:
        raise ValueError("Original frequency and desired frequecy should be positive")
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(int(orig_freq), int(new_freq))
    kernel, width = _sinc_resample_kernel(orig_freq, new_freq, gcd, lowpass_filter_width, rolloff,
                                          waveform.device, waveform.dtype)
    if not waveform.is_floating_point():
        raise TypeError(f"Expected floating point type for waveform tensor, but received {waveform.dtype}.")
    orig = int(orig_freq) // gcd
    new = int(new_freq) // gcd
    shape = waveform.size()
    waveform = waveform.view(-1, shape[-1])
    num_wavs, length = waveform.shape
    waveform = torch.nn.functional.pad(waveform, (width, width + orig))
    resampled = torch.nn.functional.conv1d(waveform[:, None], kernel, stride=orig)
    resampled = resampled.transpose(1, 2).reshape(num_wavs, -1)
    target_length = torch.ceil(torch.as_tensor(new * length / orig)).long()
    resampled = resampled[..., :target_length]
    return resampled.view(shape[:-1] + resampled.shape[-1:])


def install_resampler():
    """Make transformers' audio pipelines find `torchaudio.functional.resample` (ours)."""
    try:
        import torchaudio.functional as F  # noqa: F401

        real = True
    except Exception:  # not installed, or built against another CUDA than torch
        real = False
    if not real:
        port = types.ModuleType("torchaudio")
        port.functional = types.ModuleType("torchaudio.functional")
        port.functional.resample = resample
        sys.modules["torchaudio"] = port
        sys.modules["torchaudio.functional"] = port.functional
    import transformers.pipelines.audio_classification as ac
    import transformers.pipelines.automatic_speech_recognition as asr

    asr.is_torchaudio_available = lambda: True
    ac.is_torchaudio_available = lambda: True
    return "torchaudio" if real else "port of torchaudio.functional.resample in this script"


# ---------------------------------------------------------------------------
# Media.
# ---------------------------------------------------------------------------

def write_wav_pcm16(path: Path, samples: np.ndarray, rate: int):
    """Mono float samples in [-1, 1) -> 16-bit PCM via the `wave` module."""
    ints = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(ints.tobytes())


def write_wav_float32(path: Path, channels: np.ndarray, rate: int):
    """[channels, samples] float32 -> IEEE-float WAV (format tag 3), laid out as
    scipy.io.wavfile writes it: an 18-byte fmt chunk (cbSize 0), a fact chunk, data."""
    n_ch, n = channels.shape
    data = np.ascontiguousarray(channels.T.astype("<f4")).tobytes()  # interleaved frames
    block_align = 4 * n_ch
    fmt = struct.pack("<HHIIHHH", 3, n_ch, rate, rate * block_align, block_align, 32, 0)
    fact = struct.pack("<I", n)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<I", 4) + fact
            + b"data" + struct.pack("<I", len(data)) + data)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """-> ([channels, samples] float32, rate): int16 / 32768, float32 as is."""
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        chunk = raw[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", chunk[:16])
        elif cid == b"data":
            data = chunk
        pos += 8 + size + (size & 1)
    tag, n_ch, rate, _, _, bits = fmt
    if tag == 1 and bits == 16:
        x = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    elif tag == 3 and bits == 32:
        x = np.frombuffer(data, dtype="<f4").astype(np.float32)
    else:
        raise ValueError(f"{path}: format {tag}/{bits} bits")
    return x.reshape(-1, n_ch).T.copy(), rate


def load_audio(rel: str, fixture_dir: Path) -> dict:
    """The pipeline input for an audio file: mono float32 (mean over channels) at its own rate."""
    x, rate = read_wav((fixture_dir / rel).resolve())
    mono = x[0] if x.shape[0] == 1 else (x.sum(0, dtype=np.float32) / np.float32(x.shape[0])).astype(np.float32)
    return {"raw": mono, "sampling_rate": rate}


def resampled(rel: str, fixture_dir: Path, rate: int) -> np.ndarray:
    a = load_audio(rel, fixture_dir)
    if a["sampling_rate"] == rate:
        return a["raw"]
    return resample(torch.from_numpy(a["raw"]), a["sampling_rate"], rate).numpy()


def make_media():
    MEDIA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240601)

    # gradient.png: 48 wide, 40 high; needs a non-square resize.
    h, w = 40, 48
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([255 * xx / (w - 1), 255 * yy / (h - 1), 128 + 100 * np.sin(xx / 5.0) * np.cos(yy / 7.0)], -1)
    img += rng.normal(0, 14, img.shape)
    Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB").save(MEDIA / "gradient.png")

    # rgba.png: 32x32 with alpha varying across the image (convert("RGB") drops it).
    h = w = 32
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rgb = np.stack([200 * ((xx // 8 + yy // 8) % 2) + 30, 255 - 7 * yy, 120 + 80 * np.cos((xx + yy) / 6.0)], -1)
    rgb += rng.normal(0, 10, rgb.shape)
    alpha = 255 * (xx + yy) / (w + h - 2)
    rgba = np.concatenate([rgb, alpha[..., None]], -1)
    Image.fromarray(np.clip(np.round(rgba), 0, 255).astype(np.uint8), "RGBA").save(MEDIA / "rgba.png")

    # gray.png: 30 wide, 20 high, mode "L".
    h, w = 20, 30
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    g = 128 + 90 * np.sin(xx / 3.0 + yy / 5.0) + rng.normal(0, 12, (h, w))
    Image.fromarray(np.clip(np.round(g), 0, 255).astype(np.uint8), "L").save(MEDIA / "gray.png")

    # photo.jpg: 64x48, quality 90.
    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sky = np.stack([90 + yy, 140 + yy, 230 - yy], -1)
    ground = np.stack([60 + 0 * yy, 150 - yy, 50 + 0 * yy], -1)
    img = np.where((yy > 28 + 4 * np.sin(xx / 9.0))[..., None], ground, sky)
    sun = ((xx - 46) ** 2 + (yy - 12) ** 2) < 49
    img[sun] = [250, 220, 60]
    img += rng.normal(0, 6, img.shape)
    Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB").save(
        MEDIA / "photo.jpg", quality=90)

    # Audio.
    sr = 16000
    t = np.arange(int(1.0 * sr)) / sr
    tone = 0.45 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 1250 * t + 0.3)
    tone += rng.normal(0, 0.01, t.shape)
    write_wav_pcm16(MEDIA / "tone16k.wav", tone, sr)

    sr44 = 44100
    t = np.arange(int(round(0.7 * sr44))) / sr44
    left = 0.4 * np.sin(2 * np.pi * 300 * t) + 0.2 * np.sin(2 * np.pi * (200 + 900 * t) * t)
    right = 0.3 * np.sin(2 * np.pi * 2000 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + rng.normal(0, 0.03, t.shape)
    write_wav_float32(MEDIA / "stereo44k.wav", np.stack([left, right]).astype(np.float32), sr44)

    t = np.arange(int(round(5.3 * sr))) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)
    long = env * (0.3 * np.sin(2 * np.pi * (250 + 60 * np.sin(2 * np.pi * 0.4 * t)) * t)
                  + 0.15 * np.sin(2 * np.pi * 3100 * t))
    long += rng.normal(0, 0.02, t.shape) * (t > 2.5)
    write_wav_pcm16(MEDIA / "long16k.wav", long, sr)

    t = np.arange(int(round(0.05 * sr))) / sr
    short = 0.5 * np.sin(2 * np.pi * 700 * t) + rng.normal(0, 0.02, t.shape)
    write_wav_pcm16(MEDIA / "short.wav", short, sr)

    make_exif_media()

    (MEDIA / "README.md").write_text(
        "# media\n\nDeterministic inputs for the vision and audio fixtures, made by "
        f"`{GENERATED_BY}`: gradient.png (48x40 RGB), rgba.png (32x32 RGBA, varying alpha), "
        "gray.png (30x20, mode L), photo.jpg (64x48, quality 90), tone16k.wav (1 s, 16 kHz mono "
        "int16), stereo44k.wav (0.7 s, 44.1 kHz stereo float32, format tag 3), long16k.wav "
        "(5.3 s, 16 kHz mono int16) and short.wav (0.05 s, 16 kHz mono int16); exif{2,3,6,8} "
        "(sideways with an EXIF orientation) and what transformers' load_image makes of them "
        "(*-upright.png).\n"
    )
    # The float WAV must read back as scipy reads it.
    try:
        from scipy.io import wavfile

        r, d = wavfile.read(MEDIA / "stereo44k.wav")
        x, r2 = read_wav(MEDIA / "stereo44k.wav")
        assert r == r2 == sr44 and d.dtype == np.float32 and np.array_equal(d.T, x)
    except ImportError:
        pass
    print(f"wrote {MEDIA.relative_to(ROOT)}")


# Seeds chosen so that no ranking or greedy step sits on a near tie (the script checks).
SEEDS = {
    "vit-tiny-cls": 111,
    "deit-tiny-cls": 102,
    "dinov2-tiny-cls": 103,
    "clip-vision-tiny": 104,
    "siglip-vision-tiny": 105,
    "data2vec-audio-tiny-ctc": 106,
    "unispeech-tiny-ctc": 109,
    "unispeech-sat-tiny-ctc": 115,
    "wavlm-tiny-ctc": 121,
    "clip-tiny": 217,
    "siglip-tiny": 227,
    "wav2vec2-tiny-ctc": 301,
    "hubert-tiny-ctc": 303,
    "wav2vec2-tiny-cls": 310,
    "hubert-tiny-cls": 311,
    "data2vec-audio-tiny-cls": 312,
    "unispeech-tiny-cls": 313,
    "unispeech-sat-tiny-cls": 314,
    "wavlm-tiny-cls": 315,
    "whisper-tiny": 402,
    "llava-tiny": 501,
}

def make_exif_media():
    """Images stored sideways with an EXIF orientation, as cameras write them, and what
    transformers' `load_image` (PIL.ImageOps.exif_transpose, then RGB) makes of them:
    exif6.png (stored 40x48, orientation 6: rotate 90 degrees clockwise), exif3.jpg
    (stored 64x48, orientation 3: rotate 180), exif8.png (orientation 8, 90 degrees
    counter-clockwise) and exif2.png (orientation 2, mirrored); *-upright.png hold
    load_image's pixels."""
    from transformers.image_utils import load_image

    upright = np.asarray(Image.open(MEDIA / "gradient.png").convert("RGB"))
    photo = np.asarray(Image.open(MEDIA / "photo.jpg").convert("RGB"))
    # What a camera stores for each orientation: the upright scene, turned the other way.
    stored = {
        "exif6.png": (np.rot90(upright, 1), 6),   # 90 degrees counter-clockwise
        "exif8.png": (np.rot90(upright, -1), 8),
        "exif2.png": (upright[:, ::-1], 2),
        "exif3.jpg": (np.rot90(photo, 2), 3),
    }
    for name, (pixels, orientation) in stored.items():
        img = Image.fromarray(np.ascontiguousarray(pixels), "RGB")
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = MEDIA / name
        if name.endswith(".jpg"):
            img.save(path, quality=90, exif=exif)
        else:
            img.save(path, exif=exif)
        loaded = load_image(str(path))
        loaded.save(MEDIA / (path.stem + "-upright.png"))
        print(f"{name}: stored {img.size}, orientation {orientation}, load_image gives {loaded.size}")


IMAGES = ["../media/gradient.png", "../media/rgba.png", "../media/gray.png"]
JPEG = ["../media/photo.jpg"]
AUDIO = ["../media/tone16k.wav", "../media/stereo44k.wav", "../media/long16k.wav"]
SHORT = ["../media/short.wav"]


def open_image(rel: str, d: Path) -> Image.Image:
    return Image.open((d / rel).resolve())


# ---------------------------------------------------------------------------
# Writing fixtures.
# ---------------------------------------------------------------------------

def fresh_dir(name: str) -> Path:
    d = FIXTURES / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def write_readme(d: Path, description: str):
    (d / "README.md").write_text(
        f"# {d.name}\n\n{description}\n\nRandom weights, made by `{GENERATED_BY}` with transformers "
        f"{transformers.__version__}. `reference.json` holds transformers' pipeline outputs for the "
        "inputs under `../media/`; `processor.safetensors` / `processor.json` hold the tensors the "
        "model sees for the first check's inputs.\n"
    )


def write_reference(d: Path, model_type: str, description: str, checks: list[dict]):
    ref = {
        "model_type": model_type,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "generated_by": GENERATED_BY,
        "description": description,
        "checks": checks,
    }
    (d / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")


def write_processor(d: Path, tensors: dict[str, torch.Tensor], meta: dict):
    save_file({k: v.detach().to(torch.float32).contiguous() for k, v in tensors.items()},
              str(d / "processor.safetensors"))
    (d / "processor.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")


def finish(d: Path, model_type: str, description: str, checks: list[dict]):
    write_readme(d, description)
    write_reference(d, model_type, description, checks)
    size = sum(f.stat().st_size for f in d.iterdir())
    SUMMARY.setdefault(d.name, {})["size_bytes"] = size
    print(f"wrote {d.relative_to(ROOT)} ({size / 1024:.1f} KiB)")


def fail(name: str, msg: str):
    sys.exit(f"{name}: {msg}: pick another seed")


# ---------------------------------------------------------------------------
# Image processors: the pipeline's (AutoImageProcessor default) and the other backend.
# ---------------------------------------------------------------------------

def image_tensors(name: str, d: Path, inputs: list[str]) -> tuple[dict, dict]:
    """pixel_values per input from the default image processor, and the max abs diff
    to the other backend (torchvision = "fast", PIL = "slow")."""
    default = transformers.AutoImageProcessor.from_pretrained(d)
    backend = "pil" if "Pil" in type(default).__name__ else "torchvision"
    other = transformers.AutoImageProcessor.from_pretrained(d, backend="torchvision" if backend == "pil" else "pil")
    tensors, diffs = {}, []
    for i, rel in enumerate(inputs):
        img = transformers.image_utils.load_image(str((d / rel).resolve()))  # as the pipelines load it
        a = default(images=img, return_tensors="pt")["pixel_values"][0]
        b = other(images=img, return_tensors="pt")["pixel_values"][0]
        tensors[f"pixel_values.{i}"] = a
        # The other backend's tensor too, so that both resize engines are checked.
        tensors[f"pixel_values_{'pil' if backend == 'torchvision' else 'torchvision'}.{i}"] = b
        diffs.append((a - b).abs().max().item())
    info = {
        "processor_class": type(default).__name__,
        "backend": backend,
        "other_backend_class": type(other).__name__,
        "max_abs_diff_vs_other_backend": diffs,
    }
    SUMMARY.setdefault(name, {})["slow_vs_fast"] = {
        "default": type(default).__name__, "other": type(other).__name__, "max_abs_diff": max(diffs)}
    print(f"  {name}: {type(default).__name__} vs {type(other).__name__}: max |diff| per input {diffs}")
    return tensors, info


# ---------------------------------------------------------------------------
# Checks.
# ---------------------------------------------------------------------------

def image_classification(name: str, d: Path, inputs: list[str]) -> dict:
    pipe = pipeline("image-classification", model=str(d), device=DEVICE, dtype=DTYPE)
    SUMMARY.setdefault(name, {})["pipeline_image_processor"] = type(pipe.image_processor).__name__
    n = pipe.model.config.num_labels
    outputs = []
    for rel in inputs:
        out = to_py(pipe(open_image(rel, d), top_k=n))
        check_margins(name, out, f"image-classification of {rel}")
        outputs.append(out)
    check = {"task": "image-classification", "inputs": inputs, "options": {"top_k": "all"}, "outputs": outputs}
    if not mf.STRICT_MARGINS:
        check["margins"] = [ranking_gap(o) for o in outputs]
    return check


def image_feature_extraction(name: str, d: Path, inputs: list[str]) -> dict:
    pipe = pipeline("image-feature-extraction", model=str(d), device=DEVICE, dtype=DTYPE)
    SUMMARY.setdefault(name, {})["feature_extraction_model"] = type(pipe.model).__name__
    outputs = [to_py(pipe(open_image(rel, d)))[0] for rel in inputs]  # [seq][hidden]
    return {"task": "image-feature-extraction", "inputs": inputs, "options": {}, "outputs": outputs}


def zero_shot_image(name: str, d: Path, inputs: list[str], labels: list[str]) -> dict:
    pipe = pipeline("zero-shot-image-classification", model=str(d), device=DEVICE, dtype=DTYPE)
    SUMMARY.setdefault(name, {})["pipeline_image_processor"] = type(pipe.image_processor).__name__
    SUMMARY[name]["pipeline_tokenizer"] = type(pipe.tokenizer).__name__
    outputs = []
    for rel in inputs:
        out = to_py(pipe(open_image(rel, d), candidate_labels=labels))
        check_margins(name, out, f"zero-shot of {rel}")
        outputs.append(out)
    check = {"task": "zero-shot-image-classification", "inputs": inputs,
             "options": {"candidate_labels": labels}, "outputs": outputs}
    if not mf.STRICT_MARGINS:
        check["margins"] = [ranking_gap(o) for o in outputs]
    return check


def audio_classification(name: str, d: Path, inputs: list[str]) -> dict:
    pipe = pipeline("audio-classification", model=str(d), device=DEVICE, dtype=DTYPE)
    outputs = []
    for rel in inputs:
        out = to_py(pipe(load_audio(rel, d), top_k=None))
        check_margins(name, out, f"audio-classification of {rel}")
        outputs.append(out)
    check = {"task": "audio-classification", "inputs": inputs, "options": {"top_k": "all"}, "outputs": outputs}
    if not mf.STRICT_MARGINS:
        check["margins"] = [ranking_gap(o) for o in outputs]
    return check


def ctc_asr(name: str, d: Path, inputs: list[str]) -> dict:
    pipe = pipeline("automatic-speech-recognition", model=str(d), device=DEVICE, dtype=DTYPE)
    fe = pipe.feature_extractor
    outputs, margins = [], []
    for rel in inputs:
        out = to_py(pipe(load_audio(rel, d)))
        # Every frame's argmax must win clearly.
        x = resampled(rel, d, fe.sampling_rate)
        enc = on_device(fe(x, sampling_rate=fe.sampling_rate, return_tensors="pt", return_attention_mask=True))
        with torch.no_grad():
            logits = pipe.model(**enc).logits[0]
        top2 = logits.float().topk(2, -1).values
        gaps = top2[:, 0] - top2[:, 1]
        gap = gaps.min().item()
        if mf.STRICT_MARGINS and gap < 1e-3:
            fail(name, f"CTC frame near tie ({gap}) in {rel}")
        # Per input: the frames, the smallest top-2 logit gap of a frame and how many
        # frames are closer than the f16 / bf16 bars of skillset-conformance `low_margin`.
        margins.append({"frames": logits.shape[0], "min": gap, "below_0.05": int((gaps < 0.05).sum()),
                        "below_0.25": int((gaps < 0.25).sum())})
        ids = logits.argmax(-1)
        # The pipeline decodes CTC output WITHOUT skipping special tokens: only the pad
        # (blank) token goes, after repeats are merged.
        assert out["text"] == pipe.tokenizer.decode(ids, skip_special_tokens=False), (out, rel)
        print(f"  {name} {rel}: {out['text']!r} ({logits.shape[0]} frames, min top-2 gap {gap:.4f})")
        outputs.append(out)
    check = {"task": "automatic-speech-recognition", "inputs": inputs, "options": {}, "outputs": outputs}
    if not mf.STRICT_MARGINS:
        check["margins"] = margins
    return check


# ---------------------------------------------------------------------------
# Tokenizers.
# ---------------------------------------------------------------------------

def byte_bpe(size: int, specials: list[str], lowercase: bool = False) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def clip_tokenizer():
    tok = byte_bpe(320, ["<|startoftext|>", "<|endoftext|>"], lowercase=True)
    bos, eos = tok.token_to_id("<|startoftext|>"), tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>", pair="<|startoftext|> $A <|endoftext|> $B <|endoftext|>",
        special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>", model_max_length=32)


def siglip_tokenizer():
    # Like google/siglip-*: <pad>=0, </s>=1, <unk>=2, pad_token "</s>", "</s>" appended,
    # no attention mask. A Unigram model with a metaspace pre-tokenizer and lowercasing.
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=260, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    eos = tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)])
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="</s>", unk_token="<unk>", model_max_length=64,
        model_input_names=["input_ids"])


WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|fr|>", "<|de|>", "<|translate|>",
                    "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


WHISPER_BPE_SIZE = 300  # the BPE part of the Whisper vocabulary (the specials follow)


def whisper_tokenizer():
    tok = byte_bpe(WHISPER_BPE_SIZE, [])
    m = json.loads(tok.to_str())["model"]
    vocab = dict(m["vocab"])
    merges = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m["merges"]]
    wt = transformers.WhisperTokenizer(vocab=vocab, merges=merges, unk_token="<|endoftext|>",
                                       bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                       pad_token="<|endoftext|>", model_max_length=64)
    wt.add_special_tokens({"additional_special_tokens": WHISPER_SPECIALS[1:]})
    ids = [wt.convert_tokens_to_ids(t) for t in WHISPER_SPECIALS]
    assert ids == list(range(len(vocab), len(vocab) + len(WHISPER_SPECIALS))), ids
    return wt


CTC_VOCAB = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4,
             **{c: 5 + i for i, c in enumerate("ETAONIHSRDLUMWCFGYPBVKJXQZ")}, "'": 31}


def ctc_tokenizer(d: Path):
    (d / "vocab.json").write_text(json.dumps(CTC_VOCAB, ensure_ascii=False))
    tok = transformers.Wav2Vec2CTCTokenizer(str(d / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                            bos_token="<s>", eos_token="</s>", word_delimiter_token="|")
    tok.save_pretrained(d)
    return tok


# ---------------------------------------------------------------------------
# The fixtures.
# ---------------------------------------------------------------------------

def vit_like(name: str, cls, config, image_processor, description: str, seed: int, jpeg: bool, post=None):
    torch.manual_seed(seed)
    d = fresh_dir(name)
    model = cls(config).eval()
    if post:
        post(model)
    model.save_pretrained(d)
    image_processor.save_pretrained(d)
    checks = [image_classification(name, d, IMAGES), image_feature_extraction(name, d, IMAGES)]
    if jpeg:
        check = image_classification(name, d, JPEG)
        # libjpeg-turbo (Pillow) and the Rust decoders round the IDCT and chroma
        # upsampling differently: measured up to 3 levels on ~21% of the channel values
        # of this file, 5.8e-3 on the scores. PNG checks stay at the 1e-4 bar.
        check["tolerance"] = 0.02
        check["tolerance_note"] = ("JPEG decoders differ (libjpeg-turbo vs zune-jpeg: up to 3 levels on "
                                   "~21% of channel values of photo.jpg)")
        checks.append(check)
    tensors, info = image_tensors(name, d, IMAGES)
    write_processor(d, tensors, {"tensor": "pixel_values", "inputs": IMAGES, **info,
                                 "note": "pixel_values [3,H,W] from the image processor the pipeline uses "
                                         "(AutoImageProcessor default), for each input of the first check; "
                                         "images loaded by transformers.image_utils.load_image (exif transpose, "
                                         "convert('RGB'): alpha dropped, gray replicated)."})
    finish(d, config.model_type, description, checks)


def vit_tiny_cls():
    labels = {0: "cat", 1: "dog", 2: "bird"}
    cfg = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
        intermediate_size=40, hidden_act="gelu", initializer_range=0.3, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, id2label=labels, label2id={v: k for k, v in labels.items()})
    ip = transformers.ViTImageProcessor(size={"height": 32, "width": 32}, resample=2,
                                        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    vit_like("vit-tiny-cls", transformers.ViTForImageClassification, cfg, ip,
             "ViTForImageClassification: 32x32 input, 8x8 patches, hidden 24 with 3 heads of 8, gelu, "
             "3 labels; bilinear resize to 32x32 (non-square and gray/RGBA inputs), mean/std 0.5; a JPEG "
             "input in a separate last check (decoders may differ by +-1).", seed=SEEDS["vit-tiny-cls"], jpeg=True)


def deit_tiny_cls():
    labels = {0: "cat", 1: "dog", 2: "bird"}
    cfg = transformers.DeiTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=40, hidden_act="gelu", initializer_range=0.3, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, id2label=labels, label2id={v: k for k, v in labels.items()})
    ip = transformers.DeiTImageProcessor(
        size={"height": 40, "width": 40}, resample=3, do_center_crop=True, crop_size={"height": 32, "width": 32},
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    vit_like("deit-tiny-cls", transformers.DeiTForImageClassification, cfg, ip,
             "DeiTForImageClassification: cls + distillation tokens (the head reads the cls token only), "
             "hidden 24 with 2 heads; bicubic resize to 40x40 then a 32x32 center crop, ImageNet mean/std.",
             seed=SEEDS["deit-tiny-cls"], jpeg=False)


def dinov2_tiny_cls():
    labels = {0: "cat", 1: "dog", 2: "bird"}
    cfg = transformers.Dinov2Config(
        image_size=28, patch_size=4, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
        mlp_ratio=2, hidden_act="gelu", initializer_range=0.3, layer_norm_eps=1e-6,
        id2label=labels, label2id={v: k for k, v in labels.items()})
    ip = transformers.BitImageProcessor(
        size={"shortest_edge": 24}, resample=3, do_center_crop=True, crop_size={"height": 20, "width": 20},
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])

    def layer_scales(model):
        # Random layer scales (transformers initialises them to layerscale_value, 1.0).
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.endswith("lambda1"):
                    p.uniform_(0.2, 1.5)

    vit_like("dinov2-tiny-cls", transformers.Dinov2ForImageClassification, cfg, ip,
             "Dinov2ForImageClassification: layer scales, position embeddings for 7x7 patches "
             "bicubic-interpolated to the 5x5 the 20x20 crop gives (as real DINOv2s: 37x37 -> 16x16), "
             "head on [cls, mean of patch tokens]; BitImageProcessor: shortest edge 24 (bicubic), "
             "20x20 center crop, ImageNet mean/std.",
             seed=SEEDS["dinov2-tiny-cls"], jpeg=False, post=layer_scales)


ZS_LABELS = ["a cat", "a dog", "a red car"]


def dual_encoder(name: str, model, tokenizer, image_processor, description: str):
    d = fresh_dir(name)
    model.eval().save_pretrained(d)
    tokenizer.save_pretrained(d)
    image_processor.save_pretrained(d)
    check = zero_shot_image(name, d, IMAGES, ZS_LABELS)
    tensors, info = image_tensors(name, d, IMAGES)
    texts = [f"This is a photo of {label}." for label in ZS_LABELS]
    tok = transformers.AutoTokenizer.from_pretrained(d)
    kw = {"padding": True}
    if "siglip" in model.config.model_type:
        kw = {"padding": "max_length", "max_length": 64, "truncation": True}
    with torch.no_grad():
        for i in range(len(IMAGES)):
            out = model.get_image_features(pixel_values=tensors[f"pixel_values.{i}"][None])
            tensors[f"image_embeds.{i}"] = (out.pooler_output if hasattr(out, "pooler_output") else out)[0]
        enc = tok(texts, return_tensors="pt", **kw)
        feats = model.get_text_features(**enc)
        feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
        for j in range(len(texts)):
            tensors[f"text_embeds.{j}"] = feats[j]
        # The embeddings must give the pipeline's scores.
        for i, out in enumerate(check["outputs"]):
            img = torch.nn.functional.normalize(tensors[f"image_embeds.{i}"], dim=-1)
            txt = torch.nn.functional.normalize(feats, dim=-1)
            logits = txt @ img * model.logit_scale.exp()
            if "siglip" in model.config.model_type:
                scores = torch.sigmoid(logits + model.logit_bias)
            else:
                scores = logits.softmax(-1)
            got = {label: s for label, s in zip(ZS_LABELS, scores.tolist())}
            for item in out:
                assert abs(got[item["label"]] - item["score"]) < 1e-5, (got, out)
    write_processor(d, tensors, {
        "tensor": "pixel_values", "inputs": IMAGES, **info, "texts": texts,
        "text_input_ids": enc["input_ids"].tolist(),
        "tokenizer_kwargs": kw,
        "note": "pixel_values [3,H,W] per image (pipeline's image processor); image_embeds.<i> = "
                "get_image_features(pixel_values) and text_embeds.<j> = get_text_features(texts[j]) (raw, "
                "before L2 normalization; text tokenized as the pipeline does, see tokenizer_kwargs)."})
    finish(d, model.config.model_type, description, [check])


def clip_tiny():
    torch.manual_seed(SEEDS["clip-tiny"])
    tok = clip_tokenizer()
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    bos = tok.convert_tokens_to_ids("<|startoftext|>")
    cfg = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=32, hidden_act="quick_gelu",
                         initializer_range=0.3, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
                         projection_dim=16),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                           num_attention_heads=2, hidden_act="quick_gelu", initializer_range=0.3,
                           projection_dim=16),
        projection_dim=16, initializer_factor=3.0)
    model = transformers.CLIPModel(cfg)
    ip = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, resample=3, do_center_crop=True, crop_size={"height": 32, "width": 32},
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
        do_convert_rgb=True)
    dual_encoder("clip-tiny", model, tok, ip,
                 "CLIPModel: vision 32x32 / 8x8 patches and text towers of hidden 24 (quick_gelu, pre-LN), "
                 "projections to 16, byte-level BPE with <|startoftext|>/<|endoftext|> (text pooled at the "
                 "first <|endoftext|>); shortest-edge 32 bicubic resize + 32x32 center crop; softmax scores.")


def siglip_tiny():
    torch.manual_seed(SEEDS["siglip-tiny"])
    tok = siglip_tokenizer()
    cfg = transformers.SiglipConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, hidden_act="gelu_pytorch_tanh",
                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                           num_attention_heads=2, hidden_act="gelu_pytorch_tanh"),
        initializer_factor=1.0)
    model = transformers.SiglipModel(cfg)
    # Spread the random weights (SigLIP's init ignores initializer_range) and give the
    # logit scale/bias non-trivial values.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
        model.logit_scale.fill_(math.log(4.0))
        model.logit_bias.fill_(-1.5)
    ip = transformers.SiglipImageProcessor(size={"height": 32, "width": 32}, resample=3,
                                           image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    dual_encoder("siglip-tiny", model, tok, ip,
                 "SiglipModel: vision and text towers of hidden 24 (gelu_pytorch_tanh), attention-pooling "
                 "vision head, text pooled at the last position (texts padded with </s> to 64, no attention "
                 "mask), sigmoid scores with logit scale 4 and bias -1.5; bicubic resize to 32x32, mean/std 0.5.")


def vision_tower(name: str, model, image_processor, description: str):
    """A CLIP / SigLIP vision tower saved alone (CLIPVisionModel, SiglipVisionModel):
    image-feature-extraction, whose pipeline returns its last_hidden_state."""
    d = fresh_dir(name)
    model.eval().save_pretrained(d)
    image_processor.save_pretrained(d)
    checks = [image_feature_extraction(name, d, IMAGES)]
    tensors, info = image_tensors(name, d, IMAGES)
    write_processor(d, tensors, {"tensor": "pixel_values", "inputs": IMAGES, **info,
                                 "note": "pixel_values [3,H,W] from the image processor the pipeline uses, "
                                         "for each input of the check."})
    finish(d, model.config.model_type, description, checks)


def clip_vision_tiny():
    torch.manual_seed(SEEDS["clip-vision-tiny"])
    cfg = transformers.CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=24, intermediate_size=40,
                                        num_hidden_layers=2, num_attention_heads=2, hidden_act="quick_gelu",
                                        initializer_range=0.3, initializer_factor=3.0)
    ip = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, resample=3, do_center_crop=True, crop_size={"height": 32, "width": 32},
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
        do_convert_rgb=True)
    vision_tower("clip-vision-tiny", transformers.CLIPVisionModel(cfg), ip,
                 "CLIPVisionModel alone (model type clip_vision_model): 32x32 / 8x8 patches, hidden 24, "
                 "quick_gelu, pre-layernorm; image-feature-extraction = last_hidden_state (the post-layernorm "
                 "only pools).")


def siglip_vision_tiny():
    torch.manual_seed(SEEDS["siglip-vision-tiny"])
    cfg = transformers.SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=24, intermediate_size=40,
                                          num_hidden_layers=2, num_attention_heads=2,
                                          hidden_act="gelu_pytorch_tanh")
    model = transformers.SiglipVisionModel(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.3)
    ip = transformers.SiglipImageProcessor(size={"height": 32, "width": 32}, resample=3,
                                           image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    vision_tower("siglip-vision-tiny", model, ip,
                 "SiglipVisionModel alone (model type siglip_vision_model): 32x32 / 8x8 patches, hidden 24, "
                 "no class token; image-feature-extraction = last_hidden_state after the post-layernorm.")


def wav2vec2_base_config(cls, **over):
    base = dict(
        hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
        conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), feat_extract_norm="group",
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, do_stable_layer_norm=False,
        vocab_size=32, pad_token_id=0, bos_token_id=1, eos_token_id=2, initializer_range=0.3,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        final_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0, hidden_act="gelu", feat_extract_activation="gelu",
    )
    base.update(over)
    return cls(**base)


def save_feature_extractor(d: Path, return_attention_mask: bool):
    fe = transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                               do_normalize=True, return_attention_mask=return_attention_mask)
    fe.save_pretrained(d)
    return fe


def audio_tensors(d: Path, fe, inputs: list[str], name: str) -> dict:
    tensors = {}
    for i, rel in enumerate(inputs):
        x = resampled(rel, d, fe.sampling_rate)
        if load_audio(rel, d)["sampling_rate"] != fe.sampling_rate:  # else: the file's samples as read
            tensors[f"resampled.{i}"] = torch.from_numpy(x.copy())
        tensors[f"{name}.{i}"] = fe(x, sampling_rate=fe.sampling_rate, return_tensors="pt")[name][0]
    return tensors


LM_HEAD_STD = 6.0


def ctc_fixture(name: str, cls, config_cls, seed: int, description: str, post=None, **over):
    torch.manual_seed(seed)
    d = fresh_dir(name)
    ctc_tokenizer(d)
    fe = save_feature_extractor(d, return_attention_mask=False)
    model = cls(wav2vec2_base_config(config_cls, **over)).eval()
    if post:
        post(model)
    with torch.no_grad():
        # Thousands of frames: the per-frame argmax needs logits spread wide enough that
        # no frame's top two sit within 1e-3 of each other.
        model.lm_head.weight.normal_(0, LM_HEAD_STD)
    model.save_pretrained(d)
    checks = [ctc_asr(name, d, AUDIO), ctc_asr(name, d, SHORT)]
    nonempty = sum(bool(o["text"].strip()) for o in checks[0]["outputs"])
    if nonempty < 2:
        fail(name, "fewer than 2 non-empty transcriptions")
    tensors = audio_tensors(d, fe, AUDIO, "input_values")
    write_processor(d, tensors, {
        "tensor": "input_values", "inputs": AUDIO, "processor_class": type(fe).__name__,
        "resampler": RESAMPLER,
        "note": "resampled.<i> (only for inputs not already at 16 kHz): the mono float32 waveform (int16/32768 or float32, mean over channels) "
                "resampled to 16 kHz as torchaudio.functional.resample does (sinc_interp_hann, width 6, "
                "rolloff 0.99); input_values.<i>: after the feature extractor's zero-mean unit-variance "
                "normalization (x - mean) / sqrt(var + 1e-7)."})
    finish(d, model.config.model_type, description, checks)


def wav2vec2_tiny_ctc():
    ctc_fixture("wav2vec2-tiny-ctc", transformers.Wav2Vec2ForCTC, transformers.Wav2Vec2Config, SEEDS["wav2vec2-tiny-ctc"],
                "Wav2Vec2ForCTC: 3 conv layers (16 channels, kernels 10/3/3, strides 5/2/2, group norm on the "
                "first), grouped positional conv (16 wide, 2 groups, weight norm), post-LN encoder of hidden 24, "
                "32-token character vocabulary; greedy CTC decoding.")


def hubert_tiny_ctc():
    ctc_fixture("hubert-tiny-ctc", transformers.HubertForCTC, transformers.HubertConfig, SEEDS["hubert-tiny-ctc"],
                "HubertForCTC with the sizes of wav2vec2-tiny-ctc (group-norm feature encoder, post-LN encoder); "
                "same tokenizer and feature extractor.")


def data2vec_audio_tiny_ctc():
    ctc_fixture("data2vec-audio-tiny-ctc", transformers.Data2VecAudioForCTC, transformers.Data2VecAudioConfig,
                SEEDS["data2vec-audio-tiny-ctc"],
                "Data2VecAudioForCTC with the sizes of wav2vec2-tiny-ctc: layer norm in every feature-encoder "
                "layer (always, in data2vec), positions from 2 stacked grouped convolutions of width 6 (even: the "
                "extra frame is dropped), each with a parameter-free layer norm; post-LN encoder.",
                num_conv_pos_embeddings=2, conv_pos_kernel_size=6)


def unispeech_tiny_ctc():
    ctc_fixture("unispeech-tiny-ctc", transformers.UniSpeechForCTC, transformers.UniSpeechConfig,
                SEEDS["unispeech-tiny-ctc"],
                "UniSpeechForCTC with the sizes of wav2vec2-tiny-ctc (its inference path is Wav2Vec2's: "
                "group-norm feature encoder, weight-normed position convolution, post-LN encoder).")


def unispeech_sat_tiny_ctc():
    ctc_fixture("unispeech-sat-tiny-ctc", transformers.UniSpeechSatForCTC, transformers.UniSpeechSatConfig,
                SEEDS["unispeech-sat-tiny-ctc"],
                "UniSpeechSatForCTC with the sizes of wav2vec2-tiny-ctc, but a layer-norm feature encoder with "
                "conv biases and a pre-LN (stable layer norm) encoder.",
                feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)


def spread_wavlm_gates(model):
    """WavLM's gate constants and position-bias table away from their initial ones / zeros."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("gru_rel_pos_const"):
                p.uniform_(0.3, 2.0)
            elif n.endswith("rel_attn_embed.weight"):
                p.normal_(0, 1.0)


def wavlm_tiny_ctc():
    ctc_fixture("wavlm-tiny-ctc", transformers.WavLMForCTC, transformers.WavLMConfig, SEEDS["wavlm-tiny-ctc"],
                "WavLMForCTC with the sizes of wav2vec2-tiny-ctc: a relative position bias over 16 buckets up to "
                "distance 40 (hundreds of frames: the logarithmic buckets are used), gated in every layer by its "
                "input; random gate constants.",
                post=spread_wavlm_gates, num_buckets=16, max_bucket_distance=40)


def audio_cls_fixture(name: str, cls, config_cls, description: str, return_attention_mask=True, post=None, **over):
    torch.manual_seed(SEEDS[name])
    d = fresh_dir(name)
    fe = save_feature_extractor(d, return_attention_mask=return_attention_mask)
    labels = {0: "speech", 1: "music", 2: "noise"}
    base = dict(use_weighted_layer_sum=False, classifier_proj_size=8, id2label=labels,
                label2id={v: k for k, v in labels.items()})
    base.update(over)
    model = cls(wav2vec2_base_config(config_cls, **base)).eval()
    if post:
        post(model)
    model.save_pretrained(d)
    checks = [audio_classification(name, d, AUDIO)]
    tensors = audio_tensors(d, fe, AUDIO, "input_values")
    write_processor(d, tensors, {
        "tensor": "input_values", "inputs": AUDIO, "processor_class": type(fe).__name__, "resampler": RESAMPLER,
        "note": "as wav2vec2-tiny-ctc; with return_attention_mask true the feature extractor also returns "
                "an all-ones attention_mask, so the classifier mean-pools over all frames."})
    finish(d, model.config.model_type, description, checks)


def wav2vec2_tiny_cls():
    audio_cls_fixture(
        "wav2vec2-tiny-cls", transformers.Wav2Vec2ForSequenceClassification, transformers.Wav2Vec2Config,
        "Wav2Vec2ForSequenceClassification: layer-norm feature encoder with conv biases, pre-LN (stable "
        "layer norm) encoder, projector to 8 then mean pooling and a 3-label classifier; softmax scores.",
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True)


def hubert_tiny_cls():
    audio_cls_fixture(
        "hubert-tiny-cls", transformers.HubertForSequenceClassification, transformers.HubertConfig,
        "HubertForSequenceClassification with the sizes of wav2vec2-tiny-ctc (group-norm feature encoder, "
        "post-LN encoder), no attention mask from the feature extractor; projector, mean pooling, 3 labels.",
        return_attention_mask=False)


def data2vec_audio_tiny_cls():
    audio_cls_fixture(
        "data2vec-audio-tiny-cls", transformers.Data2VecAudioForSequenceClassification,
        transformers.Data2VecAudioConfig,
        "Data2VecAudioForSequenceClassification: data2vec-audio-tiny-ctc's encoder (2 stacked position "
        "convolutions of width 6) under a projector, mean pooling and a 3-label classifier.",
        num_conv_pos_embeddings=2, conv_pos_kernel_size=6)


def unispeech_tiny_cls():
    audio_cls_fixture(
        "unispeech-tiny-cls", transformers.UniSpeechForSequenceClassification, transformers.UniSpeechConfig,
        "UniSpeechForSequenceClassification with the sizes of wav2vec2-tiny-ctc; projector, mean pooling, "
        "3 labels.")


def unispeech_sat_tiny_cls():
    audio_cls_fixture(
        "unispeech-sat-tiny-cls", transformers.UniSpeechSatForSequenceClassification,
        transformers.UniSpeechSatConfig,
        "UniSpeechSatForSequenceClassification: layer-norm feature encoder with conv biases, pre-LN encoder; "
        "projector, mean pooling, 3 labels.",
        feat_extract_norm="layer", conv_bias=True, do_stable_layer_norm=True)


def wavlm_tiny_cls():
    audio_cls_fixture(
        "wavlm-tiny-cls", transformers.WavLMForSequenceClassification, transformers.WavLMConfig,
        "WavLMForSequenceClassification: wavlm-tiny-ctc's gated relative position bias (16 buckets up to "
        "distance 40, random gate constants); projector, mean pooling, 3 labels.",
        post=spread_wavlm_gates, num_buckets=16, max_bucket_distance=40)


def whisper_reference(name: str, d: Path, model, fe, tok, inputs: list[str], language: str, task: str,
                      max_new_tokens: int, num_beams: int | None = 1) -> tuple[dict, list, list]:
    """Each input: mono -> resampled to 16 kHz -> consecutive windows of chunk_length s
    (the last shorter, each padded to chunk_length by the feature extractor) -> generate
    per window (greedy, or a beam search; `num_beams=None`: the speech pipeline's default
    of 5, which the check then leaves unsaid) -> texts joined with ""."""
    beams = 5 if num_beams is None else num_beams
    outputs, token_ids, first_features, all_margins = [], [], [], []
    n = fe.n_samples
    for rel in inputs:
        x = resampled(rel, d, fe.sampling_rate)
        texts, ids, input_margins = [], [], []
        for k, start in enumerate(range(0, len(x), n)):
            feats = fe(x[start:start + n], sampling_rate=fe.sampling_rate, return_tensors="pt").input_features
            if k == 0:
                first_features.append(feats[0])
            feats = feats.to(DEVICE, DTYPE) if DTYPE is not None else feats.to(DEVICE)
            with torch.no_grad():
                out = model.generate(feats, language=language, task=task, max_new_tokens=max_new_tokens,
                                     do_sample=False, num_beams=beams, output_scores=True,
                                     return_dict_in_generate=True)
            seq = out.sequences[0].tolist()
            if beams == 1:
                margins = mf.step_margins(out.scores)
                input_margins.append(margins)
                if mf.STRICT_MARGINS and min(margins) < 1e-3:
                    fail(name, f"greedy near tie ({min(margins)}) in window {k} of {rel}")
                new = seq[-len(out.scores):]
            else:
                # The best hypothesis after the forced prompt, which ends with
                # <|notimestamps|> (a beam search's scores are per beam: no margins).
                new = seq[seq.index(model.generation_config.no_timestamps_token_id) + 1:]
            ids.append(new)
            texts.append(tok.decode(seq, skip_special_tokens=True))
            print(f"  {name} {rel} [{language}/{task}] window {k}: sequence {seq} -> {texts[-1]!r}")
        outputs.append({"text": "".join(texts)})
        token_ids.append(ids)
        all_margins.append(input_margins)
    # num_beams 1 explicitly: transformers' ASR pipeline otherwise adds its own default
    # num_beams=5 (and max_new_tokens=256) for a model whose generation config leaves them unset.
    options = {"language": language, "task": task, "max_new_tokens": max_new_tokens, "num_beams": num_beams}
    # No language: transformers detects it (the likeliest language token after the
    # start token); no task: none is added unless a language was given.
    options = {k: v for k, v in options.items() if v is not None}
    check = {"task": "automatic-speech-recognition", "inputs": inputs, "options": options, "outputs": outputs}
    if not mf.STRICT_MARGINS and beams == 1:
        # Per input, per window: each greedy step's best-minus-second logit, and the ids.
        check["margins"] = all_margins
        check["token_ids"] = token_ids
    return check, token_ids, first_features


def whisper_tiny():
    name = "whisper-tiny"
    torch.manual_seed(SEEDS["whisper-tiny"])
    d = fresh_dir(name)
    tok = whisper_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in WHISPER_SPECIALS}
    eot = ids["<|endoftext|>"]
    space = tok.convert_tokens_to_ids("\u0120")
    cfg = transformers.WhisperConfig(
        vocab_size=len(tok), num_mel_bins=80, d_model=24, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=40, decoder_ffn_dim=40,
        max_source_positions=100, max_target_positions=64, init_std=0.3, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, activation_function="gelu", pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=ids["<|startoftranscript|>"], suppress_tokens=None, begin_suppress_tokens=None,
        tie_word_embeddings=True)
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        # Most of a 300-token byte-level vocabulary is single bytes, which alone decode to
        # control characters or U+FFFD. Shrink those rows of the (tied) embedding so that
        # the greedy picks are mostly printable pieces.
        emb = model.model.decoder.embed_tokens.weight
        for i in range(WHISPER_BPE_SIZE):
            text = tok.decode([i])
            if "\ufffd" in text or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
                emb[i] *= 0.15
    suppress = [tok.convert_tokens_to_ids(t) for t in ["!", "\"", "#", "(", ")"]]
    gen = transformers.GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        is_multilingual=True, lang_to_id={t: ids[t] for t in ["<|en|>", "<|fr|>", "<|de|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], suppress_tokens=suppress,
        begin_suppress_tokens=[space, eot], max_length=64)
    model.generation_config = gen
    model.save_pretrained(d)
    tok.save_pretrained(d)
    fe = transformers.WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, hop_length=160, chunk_length=2,
                                              n_fft=400, padding_value=0.0)
    assert fe.n_samples == 32000 and fe.nb_max_frames == 200
    fe.save_pretrained(d)
    model = transformers.WhisperForConditionalGeneration.from_pretrained(d).eval()
    tok = transformers.AutoTokenizer.from_pretrained(d)
    fe = transformers.AutoFeatureExtractor.from_pretrained(d)
    a, ids_a, feats_a = whisper_reference(name, d, model, fe, tok, AUDIO, "en", "transcribe", 8)
    b, ids_b, _ = whisper_reference(name, d, model, fe, tok, AUDIO[:1], "fr", "translate", 8)
    c, ids_c, _ = whisper_reference(name, d, model, fe, tok, SHORT, "en", "transcribe", 8)
    detected, ids_d, _ = whisper_reference(name, d, model, fe, tok, AUDIO[:2], None, None, 6)
    translated, ids_t, _ = whisper_reference(name, d, model, fe, tok, AUDIO[:1], None, "translate", 6)
    # Beam search: the speech pipeline's default of 5 beams (the check leaves num_beams
    # unsaid, as a user calling the pipeline would), and 3 beams over 3 windows with the
    # language detected.
    beams5, ids_b5, _ = whisper_reference(name, d, model, fe, tok, AUDIO + SHORT, "en", "transcribe", 8,
                                          num_beams=None)
    beams3, ids_b3, _ = whisper_reference(name, d, model, fe, tok, AUDIO[2:], None, None, 20, num_beams=3)
    # What transformers' own pipeline says (it is not the reference for multi-window inputs).
    pipe_notes = []
    try:
        pipe = pipeline("automatic-speech-recognition", model=str(d), device="cpu")
        for check in (a, b, c):
            for rel, ref in zip(check["inputs"], check["outputs"]):
                got = pipe(load_audio(rel, d), generate_kwargs={k: v for k, v in check["options"].items()})
                pipe_notes.append({"input": rel, "options": check["options"], "pipeline_text": got["text"],
                                   "reference_text": ref["text"], "same": got["text"] == ref["text"]})
    except Exception as e:  # noqa: BLE001
        pipe_notes.append({"error": f"{type(e).__name__}: {e}"})
    for p in pipe_notes:
        print(f"  {name} pipeline: {p}")
    SUMMARY.setdefault(name, {})["pipeline_vs_reference"] = pipe_notes
    tensors = {}
    for i, rel in enumerate(AUDIO):
        tensors[f"input_features.{i}"] = feats_a[i]
        if load_audio(rel, d)["sampling_rate"] != fe.sampling_rate:
            tensors[f"resampled.{i}"] = torch.from_numpy(resampled(rel, d, fe.sampling_rate).copy())
    write_processor(d, tensors, {
        "tensor": "input_features", "inputs": AUDIO, "processor_class": type(fe).__name__, "resampler": RESAMPLER,
        "special_token_ids": ids, "suppress_tokens": suppress, "begin_suppress_tokens": [space, eot],
        "token_ids": {"checks": [ids_a, ids_b, ids_c, ids_d, ids_t, ids_b5, ids_b3],
                      "note": "per check, per input, per window: the generated ids after the forced prompt "
                              "(<|startoftranscript|> <|lang|> <|task|> <|notimestamps|>), including a final "
                              "<|endoftext|> if one was generated."},
        "pipeline_vs_reference": pipe_notes,
        "note": "input_features.<i>: log-mel [80, 200] of the FIRST 2 s window of input i of the first check "
                "(window zero-padded to 32000 samples); resampled.<i> (only for inputs not already at 16 kHz): the whole mono 16 kHz waveform. The "
                "reference splits the waveform into consecutive 32000-sample windows, generates greedily per "
                "window and joins the decoded texts (skip_special_tokens) with ''."})
    finish(d, "whisper",
           "WhisperForConditionalGeneration: d_model 24, 2+2 layers, 80 mel bins over 2 s windows (200 "
           "frames, 100 encoder positions), byte-level BPE with Whisper's special tokens (<|en|>, <|fr|>, "
           "<|de|> only); greedy decoding with forced language/task/notimestamps prompt, suppress_tokens and "
           "begin_suppress_tokens; long audio split into consecutive 2 s windows.",
           [a, b, c, detected, translated, beams5, beams3])


LLAVA_PROMPTS = ["USER: <image>\nWhat is in the picture? ASSISTANT:"]


def llava_tokenizer():
    """make_fixtures' sentencepiece-style BPE (Llama's), trained on the corpus plus the
    prompt so that every prompt character ("A", ":", newline) is in the vocabulary, and
    adding <s> like Llama's tokenizer."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(CORPUS + LLAVA_PROMPTS * 4, trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return transformers.LlamaTokenizer(vocab=model["vocab"], merges=merges, add_bos_token=True)


def image_text_to_text(name: str, d: Path, inputs: list[str], prompt: str, max_new_tokens: int,
                       num_beams: int = 1):
    """Image-text-to-text of each image with `prompt` (greedy, or a beam search), as
    transformers' pipeline gives it, plus the ids of the new tokens from `generate` (and,
    greedy, their margins)."""
    pipe = pipeline("image-text-to-text", model=str(d), device=DEVICE, dtype=DTYPE)
    SUMMARY.setdefault(name, {})["pipeline_processor"] = type(pipe.processor).__name__
    tok = pipe.tokenizer
    outputs, token_ids, all_margins = [], [], []
    for rel in inputs:
        img = open_image(rel, d)
        # Generation parameters go in generate_kwargs: a bare `num_beams=` is taken for
        # the processor's and ignored (transformers warns).
        out = to_py(pipe(images=img, text=prompt, max_new_tokens=max_new_tokens,
                         generate_kwargs={"do_sample": False, "num_beams": num_beams}))
        enc = pipe.processor(images=transformers.image_utils.load_image(str((d / rel).resolve())), text=prompt,
                             return_tensors="pt")
        with torch.no_grad():
            gen = pipe.model.generate(**on_device(enc), max_new_tokens=max_new_tokens, do_sample=False,
                                      num_beams=num_beams, output_scores=True, return_dict_in_generate=True)
        if num_beams == 1:
            margins = mf.step_margins(gen.scores)
            all_margins.append(margins)
            if mf.STRICT_MARGINS and min(margins) < 1e-3:
                fail(name, f"greedy near tie ({min(margins)}) for {rel}")
        new = gen.sequences[0, enc["input_ids"].shape[1]:].tolist()
        # The pipeline decodes the whole sequence and the input alone (skipping special
        # tokens, so the <image> run too) and cuts the latter off the former: a new
        # first token keeps its leading space, which decoding it alone would drop.
        full = tok.decode(gen.sequences[0], skip_special_tokens=True)
        head = tok.decode(enc["input_ids"][0], skip_special_tokens=True)
        k = full.find(head)
        assert 0 <= k <= 2 and out[0]["generated_text"] == prompt + full[k + len(head):], (out, new)
        token_ids.append(new)
        print(f"  {name} {rel}: {out} new ids {new}")
        outputs.append({**out[0], "token_ids": new})  # like make_fixtures' text-generation records
    check = {"task": "image-text-to-text", "inputs": inputs,
             "options": {"text": prompt, "max_new_tokens": max_new_tokens, "num_beams": num_beams}, "outputs": outputs}
    if not mf.STRICT_MARGINS and num_beams == 1:
        # Per input: each greedy step's best-minus-second logit (the Rust side compares
        # image-text-to-text outputs exactly, so they stay out of "outputs").
        check["margins"] = all_margins
    return check, token_ids, enc


def llava_tiny():
    """LLaVA: a tiny CLIP vision tower (32x32, 8x8 patches: 16 patch features after the
    CLS is dropped), a 2-layer GELU projector and a tiny Llama; the processor expands
    each <image> into 16 image tokens. Check: image-text-to-text, greedy."""
    name = "llava-tiny"
    torch.manual_seed(SEEDS[name])
    d = fresh_dir(name)
    tok = llava_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<image>"], "pad_token": "<unk>"})
    image_id = tok.convert_tokens_to_ids("<image>")
    vision = transformers.CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
        num_attention_heads=2, hidden_act="quick_gelu", initializer_range=0.3, projection_dim=16)
    text = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=44, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128, initializer_range=0.3, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    cfg = transformers.LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=image_id, projector_hidden_act="gelu",
        vision_feature_layer=-2, vision_feature_select_strategy="default", image_seq_length=16,
        tie_word_embeddings=False)
    model = transformers.LlavaForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() >= 2 and ("multi_modal_projector" in n or "vision_tower" in n):
                p.normal_(0, 0.3)
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(d)
    ip = transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, resample=3, do_center_crop=True, crop_size={"height": 32, "width": 32},
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
        do_convert_rgb=True)
    proc = transformers.LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=8,
                                       vision_feature_select_strategy="default", num_additional_image_tokens=1)
    proc.save_pretrained(d)
    ip.save_pretrained(d)  # preprocessor_config.json as well, whatever the processor wrote
    check, token_ids, enc = image_text_to_text(name, d, IMAGES, LLAVA_PROMPTS[0], 8)
    beams, _, _ = image_text_to_text(name, d, IMAGES, LLAVA_PROMPTS[0], 12, num_beams=3)
    prompt = check["options"]["text"]
    tensors, info = image_tensors(name, d, IMAGES)
    write_processor(d, tensors, {
        "tensor": "pixel_values", "inputs": IMAGES, **info, "prompt": prompt,
        "input_ids": enc["input_ids"][0].tolist(), "image_token_id": image_id, "generated_token_ids": token_ids,
        "note": "pixel_values [3,32,32] per image; input_ids: the prompt after the processor expanded <image> "
                "into 16 image tokens (of the last input; the same for all)."})
    finish(d, "llava",
           "LlavaForConditionalGeneration: CLIP vision tower (32x32, 8x8 patches, features of the second-to-last "
           "layer without the CLS token), GELU projector, 2-layer Llama (4 heads, 2 KV heads); the processor "
           "expands <image> into 16 tokens; image-text-to-text, greedy and with 3 beams.", [check, beams])


FIXTURE_SPECS = {
    "vit-tiny-cls": vit_tiny_cls,
    "deit-tiny-cls": deit_tiny_cls,
    "dinov2-tiny-cls": dinov2_tiny_cls,
    "clip-tiny": clip_tiny,
    "siglip-tiny": siglip_tiny,
    "clip-vision-tiny": clip_vision_tiny,
    "siglip-vision-tiny": siglip_vision_tiny,
    "wav2vec2-tiny-ctc": wav2vec2_tiny_ctc,
    "wav2vec2-tiny-cls": wav2vec2_tiny_cls,
    "hubert-tiny-cls": hubert_tiny_cls,
    "data2vec-audio-tiny-cls": data2vec_audio_tiny_cls,
    "unispeech-tiny-cls": unispeech_tiny_cls,
    "unispeech-sat-tiny-cls": unispeech_sat_tiny_cls,
    "wavlm-tiny-cls": wavlm_tiny_cls,
    "hubert-tiny-ctc": hubert_tiny_ctc,
    "data2vec-audio-tiny-ctc": data2vec_audio_tiny_ctc,
    "unispeech-tiny-ctc": unispeech_tiny_ctc,
    "unispeech-sat-tiny-ctc": unispeech_sat_tiny_ctc,
    "wavlm-tiny-ctc": wavlm_tiny_ctc,
    "whisper-tiny": whisper_tiny,
    "llava-tiny": llava_tiny,
}

RESAMPLER = None


def recompute_whisper(name: str, d: Path, c: dict) -> dict:
    model = transformers.WhisperForConditionalGeneration.from_pretrained(d, dtype=DTYPE).to(DEVICE).eval()
    tok = transformers.AutoTokenizer.from_pretrained(d)
    fe = transformers.AutoFeatureExtractor.from_pretrained(d)
    o = c["options"]
    check, _, _ = whisper_reference(name, d, model, fe, tok, c["inputs"], o.get("language"), o.get("task"),
                                    o["max_new_tokens"], o.get("num_beams"))
    return check


# Each check of reference.json again, from its task, inputs and options (and the model type).
RECOMPUTE = {
    "image-classification": lambda name, d, c, mt: image_classification(name, d, c["inputs"]),
    "image-feature-extraction": lambda name, d, c, mt: image_feature_extraction(name, d, c["inputs"]),
    "zero-shot-image-classification": lambda name, d, c, mt: zero_shot_image(
        name, d, c["inputs"], c["options"]["candidate_labels"]),
    "audio-classification": lambda name, d, c, mt: audio_classification(name, d, c["inputs"]),
    "automatic-speech-recognition": lambda name, d, c, mt: (
        recompute_whisper(name, d, c) if mt == "whisper" else ctc_asr(name, d, c["inputs"])),
    "image-text-to-text": lambda name, d, c, mt: image_text_to_text(
        name, d, c["inputs"], c["options"]["text"], c["options"]["max_new_tokens"],
        c["options"].get("num_beams", 1))[0],
}


def recompute(dirs: list[Path], device: str, dtype: str, out_dir: Path | None):
    """make_fixtures.recompute for the fixtures of this script: run their checks again
    with transformers on `device` in `dtype` and write `reference.<backend>-<dtype>.json`
    beside `reference.json` (or under `out_dir/<fixture>/`). Each check keeps its task,
    inputs, options and other fields (a JPEG check's tolerance); only "outputs" is new,
    and "margins" is added (per input: the smallest gap between consecutive scores of a
    ranking; for CTC the frames, the smallest top-2 logit gap and the frames closer than
    0.05 / 0.25; for greedy generation each step's top-2 logit gap). Near ties are
    recorded, not fatal."""
    global DEVICE, DTYPE
    DEVICE = device
    DTYPE = {"f16": torch.float16, "bf16": torch.bfloat16}[dtype]
    mf.STRICT_MARGINS = False
    for d in dirs:
        if not (d / "reference.json").is_file():
            continue  # tests/fixtures/media holds inputs, not a checkpoint
        ref = json.loads((d / "reference.json").read_text())
        if ref.get("generated_by") != GENERATED_BY:
            continue  # a text fixture: scripts/make_fixtures.py --recompute
        missing = sorted({c["task"] for c in ref["checks"]} - set(RECOMPUTE))
        if missing:
            print(f"skipped {d}: no half-precision reference for {', '.join(missing)}")
            continue
        print(f"{d.name} ({dtype} on {device}):")
        mf.note_version(ref)
        checks = []
        try:
            for c in ref["checks"]:
                new = RECOMPUTE[c["task"]](d.name, d, c, ref["model_type"])
                for k in ("task", "inputs", "options"):
                    assert new[k] == c[k], f"{d.name}: recomputed {k} {new[k]!r} differs from reference.json's {c[k]!r}"
                # The check as reference.json has it (tolerance, tolerance_note), new outputs.
                checks.append({**c, **{k: v for k, v in new.items() if k not in ("task", "inputs", "options")}})
        except Exception as e:  # one fixture's failure does not cost the others theirs
            mf.FAILED.append(f"{d.name} ({dtype}): {type(e).__name__}: {e}")
            print(f"FAILED {mf.FAILED[-1]}", file=sys.stderr)
            continue
        mf.write_recomputed(d, ref, checks, device, dtype, out_dir)


def main():
    global RESAMPLER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="fixture names to rebuild (media is always rebuilt)")
    parser.add_argument("--recompute", nargs="+", type=Path, metavar="FIXTURE_DIR",
                        help="recompute the references of existing fixtures in --dtype on --device")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", choices=["f16", "bf16"], default=["f16", "bf16"])
    parser.add_argument("--out", type=Path, help="write recomputed references under DIR/<fixture>/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    RESAMPLER = install_resampler()
    if args.recompute:
        for dtype in args.dtype:
            recompute(args.recompute, args.device, dtype, args.out)
        if mf.FAILED:
            sys.exit(f"{len(mf.FAILED)} recomputation(s) failed:\n  " + "\n  ".join(mf.FAILED))
        return
    make_media()
    names = args.only or list(FIXTURE_SPECS)
    for name in names:
        if name not in FIXTURE_SPECS:
            sys.exit(f"unknown fixture {name}; known: {', '.join(FIXTURE_SPECS)}")
        FIXTURE_SPECS[name]()
    print("\nsummary:")
    print(json.dumps(SUMMARY, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
