//! Images: decoding (PNG, JPEG) and the preprocessing of transformers' image
//! processors (`ViTImageProcessor`, `CLIPImageProcessor`, `DeiTImageProcessor`,
//! `SiglipImageProcessor`, ...), as `preprocessor_config.json` describes it.
//!
//! Resizing reproduces Pillow's `Image.resize` (what the processors call) to the bit:
//! separable convolution with the filter's support scaled by the downscaling factor
//! (antialiasing), 22-bit fixed-point coefficients and 8-bit rounding after each pass,
//! horizontal pass first.

use std::path::Path;

use image::ImageDecoder;

use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};

/// The largest image side we decode: beyond this, a typed error instead of a
/// multi-gigabyte allocation.
pub const MAX_SIDE: u32 = 16_384;
/// The most bytes a decoder may allocate.
const MAX_ALLOC: u64 = 1 << 30;

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

impl RgbImage {
    /// An image from raw RGB bytes (`width * height * 3` of them).
    pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidInput(format!(
                "an image of {width}x{height} pixels has nothing in it"
            )));
        }
        if data.len() != width * height * 3 {
            return Err(Error::InvalidInput(format!(
                "{} bytes for a {width}x{height} RGB image, which needs {}",
                data.len(),
                width * height * 3
            )));
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    /// Decode a PNG or JPEG (or any format the `image` crate was built with) from
    /// bytes, converted to RGB as Pillow's `convert("RGB")` does (alpha dropped,
    /// grayscale replicated). `what` names the input in errors.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        if bytes.is_empty() {
            return Err(Error::InvalidInput(format!("{what}: the file is empty")));
        }
        let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::InvalidInput(format!("{what}: {e}")))?;
        if reader.format().is_none() {
            return Err(Error::InvalidInput(format!(
                "{what}: not an image (expected PNG or JPEG)"
            )));
        }
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(MAX_ALLOC);
        reader.limits(limits);
        let too_large = format!(
            "{what}: the image is larger than {MAX_SIDE}x{MAX_SIDE} pixels or needs more than 1 GiB to decode: downscale it first"
        );
        let failed = |e: image::ImageError| match e {
            image::ImageError::Limits(_) => Error::InvalidInput(too_large.clone()),
            other => Error::InvalidInput(format!("{what}: {other}")),
        };
        let mut decoder = reader.into_decoder().map_err(failed)?;
        if decoder.total_bytes() > MAX_ALLOC {
            return Err(Error::InvalidInput(too_large));
        }
        // Camera images are stored sideways with an EXIF orientation: turned upright as
        // transformers' `load_image` does (`PIL.ImageOps.exif_transpose`). An orientation
        // that cannot be read leaves the image as stored, as Pillow does.
        let orientation = decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut decoded = image::DynamicImage::from_decoder(decoder).map_err(failed)?;
        decoded.apply_orientation(orientation);
        let rgb = decoded.into_rgb8();
        let (w, h) = rgb.dimensions();
        RgbImage::new(w as usize, h as usize, rgb.into_raw())
    }

    /// Read and decode an image file.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes =
            crate::checkpoint::read_regular_file(path, MAX_IMAGE_FILE)?.ok_or_else(|| {
                Error::MissingFile {
                    path: path.to_path_buf(),
                    what: "image",
                    hint: None,
                }
            })?;
        Self::decode(&bytes, &path.display().to_string())
    }
}

/// The largest image file read (encoded bytes; decoding has limits of its own).
const MAX_IMAGE_FILE: u64 = 256 << 20;

/// Pillow's resampling filters, by the integer codes `preprocessor_config.json` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    Nearest,
    Lanczos,
    Bilinear,
    Bicubic,
    Box,
    Hamming,
}

