//! The four search strategies over one model and task:
//!
//! - [`Strategy::Exhaustive`] — LASER (Sharma et al. 2023): every (layer, kind, ρ, factor) in the
//!   grid, best by selection accuracy, ties by log-loss.
//! - [`Strategy::Gradient`] — "Compress to Impress" (Sreeram et al. 2025): one gradient pass on
//!   the selection items, σ-gradients of every matrix, matrices ranked by a truncation score, and
//!   only the top K scanned over ρ × factorizations.
//! - [`Strategy::Compose`] — LASER's `laser_compose`: the gradient scan's single edits, stacked
//!   greedily in order of merit while selection accuracy does not drop.
//! - [`Strategy::Mp`] — a Marchenko–Pastur rank for every matrix, accepted greedily from the last
//!   layer down when selection metrics do not get worse (laserRMT's procedure).
//!
//! The gradient and exhaustive strategies turn their scanned single edits into a recommendation
//! with a named [`SelectRule`] (`select.rs`); "no edit" is a valid outcome. With
//! [`Race::Exact`] their scan stops evaluating a candidate once the rule can no longer choose it
//! (`race.rs`): the same recommendation for a fraction of the evaluations; [`Race::Statistical`]
//! (the default) stops the candidates a 99% interval of their results so far rules out, far
//! sooner, at the risk of another recommendation than a full scan's. Only selection items are ever scored while
//! choosing; the test split is evaluated once, for the base model and for the chosen edits, at the
//! end (and, with [`SearchConfig::compare_rules`], for every rule's choice, as a diagnostic that
//! never feeds back into the choice).

mod choice;
pub(crate) mod config;
mod gradient;
mod greedy;
mod role;
mod same_weights;
mod scan;

use std::time::Instant;

use laser_model::{MatrixInfo, Model, Pass};

pub use choice::SOUND_LOGLOSS_RATIO;
use choice::{chosen_or_base, compare_rules, score_test_split};
use config::validate;
pub use config::{SearchConfig, Strategy};
use gradient::rank_by_gradient;
pub use gradient::ranking_identity;
use greedy::{compose, marchenko_pastur};
use role::Role;
use same_weights::EvaluatedWeights;
use scan::Scan;

use crate::candidate::CandidateResult;
use crate::edits::{Edit, EditEngine};
use crate::error::{Result, SearchError};
use crate::eval::Evaluator;
use crate::interval::AccuracyDelta;
use crate::metrics::Metrics;
use crate::race::{Race, Racer, race_parts};
use crate::report::{Best, MatrixScore, SearchReport, Seconds, SplitMetrics};
use crate::select::{SelectRule, Selection, select};
use crate::shard::{Shard, ShardSpec, ShardSummary};
use crate::split::Split;
use crate::task::Task;

