//! Fused inference kernels on the flex backend's own buffers: SiLU·up, GELU-tanh·up, RMSNorm,
//! rotary embeddings, masked attention and the scoring of target tokens; and the linear layers'
//! products in blocks that bound faer's per-thread buffers.
//!
//! Built from burn ops, these steps ran as many single-threaded passes over the activations with
//! libm's scalar `expf` (a profile of the forward pass: SiLU 28% of the main thread, attention
//! 28%, `docs/BENCHMARKS.md`). Here each is one pass, parallel over rows, with an `exp` the
//! compiler vectorises. They apply only to plain (non-autodiff) f32 flex tensors; every caller
//! keeps the burn path for the gradient pass and the other backends.

mod attention;
mod exp;
mod gelu;
mod norm;
mod product;
mod rotary;
mod scoring;

use std::borrow::Cow;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

pub(crate) use attention::{AttentionShape, attention, attention_backward, attention_forward};
pub(crate) use exp::exp_slice;
pub(crate) use gelu::{
    CUBIC as GELU_TANH_CUBIC, SQRT_2_OVER_PI, gelu_tanh_mul, gelu_tanh_mul_backward,
    gelu_tanh_mul_values,
};
pub(crate) use norm::{rms_norm, rms_norm_backward, rms_norm_values};
pub(crate) use product::product_in_blocks;
pub(crate) use rotary::{RotaryTables, rotary, rotary_values};
pub(crate) use scoring::{RowLogSumExp, target_log_probs};

/// Rows below this many elements run on the calling thread (rayon's split costs more).
const PARALLEL_MIN: usize = 1 << 15;

/// `n` zeros, written by the worker threads when `n` is large. A serial `vec![0.0; n]` is a
/// `memset` on the calling thread (the allocator keeps freed memory, so `calloc` must clear it)
/// while the workers wait: 0.6 s of the main thread in a profile of `laser eval`, for the
/// outputs of the matmuls and of SiLU·up.
pub(crate) fn zeroed(n: usize) -> Vec<f32> {
    if n < PARALLEL_MIN {
        return vec![0.0; n];
    }
    let mut v = Vec::with_capacity(n);
    v.par_extend(rayon::iter::repeat_n(0.0f32, n));
    v
}

/// A plain f32 flex tensor, or `None` (autodiff, another backend, another type).
fn flex_f32<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    let flex = t.clone().try_into_primitive::<Flex>().ok()?;
    (flex.dtype() == DType::F32).then_some(flex)
}

/// The numbers of a flex f32 tensor in row-major order of its logical shape (borrowed when its
/// buffer already is that).
pub(crate) fn row_major(t: &FlexTensor) -> Cow<'_, [f32]> {
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

/// A 4-D f32 flex tensor read in place when its last axis is contiguous — heads split by a
/// `swap_dims` are — so that a kernel needs no row-major copy first (copying the rotary input
/// was 0.2 s of `laser eval`'s main thread).
pub(crate) struct Rows4<'a> {
    data: &'a [f32],
    offset: usize,
    strides: [usize; 3],
    width: usize,
}

impl<'a> Rows4<'a> {
    /// The view of `t`, or `None` when its last axis is not contiguous or a stride is negative.
    pub(crate) fn of(t: &'a FlexTensor) -> Option<Self> {
        let layout = t.layout();
        let dims: [usize; 4] = layout.shape().to_vec().try_into().ok()?;
        let s = layout.strides();
        if s.len() != 4 || (s[3] != 1 && dims[3] > 1) || s.iter().any(|&x| x < 0) {
            return None;
        }
        let strides = [s[0] as usize, s[1] as usize, s[2] as usize];
        let data = t.storage::<f32>();
        let offset = layout.start_offset();
        // The last element must lie inside the buffer (rows are then safe to slice).
        let last = (0..3).map(|i| dims[i].saturating_sub(1) * strides[i]).sum::<usize>();
        if dims.contains(&0) || offset + last + dims[3] > data.len() {
            return None;
        }
        Some(Self { data, offset, strides, width: dims[3] })
    }

    /// The last-axis numbers at `[i, j, k, ..]`.
    pub(crate) fn row(&self, i: usize, j: usize, k: usize) -> &'a [f32] {
        let [a, b, c] = self.strides;
        &self.data[self.offset + i * a + j * b + k * c..][..self.width]
    }
}

/// A flex tensor of `shape` holding `data` (row-major).
fn from_vec<const D: usize>(data: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(data, shape)))
}

