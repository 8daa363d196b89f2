//! Row clustering for multi-subspace factorization: the rows of a weight matrix may lie near
//! several low-dimensional subspaces, and truncating each group separately keeps more of what
//! matters at the same parameter count (Sreeram et al. 2025, §3).

use faer::{Mat, MatRef, Par};
use rayon::prelude::*;

use crate::error::{LinalgError, Result, check_matrix};
use crate::rng::SplitMix64;
use crate::svd::thin_svd_with;

/// How to partition the rows of a matrix into clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowClustering {
    /// One cluster: the plain (global) SVD.
    Single,
    /// `clusters` contiguous blocks of near-equal size (rows `[c·m/C, (c+1)·m/C)`).
    Blocks { clusters: usize },
    /// k-means on the rows: seeded k-means++ then Lloyd iterations until no row moves
    /// (or `max_iter`).
    KMeans { clusters: usize, seed: u64, max_iter: usize },
    /// k-subspaces (projective clustering): each cluster is a linear subspace of dimension `dim`;
    /// rows go to the subspace with least residual, subspaces are refit by SVD, repeat until no
    /// row moves (or `max_iter`). Initialised from k-means with the same seed.
    KSubspaces { clusters: usize, dim: usize, seed: u64, max_iter: usize },
}

impl RowClustering {
    /// Number of clusters asked for.
    pub fn clusters(&self) -> usize {
        match *self {
            Self::Single => 1,
            Self::Blocks { clusters }
            | Self::KMeans { clusters, .. }
            | Self::KSubspaces { clusters, .. } => clusters,
        }
    }
}

/// The outcome of [`cluster_rows`].
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// `assignment[i]` is the cluster of row i, in `0..clusters`; no cluster is empty.
    pub assignment: Vec<usize>,
    /// Number of clusters.
    pub clusters: usize,
    /// Iterations run (0 for blocks).
    pub iterations: usize,
    /// Whether the iteration stopped because no row moved.
    pub converged: bool,
}

impl Clustering {
    /// The rows of each cluster, in increasing order.
    pub fn members(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.clusters];
        for (row, &c) in self.assignment.iter().enumerate() {
            out[c].push(row);
        }
        out
    }
}

/// Partitions the rows of `w` as `method` says. Deterministic for a given seed.
pub fn cluster_rows(w: MatRef<'_, f32>, method: &RowClustering) -> Result<Clustering> {
    check_matrix(w)?;
    let m = w.nrows();
    let clusters = method.clusters();
    if clusters == 0 || clusters > m {
        return Err(LinalgError::ClusterCount { clusters, rows: m });
    }
    match *method {
        RowClustering::Single => Ok(blocks(m, 1)),
        RowClustering::Blocks { clusters } => Ok(blocks(m, clusters)),
        RowClustering::KMeans { clusters, seed, max_iter } => {
            Ok(kmeans(&Rows::new(w), clusters, seed, max_iter))
        }
        RowClustering::KSubspaces { clusters, dim, seed, max_iter } => {
            if dim == 0 || dim > w.ncols() {
                return Err(LinalgError::RankOutOfRange { rank: dim, max: w.ncols() });
            }
            let rows = Rows::new(w);
            let init = kmeans(&rows, clusters, seed, max_iter);
            ksubspaces(&rows, init, dim, max_iter)
        }
    }
}

fn blocks(m: usize, clusters: usize) -> Clustering {
    let assignment = (0..m).map(|i| (i * clusters) / m).collect();
    Clustering { assignment, clusters, iterations: 0, converged: true }
}

/// The rows of a matrix, contiguous (row-major) for fast distance computations.
struct Rows {
    data: Vec<f32>,
    m: usize,
    n: usize,
}

impl Rows {
    fn new(w: MatRef<'_, f32>) -> Self {
        let (m, n) = w.shape();
        let mut data = Vec::with_capacity(m * n);
        for i in 0..m {
            data.extend((0..n).map(|j| w[(i, j)]));
        }
        Self { data, m, n }
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.n..(i + 1) * self.n]
    }
}

fn squared_distance(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(&x, &c)| (f64::from(x) - c).powi(2)).sum()
}

/// Index and value of the minimum of `f(c)` over `0..k`; ties go to the lowest index.
fn argmin(k: usize, f: impl Fn(usize) -> f64) -> (usize, f64) {
    (0..k)
        .map(|c| (c, f(c)))
        .fold((0, f64::INFINITY), |best, cur| if cur.1 < best.1 { cur } else { best })
}

fn kmeans(rows: &Rows, k: usize, seed: u64, max_iter: usize) -> Clustering {
    let mut rng = SplitMix64::new(seed);
    let centroids = kmeans_plus_plus(rows, k, &mut rng);
    let mut centroids = centroids;
    let mut assignment: Vec<usize> = vec![usize::MAX; rows.m];
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter.max(1) {
        iterations += 1;
        let nearest: Vec<(usize, f64)> = (0..rows.m)
            .into_par_iter()
            .map(|i| argmin(k, |c| squared_distance(rows.row(i), &centroids[c])))
            .collect();
        let mut new_assignment: Vec<usize> = nearest.iter().map(|p| p.0).collect();
        fill_empty_clusters(&mut new_assignment, k, |i| nearest[i].1);
        let moved = new_assignment != assignment;
        assignment = new_assignment;
        centroids = means(rows, &assignment, k);
        if !moved {
            converged = true;
            break;
        }
    }
    Clustering { assignment, clusters: k, iterations, converged }
}

