//! The greedy strategies, which accept edits one after another on the selection split: compose
//! (the gradient scan's single edits stacked by merit) and mp (Marchenko–Pastur ranks from the
//! last layer down).

use laser_linalg::faer::MatRef;
use laser_linalg::{NoiseEstimator, mp_rank};
use laser_model::MatrixInfo;
use rayon::prelude::*;

use super::Scan;
use crate::candidate::CandidateResult;
use crate::edits::{Edit, EditList};
use crate::error::{Result, SearchError};
use crate::metrics::Metrics;
use crate::report::MatrixScore;

/// Greedy stacking: single edits in order of selection merit (one per matrix, only those that beat
/// the base model), each kept while selection accuracy does not drop; stops at the first drop.
pub(super) fn compose(scan: &mut Scan<'_>, base: &Metrics) -> Result<(Vec<Edit>, Metrics)> {
    let mut singles: Vec<CandidateResult> =
        scan.candidates.iter().filter(|c| c.select.better_than(base)).cloned().collect();
    singles.sort_by(|a, b| {
        b.select
            .accuracy
            .total_cmp(&a.select.accuracy)
            .then(a.select.logloss.total_cmp(&b.select.logloss))
            .then(EditList::key(&a.edits).cmp(&EditList::key(&b.edits)))
    });
    let mut chosen: Vec<Edit> = Vec::new();
    let mut current = base.clone();
    scan.evaluator.clear_cache();
    for c in singles {
        let e = &c.edits[0];
        if chosen.iter().any(|x| x.name == e.name) {
            continue;
        }
        let mut trial = chosen.clone();
        trial.push(e.clone());
        let m = if chosen.is_empty() { c.select.clone() } else { scan.evaluate(&trial)? };
        if m.accuracy < current.accuracy {
            break;
        }
        chosen = trial;
        current = m;
    }
    Ok((chosen, current))
}

/// laserRMT-style: each matrix's Marchenko–Pastur rank as its edit, from the last layer down,
/// kept when selection metrics are not worse than the current state.
pub(super) fn marchenko_pastur(
    scan: &mut Scan<'_>,
    matrices: &[MatrixInfo],
    base: &Metrics,
    ranking: &mut Vec<MatrixScore>,
) -> Result<(Vec<Edit>, Metrics)> {
    let weights: Vec<Vec<f32>> =
        matrices.iter().map(|m| scan.model.matrix(&m.name)).collect::<laser_model::Result<_>>()?;
    let spectra: Vec<Result<Vec<f32>>> = matrices
        .par_iter()
        .zip(&weights)
        .map(|(m, w)| {
            let [r, c] = m.shape;
            laser_linalg::singular_values(MatRef::from_row_major_slice(w, r, c))
                .map_err(|source| SearchError::Linalg { name: m.name.clone(), source })
        })
        .collect();
    let mut order: Vec<(MatrixInfo, f32)> = Vec::new();
    for (m, s) in matrices.iter().zip(spectra) {
        let s = s?;
        let [r, c] = m.shape;
        let est = mp_rank(&s, r, c, NoiseEstimator::MedianMp)
            .map_err(|source| SearchError::Linalg { name: m.name.clone(), source })?;
        let rho = (est.rank.max(1) as f32 / r.min(c) as f32).min(1.0);
        ranking.push(MatrixScore {
            name: m.name.clone(),
            layer: m.layer,
            kind: m.kind.name().into(),
            shape: m.shape,
            grad_norm: 0.0,
            score: 1.0 - f64::from(rho),
            best_rho: rho,
            predicted_delta_loss: 0.0,
            rhos_by_score: Vec::new(),
        });
        if rho < 1.0 {
            order.push((m.clone(), rho));
        }
    }
    order.sort_by(|a, b| b.0.layer.cmp(&a.0.layer).then(a.0.name.cmp(&b.0.name)));
    let mut chosen: Vec<Edit> = Vec::new();
    let mut current = base.clone();
    for (m, rho) in order {
        // Accepted edits sit at or above this layer: the base states entering it are still valid.
        scan.evaluator.cache_layer(scan.model, m.layer)?;
        let mut trial = chosen.clone();
        trial.push(Edit::svd(m.name.clone(), rho));
        let metrics = scan.evaluate(&trial)?;
        if !current.better_than(&metrics) {
            chosen = trial;
            current = metrics;
        }
    }
    Ok((chosen, current))
}