/// `silu(gate) · up` elementwise (`x·σ(x)·u`) for plain flex tensors; `None` otherwise.
pub(crate) fn silu_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    gated_mul(gate, up, silu_mul_values)
}

/// `values(gate, up)` for plain flex tensors of one shape; `None` otherwise.
fn gated_mul<const D: usize>(
    gate: &Tensor<D>,
    up: &Tensor<D>,
    values: fn(&[f32], &[f32]) -> Vec<f32>,
) -> Option<Tensor<D>> {
    let (g, u) = (flex_f32(gate)?, flex_f32(up)?);
    let dims = gate.dims();
    if up.dims() != dims {
        return None;
    }
    Some(from_vec(values(&row_major(&g), &row_major(&u)), dims))
}

/// Elements per parallel chunk of the elementwise kernels.
const CHUNK: usize = 1 << 14;

/// `g·σ(g)·u` for equal-length slices.
pub(crate) fn silu_mul_values(g: &[f32], u: &[f32]) -> Vec<f32> {
    sigmoid_gated_values(g, u, |x| x)
}

/// `g·σ(h(g))·u` for equal-length slices, as `g·u / (1 + e^(−h(g)))`: SiLU is `h(g) = g`, GELU's
/// tanh approximation `h(g) = 2·√(2/π)·(g + 0.044715·g³)` (`gelu.rs`).
fn sigmoid_gated_values(g: &[f32], u: &[f32], h: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    let mut out = zeroed(g.len());
    let kernel = |(o, (g, u)): (&mut [f32], (&[f32], &[f32]))| {
        // o ← e^(−h(g)), then o ← g·u / (1 + o): one vectorised pass each.
        for (o, &g) in o.iter_mut().zip(g) {
            *o = -h(g);
        }
        exp_slice(o);
        for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
            *o = g * u / (1.0 + *o);
        }
    };
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .for_each(kernel);
    } else {
        kernel((&mut out, (g, u)));
    }
    out
}

/// The gradients of `y = g·σ(g)·u` given `dy`: `∂/∂g = dy·u·σ(g)·(1 + g·(1 − σ(g)))` and
/// `∂/∂u = dy·g·σ(g)`, each only when asked for.
pub(crate) fn silu_mul_backward(
    g: &[f32],
    u: &[f32],
    dy: &[f32],
    want_g: bool,
    want_u: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    sigmoid_gated_backward(g, u, dy, (want_g, want_u), |x| x, |_| 1.0)
}

