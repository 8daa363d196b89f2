//! Which tensor backend runs a model: burn's pure-Rust `flex` CPU backend by default, `ndarray`
//! and `wgpu` behind cargo features.

use burn::tensor::Device;

use crate::error::{ModelError, Result};

/// Which tensor backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// burn's pure-Rust `flex` CPU backend (default; ~1.8× faster than ndarray here).
    #[default]
    Flex,
    /// burn's `ndarray` CPU backend (cargo feature `ndarray`).
    Ndarray,
    /// GPU through wgpu (cargo feature `wgpu`).
    Wgpu,
}

impl Backend {
    /// Parses `flex`, `ndarray` or `wgpu`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "flex" => Some(Self::Flex),
            "ndarray" => Some(Self::Ndarray),
            "wgpu" => Some(Self::Wgpu),
            _ => None,
        }
    }

    /// The device of this backend, or an error naming the cargo feature it needs.
    pub fn device(self) -> Result<Device> {
        match self {
            Self::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            Self::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => Ok(Device::wgpu(Default::default())),
            #[allow(unreachable_patterns)]
            other => Err(ModelError::Unsupported(format!(
                "backend {other:?} is not compiled in; rebuild with `--features {}`",
                if other == Self::Ndarray { "ndarray" } else { "wgpu" }
            ))),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
        })
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::from_name(s)
            .ok_or_else(|| format!("unknown backend `{s}` (expected flex, ndarray or wgpu)"))
    }
}

/// Whether `device` runs on the host CPU (burn's `flex` or `ndarray` backend, also under autodiff).
///
/// The one place that decides it: CPU backends get host copies of the editable matrices for
/// faer's matmul, and a −∞ attention mask. burn's device enum has a variant per compiled feature,
/// so the check reads the variant's name, which does not depend on them.
/// Whether `device` is the flex backend's (whose buffers the host can read in place).
pub(crate) fn is_flex(device: &Device) -> bool {
    format!("{device:?}").contains("Flex(")
}

pub(crate) fn is_cpu(device: &Device) -> bool {
    let name = format!("{device:?}");
    name.contains("Flex(") || name.contains("NdArray(")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU fast paths depend on recognising the device by name; a renamed variant in burn
    /// would silently turn them off.
    #[test]
    fn flex_devices_are_cpu_devices_with_and_without_autodiff() {
        assert!(is_cpu(&Device::flex()));
        assert!(is_cpu(&Device::flex().autodiff()));
        assert!(is_cpu(&Backend::Flex.device().unwrap()));
    }
}
