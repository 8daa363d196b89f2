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
