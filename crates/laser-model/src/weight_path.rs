//! The path builder every family names its weights through (candle's `VarBuilder::pp`). A family
//! writes each tensor name once, while it builds its blocks, and writing it records the tensor's
//! HF shape and, for an editable matrix, its kind: the tensors the loader checks, the matrices a
//! search may edit and the names the forward pass reads all come from that one call, so they
//! cannot disagree.

use std::cell::RefCell;
use std::fmt::Display;

use burn::tensor::Tensor;

use crate::layers::{Params, layer_norm};
use crate::matrix::{MatrixInfo, MatrixKind};

/// Every tensor an architecture reads with its HF shape, the tensors some checkpoints carry and
/// it reads when present, and the editable matrices among them in layer order.
#[derive(Debug, Clone, Default)]
pub(crate) struct WeightSchema {
    tensors: Vec<(String, Vec<usize>)>,
    optional: Vec<(String, usize)>,
    editable: Vec<MatrixInfo>,
}

impl WeightSchema {
    /// Runs `build` on the root path and returns what it named, beside what it built (the
    /// family's block handles).
    pub(crate) fn build<T>(build: impl FnOnce(&WeightPath<'_>) -> T) -> (Self, T) {
        let schema = RefCell::new(Self::default());
        let built = build(&WeightPath { schema: &schema, prefix: String::new(), layer: None });
        (schema.into_inner(), built)
    }

    /// Every tensor the forward pass reads, with its HF shape.
    pub(crate) fn tensors(&self) -> &[(String, Vec<usize>)] {
        &self.tensors
    }

    /// Tensors read when a checkpoint has them: (name, columns); any number of rows ≥ 1.
    pub(crate) fn optional(&self) -> &[(String, usize)] {
        &self.optional
    }

    /// The editable matrices (DESIGN.md's table), in layer order.
    pub(crate) fn editable(&self) -> &[MatrixInfo] {
        &self.editable
    }
}

/// A dotted name prefix being built (`model` → `model.layers.3` → `model.layers.3.self_attn`),
/// recording into its schema every tensor named under it.
#[derive(Debug, Clone)]
pub(crate) struct WeightPath<'s> {
    schema: &'s RefCell<WeightSchema>,
    prefix: String,
    /// The block this path is inside (set by [`WeightPath::layer`]).
    layer: Option<usize>,
}

impl WeightPath<'_> {
    /// The path one component further down.
    pub(crate) fn pp(&self, part: impl Display) -> Self {
        let prefix = if self.prefix.is_empty() {
            part.to_string()
        } else {
            format!("{}.{part}", self.prefix)
        };
        Self { schema: self.schema, prefix, layer: self.layer }
    }

    /// Block `l` (`….{l}`): the matrices named under it are editable at layer `l`.
    pub(crate) fn layer(&self, l: usize) -> Self {
        Self { layer: Some(l), ..self.pp(l) }
    }

    /// Tensor `leaf` under this path, of HF shape `shape`.
    pub(crate) fn tensor(&self, leaf: &str, shape: &[usize]) -> String {
        let name = self.pp(leaf).prefix;
        self.schema.borrow_mut().tensors.push((name.clone(), shape.to_vec()));
        name
    }

    /// Tensor `leaf` that some checkpoints carry, `[n, cols]` for any n ≥ 1.
    pub(crate) fn optional_rows(&self, leaf: &str, cols: usize) -> String {
        let name = self.pp(leaf).prefix;
        self.schema.borrow_mut().optional.push((name.clone(), cols));
        name
    }

    /// Editable matrix `leaf` of kind `kind` and HF shape `shape`.
    ///
    /// # Panics
    /// Outside a block ([`WeightPath::layer`]): a family-definition error, caught by every
    /// family's tests.
    pub(crate) fn matrix(&self, leaf: &str, kind: MatrixKind, shape: [usize; 2]) -> String {
        let name = self.tensor(leaf, &shape);
        let layer = self.layer.expect("editable matrices are named inside a block");
        self.schema.borrow_mut().editable.push(MatrixInfo {
            name: name.clone(),
            layer,
            kind,
            shape,
        });
        name
    }

    /// An HF `nn.Linear` at this path: `weight` `[out, in]` (editable as `kind` when given) and,
    /// when `bias`, `bias` `[out]`.
    pub(crate) fn linear(&self, shape: [usize; 2], kind: Option<MatrixKind>, bias: bool) -> Linear {
        let weight = match kind {
            Some(kind) => self.matrix("weight", kind, shape),
            None => self.tensor("weight", &shape),
        };
        Linear { weight, bias: bias.then(|| self.tensor("bias", &[shape[0]])) }
    }

    /// A GPT-2 `Conv1D` at this path: `weight` stored `[in, out]` (editable as `kind`) and
    /// `bias` `[out]`.
    pub(crate) fn conv1d(&self, shape: [usize; 2], kind: MatrixKind) -> Conv1d {
        Conv1d {
            weight: self.matrix("weight", kind, shape),
            bias: self.tensor("bias", &[shape[1]]),
        }
    }

    /// A LayerNorm at this path: `weight` and `bias`, `[d]` each.
    pub(crate) fn layer_norm(&self, d: usize) -> LayerNorm {
        LayerNorm { weight: self.tensor("weight", &[d]), bias: self.tensor("bias", &[d]) }
    }
}

/// The names of an `nn.Linear`'s tensors.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    pub(crate) weight: String,
    pub(crate) bias: Option<String>,
}

impl Linear {
    /// # Shapes
    /// `x: [B, T, in]` → `[B, T, out]`.
    pub(crate) fn forward(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        p.linear(x, &self.weight, self.bias.as_deref().map(|b| p.vec3(b)))
    }
}

/// The names of a GPT-2 `Conv1D`'s tensors.
#[derive(Debug, Clone)]
pub(crate) struct Conv1d {
    pub(crate) weight: String,
    pub(crate) bias: String,
}

impl Conv1d {
    /// # Shapes
    /// `x: [B, T, in]` → `[B, T, out]`.
    pub(crate) fn forward(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        p.conv1d(x, &self.weight, p.vec3(&self.bias))
    }
}

/// The names of a LayerNorm's tensors.
#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    pub(crate) weight: String,
    pub(crate) bias: String,
}

impl LayerNorm {
    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    pub(crate) fn forward(&self, p: &Params, x: Tensor<3>, eps: f64) -> Tensor<3> {
        layer_norm(x, p.vec3(&self.weight), p.vec3(&self.bias), eps)
    }
}
