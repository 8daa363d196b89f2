//! Matrix addressing: every editable weight matrix by HF tensor name and by (layer, kind).

use std::fmt;

/// The role of an editable matrix inside a transformer block (DESIGN.md's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatrixKind {
    /// Query projection.
    Q,
    /// Key projection.
    K,
    /// Value projection.
    V,
    /// Fused query/key/value projection (gpt2 `c_attn`, gpt_neox `query_key_value`, phi3
    /// `qkv_proj`).
    Qkv,
    /// Attention output projection.
    O,
    /// First MLP matrix (llama `gate_proj`).
    FcIn,
    /// llama's `up_proj`.
    FcUp,
    /// The gate and up projections fused in one matrix, gate rows first (Phi-3 `gate_up_proj`).
    FcGateUp,
    /// Last MLP matrix.
    FcOut,
}

impl MatrixKind {
    /// Every kind, in report order.
    pub const ALL: [MatrixKind; 9] = [
        Self::Q,
        Self::K,
        Self::V,
        Self::Qkv,
        Self::O,
        Self::FcIn,
        Self::FcUp,
        Self::FcGateUp,
        Self::FcOut,
    ];

    /// The stable name used by the CLI and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Q => "q",
            Self::K => "k",
            Self::V => "v",
            Self::Qkv => "qkv",
            Self::O => "o",
            Self::FcIn => "fc_in",
            Self::FcUp => "fc_up",
            Self::FcGateUp => "fc_gate_up",
            Self::FcOut => "fc_out",
        }
    }

    /// Parses [`MatrixKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for MatrixKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MatrixKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::from_name(s).ok_or_else(|| {
            let all: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
            format!("unknown matrix kind `{s}` (expected one of {})", all.join(", "))
        })
    }
}

/// One editable matrix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MatrixInfo {
    /// HF tensor name, e.g. `model.layers.3.mlp.down_proj.weight`.
    pub name: String,
    /// Block index.
    pub layer: usize,
    /// Role in the block.
    pub kind: MatrixKind,
    /// Shape as HF stores it (`[out, in]` for Linear, `[in, out]` for GPT-2's Conv1D).
    pub shape: [usize; 2],
}
