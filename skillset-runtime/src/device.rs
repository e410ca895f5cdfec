//! Device and dtype choice. One `DeviceSpec` always compiles; a backend that is not
//! compiled in is a runtime error that names the cargo feature.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{Error, Result};
use crate::Backend;

/// Where to run: `cpu`, `cuda[:N]`, `metal[:N]` or `auto` (CUDA, then Metal, then CPU).
///
/// ```
/// use skillset_runtime::DeviceSpec;
///
/// assert_eq!("cuda:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
/// // `auto` takes the best backend compiled in and present, and says which.
/// let device = DeviceSpec::Auto.resolve().unwrap();
/// println!("running on {}", device.name);
/// // A backend that is not compiled in is an error that names the feature.
/// if !cfg!(feature = "cuda") {
///     let err = DeviceSpec::Cuda(0).resolve().unwrap_err();
///     assert!(err.to_string().contains("--features cuda"));
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    Cuda(usize),
    Metal(usize),
    Auto,
}

impl FromStr for DeviceSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidOption(format!(
                "unknown device `{s}`: expected `auto`, `cpu`, `cuda`, `cuda:N`, `metal` or `metal:N`"
            ))
        };
        let (kind, ordinal) = match s.split_once(':') {
            Some((k, n)) => (k, Some(n.parse::<usize>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match (kind.to_ascii_lowercase().as_str(), ordinal) {
            ("cpu", None) => Ok(DeviceSpec::Cpu),
            ("auto", None) => Ok(DeviceSpec::Auto),
            ("cuda" | "gpu", n) => Ok(DeviceSpec::Cuda(n.unwrap_or(0))),
            ("metal" | "mps", n) => Ok(DeviceSpec::Metal(n.unwrap_or(0))),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal(n) => write!(f, "metal:{n}"),
            DeviceSpec::Auto => f.write_str("auto"),
        }
    }
}

/// Whether this build has a backend compiled in.
pub const fn backend_compiled(backend: Backend) -> bool {
    match backend {
        Backend::Cpu => true,
        Backend::Cuda => cfg!(feature = "cuda"),
        Backend::Metal => cfg!(feature = "metal"),
        Backend::Wasm => cfg!(target_arch = "wasm32"),
        Backend::WebGpu | Backend::WebNn => false,
    }
}

/// A device resolved from a [`DeviceSpec`].
#[derive(Debug, Clone)]
pub struct ResolvedDevice {
    pub device: Device,
    pub backend: Backend,
    /// `cpu`, `cuda:0`, `metal:0`: what `skillset run --json` reports.
    pub name: String,
    /// A CUDA device's compute capability (major, minor); `None` off CUDA.
    pub compute_capability: Option<(u32, u32)>,
    /// For `auto`: the backends compiled in but passed over, each with why
    /// (`cuda:0: no CUDA device found ...`); also logged as warnings.
    pub passed_over: Vec<String>,
}

impl ResolvedDevice {
    fn new(device: Device, backend: Backend, name: String) -> Self {
        ResolvedDevice {
            device,
            backend,
            name,
            compute_capability: None,
            passed_over: Vec::new(),
        }
    }

    /// Whether this device runs `dtype`: a typed [`Error::UnsupportedDType`] if not (bf16
    /// before compute capability 8.0, f16 before 5.3, or kernels of that dtype that do not
    /// load or compute here). f16/bf16 run on the CPU too (converted per operation, slower
    /// than f32 there).
    pub fn check_dtype(&self, dtype: DType) -> Result<()> {
        let unsupported = |reason: String| Error::UnsupportedDType {
            dtype: dtype.to_string(),
            device: self.name.clone(),
            reason,
        };
        if let Some(cc) = self.compute_capability {
            cuda_dtype_support(dtype, cc).map_err(unsupported)?;
        }
        if self.backend != Backend::Cpu && dtype != DType::F32 {
            // The dtype's kernels themselves: a Metal GPU without bfloat support, say.
            probe(&self.device, dtype).map_err(unsupported)?;
        }
        if self.backend == Backend::Cpu && dtype != DType::F32 {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                tracing::warn!(
                    "{dtype} on the CPU computes correctly but several times slower than f32 \
                     (no half-precision arithmetic there: values are converted per operation); \
                     f32 is the CPU's fast path"
                )
            });
        }
        Ok(())
    }
}