impl Resample {
    /// `PIL.Image.Resampling` codes: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box,
    /// 5 hamming.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Resample::Nearest,
            1 => Resample::Lanczos,
            2 => Resample::Bilinear,
            3 => Resample::Bicubic,
            4 => Resample::Box,
            5 => Resample::Hamming,
            _ => return None,
        })
    }

    fn support(self) -> f64 {
        match self {
            Resample::Nearest | Resample::Box => 0.5,
            Resample::Bilinear | Resample::Hamming => 1.0,
            Resample::Bicubic => 2.0,
            Resample::Lanczos => 3.0,
        }
    }

    fn filter(self, x: f64) -> f64 {
        fn sinc(x: f64) -> f64 {
            if x == 0.0 {
                1.0
            } else {
                let x = x * std::f64::consts::PI;
                x.sin() / x
            }
        }
        match self {
            Resample::Nearest | Resample::Box => {
                if (-0.5..0.5).contains(&x) {
                    1.0
                } else {
                    0.0
                }
            }
            Resample::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Resample::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let px = x * std::f64::consts::PI;
                    px.sin() / px * (0.54 + 0.46 * px.cos())
                }
            }
            Resample::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Resample::Lanczos => {
                if -3.0 < x && x < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// How the fixed-point coefficients are made: the two libraries share the
/// algorithm but round differently, which moves some pixels by one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeEngine {
    /// torchvision on uint8 tensors (`F.resize(antialias=True)`): 16-bit
    /// coefficients with as many fraction bits as the largest weight allows. What
    /// transformers 5's default (torchvision-backed) image processors do.
    #[default]
    Torchvision,
    /// Pillow's `Image.resize`: 22 fraction bits. transformers' `*ImageProcessorPil`
    /// classes (`backend: "pil"`), and transformers 4's slow processors.
    Pil,
}

/// Fraction bits of Pillow's 8-bit coefficients.
const PIL_PRECISION: u32 = 32 - 8 - 2;

/// One axis' source windows and fixed-point weights.
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    precision: u32,
}

/// The resampling weights of one axis (Pillow's `precompute_coeffs`, which torch's
/// `_compute_weights_aa` follows), in fixed point as `engine` rounds them.
fn coefficients(in_size: usize, out_size: usize, filter: Resample, engine: ResizeEngine) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut float = vec![0f64; out_size * ksize];
    let mut max_weight = 0f64;
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let k = &mut float[xx * ksize..xx * ksize + n];
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate() {
            let w = filter.filter((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        if ww != 0.0 {
            for kx in k.iter_mut() {
                *kx /= ww;
                max_weight = max_weight.max(*kx);
            }
        }
        bounds.push((xmin, n));
    }
    let precision = match engine {
        ResizeEngine::Pil => PIL_PRECISION,
        ResizeEngine::Torchvision => {
            // The most fraction bits that keep the largest weight within an i16.
            let mut p = 0;
            while p < 22 && ((0.5 + max_weight * (1u64 << (p + 1)) as f64) as i64) < (1 << 15) {
                p += 1;
            }
            p
        }
    };
    let unit = (1u64 << precision) as f64;
    let weights = float
        .iter()
        .map(|&w| {
            let v = w * unit;
            if v < 0.0 {
                (v - 0.5) as i32
            } else {
                (v + 0.5) as i32
            }
        })
        .collect();
    Coeffs {
        ksize,
        bounds,
        weights,
        precision,
    }
}

fn clip8(v: i64, precision: u32) -> u8 {
    (v >> precision).clamp(0, 255) as u8
}

/// Resize an RGB image with an antialiasing filter as Pillow's `Image.resize` or
/// torchvision's `resize(antialias=True)` does on 8-bit data: a horizontal pass, then a
/// vertical one, each rounded to 8 bits.
pub fn resize(
    img: &RgbImage,
    width: usize,
    height: usize,
    filter: Resample,
    engine: ResizeEngine,
) -> RgbImage {
    if width == img.width && height == img.height {
        return img.clone();
    }
    if filter == Resample::Nearest {
        return resize_nearest(img, width, height);
    }
    let need_h = width != img.width;
    let need_v = height != img.height;
    let vert = coefficients(img.height, height, filter, engine);
    // The source rows the vertical pass reads.
    let first = vert.bounds[0].0;
    let last = vert.bounds[height - 1].0 + vert.bounds[height - 1].1;
    let mut current = img.clone();
    if need_h {
        let horiz = coefficients(img.width, width, filter, engine);
        let rows = if need_v { first..last } else { 0..img.height };
        let mut out = vec![0u8; rows.len() * width * 3];
        let half = 1i64 << (horiz.precision.max(1) - 1);
        for (oy, y) in rows.clone().enumerate() {
            let src = &img.data[y * img.width * 3..(y + 1) * img.width * 3];
            let dst = &mut out[oy * width * 3..(oy + 1) * width * 3];
            for xx in 0..width {
                let (xmin, n) = horiz.bounds[xx];
                let k = &horiz.weights[xx * horiz.ksize..xx * horiz.ksize + n];
                let mut acc = [half; 3];
                for (i, &w) in k.iter().enumerate() {
                    let p = &src[(xmin + i) * 3..(xmin + i) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += p[c] as i64 * w as i64;
                    }
                }
                for c in 0..3 {
                    dst[xx * 3 + c] = clip8(acc[c], horiz.precision);
                }
            }
        }
        current = RgbImage {
            width,
            height: rows.len(),
            data: out,
        };
    }
    if need_v {
        // Rows of `current` start at source row `first` when the horizontal pass ran.
        let offset = if need_h { first } else { 0 };
        let w = current.width;
        let mut out = vec![0u8; height * w * 3];
        let half = 1i64 << (vert.precision.max(1) - 1);
        for yy in 0..height {
            let (ymin, n) = vert.bounds[yy];
            let k = &vert.weights[yy * vert.ksize..yy * vert.ksize + n];
            let dst = &mut out[yy * w * 3..(yy + 1) * w * 3];
            for (x, d) in dst.iter_mut().enumerate() {
                let mut acc = half;
                for (i, &wt) in k.iter().enumerate() {
                    acc += current.data[(ymin - offset + i) * w * 3 + x] as i64 * wt as i64;
                }
                *d = clip8(acc, vert.precision);
            }
        }
        current = RgbImage {
            width: w,
            height,
            data: out,
        };
    }
    current
}

/// Pillow's nearest-neighbour resize: source pixel `floor((x + 0.5) * in / out)`.
fn resize_nearest(img: &RgbImage, width: usize, height: usize) -> RgbImage {
    let mut out = vec![0u8; width * height * 3];
    let sx = img.width as f64 / width as f64;
    let sy = img.height as f64 / height as f64;
    for y in 0..height {
        let src_y = (((y as f64 + 0.5) * sy) as usize).min(img.height - 1);
        for x in 0..width {
            let src_x = (((x as f64 + 0.5) * sx) as usize).min(img.width - 1);
            let s = (src_y * img.width + src_x) * 3;
            out[(y * width + x) * 3..(y * width + x) * 3 + 3].copy_from_slice(&img.data[s..s + 3]);
        }
    }
    RgbImage {
        width,
        height,
        data: out,
    }
}

/// The target of the resize step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTo {
    /// Exactly this size.
    Exact { height: usize, width: usize },
    /// The shorter side becomes this, the aspect ratio is kept (transformers'
    /// `get_resize_output_image_size(default_to_square=False)`).
    ShortestEdge(usize),
}

