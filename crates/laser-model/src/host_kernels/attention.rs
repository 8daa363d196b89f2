//! Masked scaled dot-product attention for short prompts: per (row, KV head), the scores of the
//! query heads sharing that KV head as one faer product, softmax in place, then one product with
//! the values; (row, KV head) pairs run in parallel.

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{exp_slice, flex_f32, from_vec, row_major};
use burn::tensor::Tensor;

/// `softmax(scale · q kᵀ [→ softcap] + mask) v` for plain flex tensors, as
/// [`crate::layers::attention`] computes it; `None` when an input is not one (the caller then
/// uses burn's ops).
///
/// # Shapes
/// `q: [B, H, Tq, hd]`, `k, v: [B, KV, Tk, hd]` with `KV | H`, `mask: [B, 1, Tq, Tk]`; returns
/// `[B, H, Tq, hd]` laid out as `[B, Tq, H, hd]` in memory, so that merging the heads is free.
pub(crate) fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    mask: &Tensor<4>,
    scale: f64,
    softcap: Option<f64>,
) -> Option<Tensor<4>> {
    let [b, h, tq, hd] = q.dims();
    let [_, kv, tk, _] = k.dims();
    if kv == 0
        || h % kv != 0
        || k.dims()[0] != b
        || v.dims() != k.dims()
        || mask.dims() != [b, 1, tq, tk]
    {
        return None;
    }
    let (qf, kf, vf, mf) = (flex_f32(q)?, flex_f32(k)?, flex_f32(v)?, flex_f32(mask)?);
    let (q, k, v, m) = (row_major(&qf), row_major(&kf), row_major(&vf), row_major(&mf));
    let rep = h / kv;
    let rows = rep * tq;
    let scale = scale as f32;
    let softcap = softcap.map(|c| c as f32);
    // One unit per (row, KV head): its `rep` query heads are consecutive in q, so their queries
    // form one [rep·Tq, hd] block.
    let units: Vec<Vec<f32>> = (0..b * kv)
        .into_par_iter()
        .map(|unit| {
            let (bi, g) = (unit / kv, unit % kv);
            let qs = &q[(bi * h + g * rep) * tq * hd..][..rows * hd];
            let ks = &k[(bi * kv + g) * tk * hd..][..tk * hd];
            let vs = &v[(bi * kv + g) * tk * hd..][..tk * hd];
            let mut scores = vec![0.0f32; rows * tk];
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(&mut scores, rows, tk),
                Accum::Replace,
                MatRef::from_row_major_slice(qs, rows, hd),
                MatRef::from_row_major_slice(ks, tk, hd).transpose(),
                scale,
                Par::Seq,
            );
            for (row, s) in scores.chunks_exact_mut(tk).enumerate() {
                let t = row % tq;
                if let Some(c) = softcap {
                    s.iter_mut().for_each(|x| *x = c * (*x / c).tanh());
                }
                let mask_row = &m[(bi * tq + t) * tk..][..tk];
                let mut max = f32::NEG_INFINITY;
                for (x, &mv) in s.iter_mut().zip(mask_row) {
                    *x += mv;
                    max = max.max(*x);
                }
                s.iter_mut().for_each(|x| *x -= max);
                exp_slice(s);
                let inv = 1.0 / s.iter().sum::<f32>();
                s.iter_mut().for_each(|x| *x *= inv);
            }
            let mut out = vec![0.0f32; rows * hd];
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(&mut out, rows, hd),
                Accum::Replace,
                MatRef::from_row_major_slice(&scores, rows, tk),
                MatRef::from_row_major_slice(vs, tk, hd),
                1.0f32,
                Par::Seq,
            );
            out
        })
        .collect();
    // Scatter into [B, Tq, H, hd]: head g·rep + r of query t.
    let mut data = vec![0.0f32; b * tq * h * hd];
    for (unit, out) in units.iter().enumerate() {
        let (bi, g) = (unit / kv, unit % kv);
        for (row, src) in out.chunks_exact(hd).enumerate() {
            let (r, t) = (row / tq, row % tq);
            let dst = ((bi * tq + t) * h + g * rep + r) * hd;
            data[dst..dst + hd].copy_from_slice(src);
        }
    }
    Some(from_vec(data, [b, tq, h, hd]).swap_dims(1, 2))
}
