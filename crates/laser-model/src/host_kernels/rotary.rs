//! Rotary position embeddings in one pass over `[B, H, T, hd]`, parallel over (row, head),
//! reading `x` in place (heads split by a `swap_dims` included). The rotation is linear, so the
//! gradient pass's backward is the same pass with the transposed rotation.
//! burn's version is a matmul with a ±1 permutation matrix, two products with the tables, a sum
//! and, for partial rotation, a slice and a concatenation: half the main thread's time in a
//! profile of the forward pass after SiLU and attention were fused.

use rayon::prelude::*;

use super::{PARALLEL_MIN, Rows4, flex_f32, from_vec, row_major, zeroed};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

/// The tables and layout of one rotary embedding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RotaryTables<'a> {
    /// `cos`, `[positions, rot]` row-major.
    pub(crate) cos: &'a [f32],
    /// `sin`, `[positions, rot]` row-major.
    pub(crate) sin: &'a [f32],
    /// Rotated dimensions of each head (the first `rot`; even).
    pub(crate) rot: usize,
    /// Pairs `2i ↔ 2i + 1` (GPT-J) instead of `j ↔ j + rot/2` (HF `rotate_half`).
    pub(crate) interleaved: bool,
}

/// Rotates the first `rot` dimensions of every head of a plain flex `x: [B, H, T, hd]`, token
/// (b, t) of head block `b·H + h` at table row `position(b·H + h, t)`; `None` when `x` is not
/// one. Pairs: `j ↔ j + rot/2` (HF `rotate_half`) or, `interleaved`, `2i ↔ 2i + 1` (GPT-J);
/// `tables` are `cos` and `sin`, `[positions, rot]` flex tensors (read in place).
pub(crate) fn rotary(
    x: &Tensor<4>,
    rot: usize,
    interleaved: bool,
    tables: (&Tensor<2>, &Tensor<2>),
    position: impl Fn(usize, usize) -> usize + Sync,
) -> Option<Tensor<4>> {
    let flex = flex_f32(x)?;
    let dims = x.dims();
    if rot == 0 || rot > dims[3] || !rot.is_multiple_of(2) {
        return None;
    }
    let (cos, sin) = (flex_f32(tables.0)?, flex_f32(tables.1)?);
    let (cos, sin) = (row_major(&cos), row_major(&sin));
    let tables = RotaryTables { cos: &cos, sin: &sin, rot, interleaved };
    Some(from_vec(rotary_values(&flex, tables, position, false)?, dims))
}

/// The rotation (or, `transpose`, its transpose: the backward of the rotation) of a flex f32
/// `x: [B, H, T, hd]` in any layout, row-major; `None` when `x` is not 4-D f32.
pub(crate) fn rotary_values(
    x: &FlexTensor,
    tables: RotaryTables<'_>,
    position: impl Fn(usize, usize) -> usize + Sync,
    transpose: bool,
) -> Option<Vec<f32>> {
    let dims: [usize; 4] = x.layout().shape().to_vec().try_into().ok()?;
    let [_, heads, t, hd] = dims;
    let RotaryTables { cos, sin, rot, interleaved } = tables;
    let contiguous;
    let xs = match Rows4::of(x) {
        Some(view) => view,
        None => {
            contiguous = x.to_contiguous();
            Rows4::of(&contiguous)?
        }
    };
    let half = rot / 2;
    // out = x·R with R's pairs (i, j): out_i = x_i·c_i − x_j·s_i, out_j = x_j·c_j + x_i·s_j;
    // Rᵀ: out_i = x_i·c_i + x_j·s_j, out_j = x_j·c_j − x_i·s_i.
    let pair = |o: &mut [f32], x: &[f32], c: &[f32], s: &[f32], i: usize, j: usize| {
        let (a, b) = (x[i], x[j]);
        if transpose {
            o[i] = a * c[i] + b * s[j];
            o[j] = b * c[j] - a * s[i];
        } else {
            o[i] = a * c[i] - b * s[i];
            o[j] = b * c[j] + a * s[j];
        }
    };
    let mut out = zeroed(dims.iter().product());
    let block = t * hd;
    let kernel = |(row, o): (usize, &mut [f32])| {
        for ti in 0..t {
            let p = position(row, ti);
            let (c, s) = (&cos[p * rot..][..rot], &sin[p * rot..][..rot]);
            let (o, x) = (&mut o[ti * hd..][..hd], xs.row(row / heads, row % heads, ti));
            if interleaved {
                (0..half).for_each(|i| pair(o, x, c, s, 2 * i, 2 * i + 1));
            } else {
                (0..half).for_each(|j| pair(o, x, c, s, j, j + half));
            }
            o[rot..].copy_from_slice(&x[rot..]);
        }
    };
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(block).enumerate().for_each(kernel);
    } else {
        out.chunks_mut(block).enumerate().for_each(kernel);
    }
    Some(out)
}
