//! Row clustering and multi-subspace factorization properties.

mod common;

use common::*;
use laser_linalg::faer::Mat;
use laser_linalg::*;

/// Rows drawn from `c` distinct low-dimensional subspaces, interleaved (row i in subspace i % c).
fn union_of_subspaces(m: usize, n: usize, c: usize, dim: usize, seed: u64) -> Mat<f32> {
    let bases: Vec<Mat<f32>> = (0..c).map(|s| gaussian(dim, n, seed + s as u64)).collect();
    let coeffs = gaussian(m, dim, seed + 100);
    Mat::from_fn(m, n, |i, j| (0..dim).map(|d| coeffs[(i, d)] * bases[i % c][(d, j)]).sum())
}

#[test]
fn one_cluster_equals_the_global_svd_truncation() {
    let w = gaussian(90, 40, 4);
    let svd = thin_svd(w.as_ref()).unwrap();
    for rho in [1.0, 0.5, 0.1, 0.01] {
        let k = kept_rank(rho, 90, 40).unwrap();
        let global = svd.truncated(k).unwrap();
        for method in [RowClustering::Single, RowClustering::Blocks { clusters: 1 }] {
            let f = factorize(w.as_ref(), &method, rho).unwrap();
            assert!(frobenius_diff(f.reconstruction(), &global) < 1e-4 * frobenius(&w), "ρ={rho}");
            assert_eq!(f.params(), k * (90 + 40));
            let expect = (svd.tail_energy(k)).sqrt() / frobenius(&w);
            assert!(
                (f.relative_error() - expect).abs() < 1e-4,
                "{} vs {expect}",
                f.relative_error()
            );
        }
    }
}

#[test]
fn blocks_partition_rows_exactly_into_contiguous_runs() {
    for (m, c) in [(10, 3), (7, 7), (1536, 4), (5, 1), (100, 8)] {
        let w = gaussian(m, 3, 1);
        let cl = cluster_rows(w.as_ref(), &RowClustering::Blocks { clusters: c }).unwrap();
        let members = cl.members();
        assert_eq!(members.len(), c);
        let flat: Vec<usize> = members.iter().flatten().copied().collect();
        assert_eq!(flat, (0..m).collect::<Vec<_>>(), "every row once, in order");
        let sizes: Vec<usize> = members.iter().map(Vec::len).collect();
        assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
    }
}

#[test]
fn kmeans_is_deterministic_and_each_row_sits_with_its_nearest_centroid() {
    let w = gaussian(300, 12, 8);
    let method = RowClustering::KMeans { clusters: 5, seed: 42, max_iter: 500 };
    let a = cluster_rows(w.as_ref(), &method).unwrap();
    let b = cluster_rows(w.as_ref(), &method).unwrap();
    assert_eq!(a, b, "same seed, same clustering");
    assert!(a.converged);
    let d = row_centroid_distances(w.as_ref(), &a);
    for (i, row) in d.iter().enumerate() {
        let own = row[a.assignment[i]];
        assert!(row.iter().all(|&x| own <= x + 1e-9), "row {i} is not with its nearest centroid");
    }
    assert!(a.members().iter().all(|m| !m.is_empty()));
    let other =
        cluster_rows(w.as_ref(), &RowClustering::KMeans { clusters: 5, seed: 43, max_iter: 500 })
            .unwrap();
    assert_eq!(other.members().len(), 5);
}

#[test]
fn kmeans_never_leaves_a_cluster_empty_even_with_duplicate_rows() {
    // 20 identical rows and 2 distinct ones, 4 clusters: k-means++ must still fill every cluster.
    let w = Mat::<f32>::from_fn(22, 3, |i, j| if i < 20 { 1.0 } else { (i * 10 + j) as f32 });
    let cl =
        cluster_rows(w.as_ref(), &RowClustering::KMeans { clusters: 4, seed: 1, max_iter: 50 })
            .unwrap();
    assert!(cl.members().iter().all(|m| !m.is_empty()), "{:?}", cl.assignment);
    let all =
        cluster_rows(w.as_ref(), &RowClustering::KMeans { clusters: 22, seed: 1, max_iter: 50 })
            .unwrap();
    assert!(all.members().iter().all(|m| m.len() == 1));
}

