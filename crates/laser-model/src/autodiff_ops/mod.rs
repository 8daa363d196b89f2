//! Custom burn autodiff ops for the gradient pass on the flex backend: each runs its forward and
//! backward on the host (faer products, fused elementwise kernels) where burn's autodiff would
//! record and replay many small ops on its own gemm and scalar math.

mod attention;
mod gated;
mod linear;

use std::borrow::Cow;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;

pub(crate) use attention::attention;
pub(crate) use gated::silu_mul;
pub(crate) use linear::{TapTarget, linear};

/// The autodiff flavour of the flex backend that `Device::autodiff()` produces.
type FlexAutodiff = Autodiff<Flex, NoCheckpointing>;

fn dims2(t: &FlexTensor) -> [usize; 2] {
    t.layout().shape().dims::<2>()
}

/// The tensor's numbers as a contiguous row-major f32 slice (borrowed when already so).
fn contiguous_f32(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(
            t.to_contiguous()
                .as_slice::<f32>()
                .map(<[f32]>::to_vec)
                .unwrap_or_else(|| unreachable!("a contiguous f32 copy is readable as a slice")),
        ),
    }
}

/// A flex tensor of `shape` holding `data` (row-major).
fn flex_from_vec(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
}
