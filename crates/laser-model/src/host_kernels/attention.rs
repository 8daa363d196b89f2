//! Masked scaled dot-product attention for short prompts: per (row, KV head), the scores of the
//! query heads sharing that KV head as one faer product, softmax in place, then one product with
//! the values; (row, KV head) pairs run in parallel. The backward pass (for the gradient pass's
//! autodiff op) runs the same way from the kept probabilities.

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{exp_slice, flex_f32, from_vec, row_major, zeroed};
use burn::tensor::Tensor;

/// The sizes of one attention call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AttentionShape {
    pub(crate) batch: usize,
    pub(crate) heads: usize,
    pub(crate) kv_heads: usize,
    pub(crate) queries: usize,
    pub(crate) keys: usize,
    pub(crate) head_dim: usize,
}

impl AttentionShape {
    /// The shape of `q: [B, H, Tq, hd]`, `k, v: [B, KV, Tk, hd]` (`KV | H`) and
    /// `mask: [B, 1, Tq, Tk]`, or `None` when they do not fit together.
    pub(crate) fn of(
        q: [usize; 4],
        k: [usize; 4],
        v: [usize; 4],
        mask: [usize; 4],
    ) -> Option<Self> {
        let [batch, heads, queries, head_dim] = q;
        let [kb, kv_heads, keys, khd] = k;
        let fits = kv_heads > 0
            && heads % kv_heads == 0
            && kb == batch
            && khd == head_dim
            && v == k
            && mask == [batch, 1, queries, keys];
        fits.then_some(Self { batch, heads, kv_heads, queries, keys, head_dim })
    }

    fn rep(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// Query rows of one unit (the `rep` heads sharing a KV head).
    fn rows(&self) -> usize {
        self.rep() * self.queries
    }

    fn units(&self) -> usize {
        self.batch * self.kv_heads
    }

    /// Offsets of unit `u`'s query block in `[B, H, Tq, hd]` and key block in `[B, KV, Tk, hd]`.
    fn offsets(&self, u: usize) -> (usize, usize) {
        let (bi, g) = (u / self.kv_heads, u % self.kv_heads);
        let q = (bi * self.heads + g * self.rep()) * self.queries * self.head_dim;
        let k = (bi * self.kv_heads + g) * self.keys * self.head_dim;
        (q, k)
    }
}

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
    let shape = AttentionShape::of(q.dims(), k.dims(), v.dims(), mask.dims())?;
    let (qf, kf, vf, mf) = (flex_f32(q)?, flex_f32(k)?, flex_f32(v)?, flex_f32(mask)?);
    let (q, k, v, m) = (row_major(&qf), row_major(&kf), row_major(&vf), row_major(&mf));
    let (out, _) = attention_forward(shape, (&q, &k, &v, &m), scale as f32, softcap, false);
    let s = shape;
    Some(from_vec(out, [s.batch, s.queries, s.heads, s.head_dim]).swap_dims(1, 2))
}

/// The forward pass on row-major slices: the output in `[B, Tq, H, hd]` memory order and, when
/// `keep_probabilities`, each unit's softmax probabilities `[rep·Tq, Tk]` (for the backward).
pub(crate) fn attention_forward(
    shape: AttentionShape,
    (q, k, v, m): (&[f32], &[f32], &[f32], &[f32]),
    scale: f32,
    softcap: Option<f64>,
    keep_probabilities: bool,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let s = shape;
    let (rows, tk, hd, tq) = (s.rows(), s.keys, s.head_dim, s.queries);
    let softcap = softcap.map(|c| c as f32);
    let units: Vec<(Vec<f32>, Vec<f32>)> = (0..s.units())
        .into_par_iter()
        .map(|unit| {
            let bi = unit / s.kv_heads;
            let (qo, ko) = s.offsets(unit);
            let (qs, ks, vs) = (&q[qo..][..rows * hd], &k[ko..][..tk * hd], &v[ko..][..tk * hd]);
            let mut probs = vec![0.0f32; rows * tk];
            product(
                &mut probs,
                rows,
                tk,
                MatRef::from_row_major_slice(qs, rows, hd),
                rows_t(ks, tk, hd),
                scale,
            );
            for (row, p) in probs.chunks_exact_mut(tk).enumerate() {
                if let Some(c) = softcap {
                    p.iter_mut().for_each(|x| *x = c * (*x / c).tanh());
                }
                let mask_row = &m[(bi * tq + row % tq) * tk..][..tk];
                let mut max = f32::NEG_INFINITY;
                for (x, &mv) in p.iter_mut().zip(mask_row) {
                    *x += mv;
                    max = max.max(*x);
                }
                p.iter_mut().for_each(|x| *x -= max);
                exp_slice(p);
                let inv = 1.0 / p.iter().sum::<f32>();
                p.iter_mut().for_each(|x| *x *= inv);
            }
            let mut out = vec![0.0f32; rows * hd];
            let pm = MatRef::from_row_major_slice(&probs, rows, tk);
            product(&mut out, rows, hd, pm, MatRef::from_row_major_slice(vs, tk, hd), 1.0);
            (out, if keep_probabilities { probs } else { Vec::new() })
        })
        .collect();
    // Scatter into [B, Tq, H, hd]: head g·rep + r of query t.
    let mut data = zeroed(s.batch * tq * s.heads * hd);
    let mut kept = Vec::with_capacity(if keep_probabilities { units.len() } else { 0 });
    for (unit, (out, probs)) in units.into_iter().enumerate() {
        let (bi, g) = (unit / s.kv_heads, unit % s.kv_heads);
        for (row, src) in out.chunks_exact(hd).enumerate() {
            let (r, t) = (row / tq, row % tq);
            let dst = ((bi * tq + t) * s.heads + g * s.rep() + r) * hd;
            data[dst..dst + hd].copy_from_slice(src);
        }
        if keep_probabilities {
            kept.push(probs);
        }
    }
    (data, kept)
}

