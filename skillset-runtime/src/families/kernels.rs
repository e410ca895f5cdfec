//! CPU kernels where candle's generic ones are slow: the erf-based GELU (candle calls
//! libm's scalar `erff` per element, a third of a MiniLM forward pass on two cores),
//! fused with the bias add of the linear layer before it. And one where candle's is
//! inexact: layer norm (candle's variance is `E[x²] - E[x]²`, which cancels when a row's
//! mean is large against its spread, as in pre-norm residual streams; ours subtracts
//! the mean first, as PyTorch's).
//!
//! The erf is a branch-free rational approximation on [-4, 4] (the one XLA and Eigen
//! use for f32: odd degree-13 numerator over even degree-8 denominator; erf is ±1 in f32
//! beyond ±4), which the compiler vectorises; its error against libm is under 1e-6
//! (tested below). Other devices and dtypes take candle's path.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

/// erf(x) for f32, branch-free.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

/// GELU(x) = x/2 (1 + erf(x/√2)), as transformers' `gelu`.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// e^x for f32, branch-free (Cephes' `expf`: x = n ln2 + r, a degree-6 polynomial for
/// e^r, 2^n from the exponent bits); relative error ~1e-7 (tested below).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round x log2(e) to the nearest integer with the 1.5 * 2^23 trick (no `round`
    // call, which baseline x86-64 lacks as an instruction).
    const MAGIC: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4 * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    let bits = (t.to_bits() as i32 - 0x4B40_0000 + 127) << 23;
    e * f32::from_bits(bits as u32)
}

/// One row of `gelu(x + bias)` (bias: the row's width, or empty for none).
#[inline(always)]
fn gelu_row(out: &mut [f32], x: &[f32], bias: &[f32]) {
    if bias.is_empty() {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = gelu(v);
        }
    } else {
        for ((o, &v), &b) in out.iter_mut().zip(x).zip(bias) {
            *o = gelu(v + b);
        }
    }
}

/// One row of `softmax(x * scale + bias)`; reductions over 8 lanes so that they
/// vectorise.
#[inline(always)]
fn softmax_row(out: &mut [f32], x: &[f32], bias: &[f32], scale: f32) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut oc = out.chunks_exact_mut(8);
    let mut xc = x.chunks_exact(8);
    let mut bc = bias.chunks_exact(8);
    for ((o, xs), bs) in (&mut oc).zip(&mut xc).zip(&mut bc) {
        for i in 0..8 {
            o[i] = xs[i] * scale + bs[i];
            lanes[i] = lanes[i].max(o[i]);
        }
    }
    let mut max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for ((o, &v), &b) in oc
        .into_remainder()
        .iter_mut()
        .zip(xc.remainder())
        .zip(bc.remainder())
    {
        *o = v * scale + b;
        max = max.max(*o);
    }
    let mut sums = [0f32; 8];
    let mut oc = out.chunks_exact_mut(8);
    for o in &mut oc {
        for i in 0..8 {
            o[i] = exp_f32(o[i] - max);
            sums[i] += o[i];
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for o in oc.into_remainder() {
        *o = exp_f32(*o - max);
        sum += *o;
    }
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

/// A dot product over 4 x 8 lanes: four independent accumulator chains, so that the
/// FMA latency is hidden (vectorises; FMA where the caller is compiled with it).
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [[0f32; 8]; 4];
    let (ac, bc) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for (q, acc) in acc.iter_mut().enumerate() {
            for l in 0..8 {
                let (xv, yv) = (x[q * 8 + l], y[q * 8 + l]);
                acc[l] = if FMA {
                    xv.mul_add(yv, acc[l])
                } else {
                    xv * yv + acc[l]
                };
            }
        }
    }
    let mut lanes = [0f32; 8];
    for l in 0..8 {
        lanes[l] = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
    }
    let mut sum = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (x, y) in ar.iter().zip(br) {
        sum += x * y;
    }
    sum
}

/// `out[j - cols.start] = x . w[j] (+ bias[j])` for the weight rows `cols`: every
/// weight row is read once, straight from its `[out, in]` layout.
#[inline(always)]
fn matvec_range<const FMA: bool>(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    cols: std::ops::Range<usize>,
    out: &mut [f32],
) {
    let k = x.len();
    for (o, j) in out.iter_mut().zip(cols) {
        *o = dot::<FMA>(x, &w[j * k..(j + 1) * k]) + bias.get(j).copied().unwrap_or(0.0);
    }
}

