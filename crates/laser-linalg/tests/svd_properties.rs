//! SVD properties over a seeded sweep of shapes: orthonormal factors, reconstruction within an
//! `eps·sqrt(n)`-scaled tolerance, Eckart–Young, and agreement of the top-k backends.

mod common;

use common::*;
use laser_linalg::faer::{Mat, Par};
use laser_linalg::*;

const EPS: f64 = f32::EPSILON as f64;

#[test]
fn thin_svd_is_orthonormal_and_reconstructs_on_every_shape() {
    for idx in 0..SHAPES.len() {
        let w = shape_matrix(idx);
        let (m, n) = w.shape();
        let svd = thin_svd(w.as_ref()).unwrap();
        let r = m.min(n);
        assert_eq!((svd.u().shape(), svd.s().len(), svd.v().shape()), ((m, r), r, (n, r)));
        let tol = 30.0 * EPS * ((m.max(n)) as f64).sqrt();
        assert!(orthonormality_defect(svd.u()) < tol, "U of {m}×{n}");
        assert!(
            orthonormality_defect(svd.v()) < tol,
            "V of {m}×{n}: {}",
            orthonormality_defect(svd.v())
        );
        assert!(svd.s().windows(2).all(|p| p[0] >= p[1]) && svd.s().iter().all(|&s| s >= 0.0));
        let full = svd.truncated(r).unwrap();
        let rel = frobenius_diff(&full, &w) / frobenius(&w);
        assert!(rel < tol, "reconstruction of {m}×{n}: {rel:e} ≥ {tol:e}");
        // The values-only path agrees with the full decomposition.
        let s_only = singular_values(w.as_ref()).unwrap();
        for (a, b) in s_only.iter().zip(svd.s()) {
            assert!((a - b).abs() as f64 <= tol * f64::from(svd.s()[0]), "{a} vs {b}");
        }
    }
}

#[test]
fn eckart_young_error_equals_tail_energy_for_every_rank() {
    for idx in [3, 4, 5, 8] {
        let w = shape_matrix(idx);
        let svd = thin_svd(w.as_ref()).unwrap();
        let total = frobenius(&w).powi(2);
        for k in 1..=svd.rank() {
            let wk = svd.truncated(k).unwrap();
            let err2 = frobenius_diff(&wk, &w).powi(2);
            let tail = svd.tail_energy(k);
            assert!((err2 - tail).abs() <= 1e-4 * total, "shape {idx}, k={k}: {err2} vs {tail}");
        }
    }
}

#[test]
fn rank_deficient_matrices_have_vanishing_tails() {
    let w = low_rank(80, 80, 7, 5);
    let svd = thin_svd(w.as_ref()).unwrap();
    assert!(f64::from(svd.s()[7]) < 1e-4 * f64::from(svd.s()[0]), "σ_8 = {}", svd.s()[7]);
    let w7 = svd.truncated(7).unwrap();
    assert!(frobenius_diff(&w7, &w) < 1e-4 * frobenius(&w));
}

#[test]
fn batched_svd_equals_one_at_a_time_in_order() {
    let ws: Vec<Mat<f32>> = (0..SHAPES.len()).map(shape_matrix).collect();
    let refs: Vec<_> = ws.iter().map(|w| w.as_ref()).collect();
    let batched = batched_thin_svd(&refs);
    let values = batched_singular_values(&refs);
    for ((w, b), v) in ws.iter().zip(&batched).zip(&values) {
        let one = thin_svd_with(w.as_ref(), Par::Seq).unwrap();
        assert_eq!(b.as_ref().unwrap().s(), one.s(), "same sequential algorithm, same bits");
        let tol = 1e-5 * f64::from(one.s()[0]);
        assert!(
            v.as_ref().unwrap().iter().zip(one.s()).all(|(a, b)| f64::from((a - b).abs()) <= tol)
        );
    }
}

