//! Choosing the libtorch device from a command-line value.

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, Result};
use tch::Device;

/// A device request: `auto` (CUDA when available, else CPU), `cpu` or `cuda`
/// (`cuda:N` for the N-th GPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match text.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(index)) => Ok(Self::Cuda(index)),
                _ => bail!("invalid device {text:?}: expected auto, cpu, cuda or cuda:N"),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(index) => write!(f, "cuda:{index}"),
        }
    }
}

impl DeviceChoice {
    /// Resolves the request, failing when CUDA is requested and libtorch sees
    /// no GPU (or fewer than requested).
    pub fn resolve(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => Ok(Device::cuda_if_available()),
            Self::Cuda(index) => {
                let count = tch::Cuda::device_count();
                if count <= 0 {
                    bail!(
                        "CUDA was requested but libtorch finds no GPU \
                         (tch::Cuda::is_available() is false); use --device cpu"
                    );
                }
                if index as i64 >= count {
                    bail!("CUDA device {index} was requested but only {count} GPU(s) are visible");
                }
                Ok(Device::Cuda(index))
            }
        }
    }
}
