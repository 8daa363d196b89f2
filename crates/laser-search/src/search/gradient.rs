//! Where the gradient strategy's ranking comes from: a ranking file (`laser grad --out`), the
//! ranking a sharded search published in its folder, or the gradient pass itself; then the SVDs
//! of the matrices the scan will edit.

use std::time::Instant;

use laser_model::{MatrixInfo, Model};
use rayon::prelude::*;

use super::role::{Role, shard_dir};
use super::{Scan, SearchConfig};
use crate::error::{Result, SearchError};
use crate::fit::Truncate;
use crate::ranking::{GradientRanking, rank_matrices};
use crate::report::{MatrixScore, Seconds};
use crate::shard::{RANKING_FILE, RankingFile};
use crate::task::Task;

/// The inputs a gradient ranking depends on: a ranking file is read only by a search of the
/// same ones.
pub fn ranking_identity(model: &Model, task: &Task, cfg: &SearchConfig) -> serde_json::Value {
    serde_json::json!({
        "model": model.source().display().to_string(),
        "task": task.path.display().to_string(),
        "items": task.items.len(),
        "items_digest": task.content_digest(),
        "n": cfg.n,
        "seed": cfg.seed,
        "truncate": cfg.truncate.map(Truncate::name),
        "score": cfg.score.name(),
        "rhos": cfg.rhos,
        "micro_batch": cfg.micro_batch,
        "dtype": model.matrix_dtype().name(),
    })
}

/// The gradient ranking of `matrices`: from `cfg.ranking_file` when given; in a sharded search
/// from the folder's `ranking.json` (the first shard to finish its gradient pass publishes it,
/// and a later one must agree); otherwise computed.
fn gradient_ranking(
    scan: &mut Scan<'_>,
    task: &Task,
    items: &[crate::task::Item],
    matrices: &[MatrixInfo],
    cfg: &SearchConfig,
) -> Result<GradientRanking> {
    let identity = ranking_identity(scan.model, task, cfg);
    let shared = match scan.role {
        Role::Whole => None,
        Role::Shard(_) | Role::Merge { .. } => Some(shard_dir(cfg)?.join(RANKING_FILE)),
    };
    let from_file = |path: &std::path::Path| ranking_from_file(path, &identity, matrices);
    if let Some(path) = &cfg.ranking_file {
        return from_file(path);
    }
    if let Some(path) = shared.as_ref().filter(|p| p.exists()) {
        return from_file(path);
    }
    if let Role::Merge { .. } = scan.role {
        let path = shared.unwrap_or_default();
        return Err(SearchError::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no shard published its ranking"),
        ));
    }
    let r = rank_matrices(
        scan.model,
        items,
        matrices,
        &cfg.rhos,
        cfg.score,
        cfg.micro_batch,
        cfg.grad_groups,
    )?;
    if let Some(path) = shared {
        let ours = RankingFile { identity, loss: r.loss, ranking: r.ranking.clone() };
        let published = ours.publish(&path)?;
        if published != ours {
            return Err(SearchError::Log {
                path,
                line: None,
                message: "another shard computed a different ranking (different hardware or \
                          thread counts?); run `laser grad --out` once and pass its ranking to \
                          every shard"
                    .into(),
            });
        }
    }
    Ok(r)
}

/// The ranking in the file at `path`, for the search whose inputs are `identity`, restricted
/// to `matrices` (it must score every one of them).
fn ranking_from_file(
    path: &std::path::Path,
    identity: &serde_json::Value,
    matrices: &[MatrixInfo],
) -> Result<GradientRanking> {
    let file = RankingFile::read(path, identity)?;
    let mut ranking = file.ranking;
    ranking.retain(|s| matrices.iter().any(|m| m.name == s.name));
    if let Some(m) = matrices.iter().find(|m| !ranking.iter().any(|s| s.name == m.name)) {
        return Err(SearchError::Log {
            path: path.to_owned(),
            line: None,
            message: format!("the ranking has no score for {}", m.name),
        });
    }
    Ok(GradientRanking {
        ranking,
        loss: file.loss,
        grad_seconds: 0.0,
        svd_seconds: 0.0,
        spectra: Vec::new(),
    })
}

/// Refuses a `cfg.ranking_file` this search could not use (unreadable, another search's, or
/// missing a matrix), before anything is written.
pub(super) fn check_ranking_file(
    model: &Model,
    task: &Task,
    matrices: &[MatrixInfo],
    cfg: &SearchConfig,
) -> Result<()> {
    match &cfg.ranking_file {
        Some(path) => {
            ranking_from_file(path, &ranking_identity(model, task, cfg), matrices).map(|_| ())
        }
        None => Ok(()),
    }
}

pub(super) fn rank_by_gradient(
    scan: &mut Scan<'_>,
    task: &Task,
    items: &[crate::task::Item],
    matrices: &[MatrixInfo],
    cfg: &SearchConfig,
    secs: &mut Seconds,
) -> Result<(Vec<MatrixScore>, f64)> {
    scan.progress.phase("gradient pass + SVDs", 1);
    // What was freed before (loading, the evaluation layout; a selection pass, where one ran
    // first) is kept sized for its own blocks; the gradient pass's would land beside it
    // (`laser_model::allocator`).
    laser_model::allocator::release_freed_memory();
    let r = gradient_ranking(scan, task, items, matrices, cfg)?;
    scan.progress.advance();
    tracing::info!(
        samples = items.len(),
        loss = r.loss,
        grad_seconds = r.grad_seconds,
        svd_seconds = r.svd_seconds,
        "gradient pass and σ-gradients"
    );
    for s in r.ranking.iter().take(cfg.top_k) {
        tracing::info!(matrix = %s.name, score = s.score, best_rho = s.best_rho, "top matrix");
    }
    secs.grad = r.grad_seconds;
    // The ranking kept σ and g only; the matrices the scan edits get their SVDs again, by the
    // ranking's own call (bit-identical), in parallel across matrices.
    let t = Instant::now();
    let scanned: Vec<&MatrixInfo> = r
        .ranking
        .iter()
        .take(cfg.top_k)
        .filter_map(|s| matrices.iter().find(|m| m.name == s.name))
        .collect();
    let model = &*scan.model;
    let svds: Vec<Result<laser_linalg::ThinSvd>> =
        scanned.par_iter().map(|m| crate::ranking::matrix_svd(model, m)).collect();
    for (m, svd) in scanned.iter().zip(svds) {
        scan.engine.insert_svd(&m.name, svd?);
    }
    secs.svd = r.svd_seconds + t.elapsed().as_secs_f64();
    // The pass's graphs and accumulators are gone; what the allocator kept of them would sit
    // under the base model's selection pass, the scan's and the test split's own blocks
    // (`laser_model::allocator`).
    laser_model::allocator::release_freed_memory();
    Ok((r.ranking, r.loss))
}