/// Gradients of the attention output (no softcap) with respect to q, k and v, given `d_out` in
/// `[B, H, Tq, hd]` row-major order and the forward's probabilities; results row-major in the
/// inputs' shapes.
pub(crate) fn attention_backward(
    shape: AttentionShape,
    (q, k, v): (&[f32], &[f32], &[f32]),
    probs: &[Vec<f32>],
    d_out: &[f32],
    scale: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let s = shape;
    let (rows, tk, hd) = (s.rows(), s.keys, s.head_dim);
    let units: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = (0..s.units())
        .into_par_iter()
        .map(|unit| {
            let (qo, ko) = s.offsets(unit);
            let (qs, ks, vs) = (&q[qo..][..rows * hd], &k[ko..][..tk * hd], &v[ko..][..tk * hd]);
            let dout = MatRef::from_row_major_slice(&d_out[qo..][..rows * hd], rows, hd);
            let p = &probs[unit];
            let pm = MatRef::from_row_major_slice(p, rows, tk);
            // ∂V = Pᵀ ∂O
            let mut dv = vec![0.0f32; tk * hd];
            product(&mut dv, tk, hd, pm.transpose(), dout, 1.0);
            // ∂P = ∂O Vᵀ, then ∂S = P ⊙ (∂P − rowsum(∂P ⊙ P))
            let mut ds = vec![0.0f32; rows * tk];
            product(&mut ds, rows, tk, dout, rows_t(vs, tk, hd), 1.0);
            for (d, p) in ds.chunks_exact_mut(tk).zip(p.chunks_exact(tk)) {
                let dot: f32 = d.iter().zip(p).map(|(a, b)| a * b).sum();
                d.iter_mut().zip(p).for_each(|(a, &b)| *a = b * (*a - dot));
            }
            let dsm = MatRef::from_row_major_slice(&ds, rows, tk);
            // ∂Q = scale · ∂S K, ∂K = scale · ∂Sᵀ Q
            let mut dq = vec![0.0f32; rows * hd];
            product(&mut dq, rows, hd, dsm, MatRef::from_row_major_slice(ks, tk, hd), scale);
            let mut dk = vec![0.0f32; tk * hd];
            product(
                &mut dk,
                tk,
                hd,
                dsm.transpose(),
                MatRef::from_row_major_slice(qs, rows, hd),
                scale,
            );
            (dq, dk, dv)
        })
        .collect();
    let mut dq = zeroed(q.len());
    let mut dk = zeroed(k.len());
    let mut dv = zeroed(v.len());
    for (unit, (uq, uk, uv)) in units.into_iter().enumerate() {
        let (qo, ko) = s.offsets(unit);
        dq[qo..qo + uq.len()].copy_from_slice(&uq);
        dk[ko..ko + uk.len()].copy_from_slice(&uk);
        dv[ko..ko + uv.len()].copy_from_slice(&uv);
    }
    (dq, dk, dv)
}

/// `[rows, cols]` row-major as its transpose `[cols, rows]`.
fn rows_t(data: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(data, rows, cols).transpose()
}

/// `dst [m, n] ← alpha · lhs rhs` on the calling thread (units already run in parallel).
fn product(
    dst: &mut [f32],
    m: usize,
    n: usize,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    alpha: f32,
) {
    faer::linalg::matmul::matmul(
        MatMut::from_row_major_slice_mut(dst, m, n),
        Accum::Replace,
        lhs,
        rhs,
        alpha,
        Par::Seq,
    );
}
