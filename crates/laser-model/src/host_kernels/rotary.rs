//! Rotary position embeddings in one pass over `[B, H, T, hd]`, parallel over (row, head),
//! reading `x` in place (heads split by a `swap_dims` included).
//! burn's version is a matmul with a ±1 permutation matrix, two products with the tables, a sum
//! and, for partial rotation, a slice and a concatenation: half the main thread's time in a
//! profile of the forward pass after SiLU and attention were fused.

use rayon::prelude::*;

use super::{PARALLEL_MIN, Rows4, flex_f32, from_vec, row_major, zeroed};
use burn::tensor::Tensor;

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
    let [_, heads, t, hd] = dims;
    if rot == 0 || rot > hd || !rot.is_multiple_of(2) {
        return None;
    }
    let contiguous;
    let xs = match Rows4::of(&flex) {
        Some(view) => view,
        None => {
            contiguous = flex.to_contiguous();
            Rows4::of(&contiguous)?
        }
    };
    let (cos, sin) = (flex_f32(tables.0)?, flex_f32(tables.1)?);
    let (cos, sin) = (row_major(&cos), row_major(&sin));
    let half = rot / 2;
    let mut out = zeroed(dims.iter().product());
    let block = t * hd;
    let kernel = |(row, o): (usize, &mut [f32])| {
        for ti in 0..t {
            let p = position(row, ti);
            let (c, s) = (&cos[p * rot..][..rot], &sin[p * rot..][..rot]);
            let (o, x) = (&mut o[ti * hd..][..hd], xs.row(row / heads, row % heads, ti));
            if interleaved {
                for i in 0..half {
                    let (a, b) = (x[2 * i], x[2 * i + 1]);
                    o[2 * i] = a * c[2 * i] - b * s[2 * i];
                    o[2 * i + 1] = b * c[2 * i + 1] + a * s[2 * i + 1];
                }
            } else {
                for j in 0..half {
                    let (a, b) = (x[j], x[j + half]);
                    o[j] = a * c[j] - b * s[j];
                    o[j + half] = b * c[j + half] + a * s[j + half];
                }
            }
            o[rot..].copy_from_slice(&x[rot..]);
        }
    };
    if out.len() >= PARALLEL_MIN {
        out.par_chunks_mut(block).enumerate().for_each(kernel);
    } else {
        out.chunks_mut(block).enumerate().for_each(kernel);
    }
    Some(from_vec(out, dims))
}
