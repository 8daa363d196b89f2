//! The scan's state, shared by the strategies: the model, the evaluator, the candidate log and
//! what this process's part of a (possibly sharded) search is; each candidate evaluated once,
//! from the log when it is there, raced when the rule allows.

use std::path::PathBuf;
use std::time::Instant;

use laser_model::Model;

use super::Progress;
use super::role::Role;
use super::same_weights::{self, EvaluatedWeights};
use crate::candidate::CandidateResult;
use crate::edits::{Edit, EditEngine, put_replacements};
use crate::error::{Result, SearchError};
use crate::eval::{Evaluated, Evaluator};
use crate::log::{CandidateLog, LoggedStop};
use crate::metrics::Metrics;
use crate::race::Racer;
use crate::shard::{Shard, ShardSummary};

/// The state shared by the strategies while they scan.
pub(super) struct Scan<'a> {
    pub(super) progress: &'a dyn Progress,
    pub(super) model: &'a mut Model,
    pub(super) engine: EditEngine,
    pub(super) evaluator: Evaluator,
    pub(super) log: CandidateLog,
    pub(super) candidates: Vec<CandidateResult>,
    pub(super) resumed: usize,
    /// Single edits this process evaluated (not read from a log).
    pub(super) evaluated: usize,
    /// Of those, how many took the metrics of one with the same matrices.
    pub(super) same_matrices: usize,
    pub(super) role: Role,
    /// The output folder (shards and merges share it).
    pub(super) dir: Option<PathBuf>,
    /// Merge with `partial`: candidates no shard logged, with the shard that owns each.
    pub(super) missing: Vec<(usize, String)>,
    /// Single edits in this process's part of the list.
    pub(super) listed: usize,
    /// What this process's evaluations replaced: a candidate that builds the same matrices as
    /// one of them takes its metrics (`same_weights.rs`).
    pub(super) evaluated_weights: EvaluatedWeights,
    /// Exact racing, when the strategy and options allow it.
    pub(super) racer: Option<Racer>,
}