/// The gradients of `y = g·σ(h(g))·u` given `dy`, with `dh` the derivative of `h`: writing
/// `s = σ(h(g))`, `∂/∂g = dy·u·s·(1 + g·(1 − s)·h'(g))` and `∂/∂u = dy·g·s`, each only when
/// `want.0`, resp. `want.1` (SiLU's `h' = 1` multiplies exactly, so its figures do not move).
fn sigmoid_gated_backward(
    g: &[f32],
    u: &[f32],
    dy: &[f32],
    (want_g, want_u): (bool, bool),
    h: impl Fn(f32) -> f32 + Sync,
    dh: impl Fn(f32) -> f32 + Sync,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let n = g.len();
    let mut dg = zeroed(if want_g { n } else { 0 });
    let mut du = zeroed(if want_u { n } else { 0 });
    let kernel = |start: usize, dg: Option<&mut [f32]>, du: Option<&mut [f32]>| {
        let len = CHUNK.min(n - start);
        let (g, u, dy) = (&g[start..][..len], &u[start..][..len], &dy[start..][..len]);
        let mut sig: Vec<f32> = g.iter().map(|&x| -h(x)).collect();
        exp_slice(&mut sig);
        sig.iter_mut().for_each(|e| *e = 1.0 / (1.0 + *e));
        if let Some(dg) = dg {
            for (i, d) in dg.iter_mut().enumerate() {
                let (s, x) = (sig[i], g[i]);
                *d = dy[i] * u[i] * s * (1.0 + x * (1.0 - s) * dh(x));
            }
        }
        if let Some(du) = du {
            for (i, d) in du.iter_mut().enumerate() {
                *d = dy[i] * g[i] * sig[i];
            }
        }
    };
    let (mut dg_chunks, mut du_chunks) = (dg.chunks_mut(CHUNK), du.chunks_mut(CHUNK));
    let mut work: Vec<_> =
        (0..n.div_ceil(CHUNK)).map(|c| (c * CHUNK, dg_chunks.next(), du_chunks.next())).collect();
    if n >= PARALLEL_MIN {
        work.par_iter_mut().for_each(|(s, a, b)| kernel(*s, a.as_deref_mut(), b.as_deref_mut()));
    } else {
        work.iter_mut().for_each(|(s, a, b)| kernel(*s, a.as_deref_mut(), b.as_deref_mut()));
    }
    drop(work);
    (want_g.then_some(dg), want_u.then_some(du))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silu_mul_f64(g: f64, u: f64) -> f64 {
        g / (1.0 + (-g).exp()) * u
    }

    /// Values and both gradients against f64 and central finite differences, across the
    /// parallel threshold (so both code paths run).
    #[test]
    fn silu_mul_values_and_gradients_match_finite_differences() {
        for n in [7usize, PARALLEL_MIN + 3] {
            let g: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 6.0).collect();
            let u: Vec<f32> = (0..n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 20.0).collect();
            let dy: Vec<f32> = (0..n).map(|i| ((i * 29 % 89) as f32 - 44.0) / 30.0).collect();
            let y = silu_mul_values(&g, &u);
            let (dg, du) = silu_mul_backward(&g, &u, &dy, true, true);
            let (dg, du) = (dg.unwrap(), du.unwrap());
            let h = 1e-5;
            for i in 0..n {
                let (gi, ui, d) = (f64::from(g[i]), f64::from(u[i]), f64::from(dy[i]));
                let want_y = silu_mul_f64(gi, ui);
                let want_dg = d * (silu_mul_f64(gi + h, ui) - silu_mul_f64(gi - h, ui)) / (2.0 * h);
                let want_du = d * (silu_mul_f64(gi, ui + h) - silu_mul_f64(gi, ui - h)) / (2.0 * h);
                let close = |got: f32, want: f64| {
                    (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs())
                };
                assert!(close(y[i], want_y), "y[{i}] {} vs {want_y}", y[i]);
                assert!(close(dg[i], want_dg), "dg[{i}] {} vs {want_dg}", dg[i]);
                assert!(close(du[i], want_du), "du[{i}] {} vs {want_du}", du[i]);
            }
            let (only_g, none_u) = silu_mul_backward(&g, &u, &dy, true, false);
            assert_eq!(only_g.unwrap(), dg);
            assert!(none_u.is_none());
        }
    }

    #[test]
    fn zeroed_is_zeros_of_the_length_on_both_sides_of_the_threshold() {
        for n in [0usize, 5, PARALLEL_MIN, PARALLEL_MIN * 3 + 1] {
            let v = zeroed(n);
            assert_eq!(v.len(), n);
            assert!(v.iter().all(|&x| x == 0.0));
        }
    }

    /// Heads split by `swap_dims` (a strided view) read in place give the rows of the
    /// row-major copy, and rotary embeddings of either are bit for bit the same.
    #[test]
    fn strided_rows_read_the_same_numbers_as_a_contiguous_copy() {
        let dev = burn::tensor::Device::flex();
        let [b, t, h, hd] = [2usize, 5, 3, 8];
        let data: Vec<f32> = (0..b * t * h * hd).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = from_vec(data, [b, t, h, hd]).swap_dims(1, 2); // [B, H, T, hd], strided
        let contiguous = from_vec(x.to_data().try_to_vec::<f32>().unwrap(), [b, h, t, hd]);
        let (strided, plain) = (flex_f32(&x).unwrap(), flex_f32(&contiguous).unwrap());
        assert!(strided.as_slice::<f32>().is_none(), "the test needs a strided view");
        let (sv, pv) = (Rows4::of(&strided).unwrap(), Rows4::of(&plain).unwrap());
        for (bi, hi, ti) in
            (0..b).flat_map(|i| (0..h).flat_map(move |j| (0..t).map(move |k| (i, j, k))))
        {
            assert_eq!(sv.row(bi, hi, ti), pv.row(bi, hi, ti));
        }
        let table: Vec<f32> = (0..t * hd).map(|i| (i as f32 * 0.11).cos()).collect();
        let cos = Tensor::<2>::from_data(TensorData::new(table.clone(), [t, hd]), &dev);
        let sin = Tensor::<2>::from_data(
            TensorData::new(table.iter().map(|c| c * 0.5).collect::<Vec<_>>(), [t, hd]),
            &dev,
        );
        for interleaved in [false, true] {
            let a = rotary(&x, hd, interleaved, (&cos, &sin), |_, ti| ti).unwrap();
            let c = rotary(&contiguous, hd, interleaved, (&cos, &sin), |_, ti| ti).unwrap();
            assert_eq!(
                a.to_data().try_to_vec::<f32>().unwrap(),
                c.to_data().try_to_vec::<f32>().unwrap()
            );
        }
    }
}
