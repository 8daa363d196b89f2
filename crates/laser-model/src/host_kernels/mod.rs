//! Fused inference kernels on the flex backend's own buffers: SiLU·up, rotary embeddings and
//! masked attention.
//!
//! Built from burn ops, these steps ran as many single-threaded passes over the activations with
//! libm's scalar `expf` (a profile of the forward pass: SiLU 28% of the main thread, attention
//! 28%, `docs/BENCHMARKS.md`). Here each is one pass, parallel over rows, with an `exp` the
//! compiler vectorises. They apply only to plain (non-autodiff) f32 flex tensors; every caller
//! keeps the burn path for the gradient pass and the other backends.

mod attention;
mod exp;
mod rotary;

use std::borrow::Cow;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

pub(crate) use attention::attention;
pub(crate) use exp::exp_slice;
pub(crate) use rotary::rotary;

/// Rows below this many elements run on the calling thread (rayon's split costs more).
const PARALLEL_MIN: usize = 1 << 15;

/// A plain f32 flex tensor, or `None` (autodiff, another backend, another type).
fn flex_f32<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let flex = t.clone().try_into_primitive::<Flex>().ok()?;
    (flex.dtype() == DType::F32).then_some(flex)
}

/// The numbers of a flex f32 tensor in row-major order of its logical shape.
fn row_major(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => {
            Cow::Owned(t.to_contiguous().as_slice::<f32>().map(<[f32]>::to_vec).unwrap_or_default())
        }
    }
}

/// A flex tensor of `shape` holding `data` (row-major).
fn from_vec<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(data, shape)))
}

/// `silu(gate) · up` elementwise (`x·σ(x)·u`) for plain flex tensors; `None` otherwise.
pub(crate) fn silu_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    let (g, u) = (flex_f32(gate)?, flex_f32(up)?);
    let dims = gate.dims();
    if up.dims() != dims {
        return None;
    }
    let (g, u) = (row_major(&g), row_major(&u));
    let mut out = vec![0.0f32; g.len()];
    let kernel = |(o, (g, u)): (&mut [f32], (&[f32], &[f32]))| {
        // o ← e^(−g), then o ← g·u / (1 + o): one vectorised pass each.
        for (o, &g) in o.iter_mut().zip(g) {
            *o = -g;
        }
        exp_slice(o);
        for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
            *o = g * u / (1.0 + *o);
        }
    };
    const CHUNK: usize = 1 << 14;
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(kernel);
    } else {
        kernel((&mut out, (&g, &u)));
    }
    Some(from_vec(out, dims))
}