/// Whether a CUDA GPU of compute capability `cc` has the arithmetic of `dtype`.
fn cuda_dtype_support(dtype: DType, cc: (u32, u32)) -> std::result::Result<(), String> {
    let (major, minor) = cc;
    match dtype {
        DType::BF16 if major < 8 => Err(format!(
            "bf16 needs compute capability 8.0 (Ampere) or newer and this GPU has {major}.{minor}: \
             use `--dtype f16` or f32"
        )),
        DType::F16 if (major, minor) < (5, 3) => Err(format!(
            "f16 arithmetic needs compute capability 5.3 or newer and this GPU has {major}.{minor}: \
             use f32"
        )),
        _ => Ok(()),
    }
}

/// Whether kernels built for compute capability `built_for` (`CUDA_COMPUTE_CAP` at build
/// time, e.g. 90; `None`: detected then, unknown now) run on a GPU of capability `cc`:
/// the kernels are PTX for that capability, which the driver compiles for the same or a
/// newer GPU only.
fn cuda_kernels_fit(built_for: Option<u32>, cc: (u32, u32)) -> std::result::Result<(), String> {
    let (major, minor) = cc;
    match built_for {
        Some(built) if built > major * 10 + minor => Err(format!(
            "this build's CUDA kernels are for compute capability {}.{} (CUDA_COMPUTE_CAP={built}) \
             and this GPU has {major}.{minor}: rebuild with `CUDA_COMPUTE_CAP={major}{minor}`",
            built / 10,
            built % 10
        )),
        _ => Ok(()),
    }
}

/// `CUDA_COMPUTE_CAP` as the build saw it (candle-kernels builds for it), digits only.
fn cuda_built_for() -> Option<u32> {
    let digits: String = option_env!("CUDA_COMPUTE_CAP")?
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(feature = "cuda")]
fn cuda_compute_capability(device: &Device) -> Option<(u32, u32)> {
    let cuda = device.as_cuda_device().ok()?;
    let (major, minor) = cuda.cuda_stream().context().compute_capability().ok()?;
    Some((u32::try_from(major).ok()?, u32::try_from(minor).ok()?))
}

#[cfg(not(feature = "cuda"))]
fn cuda_compute_capability(_: &Device) -> Option<(u32, u32)> {
    None
}