/// The row kernels compiled for AVX2 + FMA, chosen at run time where the CPU has them
/// (the crate itself is built for baseline x86-64: 4-wide SSE2).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2,fma")]
    pub fn gelu_row(out: &mut [f32], x: &[f32], bias: &[f32]) {
        super::gelu_row(out, x, bias)
    }
    #[target_feature(enable = "avx2,fma")]
    pub fn softmax_row(out: &mut [f32], x: &[f32], bias: &[f32], scale: f32) {
        super::softmax_row(out, x, bias, scale)
    }
    #[target_feature(enable = "avx2,fma")]
    pub fn matvec_range(
        x: &[f32],
        w: &[f32],
        bias: &[f32],
        cols: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        super::matvec_range::<true>(x, w, bias, cols, out)
    }
    pub fn available() -> bool {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        })
    }
}

fn gelu_row_best(out: &mut [f32], x: &[f32], bias: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { avx2::gelu_row(out, x, bias) };
    }
    gelu_row(out, x, bias)
}

fn softmax_row_best(out: &mut [f32], x: &[f32], bias: &[f32], scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { avx2::softmax_row(out, x, bias, scale) };
    }
    softmax_row(out, x, bias, scale)
}

fn matvec_range_best(
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    cols: std::ops::Range<usize>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { avx2::matvec_range(x, w, bias, cols, out) };
    }
    matvec_range::<false>(x, w, bias, cols, out)
}

/// Work of at least this many elements is split between threads.
const PAR_MIN: usize = 1 << 15;

/// Run `f(start, chunk)` over `out` in chunks of whole rows, on candle's worker
/// threads when `work` (elements touched) is worth it.
fn for_chunks(out: &mut [f32], row: usize, work: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    // candle's `get_num_threads` asks the OS (cgroup files included) on every call:
    // about 25 us, more than a small kernel's work. The count does not change.
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads = *THREADS.get_or_init(|| candle_core::utils::get_num_threads().max(1));
    if threads == 1 || work < PAR_MIN || cfg!(target_arch = "wasm32") {
        f(0, out);
        return;
    }
    use rayon::prelude::*;
    let rows = out.len() / row.max(1);
    let per = rows.div_ceil(threads).max(1) * row.max(1);
    // On candle's own worker threads (as its ops run), not on freshly spawned ones.
    candle_core::utils::with_threadpool(|| {
        out.par_chunks_mut(per)
            .enumerate()
            .for_each(|(i, chunk)| f(i * per, chunk))
    });
}

/// The f32 values of a contiguous CPU tensor, or the error a kernel reports.
fn f32s<'a>(op: &str, s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only");
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("{op}: contiguous inputs only");
    };
    Ok(&v[start..end])
}

