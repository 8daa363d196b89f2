//! Seeded random matrices shared by the property tests.
#![allow(dead_code)]

use laser_linalg::faer::Mat;
use laser_linalg::rng::SplitMix64;

pub fn gaussian(m: usize, n: usize, seed: u64) -> Mat<f32> {
    let mut rng = SplitMix64::new(seed);
    Mat::from_fn(m, n, |_, _| rng.normal() as f32)
}

/// An m×n matrix of exact rank r (product of Gaussian factors).
pub fn low_rank(m: usize, n: usize, r: usize, seed: u64) -> Mat<f32> {
    let a = gaussian(m, r, seed);
    let b = gaussian(r, n, seed + 1);
    &a * &b
}

pub fn frobenius(m: &Mat<f32>) -> f64 {
    let mut acc = 0.0;
    for j in 0..m.ncols() {
        for i in 0..m.nrows() {
            acc += f64::from(m[(i, j)]).powi(2);
        }
    }
    acc.sqrt()
}

pub fn frobenius_diff(a: &Mat<f32>, b: &Mat<f32>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    let mut acc = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            acc += (f64::from(a[(i, j)]) - f64::from(b[(i, j)])).powi(2);
        }
    }
    acc.sqrt()
}

/// max |QᵀQ − I| over the entries.
pub fn orthonormality_defect(q: &Mat<f32>) -> f64 {
    let k = q.ncols();
    let mut worst = 0.0f64;
    for a in 0..k {
        for b in 0..k {
            let dot: f64 =
                (0..q.nrows()).map(|i| f64::from(q[(i, a)]) * f64::from(q[(i, b)])).sum();
            let expect = if a == b { 1.0 } else { 0.0 };
            worst = worst.max((dot - expect).abs());
        }
    }
    worst
}

/// Tall, wide, square, rank-deficient and degenerate shapes: (m, n, rank or 0 for full).
pub const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 0),
    (1, 37, 0),
    (37, 1, 0),
    (64, 64, 0),
    (120, 40, 0),
    (40, 120, 0),
    (192, 576, 0),
    (300, 50, 0),
    (80, 80, 7),
    (150, 60, 3),
    (60, 150, 1),
];

pub fn shape_matrix(idx: usize) -> Mat<f32> {
    let (m, n, r) = SHAPES[idx];
    if r == 0 { gaussian(m, n, 100 + idx as u64) } else { low_rank(m, n, r, 100 + idx as u64) }
}
