//! The storage type of the editable matrices (issue 15): f32, or bf16 to halve their memory —
//! computation and accumulation stay f32 (a matrix is widened where it is used: per product on
//! the host, per pass on the device).

use std::fmt;
use std::str::FromStr;

use burn::tensor::{FloatDType, Tensor};

use super::Model;
use crate::error::{ModelError, Result};
use crate::layers::HostMatrix;

/// How the editable matrices are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    /// 32-bit floats (the default; the oracle parity tests hold at 1e-4).
    #[default]
    F32,
    /// bfloat16: half the bytes, 8 bits of mantissa (relative rounding ≤ 2⁻⁹ per weight).
    Bf16,
}

impl WeightDtype {
    /// The stable name (`f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    pub(crate) fn float(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::Bf16 => FloatDType::BF16,
        }
    }
}

impl fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WeightDtype {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(format!("unknown weight type `{other}` (expected f32 or bf16)")),
        }
    }
}

impl Model {
    /// How the editable matrices are stored.
    pub fn matrix_dtype(&self) -> WeightDtype {
        self.matrix_dtype
    }

    /// Stores every editable matrix as `dtype` from now on (edits too), one matrix at a time.
    /// Embeddings, norms and biases stay f32. Only on an unedited model, and bf16 only on the
    /// flex backend (a GPU shader language may have no bf16).
    pub fn set_matrix_dtype(&mut self, dtype: WeightDtype) -> Result<()> {
        if dtype == self.matrix_dtype {
            return Ok(());
        }
        if !self.originals.is_empty() {
            return Err(ModelError::Input(
                "the weight type of an edited model cannot change; set it before editing".into(),
            ));
        }
        if dtype == WeightDtype::Bf16 && !super::backend::is_flex(&self.device) {
            return Err(ModelError::Unsupported("bf16 weights need the flex backend".into()));
        }
        let names: Vec<String> = self.matrices().iter().map(|m| m.name.clone()).collect();
        for name in names {
            let t = self.params.get_stored(&name).cast(dtype.float());
            if self.params.host.contains_key(&name) {
                self.params.host.insert(name.clone(), HostMatrix::of(&t)?);
            }
            self.params.map.insert(name, t);
        }
        // Every layer's weights are rounded now: states computed before are not theirs.
        for layer in 0..self.layer_changes.len() {
            self.touch_layer(layer);
        }
        self.matrix_dtype = dtype;
        Ok(())
    }

    /// A new matrix tensor of the model's storage type.
    pub(crate) fn stored(&self, t: Tensor<2>) -> Tensor<2> {
        t.cast(self.matrix_dtype.float())
    }
}
