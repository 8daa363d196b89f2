//! RMSNorm in one pass per row, parallel over rows, and its backward for the gradient pass.
//! burn's version (square, mean, add ε, square root, reciprocal, two broadcast products) was six
//! passes over the activations on the main thread while the workers waited: 0.35 s of a
//! `laser eval` run's ~3 s of serial time.

use rayon::prelude::*;

use super::{PARALLEL_MIN, flex_f32, from_vec, row_major, zeroed};
use burn::tensor::Tensor;

/// `x / sqrt(mean(x²) + ε) · w` over the last axis of a plain flex `x: [B, T, d]` with `w` given
/// as `[1, 1, d]`; `None` when either is not a plain f32 flex tensor of those shapes.
pub(crate) fn rms_norm(x: &Tensor<3>, w: &Tensor<3>, eps: f64) -> Option<Tensor<3>> {
    let dims = x.dims();
    let d = dims[2];
    if w.dims() != [1, 1, d] || d == 0 {
        return None;
    }
    let (xf, wf) = (flex_f32(x)?, flex_f32(w)?);
    let (xs, ws) = (row_major(&xf), row_major(&wf));
    Some(from_vec(rms_norm_values(&xs, &ws, eps as f32), dims))
}

/// RMSNorm of each `w.len()`-wide row of `xs`.
pub(crate) fn rms_norm_values(xs: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let d = w.len();
    let mut out = zeroed(xs.len());
    let kernel = |(o, x): (&mut [f32], &[f32])| {
        let inv = 1.0 / (mean_square(x) + eps).sqrt();
        for ((o, &x), &w) in o.iter_mut().zip(x).zip(w) {
            *o = x * inv * w;
        }
    };
    if xs.len() >= PARALLEL_MIN {
        let rows = task_elements(d);
        out.par_chunks_mut(rows).zip(xs.par_chunks(rows)).for_each(|(o, x)| {
            o.chunks_exact_mut(d).zip(x.chunks_exact(d)).for_each(kernel);
        });
    } else {
        out.chunks_exact_mut(d).zip(xs.chunks_exact(d)).for_each(kernel);
    }
    out
}

/// The gradients of `y = x·r·w`, `r = 1/sqrt(mean(x²) + ε)` per row, given `dy`:
/// `∂x = r·(w⊙dy) − x·r³·Σ(w⊙dy⊙x)/d` and, when `want_w`, `∂w = Σ_rows dy⊙x·r`.
pub(crate) fn rms_norm_backward(
    xs: &[f32],
    w: &[f32],
    dy: &[f32],
    eps: f32,
    want_w: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let d = w.len();
    let mut dx = zeroed(xs.len());
    // One task's rows: the rows' ∂x, and their part of ∂w.
    let kernel = |dx: &mut [f32], x: &[f32], dy: &[f32]| -> Vec<f32> {
        let mut dw = vec![0.0f32; if want_w { d } else { 0 }];
        for ((dx, x), dy) in dx.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(dy.chunks_exact(d)) {
            let r = 1.0 / (mean_square(x) + eps).sqrt();
            let dot: f32 = dy.iter().zip(w).zip(x).map(|((&g, &w), &x)| g * w * x).sum();
            let k = r * r * r * dot / d as f32;
            for (((o, &g), &w), &x) in dx.iter_mut().zip(dy).zip(w).zip(x) {
                *o = r * w * g - x * k;
            }
            for ((acc, &g), &x) in dw.iter_mut().zip(dy).zip(x) {
                *acc += g * x * r;
            }
        }
        dw
    };
    let parts: Vec<Vec<f32>> = if xs.len() >= PARALLEL_MIN {
        let rows = task_elements(d);
        dx.par_chunks_mut(rows)
            .zip(xs.par_chunks(rows).zip(dy.par_chunks(rows)))
            .map(|(o, (x, g))| kernel(o, x, g))
            .collect()
    } else {
        vec![kernel(&mut dx, xs, dy)]
    };
    let dw = want_w.then(|| {
        let mut sum = vec![0.0f32; d];
        for part in &parts {
            sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
        }
        sum
    });
    (dx, dw)
}

/// Elements of one parallel task: whole `d`-wide rows, ~16k elements.
fn task_elements(d: usize) -> usize {
    (PARALLEL_MIN / 2 / d).max(1) * d
}

