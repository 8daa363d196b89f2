//! A linear layer as one burn autodiff op whose products run in faer on the host (flex backend).
//!
//! burn's own autodiff matmul would run both `Y = X Wᵀ` and the input gradient
//! `∂L/∂X = ∂L/∂Y · W` on burn-flex's gemm, several times slower than faer here
//! (`cargo bench --bench forward -- matmul`), and would hold an f32 widening of every bf16 weight
//! in the graph. This op reads `W` where inference reads it — the host view of the weight
//! ([`HostMatrix`], the backend's own buffer) — so the graph holds no copy of any weight, and when
//! the matrix is tapped its backward step also adds `∂L/∂W = (∂L/∂Y)ᵀ X` into the tap's host
//! accumulator ([`WeightTaps`]), so no output probe is needed either.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorData};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{FlexAutodiff, dims2, row_major};
use crate::layers::{HostMatrix, host_product};
use crate::taps::WeightTaps;

/// Where a tapped use of a weight sends its `∂L/∂W`.
#[derive(Debug, Clone)]
pub(crate) struct TapTarget<'a> {
    pub(crate) taps: &'a Arc<WeightTaps>,
    pub(crate) name: &'a str,
}

/// The output of [`linear`]: `y`, and whether it is part of the graph (its input was tracked).
#[derive(Debug)]
pub(crate) struct LinearOutput {
    pub(crate) y: Tensor<2>,
    pub(crate) tracked: bool,
}

/// `x Wᵀ` (`transposed`, HF `nn.Linear`, `W: [out, in]`) or `x W` (GPT-2 `Conv1D`,
/// `W: [in, out]`) for an autodiff `x: [N, in]` on the flex backend, with a faer backward.
///
/// Returns `None` when `x` is not an f32 autodiff tensor of the flex backend (other backends keep
/// burn's matmul). When `x` is untracked the result is a constant and the caller must take a
/// tapped matrix's gradient another way (`tracked == false`).
pub(crate) fn linear(
    x: &Tensor<2>,
    weight: &HostMatrix,
    transposed: bool,
    tap: Option<TapTarget<'_>>,
) -> Option<LinearOutput> {
    let x = x.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    if x.primitive().dtype() != DType::F32 {
        return None;
    }
    let [n, d_in] = dims2(x.primitive());
    let d_out = if transposed { weight.rows } else { weight.cols };
    let y = host_product(&row_major(x.primitive()), n, d_in, weight, transposed);
    let y = FlexTensor::from_data(TensorData::new(y, [n, d_out]));
    let (y, tracked) =
        match HostLinear.prepare::<NoCheckpointing>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let state = LinearState {
                    weight: weight.clone(),
                    transposed,
                    tap: tap.map(|t| (t.taps.clone(), t.name.to_owned(), x.primitive().clone())),
                };
                (prep.finish(state, y), true)
            }
            OpsKind::UnTracked(prep) => (prep.finish(y), false),
        };
    Some(LinearOutput { y: Tensor::from_primitive::<FlexAutodiff>(y), tracked })
}

/// What the backward step needs: the weight's host view and, for a tapped matrix, where to add
/// `∂L/∂W` and the layer input `X` to form it with.
#[derive(Debug, Clone)]
struct LinearState {
    weight: HostMatrix,
    transposed: bool,
    tap: Option<(Arc<WeightTaps>, String, FlexTensor)>,
}

#[derive(Debug)]
struct HostLinear;

impl Backward<Flex, 1> for HostLinear {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let [n, d_out] = dims2(&dy);
        let dy = row_major(&dy);
        let state = ops.state;
        if let Some((taps, name, x)) = &state.tap {
            let [_, d_in] = dims2(x);
            taps.add_weight_gradient(name, &dy, &row_major(x), n, d_out, d_in, state.transposed);
        }
        if let Some(parent) = parent {
            // ∂L/∂X = ∂L/∂Y · W for X Wᵀ, ∂L/∂Y · Wᵀ for X W.
            let d_in = if state.transposed { state.weight.cols } else { state.weight.rows };
            let dx = host_product(&dy, n, d_out, &state.weight, !state.transposed);
            grads
                .register::<Flex>(parent.id, FlexTensor::from_data(TensorData::new(dx, [n, d_in])));
        }
    }
}
