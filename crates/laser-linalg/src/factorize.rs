//! Multi-subspace low-rank factorization: cluster the rows of `W`, truncate each cluster's SVD at
//! `floor(ρ · min(m_c, n))`, and reassemble in the original row order.

use faer::{Mat, MatRef, Par};
use rayon::prelude::*;

use crate::cluster::{Clustering, RowClustering, cluster_rows};
use crate::error::{Result, check_matrix};
use crate::rank::kept_rank;
use crate::svd::thin_svd_with;

/// One cluster's factors: its rows of `W` are approximated by `left · right`.
#[derive(Debug, Clone)]
pub struct ClusterFactor {
    /// The original row indices of this cluster, increasing.
    pub rows: Vec<usize>,
    /// `U_k diag(σ_k)`, m_c×k.
    pub left: Mat<f32>,
    /// `V_kᵀ`, k×n.
    pub right: Mat<f32>,
}

impl ClusterFactor {
    /// The kept rank of this cluster.
    pub fn rank(&self) -> usize {
        self.left.ncols()
    }
}

/// A factorized matrix. Its parts are read through accessors, so that none can disagree with
/// the others.
#[derive(Debug, Clone)]
pub struct Factorized {
    reconstruction: Mat<f32>,
    factors: Vec<ClusterFactor>,
    clustering: Clustering,
    params: usize,
    relative_error: f64,
}

impl Factorized {
    /// The dense reconstruction `Ŵ`, same shape as `W`.
    pub fn reconstruction(&self) -> &Mat<f32> {
        &self.reconstruction
    }

    /// Per-cluster factors (for a factorized export).
    pub fn factors(&self) -> &[ClusterFactor] {
        &self.factors
    }

    /// The row clustering used.
    pub fn clustering(&self) -> &Clustering {
        &self.clustering
    }

    /// Parameters of the factorized form: `Σ_c k_c (m_c + n)`.
    pub fn params(&self) -> usize {
        self.params
    }

    /// `‖W − Ŵ‖_F / ‖W‖_F`.
    pub fn relative_error(&self) -> f64 {
        self.relative_error
    }
}

/// For `ksub:C` without an explicit dimension: the subspace dimension equals the rank that a
/// cluster of average size keeps at ρ, so clustering optimises the very truncation applied after.
pub fn ksubspace_dim(rho: f32, rows: usize, cols: usize, clusters: usize) -> Result<usize> {
    kept_rank(rho, rows.div_ceil(clusters.max(1)), cols)
}

/// Factorizes `w` at kept-rank fraction `rho` over the row clusters of `method`.
pub fn factorize(w: MatRef<'_, f32>, method: &RowClustering, rho: f32) -> Result<Factorized> {
    check_matrix(w)?;
    kept_rank(rho, w.nrows(), w.ncols())?; // validates ρ before any clustering work
    let clustering = cluster_rows(w, method)?;
    factorize_clusters(w, clustering, rho)
}

/// Factorizes `w` over a given clustering (for callers that cluster once and sweep ρ).
pub fn factorize_clusters(
    w: MatRef<'_, f32>,
    clustering: Clustering,
    rho: f32,
) -> Result<Factorized> {
    check_matrix(w)?;
    let n = w.ncols();
    let factors = clustering
        .members()
        .into_par_iter()
        .map(|rows| {
            let sub = Mat::<f32>::from_fn(rows.len(), n, |i, j| w[(rows[i], j)]);
            let k = kept_rank(rho, rows.len(), n)?;
            let svd = thin_svd_with(sub.as_ref(), Par::Seq)?;
            let left = Mat::from_fn(rows.len(), k, |i, j| svd.u[(i, j)] * svd.s[j]);
            let right = svd.v.as_ref().subcols(0, k).transpose().to_owned();
            Ok(ClusterFactor { rows, left, right })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut reconstruction = Mat::<f32>::zeros(w.nrows(), n);
    for f in &factors {
        let block = &f.left * &f.right;
        for (i, &row) in f.rows.iter().enumerate() {
            for j in 0..n {
                reconstruction[(row, j)] = block[(i, j)];
            }
        }
    }
    let params = factors.iter().map(|f| f.rank() * (f.rows.len() + n)).sum();
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for j in 0..n {
        for i in 0..w.nrows() {
            let x = f64::from(w[(i, j)]);
            err += (x - f64::from(reconstruction[(i, j)])).powi(2);
            norm += x * x;
        }
    }
    let relative_error = if norm > 0.0 { (err / norm).sqrt() } else { 0.0 };
    Ok(Factorized { reconstruction, factors, clustering, params, relative_error })
}
