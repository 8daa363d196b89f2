//! The gradient strategy's ranking: one gradient pass on the selection items, then per matrix its
//! thin SVD, σ-gradients `g_i = u_iᵀ G v_i` and truncation-score curve ("Compress to Impress").

use std::time::Instant;

use laser_linalg::faer::{MatRef, Par};
use laser_linalg::{TruncationScore, kept_rank, sigma_gradient, thin_svd_with, truncation_scores};
use laser_model::{MatrixInfo, Model};
use rayon::prelude::*;

use crate::error::{Result, SearchError};
use crate::eval::gradient_pass;
use crate::report::MatrixScore;

/// The outcome of [`rank_matrices`].
#[derive(Debug, Clone)]
pub struct GradientRanking {
    /// Every matrix, best first.
    pub ranking: Vec<MatrixScore>,
    /// Mean gold-answer NLL of the gradient pass.
    pub loss: f64,
    /// Each matrix's thin SVD (reused by the scan: one SVD serves every ρ).
    pub svds: Vec<(String, laser_linalg::ThinSvd)>,
    /// Seconds of the gradient pass.
    pub grad_seconds: f64,
    /// Seconds of the SVDs and σ-gradients.
    pub svd_seconds: f64,
}

/// One gradient pass over `items`, then per matrix (rayon across matrices): thin SVD,
/// σ-gradients `g_i = u_iᵀ G v_i`, and the truncation-score curve; each matrix is scored by its
/// best point on the ρ grid.
pub fn rank_matrices(
    model: &Model,
    items: &[crate::task::Item],
    matrices: &[MatrixInfo],
    rhos: &[f32],
    score: TruncationScore,
    micro_batch: usize,
) -> Result<GradientRanking> {
    if let Some(bad) = rhos.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
        return Err(SearchError::Config(format!("ρ value {bad} is outside (0, 1]")));
    }
    let t = Instant::now();
    let names: Vec<String> = matrices.iter().map(|m| m.name.clone()).collect();
    let mut pass = gradient_pass(model, items, &names, micro_batch)?;
    let grad_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    // Each worker copies out one weight and consumes one gradient at a time, so that peak memory
    // holds the SVDs but not a second copy of every matrix and every gradient.
    let work: Vec<(&MatrixInfo, Vec<f32>)> = matrices
        .iter()
        .map(|m| (m, pass.grads.remove(&m.name).expect("gradient of every requested matrix")))
        .collect();
    let results: Vec<Result<(laser_linalg::ThinSvd, Vec<f32>, f64)>> = work
        .into_par_iter()
        .map(|(m, grad)| {
            let [r, c] = m.shape;
            let err = |source| SearchError::Linalg { name: m.name.clone(), source };
            let w = model.matrix(&m.name)?;
            let svd =
                thin_svd_with(MatRef::from_row_major_slice(&w, r, c), Par::Seq).map_err(err)?;
            drop(w);
            let g = sigma_gradient(&svd, MatRef::from_row_major_slice(&grad, r, c)).map_err(err)?;
            let grad_norm = grad.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            Ok((svd, g, grad_norm))
        })
        .collect();
    let mut ranking = Vec::with_capacity(matrices.len());
    let mut svds = Vec::with_capacity(matrices.len());
    for (m, r) in matrices.iter().zip(results) {
        let (svd, g, grad_norm) = r?;
        let curve = truncation_scores(svd.s(), &g, score)
            .map_err(|source| SearchError::Linalg { name: m.name.clone(), source })?;
        let first_order =
            truncation_scores(svd.s(), &g, TruncationScore::FirstOrder).expect("same lengths");
        let [r, c] = m.shape;
        let mut points: Vec<(f64, f32, usize)> = rhos
            .iter()
            .map(|&rho| {
                let k = kept_rank(rho, r, c).expect("checked ρ");
                (curve[k], rho, k)
            })
            .collect();
        // Best score first; equal scores keep grid order (the sort is stable).
        points.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (best, best_rho, k) = points[0];
        ranking.push(MatrixScore {
            name: m.name.clone(),
            layer: m.layer,
            kind: m.kind.name().into(),
            shape: m.shape,
            grad_norm,
            score: best,
            best_rho,
            predicted_delta_loss: -first_order[k],
            rhos_by_score: points.iter().map(|p| p.1).collect(),
        });
        svds.push((m.name.clone(), svd));
    }
    ranking.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
    Ok(GradientRanking {
        ranking,
        loss: pass.loss,
        svds,
        grad_seconds,
        svd_seconds: t.elapsed().as_secs_f64(),
    })
}
