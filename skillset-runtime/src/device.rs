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
            DeviceSpec::Cpu => Ok(ResolvedDevice {
                device: Device::Cpu,
                backend: Backend::Cpu,
                name: "cpu".into(),
            }),
            DeviceSpec::Cuda(n) => {
                if !backend_compiled(Backend::Cuda) {
                    return Err(Error::BackendNotCompiled {
                        backend: Backend::Cuda,
                        feature: "cuda",
                    });
                }
                let device = Device::new_cuda(n).map_err(|e| Error::DeviceUnavailable {
                    device: self.to_string(),
                    reason: first_line(&e.to_string()),
                })?;
                Ok(ResolvedDevice {
                    device,
                    backend: Backend::Cuda,
                    name: self.to_string(),
                })
            }
            DeviceSpec::Metal(n) => {
                if !backend_compiled(Backend::Metal) {
                    return Err(Error::BackendNotCompiled {
                        backend: Backend::Metal,
                        feature: "metal",
                    });
                }
                let device = Device::new_metal(n).map_err(|e| Error::DeviceUnavailable {
                    device: self.to_string(),
                    reason: first_line(&e.to_string()),
                })?;
                Ok(ResolvedDevice {
                    device,
                    backend: Backend::Metal,
                    name: self.to_string(),
                })
            }
            DeviceSpec::Auto => {
                for spec in [DeviceSpec::Cuda(0), DeviceSpec::Metal(0)] {
                    let backend = spec.backend().expect("concrete spec");
                    if backend_compiled(backend) {
                        if let Ok(d) = spec.resolve() {
                            return Ok(d);
                        }
                    }
                }
                DeviceSpec::Cpu.resolve()
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
    fn auto_falls_back_to_cpu_and_missing_backends_name_the_feature() {
        let d = DeviceSpec::Auto.resolve().unwrap();
        if !backend_compiled(Backend::Cuda) && !backend_compiled(Backend::Metal) {
            assert_eq!(d.name, "cpu");
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
