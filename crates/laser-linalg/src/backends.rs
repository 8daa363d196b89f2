//! Top-k SVD backends for large matrices: faer's restarted Lanczos (`partial_svd`) and a
//! randomized SVD (Halko, Martinsson, Tropp 2011), behind one [`SvdBackend`] switch.
//!
//! LASER keeps small ranks (ρ ≤ 0.1 is common), where computing only the top k triplets is cheaper
//! than a full thin SVD — on large matrices. On SmolLM2's shapes the thin SVD is usually fastest;
//! `benches/svd_backends.rs` measures where each wins.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::matrix_free::eigen::{PartialEigenParams, partial_svd_scratch};
use faer::{Col, Mat, MatRef, Par};

use crate::error::{LinalgError, Result, check_matrix};
use crate::rng::SplitMix64;
use crate::svd::{ThinSvd, thin_svd_with};

/// Which algorithm computes the top-k singular triplets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SvdBackend {
    /// Full thin SVD, then keep k (exact; the reference).
    #[default]
    Thin,
    /// faer's partial SVD (restarted Lanczos bidiagonalisation) with `min_dim = 2k`,
    /// `max_dim = 4k` — faer's defaults stalled for minutes on 576×1536 here.
    Partial,
    /// Gaussian sketch with `oversample` extra columns and `power_iters` power iterations.
    Randomized { oversample: usize, power_iters: usize, seed: u64 },
}

impl SvdBackend {
    /// The randomized backend with the usual safe settings (p = 10, q = 2).
    pub fn randomized(seed: u64) -> Self {
        Self::Randomized { oversample: 10, power_iters: 2, seed }
    }
}

/// The top-`k` singular triplets of `w` by the chosen backend.
pub fn top_k_svd(w: MatRef<'_, f32>, k: usize, backend: SvdBackend) -> Result<ThinSvd> {
    check_matrix(w)?;
    let max = w.nrows().min(w.ncols());
    if k == 0 || k > max {
        return Err(LinalgError::RankOutOfRange { rank: k, max });
    }
    match backend {
        SvdBackend::Thin => thin_svd_with(w, Par::Seq).map(|svd| keep_leading(svd, k)),
        SvdBackend::Partial => partial_svd(w, k),
        SvdBackend::Randomized { oversample, power_iters, seed } => {
            randomized_svd(w, k, oversample, power_iters, seed)
        }
    }
}

/// Keeps the first `k` triplets of a decomposition.
fn keep_leading(svd: ThinSvd, k: usize) -> ThinSvd {
    ThinSvd {
        u: svd.u.as_ref().subcols(0, k).to_owned(),
        s: svd.s[..k].to_vec(),
        v: svd.v.as_ref().subcols(0, k).to_owned(),
    }
}

/// faer's partial SVD. Its Lanczos needs a projection space strictly smaller than min(m, n) (and at
/// least 64): where `max(4k, 64) ≥ min(m, n)` the thin SVD is both exact and cheaper, so it is used.
fn partial_svd(w: MatRef<'_, f32>, k: usize) -> Result<ThinSvd> {
    let (m, n) = w.shape();
    let max_dim = (4 * k).max(64);
    if max_dim >= m.min(n) {
        return thin_svd_with(w, Par::Seq).map(|svd| keep_leading(svd, k));
    }
    let params =
        PartialEigenParams { min_dim: 2 * k, max_dim, max_restarts: 1000, ..Default::default() };
    let mut rng = SplitMix64::new(0x5eed);
    let v0 = Col::<f32>::from_fn(n, |_| rng.normal() as f32);
    let mut u = Mat::<f32>::zeros(m, k);
    let mut v = Mat::<f32>::zeros(n, k);
    let mut s = vec![0.0f32; k];
    // Lanczos stops on an absolute residual: scale the tolerance to the matrix.
    let tolerance = 64.0 * f32::EPSILON * w.norm_l2();
    let mut buffer = MemBuffer::new(partial_svd_scratch::<f32>(&w, k, Par::Seq, params));
    let info = faer::matrix_free::eigen::partial_svd(
        u.as_mut(),
        v.as_mut(),
        &mut s,
        &w,
        v0.as_ref(),
        tolerance,
        Par::Seq,
        MemStack::new(&mut buffer),
        params,
    );
    if info.n_converged_eigen < k {
        return Err(LinalgError::NoConvergence);
    }
    // Lanczos may return a triplet with a negative value; flip its left vector.
    for (j, sj) in s.iter_mut().enumerate() {
        if *sj < 0.0 {
            *sj = -*sj;
            for i in 0..m {
                u[(i, j)] = -u[(i, j)];
            }
        }
    }
    Ok(ThinSvd { u, s, v })
}

/// Randomized SVD: `Y = W Ω` with a Gaussian n×l sketch (l = k + oversample), `q` power
/// iterations `Y ← W (Wᵀ Q)` with QR re-orthonormalisation, `B = Qᵀ W`, SVD of the small `B`.
fn randomized_svd(
    w: MatRef<'_, f32>,
    k: usize,
    oversample: usize,
    power_iters: usize,
    seed: u64,
) -> Result<ThinSvd> {
    let (m, n) = w.shape();
    let l = (k + oversample).min(m.min(n));
    let mut rng = SplitMix64::new(seed);
    let omega = Mat::<f32>::from_fn(n, l, |_, _| rng.normal() as f32);
    let mut q = (w * &omega).qr().compute_thin_Q();
    for _ in 0..power_iters {
        let z = (w.transpose() * &q).qr().compute_thin_Q();
        q = (w * &z).qr().compute_thin_Q();
    }
    let b = q.transpose() * w;
    let small = thin_svd_with(b.as_ref(), Par::Seq)?;
    let u = &q * &small.u;
    Ok(keep_leading(ThinSvd { u, s: small.s, v: small.v }, k))
}
