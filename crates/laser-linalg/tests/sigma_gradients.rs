//! σ-gradients against finite differences of a smooth, non-linear loss of `W(σ)`.

mod common;

use common::*;
use laser_linalg::faer::Mat;
use laser_linalg::*;

/// `L(W) = Σ A_ij tanh(W_ij) + ½ Σ B_ij W_ij²`, so `G = A ∘ (1 − tanh²W) + B ∘ W`.
struct SmoothLoss {
    a: Mat<f32>,
    b: Mat<f32>,
}

impl SmoothLoss {
    fn value(&self, w: &Mat<f64>) -> f64 {
        let mut acc = 0.0;
        for j in 0..w.ncols() {
            for i in 0..w.nrows() {
                let x = w[(i, j)];
                acc +=
                    f64::from(self.a[(i, j)]) * x.tanh() + 0.5 * f64::from(self.b[(i, j)]) * x * x;
            }
        }
        acc
    }

    fn gradient(&self, w: &Mat<f32>) -> Mat<f32> {
        Mat::from_fn(w.nrows(), w.ncols(), |i, j| {
            let x = f64::from(w[(i, j)]);
            (f64::from(self.a[(i, j)]) * (1.0 - x.tanh().powi(2)) + f64::from(self.b[(i, j)]) * x)
                as f32
        })
    }
}

/// W(σ) in f64 from the f32 factors, with σ replaced by `sigma`.
fn compose(svd: &ThinSvd, sigma: &[f64]) -> Mat<f64> {
    Mat::from_fn(svd.nrows(), svd.ncols(), |i, j| {
        (0..svd.rank())
            .map(|r| f64::from(svd.u()[(i, r)]) * sigma[r] * f64::from(svd.v()[(j, r)]))
            .sum()
    })
}

#[test]
fn sigma_gradient_matches_central_differences() {
    for (m, n, seed) in [(30, 20, 1), (20, 30, 2), (25, 25, 3), (1, 9, 4)] {
        let w = gaussian(m, n, seed);
        let loss = SmoothLoss { a: gaussian(m, n, seed + 10), b: gaussian(m, n, seed + 20) };
        let svd = thin_svd(w.as_ref()).unwrap();
        let g = sigma_gradient(&svd, loss.gradient(&w).as_ref()).unwrap();
        let sigma: Vec<f64> = svd.s().iter().map(|&s| f64::from(s)).collect();
        let h = 1e-4;
        for i in 0..svd.rank() {
            let mut plus = sigma.clone();
            plus[i] += h;
            let mut minus = sigma.clone();
            minus[i] -= h;
            let fd = (loss.value(&compose(&svd, &plus)) - loss.value(&compose(&svd, &minus)))
                / (2.0 * h);
            let scale = 1.0 + fd.abs();
            assert!((f64::from(g[i]) - fd).abs() < 2e-3 * scale, "{m}×{n} σ_{i}: {} vs {fd}", g[i]);
        }
    }
}

#[test]
fn predicted_loss_change_is_the_directional_derivative_of_truncation() {
    let (m, n) = (24, 16);
    let w = gaussian(m, n, 9);
    let loss = SmoothLoss { a: gaussian(m, n, 19), b: gaussian(m, n, 29) };
    let svd = thin_svd(w.as_ref()).unwrap();
    let g = sigma_gradient(&svd, loss.gradient(&w).as_ref()).unwrap();
    let dl = predicted_loss_change(svd.s(), &g).unwrap();
    let sigma: Vec<f64> = svd.s().iter().map(|&s| f64::from(s)).collect();
    for k in [0, 3, 8, 15, 16] {
        // Shrink the tail by t: σ_i ← (1 − t) σ_i for i ≥ k. d/dt at 0 is ΔL(k).
        let shrink = |t: f64| -> Vec<f64> {
            sigma.iter().enumerate().map(|(i, &s)| if i >= k { (1.0 - t) * s } else { s }).collect()
        };
        let t = 1e-4;
        let fd = (loss.value(&compose(&svd, &shrink(t))) - loss.value(&compose(&svd, &shrink(-t))))
            / (2.0 * t);
        assert!((dl[k] - fd).abs() < 2e-3 * (1.0 + fd.abs()), "k={k}: {} vs {fd}", dl[k]);
    }
    assert_eq!(dl[16], 0.0);
}

#[test]
fn sigma_gradient_rejects_mismatched_and_non_finite_gradients() {
    let svd = thin_svd(gaussian(6, 4, 1).as_ref()).unwrap();
    let g = gaussian(4, 6, 2);
    assert!(matches!(sigma_gradient(&svd, g.as_ref()), Err(LinalgError::ShapeMismatch { .. })));
    let mut g = gaussian(6, 4, 2);
    g[(1, 1)] = f32::NAN;
    assert!(matches!(sigma_gradient(&svd, g.as_ref()), Err(LinalgError::NonFinite { .. })));
}
