//! RMSNorm in one pass per row, parallel over rows. burn's version (square, mean, add ε, square
//! root, reciprocal, two broadcast products) was six passes over the activations on the main
//! thread while the workers waited: 0.35 s of a `laser eval` run's ~3 s of serial time.

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
        // Whole rows per task, ~16k elements each.
        let rows = (PARALLEL_MIN / 2 / d).max(1) * d;
        out.par_chunks_mut(rows).zip(xs.par_chunks(rows)).for_each(|(o, x)| {
            o.chunks_exact_mut(d).zip(x.chunks_exact(d)).for_each(kernel);
        });
    } else {
        out.chunks_exact_mut(d).zip(xs.chunks_exact(d)).for_each(kernel);
    }
    out
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