/// The preprocessing of one checkpoint's image processor.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    pub resize: Option<ResizeTo>,
    pub resample: Resample,
    pub engine: ResizeEngine,
    /// `(height, width)` of the center crop.
    pub center_crop: Option<(usize, usize)>,
    pub rescale_factor: Option<f64>,
    pub normalize: Option<([f64; 3], [f64; 3])>,
}

fn size_field(
    v: &serde_json::Value,
    shortest_edge_for_int: bool,
    invalid: &dyn Fn(String) -> Error,
) -> Result<ResizeTo> {
    let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize);
    if let Some(n) = v.as_u64() {
        if n == 0 {
            return Err(invalid(format!("is {v}: an image side must be at least 1")));
        }
        let n = usize::try_from(n).map_err(|_| invalid(format!("{v} is not a size")))?;
        return Ok(if shortest_edge_for_int {
            ResizeTo::ShortestEdge(n)
        } else {
            ResizeTo::Exact {
                height: n,
                width: n,
            }
        });
    }
    match (get("height"), get("width"), get("shortest_edge")) {
        (Some(height), Some(width), _) if height > 0 && width > 0 => {
            Ok(ResizeTo::Exact { height, width })
        }
        (_, _, Some(s)) if s > 0 => Ok(ResizeTo::ShortestEdge(s)),
        _ => Err(invalid(format!(
            "expected {{\"height\", \"width\"}} or {{\"shortest_edge\"}}, found {v}"
        ))),
    }
}

impl ImageProcessor {
    /// The processor of a checkpoint, from `preprocessor_config.json`.
    pub fn from_checkpoint(ckpt: &Checkpoint) -> Result<Self> {
        let path = ckpt.dir.join("preprocessor_config.json");
        let config = ckpt
            .json("preprocessor_config.json")?
            .ok_or_else(|| Error::MissingFile {
                path: path.clone(),
                what: "preprocessor_config.json",
                hint: Some("an image model's checkpoint ships its image processor's settings in preprocessor_config.json (AutoImageProcessor.save_pretrained writes it)".into()),
            })?;
        Self::from_config(&config, &path)
    }

