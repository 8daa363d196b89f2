//! The gradient strategy's ranking: one gradient pass on the selection items, then per matrix its
//! thin SVD, σ-gradients `g_i = u_iᵀ G v_i` and truncation-score curve ("Compress to Impress").
//!
//! The ranking streams: each matrix's SVD lives only while its σ-gradients are computed, and only
//! σ and g are kept (U and V of every matrix would cost more than the weights). The scan
//! recomputes the thin SVD of the few matrices it edits with [`matrix_svd`], the same call, so
//! its edits are bit-identical to those built from SVDs kept from the ranking.

use std::time::Instant;

use laser_linalg::faer::{MatRef, Par};
use laser_linalg::{
    ThinSvd, TruncationScore, kept_rank, sigma_gradient, thin_svd_with, truncation_scores,
};
use laser_model::{MatrixInfo, Model};
use rayon::prelude::*;

use crate::error::{Result, SearchError};
use crate::gradient_pass::gradient_pass;
use crate::report::MatrixScore;

/// The outcome of [`rank_matrices`].
#[derive(Debug, Clone)]
pub struct GradientRanking {
    /// Every matrix, best first.
    pub ranking: Vec<MatrixScore>,
    /// Mean gold-answer NLL of the gradient pass.
    pub loss: f64,
    /// Seconds of the gradient pass.
    pub grad_seconds: f64,
    /// Seconds of the SVDs and σ-gradients.
    pub svd_seconds: f64,
    /// Every matrix's spectrum, σ-gradients and truncation-score curve, in `ranking`'s order.
    pub spectra: Vec<MatrixSpectrum>,
}

/// One ranked matrix's singular values σ (descending), their gradients `g_i = u_iᵀ G v_i`, and
/// the truncation score of keeping each rank k = 0..=len(σ) (`scores[k]`).
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSpectrum {
    /// HF name.
    pub name: String,
    /// Singular values.
    pub sigma: Vec<f32>,
    /// Their gradients.
    pub grad: Vec<f32>,
    /// The truncation-score curve over kept ranks.
    pub scores: Vec<f64>,
}

/// What the ranking keeps of one matrix: its singular values, their gradients `g_i = u_iᵀ G v_i`
/// and `‖G‖_F`.
struct SpectrumAndGradient {
    s: Vec<f32>,
    g: Vec<f32>,
    grad_norm: f64,
}

/// The thin SVD of `matrix`'s current weights, computed single-threaded (callers parallelise
/// across matrices): the ranking's call, which the scan repeats for the matrices it edits.
pub fn matrix_svd(model: &Model, matrix: &MatrixInfo) -> Result<ThinSvd> {
    let [r, c] = matrix.shape;
    let w = model.matrix(&matrix.name)?;
    thin_svd_with(MatRef::from_row_major_slice(&w, r, c), Par::Seq)
        .map_err(|source| SearchError::Linalg { name: matrix.name.clone(), source })
}

/// The matrices split into `groups` runs of whole layers (as even as the layer count allows), in
/// their given order.
fn layer_groups(matrices: &[MatrixInfo], groups: usize) -> Vec<Vec<&MatrixInfo>> {
    let mut layers: Vec<usize> = matrices.iter().map(|m| m.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    let per = layers.len().div_ceil(groups.max(1)).max(1);
    let group_of = |layer: usize| layers.binary_search(&layer).unwrap_or(0) / per;
    // At least one group, so that a pass (and its loss) runs even for no matrices.
    let mut out: Vec<Vec<&MatrixInfo>> = vec![Vec::new(); layers.len().div_ceil(per).max(1)];
    for m in matrices {
        out[group_of(m.layer)].push(m);
    }
    out
}

/// Gradient passes over `items`, then per matrix (rayon across matrices): thin SVD,
/// σ-gradients `g_i = u_iᵀ G v_i`, and the truncation-score curve; each matrix is scored by its
/// best point on the ρ grid.
///
/// With `grad_groups` G > 1 the gradient pass runs G times, each accumulating ∂L/∂W for one run of
/// layers only, so the gradient accumulators held at once shrink by G while the passes cost G
/// times the time; the gradients, and so the ranking, are those of one pass.
pub fn rank_matrices(
    model: &Model,
    items: &[crate::task::Item],
    matrices: &[MatrixInfo],
    rhos: &[f32],
    score: TruncationScore,
    micro_batch: usize,
    grad_groups: usize,
) -> Result<GradientRanking> {
    if let Some(bad) = rhos.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
        return Err(SearchError::option("rhos", format!("{bad} is outside (0, 1]")));
    }
    let layers = model.config().num_layers;
    if grad_groups == 0 || grad_groups > layers {
        return Err(SearchError::option(
            "grad_groups",
            format!("{grad_groups} is not between 1 and the model's {layers} layers"),
        ));
    }
    let (mut grad_seconds, mut svd_seconds) = (0.0, 0.0);
    let mut loss = None;
    let mut results: Vec<(&MatrixInfo, Result<SpectrumAndGradient>)> =
        Vec::with_capacity(matrices.len());
    for group in layer_groups(matrices, grad_groups) {
        let t = Instant::now();
        let names: Vec<String> = group.iter().map(|m| m.name.clone()).collect();
        let mut pass = gradient_pass(model, items, &names, micro_batch)?;
        loss.get_or_insert(pass.loss);
        grad_seconds += t.elapsed().as_secs_f64();
        let t = Instant::now();
        // Each worker copies out one weight, consumes one gradient and keeps only σ and g: at
        // any time as many SVDs exist as there are workers, never one per matrix.
        let work: Vec<(&MatrixInfo, Vec<f32>)> = group
            .iter()
            .map(|&m| (m, pass.grads.remove(&m.name).expect("gradient of every requested matrix")))
            .collect();
        results.extend(
            work.into_par_iter()
                .map(|(m, grad)| (m, spectrum_and_gradient(model, m, &grad)))
                .collect::<Vec<_>>(),
        );
        svd_seconds += t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let mut ranking = Vec::with_capacity(matrices.len());
    let mut spectra = Vec::with_capacity(matrices.len());
    for (m, r) in results {
        let SpectrumAndGradient { s, g, grad_norm } = r?;
        let curve = truncation_scores(&s, &g, score)
            .map_err(|source| SearchError::Linalg { name: m.name.clone(), source })?;
        let first_order =
            truncation_scores(&s, &g, TruncationScore::FirstOrder).expect("same lengths");
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
        spectra.push(MatrixSpectrum { name: m.name.clone(), sigma: s, grad: g, scores: curve });
    }
    ranking.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
    let position = |name: &str| ranking.iter().position(|r| r.name == name).unwrap_or(usize::MAX);
    spectra.sort_by_key(|x| position(&x.name));
    Ok(GradientRanking {
        ranking,
        loss: loss.expect("at least one pass ran"),
        grad_seconds,
        svd_seconds: svd_seconds + t.elapsed().as_secs_f64(),
        spectra,
    })
}

/// One matrix's σ, σ-gradients and ‖G‖_F from its gradient `grad` (row-major, HF orientation).
fn spectrum_and_gradient(
    model: &Model,
    m: &MatrixInfo,
    grad: &[f32],
) -> Result<SpectrumAndGradient> {
    let [r, c] = m.shape;
    let svd = matrix_svd(model, m)?;
    let g = sigma_gradient(&svd, MatRef::from_row_major_slice(grad, r, c))
        .map_err(|source| SearchError::Linalg { name: m.name.clone(), source })?;
    let grad_norm = grad.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    Ok(SpectrumAndGradient { s: svd.s().to_vec(), g, grad_norm })
}