/// `mean(x²)`, summed in eight lanes (vectorised) and then across them.
fn mean_square(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v * v;
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    (lanes.iter().sum::<f32>() + tail) / x.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rms_norm_f64(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
        let r = 1.0 / (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64 + eps).sqrt();
        x.iter().zip(w).map(|(x, w)| x * r * w).collect()
    }

    /// `∂x` and `∂w` against central finite differences of `Σ dy⊙y` in f64, on both sides of the
    /// parallel threshold.
    #[test]
    fn rms_norm_gradients_match_finite_differences() {
        for (rows, d) in [(3usize, 13usize), (120, 576)] {
            let xs: Vec<f32> =
                (0..rows * d).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
            let w: Vec<f32> = (0..d).map(|j| 0.5 + (j % 7) as f32 / 10.0).collect();
            let dy: Vec<f32> =
                (0..rows * d).map(|i| ((i * 29 % 89) as f32 - 44.0) / 30.0).collect();
            let eps = 1e-5f32;
            let (dx, dw) = rms_norm_backward(&xs, &w, &dy, eps, true);
            let dw = dw.unwrap();
            let w64: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
            let loss = |x: &[f64], w: &[f64], g: &[f32]| -> f64 {
                let y = rms_norm_f64(x, w, f64::from(eps));
                y.iter().zip(g).map(|(y, &g)| y * f64::from(g)).sum()
            };
            let h = 1e-6;
            let mut want_dw = vec![0.0f64; d];
            for r in (0..rows).step_by(rows.div_ceil(4).max(1)) {
                let x: Vec<f64> = xs[r * d..][..d].iter().map(|&v| f64::from(v)).collect();
                let g = &dy[r * d..][..d];
                for j in (0..d).step_by(5) {
                    let (mut up, mut down) = (x.clone(), x.clone());
                    up[j] += h;
                    down[j] -= h;
                    let want = (loss(&up, &w64, g) - loss(&down, &w64, g)) / (2.0 * h);
                    let got = f64::from(dx[r * d + j]);
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "dx[{r},{j}] {got} vs {want}"
                    );
                }
            }
            for r in 0..rows {
                let x: Vec<f64> = xs[r * d..][..d].iter().map(|&v| f64::from(v)).collect();
                let g = &dy[r * d..][..d];
                for j in (0..d).step_by(7) {
                    let (mut up, mut down) = (w64.clone(), w64.clone());
                    up[j] += h;
                    down[j] -= h;
                    want_dw[j] += (loss(&x, &up, g) - loss(&x, &down, g)) / (2.0 * h);
                }
            }
            for j in (0..d).step_by(7) {
                let got = f64::from(dw[j]);
                assert!(
                    (got - want_dw[j]).abs() <= 1e-3 * (1.0 + want_dw[j].abs()),
                    "dw[{j}] {got} vs {}",
                    want_dw[j]
                );
            }
            let (dx_only, none) = rms_norm_backward(&xs, &w, &dy, eps, false);
            assert_eq!(dx_only, dx);
            assert!(none.is_none());
        }
    }

    /// Against f64 on rows of several widths (a remainder after the eight lanes included), on
    /// both sides of the parallel threshold.
    #[test]
    fn rms_norm_matches_f64() {
        for (rows, d) in [(3usize, 13usize), (4, 576), (200, 576)] {
            let xs: Vec<f32> =
                (0..rows * d).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
            let w: Vec<f32> = (0..d).map(|j| 0.5 + (j % 7) as f32 / 10.0).collect();
            let eps = 1e-5f32;
            let got = rms_norm_values(&xs, &w, eps);
            for (r, (x, g)) in xs.chunks(d).zip(got.chunks(d)).enumerate() {
                let ms = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / d as f64;
                let inv = 1.0 / (ms + f64::from(eps)).sqrt();
                for j in 0..d {
                    let want = f64::from(x[j]) * inv * f64::from(w[j]);
                    let err = (f64::from(g[j]) - want).abs();
                    assert!(
                        err <= 1e-6 * want.abs().max(1.0),
                        "row {r} col {j}: {} vs {want}",
                        g[j]
                    );
                }
            }
        }
    }
}
