//! `silu(gate) · up` as one autodiff op: the fused host kernel forward, and both input
//! gradients in one pass backward. burn's graph for it was a sigmoid (scalar `expf`), two
//! products and their backward steps: a quarter of the gradient pass's main-thread time.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{FlexAutodiff, flex_from_vec, row_major};
use crate::host_kernels::{silu_mul_backward, silu_mul_values};

/// `silu(gate) · up` for f32 autodiff flex tensors of one shape; `None` otherwise.
pub(crate) fn silu_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    let dims = gate.dims();
    if up.dims() != dims {
        return None;
    }
    let g = gate.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    let u = up.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    if g.primitive().dtype() != DType::F32 || u.primitive().dtype() != DType::F32 {
        return None;
    }
    let out = silu_mul_values(&row_major(g.primitive()), &row_major(u.primitive()));
    let out = flex_from_vec(out, &dims);
    let y =
        match SiluMul.prepare::<NoCheckpointing>([g.node(), u.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                prep.finish((g.primitive().clone(), u.primitive().clone()), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
    Some(Tensor::from_primitive::<FlexAutodiff>(y))
}

#[derive(Debug)]
struct SiluMul;

impl Backward<Flex, 2> for SiluMul {
    /// The gate and up inputs.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [gate_parent, up_parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (g, u) = ops.state;
        let shape = g.layout().shape().to_vec();
        let (dg, du) = silu_mul_backward(
            &row_major(&g),
            &row_major(&u),
            &row_major(&dy),
            gate_parent.is_some(),
            up_parent.is_some(),
        );
        if let (Some(p), Some(dg)) = (gate_parent, dg) {
            grads.register::<Flex>(p.id, flex_from_vec(dg, &shape));
        }
        if let (Some(p), Some(du)) = (up_parent, du) {
            grads.register::<Flex>(p.id, flex_from_vec(du, &shape));
        }
    }
}
