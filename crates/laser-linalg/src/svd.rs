//! Thin SVD of one matrix, and of many matrices at once.
//!
//! Two levels, as in faer: [`thin_svd`] validates and allocates; [`thin_svd_into`] writes into
//! caller-provided buffers with explicit parallelism. [`batched_thin_svd`] runs one sequential SVD
//! per matrix across rayon's pool — on 2 cores this beats one parallel SVD at a time, because faer's
//! bidiagonal phase parallelises poorly at these sizes (see `docs/BENCHMARKS.md`).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{self as faer_svd, ComputeSvdVectors};
use faer::{ColMut, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::{LinalgError, Result, check_matrix, check_shape};

/// `W = U diag(s) Vᵀ` with `U` m×r, `V` n×r orthonormal columns and `s` non-increasing, where
/// `r = min(m, n)` for a thin SVD or the requested rank for a top-k SVD. Only this crate's
/// decompositions build one, so the shapes always agree (read them through the accessors).
#[derive(Debug, Clone)]
pub struct ThinSvd {
    pub(crate) u: Mat<f32>,
    pub(crate) s: Vec<f32>,
    pub(crate) v: Mat<f32>,
}

impl ThinSvd {
    /// Left singular vectors, m×r.
    pub fn u(&self) -> &Mat<f32> {
        &self.u
    }

    /// Singular values, non-negative and non-increasing, length r.
    pub fn s(&self) -> &[f32] {
        &self.s
    }

    /// Right singular vectors, n×r.
    pub fn v(&self) -> &Mat<f32> {
        &self.v
    }

    /// Rows of the decomposed matrix.
    pub fn nrows(&self) -> usize {
        self.u.nrows()
    }

    /// Columns of the decomposed matrix.
    pub fn ncols(&self) -> usize {
        self.v.nrows()
    }

    /// Number of singular triplets held.
    pub fn rank(&self) -> usize {
        self.s.len()
    }

    /// The rank-`k` truncation `U_k diag(s_k) V_kᵀ` (the best rank-k approximation, Eckart–Young).
    pub fn truncated(&self, k: usize) -> Result<Mat<f32>> {
        let mut out = Mat::zeros(self.nrows(), self.ncols());
        self.truncated_into(k, out.as_mut(), Par::Seq)?;
        Ok(out)
    }

    /// [`ThinSvd::truncated`] into a caller-provided m×n buffer.
    pub fn truncated_into(&self, k: usize, out: MatMut<'_, f32>, par: Par) -> Result<()> {
        check_shape((self.nrows(), self.ncols()), out.shape())?;
        if k == 0 || k > self.rank() {
            return Err(LinalgError::RankOutOfRange { rank: k, max: self.rank() });
        }
        let us = Mat::from_fn(self.nrows(), k, |i, j| self.u[(i, j)] * self.s[j]);
        faer::linalg::matmul::matmul(
            out,
            faer::Accum::Replace,
            us.as_ref(),
            self.v.as_ref().subcols(0, k).transpose(),
            1.0f32,
            par,
        );
        Ok(())
    }

    /// `Σ_{i≥k} s_i²` in f64: the squared Frobenius error of the rank-`k` truncation.
    pub fn tail_energy(&self, k: usize) -> f64 {
        self.s.iter().skip(k).map(|&x| f64::from(x).powi(2)).sum()
    }
}

/// Parallelism worth using inside one decomposition of an m×n matrix: threads only pay off past
/// ~2·10⁹ flops (measured: at 576×576 a 2-thread SVD is slower than a sequential one).
pub fn default_parallelism(m: usize, n: usize) -> Par {
    if (m as u128) * (n as u128) * (m.min(n) as u128) >= 1 << 31 {
        faer::get_global_parallelism()
    } else {
        Par::Seq
    }
}

/// Thin SVD of `w` (any strides), with [`default_parallelism`] inside the one decomposition.
pub fn thin_svd(w: MatRef<'_, f32>) -> Result<ThinSvd> {
    thin_svd_with(w, default_parallelism(w.nrows(), w.ncols()))
}

/// Thin SVD of `w` with explicit parallelism inside the decomposition.
pub fn thin_svd_with(w: MatRef<'_, f32>, par: Par) -> Result<ThinSvd> {
    check_matrix(w)?;
    let (m, n) = w.shape();
    let r = m.min(n);
    let mut out = ThinSvd { u: Mat::zeros(m, r), s: vec![0.0; r], v: Mat::zeros(n, r) };
    thin_svd_into(w, &mut out.s, Some(out.u.as_mut()), Some(out.v.as_mut()), par)?;
    Ok(out)
}

/// Singular values only (no vectors: several times cheaper), non-increasing.
pub fn singular_values(w: MatRef<'_, f32>) -> Result<Vec<f32>> {
    check_matrix(w)?;
    let mut s = vec![0.0; w.nrows().min(w.ncols())];
    thin_svd_into(w, &mut s, None, None, default_parallelism(w.nrows(), w.ncols()))?;
    Ok(s)
}

/// The low-level call: writes `s` (length min(m, n)) and, when given, `u` (m×min) and `v` (n×min).
/// Does not check `w` for non-finite values (the high-level calls do); checks every shape.
pub fn thin_svd_into(
    w: MatRef<'_, f32>,
    s: &mut [f32],
    u: Option<MatMut<'_, f32>>,
    v: Option<MatMut<'_, f32>>,
    par: Par,
) -> Result<()> {
    let (m, n) = w.shape();
    if m == 0 || n == 0 {
        return Err(LinalgError::Empty { rows: m, cols: n });
    }
    let r = m.min(n);
    check_shape((r, 1), (s.len(), 1))?;
    if let Some(u) = u.as_ref() {
        check_shape((m, r), u.shape())?;
    }
    if let Some(v) = v.as_ref() {
        check_shape((n, r), v.shape())?;
    }
    let compute = |x: bool| if x { ComputeSvdVectors::Thin } else { ComputeSvdVectors::No };
    let scratch = faer_svd::svd_scratch::<f32>(
        m,
        n,
        compute(u.is_some()),
        compute(v.is_some()),
        par,
        Default::default(),
    );
    let mut buffer = MemBuffer::new(scratch);
    faer_svd::svd(
        w,
        ColMut::from_slice_mut(s).as_diagonal_mut(),
        u,
        v,
        par,
        MemStack::new(&mut buffer),
        Default::default(),
    )
    .map_err(|_| LinalgError::NoConvergence)
}

/// Thin SVDs of many matrices: rayon across matrices, sequential faer inside each.
/// Results come back in input order; each matrix fails or succeeds on its own.
pub fn batched_thin_svd(ws: &[MatRef<'_, f32>]) -> Vec<Result<ThinSvd>> {
    ws.par_iter().map(|w| thin_svd_with(*w, Par::Seq)).collect()
}

/// Singular values of many matrices: rayon across matrices, sequential inside each.
pub fn batched_singular_values(ws: &[MatRef<'_, f32>]) -> Vec<Result<Vec<f32>>> {
    ws.par_iter()
        .map(|w| {
            check_matrix(*w)?;
            let mut s = vec![0.0; w.nrows().min(w.ncols())];
            thin_svd_into(*w, &mut s, None, None, Par::Seq)?;
            Ok(s)
        })
        .collect()
}
