//! RMSNorm as one autodiff op: the host kernel's forward and a one-pass backward. burn's graph
//! for it (square, mean, add, square root, reciprocal, two broadcast products) and its backward
//! steps ran on the main thread of the gradient pass while the workers waited.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{FlexAutodiff, flex_from_vec, row_major};
use crate::host_kernels::{rms_norm_backward, rms_norm_values};

/// `x / sqrt(mean(x²) + ε) · w` over the last axis of f32 autodiff flex tensors `x: [B, T, d]`,
/// `w: [1, 1, d]`; `None` otherwise.
pub(crate) fn rms_norm(x: &Tensor<3>, w: &Tensor<3>, eps: f64) -> Option<Tensor<3>> {
    let dims = x.dims();
    if w.dims() != [1, 1, dims[2]] || dims[2] == 0 {
        return None;
    }
    let xa = x.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    let wa = w.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    if xa.primitive().dtype() != DType::F32 || wa.primitive().dtype() != DType::F32 {
        return None;
    }
    let eps = eps as f32;
    let out = rms_norm_values(&row_major(xa.primitive()), &row_major(wa.primitive()), eps);
    let out = flex_from_vec(out, &dims);
    let y =
        match RmsNorm.prepare::<NoCheckpointing>([xa.node(), wa.node()]).compute_bound().stateful()
        {
            OpsKind::Tracked(prep) => {
                prep.finish((xa.primitive().clone(), wa.primitive().clone(), eps), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
    Some(Tensor::from_primitive::<FlexAutodiff>(y))
}

#[derive(Debug)]
struct RmsNorm;

impl Backward<Flex, 2> for RmsNorm {
    /// `x`, `w` and ε.
    type State = (FlexTensor, FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_parent, w_parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w, eps) = ops.state;
        let (dx, dw) = rms_norm_backward(
            &row_major(&x),
            &row_major(&w),
            &row_major(&dy),
            eps,
            w_parent.is_some(),
        );
        if let Some(p) = x_parent {
            grads.register::<Flex>(p.id, flex_from_vec(dx, &x.layout().shape().to_vec()));
        }
        if let (Some(p), Some(dw)) = (w_parent, dw) {
            grads.register::<Flex>(p.id, flex_from_vec(dw, &w.layout().shape().to_vec()));
        }
    }
}
