//! Custom burn autodiff ops for the gradient pass on the flex backend: each runs its forward and
//! backward on the host (faer products, fused elementwise kernels) where burn's autodiff would
//! record and replay many small ops on its own gemm and scalar math.

mod attention;
mod gated;
mod linear;
mod norm;
mod rotary;
mod target_log_prob;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;

use crate::host_kernels::row_major;

pub(crate) use attention::attention;
pub(crate) use gated::{gelu_tanh_mul, silu_mul};
pub(crate) use linear::{TapTarget, linear};
pub(crate) use norm::rms_norm;
pub(crate) use rotary::rotary;
pub(crate) use target_log_prob::target_log_probs;

/// The autodiff flavour of the flex backend that `Device::autodiff()` produces.
type FlexAutodiff = Autodiff<Flex, NoCheckpointing>;

fn dims2(t: &FlexTensor) -> [usize; 2] {
    t.layout().shape().dims::<2>()
}

/// A flex tensor of `shape` holding `data` (row-major).
fn flex_from_vec(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape.to_vec()))
}