/// `gelu(x + bias)`, `bias` broadcast over the last dimension.
struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu-erf"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, b) = (f32s(self.name(), s1, l1)?, f32s(self.name(), s2, l2)?);
        let row = b.len();
        if row == 0 || x.len() % row != 0 {
            candle_core::bail!("bias-gelu-erf: bias of {row} for {} values", x.len());
        }
        let mut out = vec![0f32; x.len()];
        for_chunks(&mut out, row, x.len(), |start, chunk| {
            let n = chunk.len();
            for (o, xs) in chunk
                .chunks_exact_mut(row)
                .zip(x[start..start + n].chunks_exact(row))
            {
                gelu_row_best(o, xs, b);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `gelu(x)`.
struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32s(self.name(), s, l)?;
        let mut out = vec![0f32; x.len()];
        let row = *l.dims().last().unwrap_or(&1);
        for_chunks(&mut out, row, x.len(), |start, chunk| {
            let n = chunk.len();
            gelu_row_best(chunk, &x[start..start + n], &[]);
        });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// `softmax(scores * scale + bias)` over the last dimension, in one pass per row:
/// scores `[b, h, q, k]`, bias `[b, 1, 1 or q, k]`.
struct ScaledBiasSoftmax {
    scale: f32,
}

impl CustomOp2 for ScaledBiasSoftmax {
    fn name(&self) -> &'static str {
        "scaled-bias-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, bias) = (f32s(self.name(), s1, l1)?, f32s(self.name(), s2, l2)?);
        let (b, h, q, k) = l1.shape().dims4()?;
        let (bb, bh, bq, bk) = l2.shape().dims4()?;
        if bb != b || bh != 1 || !(bq == 1 || bq == q) || bk != k {
            candle_core::bail!(
                "scaled-bias-softmax: bias {:?} for scores {:?}",
                l2.dims(),
                l1.dims()
            );
        }
        let scale = self.scale;
        let mut out = vec![0f32; x.len()];
        for_chunks(&mut out, k, x.len(), |start, chunk| {
            let n = chunk.len();
            for (r, (o, xs)) in chunk
                .chunks_exact_mut(k)
                .zip(x[start..start + n].chunks_exact(k))
                .enumerate()
            {
                let row = start / k + r;
                let (bi, qi) = (row / (h * q), row % q);
                let brow = &bias[(bi * bq + if bq == 1 { 0 } else { qi }) * k..][..k];
                softmax_row_best(o, xs, brow, scale);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `softmax(scores * scale + bias)` over the last dimension (f32 in, f32 out).
pub fn scaled_bias_softmax(
    scores: &Tensor,
    bias: Option<&Tensor>,
    scale: f64,
) -> candle_core::Result<Tensor> {
    if let Some(bias) = bias {
        let fits = match (scores.dims4(), bias.dims4()) {
            (Ok((b, _, q, k)), Ok((bb, 1, bq, bk))) => bb == b && (bq == 1 || bq == q) && bk == k,
            _ => false,
        };
        if fits && fast_path(scores) && bias.dtype() == scores.dtype() {
            return scores.contiguous()?.apply_op2_no_bwd(
                &bias.contiguous()?,
                &ScaledBiasSoftmax {
                    scale: scale as f32,
                },
            );
        }
    }
    let mut s = (scores * scale)?;
    if let Some(bias) = bias {
        s = s.broadcast_add(bias)?;
    }
    candle_nn::ops::softmax_last_dim(&s)
}

/// One row of a layer norm: mean, then the variance of the centred row (two passes,
/// so that a large mean does not cancel the variance away).
#[inline(always)]
fn layer_norm_row(out: &mut [f32], x: &[f32], w: &[f32], b: &[f32], eps: f32) {
    let n = x.len() as f32;
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let mean = (lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()) / n;
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += (v - mean) * (v - mean);
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|&v| (v - mean) * (v - mean))
        .sum();
    let var = (lanes.iter().sum::<f32>() + tail) / n;
    let inv = 1.0 / (var + eps).sqrt();
    if b.is_empty() {
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
            *o = (v - mean) * inv * g;
        }
    } else {
        for (((o, &v), &g), &c) in out.iter_mut().zip(x).zip(w).zip(b) {
            *o = (v - mean) * inv * g + c;
        }
    }
}

/// Layer norm over the last dimension: `x`, weight and bias (an empty bias: none).
struct LayerNormOp {
    eps: f32,
}

impl candle_core::CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = f32s(self.name(), s1, l1)?;
        let (w, b) = (f32s(self.name(), s2, l2)?, f32s(self.name(), s3, l3)?);
        let row = w.len();
        if row == 0 || x.len() % row != 0 || !(b.is_empty() || b.len() == row) {
            candle_core::bail!(
                "layer-norm: weight of {row}, bias of {} for {} values",
                b.len(),
                x.len()
            );
        }
        let eps = self.eps;
        let mut out = vec![0f32; x.len()];
        for_chunks(&mut out, row, x.len() * 3, |start, chunk| {
            let n = chunk.len();
            for (o, xs) in chunk
                .chunks_exact_mut(row)
                .zip(x[start..start + n].chunks_exact(row))
            {
                layer_norm_row(o, xs, w, b, eps);
            }
        });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Layer norm over the last dimension, the mean subtracted before the variance is
/// taken: one pass per row on the CPU in f32; elsewhere the mean is subtracted first
/// and candle's fused kernel normalises the centred rows.
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    eps: f64,
) -> candle_core::Result<Tensor> {
    let d = *x.dims().last().unwrap_or(&0);
    if fast_path(x) && weight.dtype() == x.dtype() && weight.dims1()? == d {
        let empty;
        let b = match bias {
            Some(b) => b.contiguous()?,
            None => {
                empty = Tensor::zeros(0, x.dtype(), x.device())?;
                empty
            }
        };
        return x.contiguous()?.apply_op3_no_bwd(
            &weight.contiguous()?,
            &b,
            &LayerNormOp { eps: eps as f32 },
        );
    }
    // In f32 whatever the dtype, as candle's and PyTorch's half-precision norms.
    let f32 = candle_core::DType::F32;
    let xf = x.to_dtype(f32)?;
    let centred = xf
        .broadcast_sub(&xf.mean_keepdim(candle_core::D::Minus1)?)?
        .contiguous()?;
    let w = weight.to_dtype(f32)?;
    let b = match bias {
        Some(b) => b.to_dtype(f32)?,
        None => w.zeros_like()?,
    };
    candle_nn::ops::layer_norm(&centred, &w, &b, eps as f32)?.to_dtype(x.dtype())
}

/// `SKILLSET_CANDLE_KERNELS=1` turns these kernels off (candle's ops instead), to
/// measure what they bring.
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("SKILLSET_CANDLE_KERNELS").is_none_or(|v| v != "1"))
}

/// `x W^T (+ b)` for one row x `[1, k]`, W `[n, k]` as transformers stores it: the
/// `bias` operand is read only when `with_bias`.
struct Matvec {
    with_bias: bool,
}

impl Matvec {
    fn run(
        &self,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, k) = wl.shape().dims2()?;
        if x.len() != k {
            candle_core::bail!("matvec: 1x{} times {n}x{k}", x.len());
        }
        let bias = if self.with_bias { b } else { &[] };
        let mut out = vec![0f32; n];
        for_chunks(&mut out, 1, n * k, |start, chunk| {
            let end = start + chunk.len();
            matvec_range_best(x, w, bias, start..end, chunk)
        });
        Ok((CpuStorage::F32(out), Shape::from((1, n))))
    }
}

impl CustomOp2 for Matvec {
    fn name(&self) -> &'static str {
        "matvec"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let w = f32s(self.name(), s2, l2)?;
        self.run(f32s(self.name(), s1, l1)?, w, &[], l2)
    }
}

