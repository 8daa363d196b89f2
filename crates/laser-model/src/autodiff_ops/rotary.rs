//! Rotary embeddings as one autodiff op: the host kernel forward and, the rotation being
//! linear, the transposed rotation backward. burn's graph for it (a matmul with a ±1 matrix on
//! burn's gemm, two products with the tables, a sum) and its backward ran on the main thread of
//! the gradient pass.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{FlexAutodiff, flex_from_vec, row_major};
use crate::host_kernels::{RotaryTables, rotary_values};

/// Rotates the first `rot` dimensions of every head of an f32 autodiff flex `x: [B, H, T, hd]`,
/// token (b, t) at table row `position(b, t)` of `cos` and `sin` (`[positions, rot]`); `None`
/// when an input is not such a tensor or a position lies outside the tables.
pub(crate) fn rotary(
    x: &Tensor<4>,
    (cos, sin): (&Tensor<2>, &Tensor<2>),
    rot: usize,
    interleaved: bool,
    position: impl Fn(usize, usize) -> usize,
) -> Option<Tensor<4>> {
    let dims = x.dims();
    let [b, _, t, hd] = dims;
    let table_rows = cos.dims()[0];
    let fits = rot > 0
        && rot <= hd
        && rot.is_multiple_of(2)
        && cos.dims() == [table_rows, rot]
        && sin.dims() == cos.dims();
    if !fits {
        return None;
    }
    let xa = x.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    let [ca, sa] = [cos, sin].map(|t| t.clone().try_into_primitive::<FlexAutodiff>().ok());
    let (ca, sa) = (ca?, sa?);
    if [&xa, &ca, &sa].iter().any(|t| t.primitive().dtype() != DType::F32) {
        return None;
    }
    // Kept for the backward; built only once the inputs are known to be this op's.
    let positions: Vec<usize> = (0..b)
        .flat_map(|bi| (0..t).map(move |ti| (bi, ti)))
        .map(|(bi, ti)| position(bi, ti))
        .collect();
    if positions.iter().any(|&p| p >= table_rows) {
        return None;
    }
    let state = RotaryState {
        tables: [ca.primitive().clone(), sa.primitive().clone()],
        rot,
        interleaved,
        positions: Arc::new(positions),
    };
    let out = state.apply(xa.primitive(), false)?;
    let out = flex_from_vec(out, &dims);
    let y = match Rotary.prepare::<NoCheckpointing>([xa.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<FlexAutodiff>(y))
}

#[derive(Debug, Clone)]
struct RotaryState {
    /// `cos` and `sin`.
    tables: [FlexTensor; 2],
    rot: usize,
    interleaved: bool,
    /// Table row of token (b, t) at `b·T + t`.
    positions: Arc<Vec<usize>>,
}

impl RotaryState {
    /// The rotation of `x: [B, H, T, hd]` (or its transpose), row-major.
    fn apply(&self, x: &FlexTensor, transpose: bool) -> Option<Vec<f32>> {
        let [_, heads, t, _] = x.layout().shape().dims::<4>();
        let [cos, sin] = &self.tables;
        let (cos, sin) = (row_major(cos), row_major(sin));
        let tables =
            RotaryTables { cos: &cos, sin: &sin, rot: self.rot, interleaved: self.interleaved };
        let positions = &self.positions;
        rotary_values(x, tables, |row, ti| positions[(row / heads) * t + ti], transpose)
    }
}

#[derive(Debug)]
struct Rotary;

impl Backward<Flex, 1> for Rotary {
    type State = RotaryState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let shape = dy.layout().shape().to_vec();
        let dx = ops
            .state
            .apply(&dy, true)
            .unwrap_or_else(|| unreachable!("the forward checked the shapes and the positions"));
        grads.register::<Flex>(parent.id, flex_from_vec(dx, &shape));
    }
}
