//! Weight gradients of linear layers as faer products accumulated on the host.
//!
//! For `Y = X Wᵀ` the weight gradient is `∂L/∂W = (∂L/∂Y)ᵀ X`. Weights are never marked as
//! requiring a gradient (burn's autodiff would run that product on its own gemm, several times
//! slower than faer here). On flex, the gradient pass's linear op (`autodiff_ops/linear.rs`) hands
//! `∂L/∂Y` and `X` to [`WeightTaps::add_weight_gradient`] from its backward step. Elsewhere (other
//! backends, or an untracked layer input) the pass adds a zero "probe" tensor to the layer's
//! output, `Y' = X Wᵀ + Z`, and asks autodiff for `∂L/∂Z = ∂L/∂Y` ([`WeightTaps::tap`], then
//! [`WeightTaps::accumulate`]). Either way the sums live here, across micro-batches.

use std::collections::HashMap;
use std::sync::Mutex;

use burn::tensor::{Gradients, Tensor};
use faer::{MatMut, MatRef, Par};

use crate::error::{ModelError, Result};

/// One probed use of a weight in the current micro-batch.
#[derive(Debug)]
struct Probe {
    name: String,
    /// The layer input `X` (`[N, in]`), detached from the graph.
    input: Tensor<2>,
    /// The zero probe added to the output (`[N, out]`); its gradient is `∂L/∂Y`.
    probe: Tensor<2>,
    /// `true` for `X Wᵀ` (`W: [out, in]`, HF Linear); `false` for `X W` (`W: [in, out]`, Conv1D).
    transposed: bool,
}

/// The weights whose gradients are taken here, their running sums, and the probes of the
/// current micro-batch.
#[derive(Debug)]
pub(crate) struct WeightTaps {
    /// Shape `[rows, cols]` (HF orientation) of every tapped weight.
    shapes: HashMap<String, [usize; 2]>,
    probes: Mutex<Vec<Probe>>,
    /// `∂L/∂W` summed so far, row-major; allocated on a weight's first contribution.
    sums: Mutex<HashMap<String, Vec<f32>>>,
}

impl WeightTaps {
    pub(crate) fn new(shapes: HashMap<String, [usize; 2]>) -> Self {
        Self { shapes, probes: Mutex::new(Vec::new()), sums: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn covers(&self, name: &str) -> bool {
        self.shapes.contains_key(name)
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
        let tap = Probe {
            name: name.to_owned(),
            input: x.clone().without_autodiff(),
            probe: probe.clone(),
            transposed,
        };
        lock(&self.probes).push(tap);
        y + probe
    }

    /// Adds `(∂L/∂Y)ᵀ X` (`transposed`, W `[out, in]`) or `Xᵀ ∂L/∂Y` (W `[in, out]`) to `name`'s
    /// sum; `dy: [n, d_out]` and `x: [n, d_in]` row-major.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_weight_gradient(
        &self,
        name: &str,
        dy: &[f32],
        x: &[f32],
        n: usize,
        d_out: usize,
        d_in: usize,
        transposed: bool,
    ) {
        let [r, c] = self.shapes[name];
        let mut sums = lock(&self.sums);
        let dst = sums.entry(name.to_owned()).or_insert_with(|| vec![0.0; r * c]);
        let dy = MatRef::from_row_major_slice(dy, n, d_out);
        let x = MatRef::from_row_major_slice(x, n, d_in);
        let (lhs, rhs) = if transposed {
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

    /// Adds this micro-batch's `∂L/∂W` of every probed use to the sums, then forgets the probes.
    pub(crate) fn accumulate(&self, grads: &Gradients) -> Result<()> {
        let probes = std::mem::take(&mut *lock(&self.probes));
        for p in probes {
            // A probe past every scored position has no path to the loss: zero contribution.
            let Some(dy) = p.probe.grad(grads) else { continue };
            let [n, d_out] = dy.dims();
            let [_, d_in] = p.input.dims();
            self.add_weight_gradient(
                &p.name,
                &host(dy)?,
                &host(p.input)?,
                n,
                d_out,
                d_in,
                p.transposed,
            );
        }
        Ok(())
    }

    /// The sums so far (a weight with no path to the loss is absent), leaving none behind.
    pub(crate) fn take_sums(&self) -> HashMap<String, Vec<f32>> {
        std::mem::take(&mut *lock(&self.sums))
    }
}

/// The lock even if another thread panicked holding it (that panic is reported where it happened).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn host(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))
}