impl candle_core::CustomOp3 for Matvec {
    fn name(&self) -> &'static str {
        "matvec"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w) = (f32s("matvec", s1, l1)?, f32s("matvec", s2, l2)?);
        self.run(x, w, f32s("matvec", s3, l3)?, l2)
    }
}

/// `x W^T (+ b)` when `x` holds a single row (a generation step at batch 1), on the
/// CPU in f32: dot products over the weight rows as stored. Measured on llama-30m
/// (BENCHMARKS.md): +30% tokens/s over candle's matmul, which packs the weight on
/// every call; already at 16 rows candle's blocked kernel is well ahead of dot
/// products, so any other shape returns `None` (the caller uses candle's matmul).
pub fn matvec(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
) -> candle_core::Result<Option<Tensor>> {
    let k = x.dims().last().copied().unwrap_or(0);
    if k == 0 || x.elem_count() != k || !fast_path(x) || w.dtype() != x.dtype() || w.rank() != 2 {
        return Ok(None);
    }
    let x1 = x.contiguous()?.reshape((1, k))?;
    let w = w.contiguous()?;
    let y = match bias {
        Some(b) => x1.apply_op3_no_bwd(&w, &b.contiguous()?, &Matvec { with_bias: true })?,
        None => x1.apply_op2_no_bwd(&w, &Matvec { with_bias: false })?,
    };
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = w.dim(0)?;
    }
    Ok(Some(y.reshape(dims)?))
}

fn fast_path(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && enabled()
}

/// The exact (erf) GELU.
pub fn gelu_erf(x: &Tensor) -> candle_core::Result<Tensor> {
    if fast_path(x) {
        x.contiguous()?.apply_op1_no_bwd(&Gelu)
    } else {
        x.gelu_erf()
    }
}