/// Progress reports from a running search (the CLI draws bars from them).
pub trait Progress {
    /// A phase starts with `total` steps.
    fn phase(&self, _name: &str, _total: u64) {}
    /// One step of the current phase is done.
    fn advance(&self) {}
    /// Whether to stop at the next candidate boundary (e.g. after SIGINT): the run then returns
    /// [`SearchError::Stopped`] with every finished candidate logged.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// What a run produced.
enum Outcome {
    /// The report, and the engine that holds the scan's SVDs (adapt rebuilds the chosen edits
    /// from them).
    Report(Box<SearchReport>, EditEngine),
    Shard(ShardSummary),
}

/// The lowest layer any of `edits` touches (`None` for no edits): base-model states entering it
/// are still valid under the edits.
fn lowest_layer(model: &Model, edits: &[Edit]) -> Result<Option<usize>> {
    let layers = edits
        .iter()
        .map(|e| model.matrix_info(&e.name).map(|m| m.layer))
        .collect::<laser_model::Result<Vec<_>>>()?;
    Ok(layers.into_iter().min())
}

/// The checks of `cfg` that need only the model: its options, and that its layers and kinds name
/// matrices. Shards and suites run them before they write anything (issue 31: a typo must not
/// leave a shard record or a locked folder behind).
pub(crate) fn check_settings(model: &Model, cfg: &SearchConfig) -> Result<()> {
    validate(cfg, model)?;
    let matrices = filtered_matrices(model, cfg)?;
    config::check_cluster_counts(&matrices, &cfg.factors)
}

/// [`check_settings`], and the checks that also need the task: the split fits it, and a ranking
/// file (`cfg.ranking_file`) is this search's.
pub(crate) fn check_run(model: &Model, task: &Task, cfg: &SearchConfig) -> Result<()> {
    check_settings(model, cfg)?;
    Split::new(task.items.len(), cfg.n, cfg.seed)?;
    gradient::check_ranking_file(model, task, &filtered_matrices(model, cfg)?, cfg)
}

fn filtered_matrices(model: &Model, cfg: &SearchConfig) -> Result<Vec<MatrixInfo>> {
    let ms: Vec<MatrixInfo> = model
        .matrices()
        .iter()
        .filter(|m| cfg.layers.is_none_or(|(lo, hi)| m.layer >= lo && m.layer <= hi))
        .filter(|m| cfg.kinds.as_ref().is_none_or(|ks| ks.contains(&m.kind)))
        .cloned()
        .collect();
    if ms.is_empty() {
        return Err(SearchError::option(
            "layers",
            "no matrix of this model is in these layers and kinds",
        ));
    }
    Ok(ms)
}

/// The identity written at the head of the candidate log.
fn identity(model: &Model, task: &Task, cfg: &SearchConfig) -> serde_json::Value {
    let mut id = serde_json::json!({
        "model": model.source().display().to_string(),
        "task": task.path.display().to_string(),
        "items": task.items.len(),
        "items_digest": task.content_digest(),
        "n": cfg.n,
        "seed": cfg.seed,
        "edited": model.edited(),
        // Version 2 logs hold per-item results, which the selection rules need.
        "log_version": 2,
    });
    // Truncated prompts are other items, bf16 weights another model; the keys are absent for
    // the defaults, so older logs resume.
    if let Some(side) = cfg.truncate {
        id["truncate"] = side.name().into();
    }
    if model.matrix_dtype() != laser_model::WeightDtype::F32 {
        id["dtype"] = model.matrix_dtype().name().into();
    }
    // A stopped candidate's results are read in the order its blocks were scored (the pick a
    // halves rule confirms continues from them), and that order depends on the block size.
    if cfg.race_block != crate::race::RACE_BLOCK {
        id["race_block"] = cfg.race_block.into();
    }
    id
}

/// Runs a search. The model is left unedited; apply `report.best.edits` to adapt it.
pub fn run_search(model: &mut Model, task: &Task, cfg: &SearchConfig) -> Result<SearchReport> {
    run_search_with_progress(model, task, cfg, &NoProgress)
}

/// [`run_search`] reporting progress.
pub fn run_search_with_progress(
    model: &mut Model,
    task: &Task,
    cfg: &SearchConfig,
    progress: &dyn Progress,
) -> Result<SearchReport> {
    search_keeping_svds(model, task, cfg, progress).map(|(r, _)| r)
}

/// [`run_search_with_progress`], also handing back the engine with the scan's SVDs, so that the
/// chosen edits are applied without computing them again.
pub(crate) fn search_keeping_svds(
    model: &mut Model,
    task: &Task,
    cfg: &SearchConfig,
    progress: &dyn Progress,
) -> Result<(SearchReport, EditEngine)> {
    match search(model, task, cfg, Role::Whole, progress)? {
        Outcome::Report(r, engine) => Ok((*r, engine)),
        Outcome::Shard(_) => Err(SearchError::Config("a whole search ended as a shard".into())),
    }
}

/// Runs part `shard` of a search split across processes that share `cfg.out` (`shard.rs`):
/// records the search in the folder (refusing one that holds another), evaluates the base model
/// and this shard's candidates into its own log, and stops; [`merge_search`] finishes. Rerun
/// after a failure, it resumes its log. Exhaustive and gradient strategies only.
pub fn run_search_shard(
    model: &mut Model,
    task: &Task,
    cfg: &SearchConfig,
    shard: Shard,
    progress: &dyn Progress,
) -> Result<ShardSummary> {
    let dir = role::shard_dir(cfg)?;
    // Everything the search would refuse, refused before the folder is touched.
    check_run(model, task, cfg)?;
    ShardSpec {
        model: model.source().to_owned(),
        dtype: model.matrix_dtype(),
        task: task.path.clone(),
        shards: shard.count(),
        // Where it is recorded and where a ranking came from are not what is searched.
        config: SearchConfig { out: None, ranking_file: None, ..cfg.clone() },
    }
    .record(dir)?;
    match search(model, task, cfg, Role::Shard(shard), progress)? {
        Outcome::Shard(summary) => Ok(summary),
        Outcome::Report(..) => Err(SearchError::Config("a shard ended as a whole search".into())),
    }
}

/// Finishes a sharded search from its folder `cfg.out`: every candidate from the shards' logs
/// (nothing is evaluated on the selection split), then the selection rule and the test split as
/// a single process would, for the same report. Missing shards or candidates are an error
/// listing them, unless `partial` (the report then lists the candidates it lacked).
pub fn merge_search(
    model: &mut Model,
    task: &Task,
    cfg: &SearchConfig,
    shards: usize,
    partial: bool,
    progress: &dyn Progress,
) -> Result<SearchReport> {
    match search(model, task, cfg, Role::Merge { shards, partial }, progress)? {
        Outcome::Report(r, _) => Ok(*r),
        Outcome::Shard(_) => Err(SearchError::Config("a merge ended as a shard".into())),
    }
}

/// The single edits of `matrices` × `cfg.rhos` × `cfg.factors`, with each one's layer.
fn grid(matrices: &[MatrixInfo], cfg: &SearchConfig) -> Vec<(usize, Edit)> {
    matrices
        .iter()
        .flat_map(|m| {
            cfg.rhos.iter().flat_map(move |&rho| {
                cfg.factors
                    .iter()
                    .map(move |&factor| (m.layer, Edit::new(m.name.clone(), rho, factor, cfg.seed)))
            })
        })
        .collect()
}

/// The gradient strategies' shortlist: the top `cfg.top_k` matrices of `ranking`, each with its
/// best `cfg.rhos_per_matrix` ρ by predicted score, × the factorizations.
fn shortlist(
    ranking: &[MatrixScore],
    matrices: &[MatrixInfo],
    cfg: &SearchConfig,
) -> Vec<(usize, Edit)> {
    let keep = cfg.rhos_per_matrix.unwrap_or(usize::MAX);
    ranking
        .iter()
        .take(cfg.top_k)
        .flat_map(|s| {
            let m = matrices.iter().find(|m| m.name == s.name).expect("ranked from these");
            grid(std::slice::from_ref(m), cfg)
                .into_iter()
                .filter(|(_, e)| s.rhos_by_score.iter().take(keep).any(|&x| x == e.rho))
        })
        .collect()
}

/// Checkpoints for the base model's selection pass (it runs after the ranking, so that it knows
/// where the scan's candidates start): the states entering each layer a candidate edits, which
/// that pass computes on its way up anyway, kept so that moving the layer cache up to it costs
/// nothing instead of running every batch from the embeddings again. Kept within what the
/// gradient pass's accumulators held (the memory budget set that aside; they are gone by then),
/// the highest layers first.
fn keep_base_states(scan: &mut Scan<'_>, singles: &[(usize, Edit)], cfg: &SearchConfig) {
    let layers: Vec<usize> = singles.iter().map(|(layer, _)| *layer).collect();
    let room = scan.model.matrix_bytes() / cfg.grad_groups.max(1) as u64;
    let kept = scan.evaluator.keep_states_at(scan.model, &layers, room);
    tracing::debug!(
        layers = ?kept,
        bytes = kept.len() as u64 * scan.evaluator.checkpoint_bytes(scan.model),
        "base pass keeps the states entering the candidates' layers"
    );
}

fn search(
    model: &mut Model,
    task: &Task,
    cfg: &SearchConfig,
    role: Role,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let start = Instant::now();
    check_settings(model, cfg)?;
    if role != Role::Whole && matches!(cfg.strategy, Strategy::Compose | Strategy::Mp) {
        return Err(SearchError::option(
            "shard",
            format!(
                "the {} strategy accepts edits one after another and cannot be split across processes; shard the exhaustive or gradient strategy",
                cfg.strategy
            ),
        ));
    }
    // Only the gradient pass's sequences need to fit its (larger) activation estimate.
    let pass = match cfg.strategy {
        Strategy::Gradient | Strategy::Compose => Pass::Gradient,
        Strategy::Exhaustive | Strategy::Mp => Pass::Forward,
    };
    let fitted = crate::fit::fitted(model, task, cfg.truncate, pass)?;
    let task = &*fitted;
    if !model.edited().is_empty() {
        return Err(SearchError::Config(
            "the model already has edits; search starts from the loaded model".into(),
        ));
    }
    let mut split = Split::new(task.items.len(), cfg.n, cfg.seed)?;
    if let Some(cap) = cfg.test_max {
        split.test.truncate(cap);
    }
    let select_items = Split::items(task, &split.select);
    let matrices = filtered_matrices(model, cfg)?;
    gradient::check_ranking_file(model, task, &matrices, cfg)?;
    let (log, _merge_lock) = role.open_log(cfg, &identity(model, task, cfg))?;
    // The selection items are scored in racing blocks whether or not this scan races, so that
    // racing changes which candidates are scored on every item, never a metric.
    let parts = race_parts(select_items.len(), cfg.select);
    let evaluator =
        Evaluator::in_blocks(model, &select_items, cfg.batch_tokens, &parts, cfg.race_block)?;
    let blocks = evaluator.blocks();
    // Compose and mp accept edits by their own procedure, and a rule comparison chooses among
    // subsets of the candidates: they need every candidate's full metrics.
    let racing = cfg.race != Race::Off
        && !cfg.compare_rules
        && matches!(cfg.strategy, Strategy::Gradient | Strategy::Exhaustive);
    let mut secs = Seconds::default();
    let mut scan = Scan {
        progress,
        model,
        engine: EditEngine::new(cfg.seed),
        evaluator,
        log,
        candidates: Vec::new(),
        resumed: 0,
        evaluated: 0,
        same_matrices: 0,
        role,
        dir: cfg.out.clone(),
        missing: Vec::new(),
        listed: 0,
        evaluated_weights: EvaluatedWeights::default(),
        // A shard cannot know the other shards' pick: it scores every leader on every item.
        racer: racing.then(|| {
            Racer::with_mode(cfg.select, cfg.race, &blocks, 0)
                .defer_confirmation(matches!(role, Role::Whole))
        }),
    };

    // The single edits to scan: the whole grid, or the gradient ranking's shortlist (mp ranks
    // and accepts its own way, below).
    let mut ranking = Vec::new();
    let mut gradient_loss = None;
    let singles = match cfg.strategy {
        Strategy::Exhaustive => grid(&matrices, cfg),
        Strategy::Gradient | Strategy::Compose => {
            let (r, loss) =
                rank_by_gradient(&mut scan, task, &select_items, &matrices, cfg, &mut secs)?;
            gradient_loss = Some(loss);
            ranking = r;
            let singles = shortlist(&ranking, &matrices, cfg);
            keep_base_states(&mut scan, &singles, cfg);
            singles
        }
        Strategy::Mp => Vec::new(),
    };

    let t = Instant::now();
    // Its own phase, so that logs tell it from the gradient pass before it and the scan after.
    scan.progress.phase("base model (selection split)", 1);
    let base_select = scan.evaluate(&[])?;
    if let Some(r) = &mut scan.racer {
        r.set_base(&base_select);
    }
    if cfg.strategy != Strategy::Mp {
        scan.scan_single(singles)?;
        scan.confirm_pick()?;
    }
    // A shard's part ends with its candidates logged: choosing is the merge's.
    if let Role::Shard(shard) = role {
        return Ok(Outcome::Shard(scan.summary(shard, start)));
    }
    let mut selection = None;
    let (best_edits, best_select): (Vec<Edit>, Metrics) = match cfg.strategy {
        Strategy::Exhaustive | Strategy::Gradient => {
            let s = select(cfg.select, &base_select, &scan.candidates);
            let chosen = chosen_or_base(&s, &scan.candidates, &base_select);
            selection = Some(s);
            chosen
        }
        Strategy::Compose => compose(&mut scan, &base_select)?,
        Strategy::Mp => marchenko_pastur(&mut scan, &matrices, &base_select, &mut ranking)?,
    };
    secs.scan = t.elapsed().as_secs_f64();
    // Compose and mp accept edits greedily; their procedure is the rule.
    let selection = selection.unwrap_or_else(|| Selection {
        rule: SelectRule::Laser,
        chosen: None,
        p_value: None,
        reason: if best_edits.is_empty() {
            "no combination beat the base model on the selection split".into()
        } else {
            format!("{} edits accepted greedily on the selection split", cfg.strategy.name())
        },
    });
    let mut rules = if cfg.compare_rules {
        compare_rules(&scan.candidates, &base_select, &cfg.factors)
    } else {
        Vec::new()
    };

    // The test split, once, at the end.
    let t = Instant::now();
    let test_items = Split::items(task, &split.test);
    let tested = score_test_split(&mut scan, &test_items, cfg, &best_edits, &mut rules)?;
    let delta = tested
        .base
        .as_ref()
        .zip(tested.best.as_ref())
        .and_then(|(b, a)| AccuracyDelta::between(b, a));
    secs.test = t.elapsed().as_secs_f64();
    secs.total = start.elapsed().as_secs_f64();
    let sizes =
        best_edits.iter().map(|e| scan.engine.size(scan.model, e)).collect::<Result<Vec<_>>>()?;
    let candidates_evaluated = scan.candidates.len();
    let candidates_stopped = scan.candidates.iter().filter(|c| c.stopped_after.is_some()).count();
    // The log keeps every candidate's per-item results; the report keeps its aggregates.
    let candidates = scan
        .candidates
        .into_iter()
        .map(|c| CandidateResult { select: Metrics { items: None, ..c.select }, ..c })
        .collect();
    let incomplete = scan.missing.iter().map(|(_, key)| key.clone()).collect();
    let report = Box::new(SearchReport {
        strategy: cfg.strategy,
        task: task.path.display().to_string(),
        task_format: task.format.name().into(),
        truncated: task.truncated,
        ill_posed: task.ill_posed,
        model: scan.model.source().display().to_string(),
        base: SplitMetrics { select: base_select, test: tested.base },
        best: Best { select: best_select, test: tested.best, edits: best_edits, sizes },
        selection,
        delta,
        balanced_delta: tested.balanced,
        rules,
        ceiling: tested.ceiling,
        sound_ceiling: tested.sound_ceiling,
        candidates_evaluated,
        candidates_resumed: scan.resumed,
        candidates_same_matrices: scan.same_matrices,
        candidates_stopped,
        race: if scan.racer.is_some() { cfg.race } else { Race::Off },
        candidates,
        ranking,
        gradient_loss,
        seconds: secs,
        incomplete,
    });
    Ok(Outcome::Report(report, scan.engine))
}