    /// The processor from a parsed `preprocessor_config.json` (`path` for errors).
    pub fn from_config(config: &serde_json::Value, path: &Path) -> Result<Self> {
        let invalid = |field: &str| {
            let path = path.to_path_buf();
            let field = field.to_string();
            move |reason: String| Error::invalid_file(&path, format!("field `{field}`: {reason}"))
        };
        let class = config
            .get("image_processor_type")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        // CLIP-style processors read a bare integer size as the shortest edge.
        let shortest_for_int = class.starts_with("CLIP") || class.starts_with("Chinese");
        let flag =
            |k: &str, default: bool| config.get(k).and_then(|v| v.as_bool()).unwrap_or(default);
        let resize = if flag("do_resize", true) {
            let size = config
                .get("size")
                .ok_or_else(|| invalid("size")("is missing".into()))?;
            Some(size_field(size, shortest_for_int, &invalid("size"))?)
        } else {
            None
        };
        let resample = match config.get("resample") {
            None | Some(serde_json::Value::Null) => Resample::Bilinear,
            Some(v) => v.as_u64().and_then(Resample::from_code).ok_or_else(|| {
                invalid("resample")(format!("expected a Pillow filter code 0-5, found {v}"))
            })?,
        };
        let center_crop = if flag("do_center_crop", false) {
            let crop = config
                .get("crop_size")
                .ok_or_else(|| invalid("crop_size")("is missing".into()))?;
            match size_field(crop, false, &invalid("crop_size"))? {
                ResizeTo::Exact { height, width } => Some((height, width)),
                ResizeTo::ShortestEdge(_) => {
                    return Err(invalid("crop_size")("expected a height and width".into()))
                }
            }
        } else {
            None
        };
        let rescale_factor = if flag("do_rescale", true) {
            Some(
                config
                    .get("rescale_factor")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(1.0 / 255.0),
            )
        } else {
            None
        };
        let triple = |k: &str, default: [f64; 3]| -> Result<[f64; 3]> {
            match config.get(k) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(serde_json::Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or(0.0);
                    Ok([x; 3])
                }
                Some(v) => {
                    let xs: Vec<f64> = v
                        .as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                        .unwrap_or_default();
                    xs.try_into()
                        .map_err(|_| invalid(k)(format!("expected 3 numbers, found {v}")))
                }
            }
        };
        let normalize = if flag("do_normalize", true) {
            let mean = triple("image_mean", [0.5; 3])?;
            let std = triple("image_std", [0.5; 3])?;
            if std.contains(&0.0) {
                return Err(invalid("image_std")("has a zero".into()));
            }
            Some((mean, std))
        } else {
            None
        };
        // transformers 5 runs the torchvision-backed processors unless the checkpoint
        // names a Pillow one (`...ImageProcessorPil`) or `backend: "pil"`.
        let engine = if class.ends_with("Pil")
            || config.get("backend").and_then(|v| v.as_str()) == Some("pil")
        {
            ResizeEngine::Pil
        } else {
            ResizeEngine::Torchvision
        };
        Ok(ImageProcessor {
            resize,
            resample,
            engine,
            center_crop,
            rescale_factor,
            normalize,
        })
    }

    /// Its sizes within `limits` (each side of `size` and `crop_size`), and the
    /// normalization's scale usable (`image_std` well away from zero).
    pub fn check(&self, limits: &crate::Limits, path: &Path) -> Result<()> {
        let side = |what: &str, n: usize| {
            limits
                .check_image_side(what, n as u64)
                .map_err(|e| Error::invalid_file(path, e.to_string()))
        };
        match self.resize {
            Some(ResizeTo::Exact { height, width }) => {
                side("pixels of `size` height", height)?;
                side("pixels of `size` width", width)?;
            }
            Some(ResizeTo::ShortestEdge(s)) => side("pixels of `size` shortest_edge", s)?,
            None => {}
        }
        if let Some((h, w)) = self.center_crop {
            side("pixels of `crop_size` height", h)?;
            side("pixels of `crop_size` width", w)?;
        }
        if let Some((_, std)) = self.normalize {
            if std.iter().any(|s| !(s.abs() >= 1e-6 && s.is_finite())) {
                return Err(Error::invalid_file(
                    path,
                    format!("field `image_std`: {std:?} would divide the pixels by (almost) zero"),
                ));
            }
        }
        if let Some(f) = self.rescale_factor {
            if !f.is_finite() {
                return Err(Error::invalid_file(
                    path,
                    format!("field `rescale_factor`: {f}"),
                ));
            }
        }
        Ok(())
    }

    /// The `(height, width)` an image is resized to (before a crop).
    pub fn resized_size_of(&self, image: &RgbImage) -> (usize, usize) {
        self.resized_size(image.height, image.width)
    }

    /// The `(height, width)` of the tensors it makes.
    pub fn output_size(&self, image: &RgbImage) -> (usize, usize) {
        let (h, w) = self.resized_size(image.height, image.width);
        self.center_crop.unwrap_or((h, w))
    }

    fn resized_size(&self, h: usize, w: usize) -> (usize, usize) {
        match self.resize {
            None => (h, w),
            Some(ResizeTo::Exact { height, width }) => (height, width),
            Some(ResizeTo::ShortestEdge(s)) => {
                let (short, long) = if h <= w { (h, w) } else { (w, h) };
                // `as` saturates: a huge ratio is caught by the pixel budget.
                let new_long = ((s as f64 * long as f64 / short.max(1) as f64) as usize).max(1);
                if h <= w {
                    (s, new_long)
                } else {
                    (new_long, s)
                }
            }
        }
    }

    /// `pixel_values` of one image: `[3, height, width]` f32, channels first.
    pub fn preprocess(&self, image: &RgbImage) -> Vec<f32> {
        let (h, w) = self.resized_size(image.height, image.width);
        let resized = resize(image, w, h, self.resample, self.engine);
        let (ch, cw) = self.center_crop.unwrap_or((h, w));
        // transformers' `center_crop`: top-left at half the difference, rounded down,
        // zero padding where the crop is larger than the image.
        let top = (h as i64 - ch as i64).div_euclid(2);
        let left = (w as i64 - cw as i64).div_euclid(2);
        let mut out = vec![0f32; 3 * ch * cw];
        for c in 0..3 {
            let (mean, std) = self
                .normalize
                .map(|(m, s)| (m[c], s[c]))
                .unwrap_or((0.0, 1.0));
            for y in 0..ch {
                let sy = y as i64 + top;
                for x in 0..cw {
                    let sx = x as i64 + left;
                    let v = if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                        resized.data[(sy as usize * w + sx as usize) * 3 + c] as f64
                    } else {
                        0.0
                    };
                    let v = match self.rescale_factor {
                        Some(f) => v * f,
                        None => v,
                    };
                    out[(c * ch + y) * cw + x] = ((v - mean) / std) as f32;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> RgbImage {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                data.extend([
                    (x * 255 / w) as u8,
                    (y * 255 / h) as u8,
                    ((x + y) % 256) as u8,
                ]);
            }
        }
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn resizing_keeps_a_constant_image_constant() {
        let img = RgbImage::new(7, 5, [10u8, 200, 77].repeat(35)).unwrap();
        for f in [
            Resample::Bilinear,
            Resample::Bicubic,
            Resample::Lanczos,
            Resample::Box,
            Resample::Hamming,
            Resample::Nearest,
        ] {
            for (w, h, e) in [
                (3, 2, ResizeEngine::Pil),
                (20, 13, ResizeEngine::Torchvision),
                (7, 9, ResizeEngine::Pil),
                (1, 1, ResizeEngine::Torchvision),
            ] {
                let r = resize(&img, w, h, f, e);
                assert_eq!((r.width, r.height), (w, h));
                assert!(
                    r.data.chunks(3).all(|p| p == [10, 200, 77]),
                    "{f:?} {w}x{h}"
                );
            }
        }
    }

    #[test]
    fn shortest_edge_and_crop() {
        let p = ImageProcessor {
            resize: Some(ResizeTo::ShortestEdge(8)),
            resample: Resample::Bicubic,
            engine: ResizeEngine::Torchvision,
            center_crop: Some((8, 8)),
            rescale_factor: Some(1.0 / 255.0),
            normalize: None,
        };
        let img = gradient(30, 20);
        assert_eq!(p.resized_size(20, 30), (8, 12));
        assert_eq!(p.output_size(&img), (8, 8));
        let v = p.preprocess(&img);
        assert_eq!(v.len(), 3 * 64);
        assert!(v.iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        let e = RgbImage::decode(b"", "x.png").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = RgbImage::decode(b"hello, world", "x.png")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an image"), "{e}");
        assert!(RgbImage::new(0, 3, vec![]).is_err());
    }
}