/// k-means++ seeding (Arthur & Vassilvitskii 2007): each next centroid is a row drawn with
/// probability proportional to its squared distance to the nearest centroid so far.
fn kmeans_plus_plus(rows: &Rows, k: usize, rng: &mut SplitMix64) -> Vec<Vec<f64>> {
    let to_f64 = |r: &[f32]| r.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let mut centroids = vec![to_f64(rows.row(rng.below(rows.m)))];
    let mut d2: Vec<f64> =
        (0..rows.m).map(|i| squared_distance(rows.row(i), &centroids[0])).collect();
    while centroids.len() < k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let target = rng.uniform() * total;
            let mut acc = 0.0;
            d2.iter()
                .position(|&d| {
                    acc += d;
                    acc > target
                })
                .unwrap_or(rows.m - 1)
        } else {
            rng.below(rows.m) // all rows coincide with a centroid: any row will do
        };
        let c = to_f64(rows.row(pick));
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(squared_distance(rows.row(i), &c));
        }
        centroids.push(c);
    }
    centroids
}

fn means(rows: &Rows, assignment: &[usize], k: usize) -> Vec<Vec<f64>> {
    let mut sums = vec![vec![0.0f64; rows.n]; k];
    let mut counts = vec![0usize; k];
    for (i, &c) in assignment.iter().enumerate() {
        counts[c] += 1;
        for (s, &x) in sums[c].iter_mut().zip(rows.row(i)) {
            *s += f64::from(x);
        }
    }
    for (s, &count) in sums.iter_mut().zip(&counts) {
        s.iter_mut().for_each(|x| *x /= count.max(1) as f64);
    }
    sums
}

/// Guarantees no empty cluster: each empty cluster takes the worst-fitted row among clusters that
/// have more than one row (`cost(i)` is row i's distance or residual to its cluster).
fn fill_empty_clusters(assignment: &mut [usize], k: usize, cost: impl Fn(usize) -> f64) {
    loop {
        let mut counts = vec![0usize; k];
        assignment.iter().for_each(|&c| counts[c] += 1);
        let Some(empty) = counts.iter().position(|&c| c == 0) else { return };
        let donor = (0..assignment.len()).filter(|&i| counts[assignment[i]] > 1).fold(
            None,
            |best: Option<(usize, f64)>, i| match best {
                Some((_, b)) if b >= cost(i) => best,
                _ => Some((i, cost(i))),
            },
        );
        // k ≤ m guarantees a donor exists while some cluster is empty.
        let Some((row, _)) = donor else { return };
        assignment[row] = empty;
    }
}

/// Orthonormal basis (n×d, d ≤ dim) of the best-fit subspace through the origin of some rows.
fn subspace_basis(rows: &Rows, members: &[usize], dim: usize) -> Result<Mat<f32>> {
    let sub = Mat::<f32>::from_fn(members.len(), rows.n, |i, j| rows.row(members[i])[j]);
    let svd = thin_svd_with(sub.as_ref(), Par::Seq)?;
    let d = dim.min(svd.rank());
    Ok(svd.v.as_ref().subcols(0, d).to_owned())
}

/// Squared residual of `x` after projection onto the span of the orthonormal columns of `basis`.
fn residual(x: &[f32], basis: &Mat<f32>) -> f64 {
    let norm2: f64 = x.iter().map(|&a| f64::from(a).powi(2)).sum();
    let proj2: f64 = (0..basis.ncols())
        .map(|j| {
            let b = basis.col_as_slice(j);
            x.iter().zip(b).map(|(&a, &c)| f64::from(a) * f64::from(c)).sum::<f64>().powi(2)
        })
        .sum();
    (norm2 - proj2).max(0.0)
}

fn ksubspaces(rows: &Rows, init: Clustering, dim: usize, max_iter: usize) -> Result<Clustering> {
    let k = init.clusters;
    let mut assignment = init.assignment;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter.max(1) {
        iterations += 1;
        let members =
            Clustering { assignment: assignment.clone(), clusters: k, iterations, converged }
                .members();
        let bases = members
            .par_iter()
            .map(|rows_c| subspace_basis(rows, rows_c, dim))
            .collect::<Result<Vec<_>>>()?;
        let nearest: Vec<(usize, f64)> = (0..rows.m)
            .into_par_iter()
            .map(|i| argmin(k, |c| residual(rows.row(i), &bases[c])))
            .collect();
        let mut new_assignment: Vec<usize> = nearest.iter().map(|p| p.0).collect();
        fill_empty_clusters(&mut new_assignment, k, |i| nearest[i].1);
        if new_assignment == assignment {
            converged = true;
            break;
        }
        assignment = new_assignment;
    }
    Ok(Clustering { assignment, clusters: k, iterations, converged })
}

/// The squared distance of row `i` of `w` to each centroid of `assignment` (exposed for tests and
/// diagnostics: at k-means convergence every row sits with its nearest centroid).
pub fn row_centroid_distances(w: MatRef<'_, f32>, clustering: &Clustering) -> Vec<Vec<f64>> {
    let rows = Rows::new(w);
    let centroids = means(&rows, &clustering.assignment, clustering.clusters);
    (0..rows.m)
        .map(|i| centroids.iter().map(|c| squared_distance(rows.row(i), c)).collect())
        .collect()
}