/// `gelu_erf(x + bias)` in one pass where the fast path applies.
pub fn bias_gelu_erf(x: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    if fast_path(x) && bias.dtype() == x.dtype() && bias.rank() == 1 {
        x.contiguous()?
            .apply_op2_no_bwd(&bias.contiguous()?, &BiasGelu)
    } else {
        x.broadcast_add(bias)?.gelu_erf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0f64;
        let mut x = -6.0f64;
        while x <= 6.0 {
            let ours = erf_f32(x as f32) as f64;
            let exact = candle_core::cpu::erf::erf_f64(x);
            worst = worst.max((ours - exact).abs());
            x += 1e-4;
        }
        assert!(worst < 1e-6, "max |erf error| {worst:e}");
    }

    #[test]
    fn exp_is_close() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let exact = (x as f64).exp();
            worst = worst.max(((exp_f32(x) as f64) - exact).abs() / exact);
            x += 1e-3;
        }
        assert!(worst < 3e-7, "max relative exp error {worst:e}");
        assert_eq!(exp_f32(-1e30), exp_f32(-87.0));
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37);
    }

    #[test]
    fn softmax_matches_candle() -> candle_core::Result<()> {
        let dev = candle_core::Device::Cpu;
        // Rows of 37: the 8-lane loops and their remainders.
        let x = Tensor::randn(0f32, 3.0, (2, 3, 5, 37), &dev)?;
        for bias in [
            Tensor::randn(0f32, 1.0, (2, 1, 1, 37), &dev)?,
            Tensor::randn(0f32, 1.0, (2, 1, 5, 37), &dev)?,
        ] {
            let ours = scaled_bias_softmax(&x, Some(&bias), 0.3)?;
            let theirs = candle_nn::ops::softmax_last_dim(&(&x * 0.3)?.broadcast_add(&bias)?)?;
            let d = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(d < 1e-6, "softmax differs by {d}");
        }
        Ok(())
    }

    #[test]
    fn one_row_linear_matches_candle() -> candle_core::Result<()> {
        let dev = candle_core::Device::Cpu;
        // k not a multiple of 32 (remainders), n big enough for the threaded path.
        for (k, n) in [(37, 5), (300, 2000)] {
            let x = Tensor::randn(0f32, 1.0, (1, 1, k), &dev)?;
            let w = Tensor::randn(0f32, 1.0, (n, k), &dev)?;
            let b = Tensor::randn(0f32, 1.0, n, &dev)?;
            let reference = x.broadcast_matmul(&w.t()?)?;
            for bias in [None, Some(&b)] {
                let ours = matvec(&x, &w, bias)?.expect("one row takes the kernel");
                let theirs = match bias {
                    Some(b) => reference.broadcast_add(b)?,
                    None => reference.clone(),
                };
                assert_eq!(ours.dims(), &[1, 1, n]);
                let d = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(d < 1e-4, "k {k} n {n}: differs by {d}");
            }
        }
        Ok(())
    }

    #[test]
    fn kernels_match_candle() -> candle_core::Result<()> {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::randn(0f32, 3.0, (3, 50_000), &dev)?;
        let b = Tensor::randn(0f32, 1.0, 50_000, &dev)?;
        let ours = bias_gelu_erf(&x, &b)?;
        let theirs = x.broadcast_add(&b)?.gelu_erf()?;
        let d = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(d < 1e-5, "bias_gelu_erf differs by {d}");
        let d = (gelu_erf(&x)? - x.gelu_erf()?)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(d < 1e-5, "gelu_erf differs by {d}");
        Ok(())
    }

    /// Rows whose mean is large against their spread (a pre-norm residual stream's):
    /// ours, on the CPU kernel and on the centred fallback, stays within f32 rounding
    /// of an f64 two-pass norm; candle's `E[x²] - E[x]²` does not.
    #[test]
    fn layer_norm_is_exact_where_the_mean_is_large() -> candle_core::Result<()> {
        let dev = candle_core::Device::Cpu;
        let (rows, d) = (6, 37);
        let noise = Tensor::randn(0f32, 4.0, (rows, d), &dev)?;
        let x = (noise + 240.0)?;
        let w = Tensor::randn(1f32, 0.3, d, &dev)?;
        let b = Tensor::randn(0f32, 0.2, d, &dev)?;
        let (xv, wv, bv): (Vec<Vec<f32>>, Vec<f32>, Vec<f32>) =
            (x.to_vec2()?, w.to_vec1()?, b.to_vec1()?);
        let exact: Vec<f32> = xv
            .iter()
            .flat_map(|row| {
                let n = row.len() as f64;
                let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
                let inv = 1.0 / (var + 1e-12).sqrt();
                row.iter()
                    .zip(&wv)
                    .zip(&bv)
                    .map(move |((&v, &g), &c)| {
                        ((v as f64 - mean) * inv * g as f64 + c as f64) as f32
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let exact = Tensor::from_vec(exact, (rows, d), &dev)?;
        let gap = |t: Tensor| -> candle_core::Result<f32> {
            (t - &exact)?.abs()?.max_all()?.to_scalar::<f32>()
        };
        let ours = gap(layer_norm(&x, &w, Some(&b), 1e-12)?)?;
        assert!(ours < 2e-5, "ours is {ours} from the f64 norm");
        let centred = x.broadcast_sub(&x.mean_keepdim(candle_core::D::Minus1)?)?;
        let fallback = gap(candle_nn::ops::layer_norm(
            &centred.contiguous()?,
            &w,
            &b,
            1e-12,
        )?)?;
        assert!(
            fallback < 2e-5,
            "the centred fallback is {fallback} from the f64 norm"
        );
        let candle = gap(candle_nn::ops::layer_norm(&x, &w, &b, 1e-12)?)?;
        assert!(
            candle > 10.0 * ours,
            "candle's one-pass norm is {candle} away, ours {ours}"
        );
        Ok(())
    }
}
