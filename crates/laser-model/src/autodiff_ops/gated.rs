//! A gated MLP's `act(gate) · up` as one autodiff op, for the sigmoid-gated activations SiLU
//! (`g·σ(g)`) and GELU's tanh approximation (`g·σ(2z)`): the fused host kernel forward, and both
//! input gradients in one pass backward. burn's graph for SiLU was a sigmoid (scalar `expf`), two
//! products and their backward steps: a quarter of the gradient pass's main-thread time; for
//! GELU-tanh, a cube, `tanh`, four scalar steps and their backward steps (scalar `tanhf`,
//! `expm1f`).

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{FlexAutodiff, flex_from_vec, row_major};
use crate::host_kernels::{
    gelu_tanh_mul_backward, gelu_tanh_mul_values, silu_mul_backward, silu_mul_values,
};

/// The activation of a fused gated product.
#[derive(Debug, Clone, Copy)]
enum Gate {
    Silu,
    GeluTanh,
}

impl Gate {
    fn values(self, g: &[f32], u: &[f32]) -> Vec<f32> {
        match self {
            Gate::Silu => silu_mul_values(g, u),
            Gate::GeluTanh => gelu_tanh_mul_values(g, u),
        }
    }

    /// `(∂/∂gate, ∂/∂up)` given `dy`, each only when wanted.
    fn gradients(
        self,
        g: &[f32],
        u: &[f32],
        dy: &[f32],
        want: (bool, bool),
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
        match self {
            Gate::Silu => silu_mul_backward(g, u, dy, want.0, want.1),
            Gate::GeluTanh => gelu_tanh_mul_backward(g, u, dy, want.0, want.1),
        }
    }
}

/// `silu(gate) · up` for f32 autodiff flex tensors of one shape; `None` otherwise.
pub(crate) fn silu_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    gated_mul(gate, up, Gate::Silu)
}

/// `gelu_tanh(gate) · up` for f32 autodiff flex tensors of one shape; `None` otherwise.
pub(crate) fn gelu_tanh_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    gated_mul(gate, up, Gate::GeluTanh)
}

fn gated_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>, kind: Gate) -> Option<Tensor<D>> {
    let dims = gate.dims();
    if up.dims() != dims {
        return None;
    }
    let g = gate.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    let u = up.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    if g.primitive().dtype() != DType::F32 || u.primitive().dtype() != DType::F32 {
        return None;
    }
    let out = kind.values(&row_major(g.primitive()), &row_major(u.primitive()));
    let out = flex_from_vec(out, &dims);
    let op = GatedMul(kind);
    let y = match op.prepare::<NoCheckpointing>([g.node(), u.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((g.primitive().clone(), u.primitive().clone()), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<FlexAutodiff>(y))
}

#[derive(Debug)]
struct GatedMul(Gate);

impl Backward<Flex, 2> for GatedMul {
    /// The gate and up inputs.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [gate_parent, up_parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (g, u) = ops.state;
        let shape = g.layout().shape().to_vec();
        let (dg, du) = self.0.gradients(
            &row_major(&g),
            &row_major(&u),
            &row_major(&dy),
            (gate_parent.is_some(), up_parent.is_some()),
        );
        if let (Some(p), Some(dg)) = (gate_parent, dg) {
            grads.register::<Flex>(p.id, flex_from_vec(dg, &shape));
        }
        if let (Some(p), Some(du)) = (up_parent, du) {
            grads.register::<Flex>(p.id, flex_from_vec(du, &shape));
        }
    }
}