#[test]
fn low_level_call_checks_every_buffer_shape() {
    let w = gaussian(5, 3, 1);
    let mut s = vec![0.0; 2];
    let err = thin_svd_into(w.as_ref(), &mut s, None, None, Par::Seq).unwrap_err();
    assert!(matches!(err, LinalgError::ShapeMismatch { .. }));
    let mut s = vec![0.0; 3];
    let mut u = Mat::<f32>::zeros(5, 2);
    let err = thin_svd_into(w.as_ref(), &mut s, Some(u.as_mut()), None, Par::Seq).unwrap_err();
    assert!(matches!(err, LinalgError::ShapeMismatch { expected_rows: 5, expected_cols: 3, .. }));
    let mut u = Mat::<f32>::zeros(5, 3);
    let mut v = Mat::<f32>::zeros(3, 3);
    thin_svd_into(w.as_ref(), &mut s, Some(u.as_mut()), Some(v.as_mut()), Par::rayon(2)).unwrap();
    assert!(s[0] > 0.0);
}

#[test]
fn bad_matrices_are_typed_errors() {
    let empty = Mat::<f32>::zeros(0, 4);
    assert!(matches!(thin_svd(empty.as_ref()), Err(LinalgError::Empty { rows: 0, cols: 4 })));
    let mut w = gaussian(4, 4, 2);
    w[(2, 3)] = f32::NAN;
    assert!(matches!(thin_svd(w.as_ref()), Err(LinalgError::NonFinite { row: 2, col: 3, .. })));
    w[(2, 3)] = f32::INFINITY;
    assert!(matches!(singular_values(w.as_ref()), Err(LinalgError::NonFinite { .. })));
    let svd = thin_svd(gaussian(4, 4, 3).as_ref()).unwrap();
    assert!(matches!(svd.truncated(0), Err(LinalgError::RankOutOfRange { rank: 0, max: 4 })));
    assert!(matches!(svd.truncated(5), Err(LinalgError::RankOutOfRange { rank: 5, max: 4 })));
    assert!(matches!(
        top_k_svd(gaussian(4, 4, 3).as_ref(), 9, SvdBackend::Partial),
        Err(LinalgError::RankOutOfRange { rank: 9, max: 4 })
    ));
}

/// Partial and randomized SVDs agree with the thin SVD on the top-k values: within 1e-4 relative
/// to σ₁ for the partial (Lanczos) backend; within 1e-2 relative for randomized with q = 2 power
/// iterations on a matrix with a decaying spectrum (its error bound depends on the gap).
#[test]
fn top_k_backends_agree_with_thin_svd() {
    // A geometrically decaying spectrum σ_i = 10 · 0.85^i, as in trained weights.
    let u = gaussian(400, 300, 11).qr().compute_thin_Q();
    let v = gaussian(300, 300, 12).qr().compute_thin_Q();
    let us = Mat::<f32>::from_fn(400, 300, |i, j| u[(i, j)] * 10.0 * 0.85f32.powi(j as i32));
    let w = &us * v.transpose();
    let exact = thin_svd(w.as_ref()).unwrap();
    for k in [1, 5, 16] {
        for backend in [SvdBackend::Thin, SvdBackend::Partial, SvdBackend::randomized(7)] {
            let top = top_k_svd(w.as_ref(), k, backend).unwrap();
            assert_eq!(top.s().len(), k);
            let tol = match backend {
                SvdBackend::Randomized { .. } => 1e-2,
                _ => 1e-4,
            } * f64::from(exact.s()[0]);
            for i in 0..k {
                let d = f64::from((top.s()[i] - exact.s()[i]).abs());
                assert!(d <= tol, "{backend:?} k={k} σ_{i}: {} vs {}", top.s()[i], exact.s()[i]);
            }
            assert!(orthonormality_defect(top.u()) < 1e-3 && orthonormality_defect(top.v()) < 1e-3);
            // Each returned triplet is a real singular triplet: W v_i ≈ σ_i u_i.
            let wv = &w * top.v();
            for i in 0..k {
                let res: f64 = (0..400)
                    .map(|r| {
                        (f64::from(wv[(r, i)]) - f64::from(top.s()[i] * top.u()[(r, i)])).powi(2)
                    })
                    .sum::<f64>()
                    .sqrt();
                assert!(res <= 20.0 * tol, "{backend:?} triplet {i}: residual {res}");
            }
        }
    }
    // The partial backend falls back to the thin SVD where Lanczos cannot run (max_dim ≥ min(m,n)).
    let small = gaussian(50, 40, 3);
    let a = top_k_svd(small.as_ref(), 30, SvdBackend::Partial).unwrap();
    let b = top_k_svd(small.as_ref(), 30, SvdBackend::Thin).unwrap();
    assert_eq!(a.s(), b.s());
}