/// A small computation in `dtype` on `device` (2 * 1 + 1 over four elements, summed in
/// f32): the kernels load and compute there, or why not. A GPU whose driver or
/// architecture does not take this build's kernels fails here, on opening, and not in
/// the middle of a model.
fn probe(device: &Device, dtype: DType) -> std::result::Result<(), String> {
    let run = || -> candle_core::Result<f32> {
        candle_core::Tensor::ones(4, dtype.to_candle(), device)?
            .affine(2.0, 1.0)?
            .to_dtype(candle_core::DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()
    };
    match run() {
        Ok(12.0) => Ok(()),
        Ok(v) => Err(format!(
            "a test computation in {dtype} gave {v} instead of 12"
        )),
        Err(e) => Err(kernel_failure(&first_line(&e.to_string()))),
    }
}

/// What a failed kernel load means, from the driver's error code.
fn kernel_failure(message: &str) -> String {
    if message.contains("UNSUPPORTED_PTX_VERSION") {
        format!(
            "{message}: the driver is older than the CUDA toolkit this build's kernels were \
             made with; update the driver, or build with the toolkit version `nvidia-smi` shows"
        )
    } else if message.contains("NO_BINARY_FOR_GPU") || message.contains("INVALID_PTX") {
        format!(
            "{message}: this build's kernels are not for this GPU; rebuild with \
             `CUDA_COMPUTE_CAP` set to its compute capability (`nvidia-smi --query-gpu=compute_cap --format=csv`)"
        )
    } else {
        message.to_string()
    }
}

impl DeviceSpec {
    /// The backend this spec asks for (`None` for `auto`).
    pub fn backend(&self) -> Option<Backend> {
        match self {
            DeviceSpec::Cpu => Some(Backend::Cpu),
            DeviceSpec::Cuda(_) => Some(Backend::Cuda),
            DeviceSpec::Metal(_) => Some(Backend::Metal),
            DeviceSpec::Auto => None,
        }
    }

    /// Open the device. `auto` picks CUDA, then Metal, then CPU, whichever is compiled
    /// in and present first.
    pub fn resolve(&self) -> Result<ResolvedDevice> {
        match *self {
            DeviceSpec::Cpu => Ok(ResolvedDevice::new(Device::Cpu, Backend::Cpu, "cpu".into())),
            DeviceSpec::Cuda(n) => {
                if !backend_compiled(Backend::Cuda) {
                    return Err(Error::BackendNotCompiled {
                        backend: Backend::Cuda,
                        feature: "cuda",
                    });
                }
                let unavailable = |reason: String| Error::DeviceUnavailable {
                    device: self.to_string(),
                    reason,
                };
                let device =
                    Device::new_cuda(n).map_err(|e| unavailable(first_line(&e.to_string())))?;
                let resolved = ResolvedDevice {
                    compute_capability: cuda_compute_capability(&device),
                    ..ResolvedDevice::new(device, Backend::Cuda, self.to_string())
                };
                if let Some(cc) = resolved.compute_capability {
                    cuda_kernels_fit(cuda_built_for(), cc).map_err(unavailable)?;
                }
                probe(&resolved.device, DType::F32).map_err(unavailable)?;
                Ok(resolved)
            }
            DeviceSpec::Metal(n) => {
                if !backend_compiled(Backend::Metal) {
                    return Err(Error::BackendNotCompiled {
                        backend: Backend::Metal,
                        feature: "metal",
                    });
                }
                let unavailable = |reason: String| Error::DeviceUnavailable {
                    device: self.to_string(),
                    reason,
                };
                let device =
                    Device::new_metal(n).map_err(|e| unavailable(first_line(&e.to_string())))?;
                probe(&device, DType::F32).map_err(unavailable)?;
                Ok(ResolvedDevice::new(
                    device,
                    Backend::Metal,
                    self.to_string(),
                ))
            }
            DeviceSpec::Auto => {
                let mut passed_over = Vec::new();
                for spec in [DeviceSpec::Cuda(0), DeviceSpec::Metal(0)] {
                    let backend = spec.backend().expect("concrete spec");
                    if backend_compiled(backend) {
                        match spec.resolve() {
                            Ok(mut d) => {
                                d.passed_over = passed_over;
                                return Ok(d);
                            }
                            Err(e) => {
                                // Not silent: `auto` says what it passed over and why.
                                tracing::warn!("--device auto: not using {spec}: {e}");
                                passed_over.push(format!("{spec}: {e}"));
                            }
                        }
                    }
                }
                let mut cpu = DeviceSpec::Cpu.resolve()?;
                cpu.passed_over = passed_over;
                Ok(cpu)
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// Floating-point precision of the weights and activations.
///
/// ```
/// use skillset_runtime::DType;
///
/// assert_eq!("bfloat16".parse::<DType>().unwrap(), DType::BF16);
/// assert!("f8".parse::<DType>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DType {
    #[default]
    F32,
    F16,
    BF16,
}

impl DType {
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        }
    }

    pub fn to_candle(self) -> candle_core::DType {
        match self {
            DType::F32 => candle_core::DType::F32,
            DType::F16 => candle_core::DType::F16,
            DType::BF16 => candle_core::DType::BF16,
        }
    }
}

impl FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "float32" | "fp32" => Ok(DType::F32),
            "f16" | "float16" | "fp16" | "half" => Ok(DType::F16),
            "bf16" | "bfloat16" => Ok(DType::BF16),
            _ => Err(Error::InvalidOption(format!(
                "unknown dtype `{s}`: expected `f32`, `f16` or `bf16`"
            ))),
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert_eq!(
            "metal:1".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::Metal(1)
        );
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("cpu:1".parse::<DeviceSpec>().is_err());
        assert_eq!("bf16".parse::<DType>().unwrap(), DType::BF16);
        assert!("f8".parse::<DType>().is_err());
    }

    #[test]
    fn cuda_dtypes_follow_the_compute_capability() {
        // H100 (9.0), A100 (8.0): every dtype.
        for cc in [(9, 0), (8, 0)] {
            for dtype in [DType::F32, DType::F16, DType::BF16] {
                assert!(cuda_dtype_support(dtype, cc).is_ok(), "{dtype} on {cc:?}");
            }
        }
        // T4 (7.5): no bf16, and the error says what to use instead.
        let err = cuda_dtype_support(DType::BF16, (7, 5)).unwrap_err();
        assert!(
            err.contains("8.0") && err.contains("7.5") && err.contains("f16"),
            "{err}"
        );
        assert!(cuda_dtype_support(DType::F16, (7, 5)).is_ok());
        // Maxwell 5.2: no f16 arithmetic.
        assert!(cuda_dtype_support(DType::F16, (5, 2)).is_err());
        assert!(cuda_dtype_support(DType::F16, (5, 3)).is_ok());
        assert!(cuda_dtype_support(DType::F32, (5, 2)).is_ok());
    }

    #[test]
    fn kernels_built_for_a_newer_gpu_name_the_rebuild() {
        // sm_90 kernels (what scripts/build-cuda.sh makes): H100/H200 and newer only.
        assert!(cuda_kernels_fit(Some(90), (9, 0)).is_ok());
        assert!(cuda_kernels_fit(Some(90), (10, 0)).is_ok());
        let err = cuda_kernels_fit(Some(90), (8, 6)).unwrap_err();
        assert!(
            err.contains("9.0") && err.contains("8.6") && err.contains("CUDA_COMPUTE_CAP=86"),
            "{err}"
        );
        assert!(cuda_kernels_fit(Some(80), (8, 6)).is_ok());
        // Detected at build time: not known here, not refused.
        assert!(cuda_kernels_fit(None, (7, 0)).is_ok());
    }

    #[test]
    fn driver_errors_of_kernel_loads_say_what_to_do() {
        let m = kernel_failure("DriverError(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, \"the provided PTX was compiled with an unsupported toolchain.\")");
        assert!(m.contains("driver is older"), "{m}");
        let m = kernel_failure(
            "DriverError(CUDA_ERROR_NO_BINARY_FOR_GPU, \"no kernel image is available\")",
        );
        assert!(m.contains("CUDA_COMPUTE_CAP"), "{m}");
        assert_eq!(kernel_failure("something else"), "something else");
    }

    #[test]
    fn the_cpu_runs_every_dtype() {
        let cpu = DeviceSpec::Cpu.resolve().unwrap();
        assert_eq!(cpu.compute_capability, None);
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            cpu.check_dtype(dtype).unwrap();
            probe(&cpu.device, dtype).unwrap();
        }
    }

    #[test]
    fn auto_falls_back_to_cpu_and_missing_backends_name_the_feature() {
        let d = DeviceSpec::Auto.resolve().unwrap();
        if !backend_compiled(Backend::Cuda) && !backend_compiled(Backend::Metal) {
            assert_eq!(d.name, "cpu");
            assert!(d.passed_over.is_empty(), "{:?}", d.passed_over);
            let err = DeviceSpec::Cuda(0).resolve().unwrap_err().to_string();
            assert_eq!(
                err,
                "the cuda backend is not compiled into this build: rebuild with `--features cuda`"
            );
            let err = DeviceSpec::Metal(0).resolve().unwrap_err().to_string();
            assert!(err.contains("--features metal"), "{err}");
        }
    }
}
