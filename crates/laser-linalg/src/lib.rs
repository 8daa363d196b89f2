//! The numerical core of laser-rs, on [faer]: thin / partial / randomized SVD, the LASER rank map,
//! singular-value gradients and first-order truncation scores, row clustering (blocks, k-means,
//! k-subspaces) with per-cluster truncation, and a Marchenko–Pastur rank estimate.
//!
//! Matrices are `faer::MatRef<f32>` (any strides; use `MatRef::from_row_major_slice` for row-major
//! weights); sums that need accuracy are taken in f64. Every fallible call returns
//! [`LinalgError`], never panics on bad input.
//!
//! ```
//! use faer::MatRef;
//! use laser_linalg::{kept_rank, sigma_gradient, thin_svd, predicted_loss_change};
//!
//! let w = [3.0f32, 0.0, 0.0, 1.0, 0.5, 0.2];
//! let g = [0.1f32, 0.0, 0.0, 0.3, 0.0, 0.1];
//! let w = MatRef::from_row_major_slice(&w, 3, 2);
//! let g = MatRef::from_row_major_slice(&g, 3, 2);
//! let svd = thin_svd(w).unwrap();
//! let gs = sigma_gradient(&svd, g).unwrap();
//! let dl = predicted_loss_change(svd.s(), &gs).unwrap(); // ΔL for keeping k = 0, 1, 2
//! let k = kept_rank(0.5, 3, 2).unwrap();
//! let w1 = svd.truncated(k).unwrap();
//! assert_eq!((k, dl.len(), w1.nrows()), (1, 3, 3));
//! ```

mod backends;
mod cluster;
mod error;
mod factorize;
mod marchenko_pastur;
mod rank;
pub mod rng;
mod sigma_gradient;
mod svd;

pub use backends::{SvdBackend, top_k_svd};
pub use cluster::{Clustering, RowClustering, cluster_rows, row_centroid_distances};
pub use error::{LinalgError, Result, check_matrix, check_shape};
pub use factorize::{ClusterFactor, Factorized, factorize, factorize_clusters, ksubspace_dim};
pub use marchenko_pastur::{MpEstimate, NoiseEstimator, mp_median, mp_rank};
pub use rank::{LASER_RHO_GRID, check_rho, kept_rank, shortest_decimal};
pub use sigma_gradient::{
    TruncationScore, predicted_loss_change, sigma_gradient, sigma_gradient_with, truncation_scores,
};
pub use svd::{
    ThinSvd, batched_singular_values, batched_thin_svd, default_parallelism, singular_values,
    thin_svd, thin_svd_into, thin_svd_with,
};

pub use faer;