#[test]
fn ksubspaces_recovers_planted_subspaces_and_beats_single_svd() {
    let (m, n, c, dim) = (240, 30, 3, 2);
    let w = union_of_subspaces(m, n, c, dim, 5);
    let method = RowClustering::KSubspaces { clusters: c, dim, seed: 3, max_iter: 100 };
    let cl = cluster_rows(w.as_ref(), &method).unwrap();
    // Rows of one planted subspace must share one cluster (labels may be permuted).
    for s in 0..c {
        let labels: std::collections::BTreeSet<usize> =
            (0..m).filter(|i| i % c == s).map(|i| cl.assignment[i]).collect();
        assert_eq!(labels.len(), 1, "subspace {s} split over {labels:?}");
    }
    // Each cluster is exactly rank 2, so rank-2 truncation per cluster reconstructs W.
    let rho = 2.0 / 30.0 + 1e-3;
    let f = factorize_clusters(w.as_ref(), cl, rho).unwrap();
    assert!(f.factors().iter().all(|c| c.rank() == 2));
    assert!(f.relative_error() < 1e-4, "{}", f.relative_error());
    let single = factorize(w.as_ref(), &RowClustering::Single, rho).unwrap();
    assert!(single.relative_error() > 0.3, "a single rank-2 SVD cannot fit 3 planes");
    assert_eq!(cluster_rows(w.as_ref(), &method).unwrap().assignment, f.clustering().assignment);
}

#[test]
fn factorization_reassembles_rows_in_original_order() {
    let w = gaussian(50, 20, 6);
    let f =
        factorize(w.as_ref(), &RowClustering::KMeans { clusters: 4, seed: 2, max_iter: 100 }, 1.0)
            .unwrap();
    assert!(f.relative_error() < 1e-5, "full rank per cluster is exact: {}", f.relative_error());
    assert!(frobenius_diff(f.reconstruction(), &w) < 1e-4 * frobenius(&w));
    let rows: usize = f.factors().iter().map(|c| c.rows.len()).sum();
    assert_eq!(rows, 50);
    for c in f.factors() {
        let block = &c.left * &c.right;
        for (i, &r) in c.rows.iter().enumerate() {
            for j in 0..20 {
                assert_eq!(block[(i, j)], f.reconstruction()[(r, j)]);
            }
        }
    }
    // Parameter count is Σ k_c (m_c + n) with k_c = floor(ρ·min(m_c, n)).
    let f = factorize(w.as_ref(), &RowClustering::Blocks { clusters: 2 }, 0.2).unwrap();
    assert_eq!(f.params(), 2 * 4 * (25 + 20));
}

#[test]
fn bad_cluster_counts_and_rho_are_typed_errors() {
    let w = gaussian(5, 4, 1);
    for method in [
        RowClustering::Blocks { clusters: 0 },
        RowClustering::KMeans { clusters: 6, seed: 0, max_iter: 5 },
    ] {
        assert!(matches!(cluster_rows(w.as_ref(), &method), Err(LinalgError::ClusterCount { .. })));
    }
    let ks = RowClustering::KSubspaces { clusters: 2, dim: 0, seed: 0, max_iter: 5 };
    assert!(matches!(cluster_rows(w.as_ref(), &ks), Err(LinalgError::RankOutOfRange { .. })));
    assert!(matches!(
        factorize(w.as_ref(), &RowClustering::Single, 1.5),
        Err(LinalgError::RhoOutOfRange(_))
    ));
    assert!(matches!(
        factorize(w.as_ref(), &RowClustering::Single, f32::NAN),
        Err(LinalgError::RhoOutOfRange(_))
    ));
    assert_eq!(ksubspace_dim(0.1, 1536, 576, 4).unwrap(), 38);
}

#[test]
fn marchenko_pastur_finds_the_planted_rank_in_noise() {
    let (m, n) = (400, 200);
    let mut w = gaussian(m, n, 77);
    // Add a rank-5 signal well above the bulk edge √m + √n ≈ 34.1.
    let signal = low_rank(m, n, 5, 78);
    for j in 0..n {
        for i in 0..m {
            w[(i, j)] += 0.5 * signal[(i, j)];
        }
    }
    let s = singular_values(w.as_ref()).unwrap();
    let est = mp_rank(&s, m, n, NoiseEstimator::MedianMp).unwrap();
    assert_eq!(est.rank, 5, "{est:?}");
    assert!((est.noise_scale - 1.0).abs() < 0.1, "{est:?}");
    let noise = singular_values(gaussian(m, n, 79).as_ref()).unwrap();
    assert_eq!(mp_rank(&noise, m, n, NoiseEstimator::MedianMp).unwrap().rank, 0);
    assert!(mp_rank(&s, m, n, NoiseEstimator::LaserRmt).unwrap().rank >= 5);
    assert!(mp_rank(&[], m, n, NoiseEstimator::MedianMp).is_err());
}