impl Scan<'_> {
    /// Selection metrics of `edits` (from the log when already evaluated). A candidate racing
    /// stopped early gets the metrics of the items it was scored on, and `stopped_after` set.
    pub(super) fn evaluate(&mut self, edits: &[Edit]) -> Result<Metrics> {
        let key = crate::log::candidate_key(edits);
        let evaluated = match self.logged(&key) {
            Some(done) => {
                self.resumed += usize::from(!edits.is_empty());
                tracing::debug!(candidate = %key, "resumed from the log");
                done
            }
            None => {
                if let Role::Merge { .. } = self.role {
                    let why = match self.log.get(&key) {
                        Some((_, LoggedStop::Stopped(by))) => format!(
                            "was stopped by the shards' race ({}), not this merge's ({}); merge with the shards' --select and --race",
                            by.as_deref().unwrap_or("exact"),
                            self.racer.as_ref().map_or_else(|| "none".into(), Racer::context)
                        ),
                        _ => "is in no shard's log".into(),
                    };
                    return Err(SearchError::Config(format!(
                        "candidate {key} {why}; a merge evaluates nothing on the selection split"
                    )));
                }
                if self.progress.stop_requested() {
                    return Err(SearchError::Stopped);
                }
                self.evaluated += usize::from(!edits.is_empty());
                let t = Instant::now();
                let replacements = self.engine.replacements(self.model, edits)?;
                let fingerprint = same_weights::fingerprint(&replacements);
                let same = match edits.is_empty() {
                    true => None,
                    false => self.evaluated_weights.find(
                        &mut self.engine,
                        self.model,
                        fingerprint,
                        &replacements,
                    )?,
                };
                let done = match same {
                    Some((same, done)) => {
                        self.same_matrices += 1;
                        tracing::info!(
                            candidate = %key,
                            same_matrices_as = %crate::log::candidate_key(&same),
                            "builds the same matrices as an evaluated candidate: its metrics"
                        );
                        done
                    }
                    None => {
                        // An edit below the cached layer makes the cache stale; the evaluator
                        // sees that from the model's weight stamp and runs the whole model.
                        if let Err(e) = put_replacements(self.model, replacements) {
                            self.model.restore_all();
                            return Err(e);
                        }
                        // The base model is always scored on every item.
                        let racer = self.racer.as_ref().filter(|_| !edits.is_empty());
                        let done = self.evaluator.evaluate_while(self.model, |partial| {
                            racer.is_none_or(|r| r.can_be_chosen(partial))
                        });
                        self.model.restore_all();
                        let done = done?;
                        if !edits.is_empty() {
                            self.evaluated_weights.insert(fingerprint, edits, &done);
                        }
                        done
                    }
                };
                self.progress.advance();
                tracing::info!(
                    candidate = %key,
                    accuracy = done.metrics.accuracy,
                    logloss = done.metrics.logloss,
                    items = done.metrics.n,
                    complete = done.complete,
                    seconds = t.elapsed().as_secs_f64(),
                    "evaluated"
                );
                let stopped_by = match (done.complete, &self.racer) {
                    (true, _) => None,
                    (false, r) => Some(r.as_ref().map_or_else(String::new, Racer::context)),
                };
                self.log.record(key, edits, &done.metrics, stopped_by)?;
                done
            }
        };
        if !edits.is_empty() {
            // Final for the rule: every item, or (halves rules) the whole choosing half.
            if let Some(r) = &mut self.racer {
                r.finished(&evaluated.metrics);
            }
            self.candidates.push(CandidateResult {
                edits: edits.to_vec(),
                select: evaluated.metrics.clone(),
                stopped_after: (!evaluated.complete).then_some(evaluated.metrics.n),
            });
        }
        Ok(evaluated.metrics)
    }

    /// With confirmation deferred (`race.rs`): the candidate the rule picks on the choosing half,
    /// scored on the confirming half too — the one candidate whose confirming half the rule
    /// reads. Its log record then says complete; a scan resumed after this scores nothing again.
    pub(super) fn confirm_pick(&mut self) -> Result<()> {
        let Some(racer) = self.racer.as_ref().filter(|r| r.defers_confirmation()) else {
            return Ok(());
        };
        let Some(i) = racer.pick_to_confirm(&self.candidates) else {
            return Ok(());
        };
        if self.candidates[i].stopped_after.is_none() {
            return Ok(());
        }
        if self.progress.stop_requested() {
            return Err(SearchError::Stopped);
        }
        let t = Instant::now();
        let edits = self.candidates[i].edits.clone();
        if let Some(low) = super::lowest_layer(self.model, &edits)? {
            self.evaluator.cache_layer(self.model, low)?;
        }
        self.engine.apply(self.model, &edits)?;
        // Only the blocks after those it was scored on (its choosing half).
        let done = match &self.candidates[i].select.items {
            Some(scored) => self.evaluator.evaluate_rest(self.model, scored),
            None => self.evaluator.evaluate(self.model),
        };
        self.model.restore_all();
        let done = done?;
        let key = crate::log::candidate_key(&edits);
        tracing::info!(
            candidate = %key,
            accuracy = done.accuracy,
            logloss = done.logloss,
            seconds = t.elapsed().as_secs_f64(),
            "the choosing half's pick, scored on the confirming half too"
        );
        self.log.record(key, &edits, &done, None)?;
        let pick = &mut self.candidates[i];
        pick.select = done;
        pick.stopped_after = None;
        Ok(())
    }

    /// What the log holds for `key`, when this scan can use it: a candidate stopped early only
    /// by the same race (a scan without racing, or racing under another rule or mode, evaluates
    /// it again).
    fn logged(&self, key: &str) -> Option<Evaluated> {
        let (metrics, stop) = self.log.get(key)?;
        self.usable(stop).then(|| Evaluated {
            metrics: metrics.clone(),
            complete: *stop == LoggedStop::Complete,
        })
    }

    /// Whether [`Scan::logged`] has `key`, without copying its metrics.
    fn is_logged(&self, key: &str) -> bool {
        self.log.get(key).is_some_and(|(_, stop)| self.usable(stop))
    }

    fn usable(&self, stop: &LoggedStop) -> bool {
        match stop {
            LoggedStop::Complete => true,
            LoggedStop::Stopped(by) => {
                self.racer.as_ref().is_some_and(|r| r.honours(by.as_deref()))
            }
        }
    }

    /// What a shard did.
    pub(super) fn summary(&self, shard: Shard, start: Instant) -> ShardSummary {
        ShardSummary {
            shard: shard.to_string(),
            candidates: self.listed,
            evaluated: self.evaluated,
            log: self.dir.clone().unwrap_or_default().join(shard.log_name()),
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// Evaluates single edits, grouped by layer so that each layer's inputs are computed once.
    ///
    /// The sorted list is what shards partition: a shard keeps its positions, a merge keeps the
    /// logged candidates and refuses (or, `partial`, skips and records) the rest.
    pub(super) fn scan_single(&mut self, mut edits: Vec<(usize, Edit)>) -> Result<()> {
        edits.sort_by_key(|(layer, _)| *layer);
        // The rule chooses among the whole list, whichever part this process evaluates.
        if let Some(r) = &mut self.racer {
            r.set_candidates(edits.len());
        }
        let edits: Vec<(usize, Edit)> = match self.role {
            Role::Whole => edits,
            Role::Shard(shard) => edits
                .into_iter()
                .enumerate()
                .filter(|(position, _)| shard.takes(*position))
                .map(|(_, e)| e)
                .collect(),
            Role::Merge { shards, partial } => {
                let mut kept = Vec::with_capacity(edits.len());
                for (position, (layer, edit)) in edits.into_iter().enumerate() {
                    if self.is_logged(&edit.key()) {
                        kept.push((layer, edit));
                    } else {
                        self.missing.push((Shard::owner(shards, position), edit.key()));
                    }
                }
                if !self.missing.is_empty() && !partial {
                    let dir = self.dir.clone().unwrap_or_default();
                    let running = crate::shard::running_shards(
                        &dir,
                        shards,
                        self.missing.iter().map(|(s, _)| *s),
                    );
                    return Err(SearchError::Incomplete {
                        dir,
                        shards: Vec::new(),
                        candidates: std::mem::take(&mut self.missing),
                        running,
                    });
                }
                kept
            }
        };
        self.listed = edits.len();
        self.progress.phase("scan (selection split)", edits.len() as u64);
        for (layer, edit) in edits {
            if !self.is_logged(&edit.key()) {
                self.evaluator.cache_layer(self.model, layer)?;
            }
            self.evaluate(std::slice::from_ref(&edit))?;
        }
        Ok(())
    }
}
