//! Weight gradients of linear layers without burn's backward matmul for `∂L/∂W`.
//!
//! For `Y = X Wᵀ` the weight gradient is `∂L/∂W = (∂L/∂Y)ᵀ X`. Instead of marking `W` as
//! requiring a gradient (burn's autodiff would then run that product on its own gemm, ~4× slower
//! than faer here), the gradient pass adds a zero "probe" tensor to each tapped layer's output,
//! `Y' = X Wᵀ + Z`, and asks autodiff for `∂L/∂Z = ∂L/∂Y`. The product with the saved input `X` is
//! then one faer matmul per layer, accumulated on the host across micro-batches. Autodiff still
//! propagates `∂L/∂X = ∂L/∂Y · W` through the network; only the weight-side product moves.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use burn::tensor::{Gradients, Tensor};
use faer::{MatMut, MatRef, Par};

use crate::error::{ModelError, Result};

/// One tapped use of a weight in the current micro-batch.
#[derive(Debug)]
struct Tap {
    name: String,
    /// The layer input `X` (`[N, in]`), detached from the graph.
    input: Tensor<2>,
    /// The zero probe added to the output (`[N, out]`); its gradient is `∂L/∂Y`.
    probe: Tensor<2>,
    /// `true` for `X Wᵀ` (`W: [out, in]`, HF Linear); `false` for `X W` (`W: [in, out]`, Conv1D).
    transposed: bool,
}

/// The weights whose gradients are taken through probes, and the probes of the current pass.
#[derive(Debug)]
pub(crate) struct WeightTaps {
    names: HashSet<String>,
    taps: Mutex<Vec<Tap>>,
}

impl WeightTaps {
    pub(crate) fn new(names: HashSet<String>) -> Self {
        Self { names, taps: Mutex::new(Vec::new()) }
    }

    pub(crate) fn covers(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// `y` plus a zero probe recorded for `name`; `x` is the (autodiff) layer input.
    pub(crate) fn tap(
        &self,
        name: &str,
        x: &Tensor<2>,
        y: Tensor<2>,
        transposed: bool,
    ) -> Tensor<2> {
        let probe = y.zeros_like().require_grad();
        let tap = Tap {
            name: name.to_owned(),
            input: x.clone().without_autodiff(),
            probe: probe.clone(),
            transposed,
        };
        self.taps.lock().unwrap_or_else(|e| e.into_inner()).push(tap);
        y + probe
    }

    /// Adds this micro-batch's `∂L/∂W` of every tapped use into `acc` (row-major, HF orientation,
    /// shapes from `shapes`), then forgets the taps.
    pub(crate) fn accumulate(
        &self,
        grads: &Gradients,
        shapes: &HashMap<String, Vec<usize>>,
        acc: &mut HashMap<String, Vec<f32>>,
    ) -> Result<()> {
        let taps = std::mem::take(&mut *self.taps.lock().unwrap_or_else(|e| e.into_inner()));
        for tap in taps {
            // A probe past every scored position has no path to the loss: zero contribution.
            let Some(dy) = tap.probe.grad(grads) else { continue };
            let [n, out] = dy.dims();
            let [_, d_in] = tap.input.dims();
            let dy = host(dy)?;
            let x = host(tap.input)?;
            let [r, c] = match shapes[&tap.name].as_slice() {
                [r, c] => [*r, *c],
                other => return Err(ModelError::Backend(format!("tapped {other:?} is not 2-D"))),
            };
            let dst = acc.entry(tap.name).or_insert_with(|| vec![0.0; r * c]);
            let dy = MatRef::from_row_major_slice(&dy, n, out);
            let x = MatRef::from_row_major_slice(&x, n, d_in);
            let (lhs, rhs) = if tap.transposed {
                (dy.transpose(), x) // [out, N] · [N, in]
            } else {
                (x.transpose(), dy) // [in, N] · [N, out]
            };
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(dst, r, c),
                faer::Accum::Add,
                lhs,
                rhs,
                1.0f32,
                Par::rayon(0),
            );
        }
        Ok(())
    }
}

fn host(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))
}
