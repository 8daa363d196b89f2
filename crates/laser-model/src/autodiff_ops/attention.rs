//! Masked attention as one autodiff op: the host kernel's forward, keeping the softmax
//! probabilities, and a backward of four faer products per (row, KV head). burn's graph for it
//! (two matmuls on its own gemm, mask, softmax and their backward steps) was the largest part of
//! the gradient pass's backward after the linear layers and the gated MLP moved to the host.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{FlexAutodiff, flex_from_vec, row_major};
use crate::host_kernels::{AttentionShape, attention_backward, attention_forward};

/// `softmax(scale · q kᵀ + mask) v` for f32 autodiff flex tensors (the mask a constant);
/// `None` otherwise, and with soft-capping (Gemma 2 keeps burn's ops).
///
/// # Shapes
/// As [`crate::host_kernels::attention`].
pub(crate) fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    mask: &Tensor<4>,
    scale: f64,
    softcap: Option<f64>,
) -> Option<Tensor<4>> {
    if softcap.is_some() {
        return None;
    }
    let shape = AttentionShape::of(q.dims(), k.dims(), v.dims(), mask.dims())?;
    let [qa, ka, va, ma] =
        [q, k, v, mask].map(|t| t.clone().try_into_primitive::<FlexAutodiff>().ok());
    let (qa, ka, va, ma) = (qa?, ka?, va?, ma?);
    if [&qa, &ka, &va, &ma].iter().any(|t| t.primitive().dtype() != DType::F32) || ma.is_tracked() {
        return None;
    }
    let (qs, ks, vs) =
        (row_major(qa.primitive()), row_major(ka.primitive()), row_major(va.primitive()));
    let tracked = qa.is_tracked() || ka.is_tracked() || va.is_tracked();
    let (out, probs) = attention_forward(
        shape,
        (&qs, &ks, &vs, &row_major(ma.primitive())),
        scale as f32,
        None,
        tracked,
    );
    let s = shape;
    let out = flex_from_vec(out, &[s.batch, s.queries, s.heads, s.head_dim]).transpose(1, 2);
    let y = match Attention
        .prepare::<NoCheckpointing>([qa.node(), ka.node(), va.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = AttentionState {
                shape,
                scale: scale as f32,
                inputs: [qa.primitive().clone(), ka.primitive().clone(), va.primitive().clone()],
                probs: Arc::new(probs),
            };
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<FlexAutodiff>(y))
}

#[derive(Debug, Clone)]
struct AttentionState {
    shape: AttentionShape,
    scale: f32,
    /// q, k and v.
    inputs: [FlexTensor; 3],
    /// Per (row, KV head) unit, the softmax probabilities `[rep·Tq, Tk]`.
    probs: Arc<Vec<Vec<f32>>>,
}

#[derive(Debug)]
struct Attention;

impl Backward<Flex, 3> for Attention {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let st = ops.state;
        let [q, k, v] = &st.inputs;
        let (dq, dk, dv) = attention_backward(
            st.shape,
            (&row_major(q), &row_major(k), &row_major(v)),
            &st.probs,
            &row_major(&dy),
            st.scale,
        );
        for (parent, (grad, input)) in ops.parents.into_iter().zip([(dq, q), (dk, k), (dv, v)]) {
            if let Some(parent) = parent {
                let shape = input.layout().shape().to_vec();
                grads.register::<Flex>(parent.id, flex_from_vec(grad, &shape));
            }
        }
    }
}
