//! The shapes a search reports: metrics per split, the chosen edits, every candidate, the matrix
//! ranking, phase times, and (with a rule comparison) what each selection rule would have chosen.

use serde::{Deserialize, Serialize};

use crate::candidate::CandidateResult;
use crate::edits::{Edit, EditSize};
use crate::interval::AccuracyDelta;
use crate::metrics::Metrics;
use crate::race::Race;
use crate::search::config::Strategy;
use crate::select::{SelectRule, Selection};

/// Metrics of one model state on both splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Selection split.
    pub select: Metrics,
    /// Test split (absent when the task has no items beyond the selection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Metrics>,
}

/// The chosen edits and their metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    /// Selection split.
    pub select: Metrics,
    /// Test split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Metrics>,
    /// The edit list (empty when no edit beat the base model).
    pub edits: Vec<Edit>,
    /// Each edited matrix's parameter count, dense and factorized (one per edit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<EditSize>,
}

/// A matrix's σ-gradient summary (gradient strategy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixScore {
    /// HF name.
    pub name: String,
    /// Layer.
    pub layer: usize,
    /// Kind.
    pub kind: String,
    /// HF shape.
    pub shape: [usize; 2],
    /// Frobenius norm of ∂L/∂W.
    pub grad_norm: f64,
    /// The best truncation score over the ρ grid (higher = more promising).
    pub score: f64,
    /// The ρ that attains it.
    pub best_rho: f32,
    /// First-order predicted loss change at `best_rho`.
    pub predicted_delta_loss: f64,
    /// The ρ grid ordered by predicted score, best first (what `rhos_per_matrix` keeps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rhos_by_score: Vec<f32>,
}

/// Wall time per phase, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seconds {
    /// Gradient pass.
    pub grad: f64,
    /// SVDs and σ-gradients.
    pub svd: f64,
    /// Candidate evaluation on the selection split (base included).
    pub scan: f64,
    /// Test-split evaluation.
    pub test: f64,
    /// Everything.
    pub total: f64,
}

/// What a search returns (and `laser search --json` prints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchReport {
    /// The strategy.
    pub strategy: Strategy,
    /// Task file.
    pub task: String,
    /// Task format.
    pub task_format: String,
    /// Items whose prompt was cut to fit the model (`SearchConfig::truncate`).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub truncated: usize,
    /// Ill-posed items dropped from the task on request (`LoadOptions::drop_ill_posed`).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub ill_posed: usize,
    /// Model source.
    pub model: String,
    /// The base model.
    pub base: SplitMetrics,
    /// The chosen edits.
    pub best: Best,
    /// How the recommendation was chosen, and why (or why no edit).
    pub selection: Selection,
    /// Test accuracy change of the recommendation with its 95% paired-bootstrap interval (zero
    /// for no edit; absent without a test split).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<AccuracyDelta>,
    /// Test balanced-accuracy change (the mean of per-class accuracies) with its 95%
    /// paired-bootstrap interval, where every item offers the same choices (`balanced.rs`):
    /// a gain made by moving onto the majority class shows here as none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub balanced_delta: Option<AccuracyDelta>,
    /// With `compare_rules`: what each rule would have chosen, with its test metrics.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub rules: Vec<RuleOutcome>,
    /// With `compare_rules` and a test split: the scanned candidate with the best test accuracy
    /// (ties: lower test log-loss) — never used to choose; it says whether the search space or
    /// the rule limits the gain.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ceiling: Option<Ceiling>,
    /// With `compare_rules` and a test split: the same among the candidates whose test log-loss
    /// is at most 1.25× the base model's (`SOUND_LOGLOSS_RATIO`); none when every candidate
    /// exceeds it. Where it differs from `ceiling`, only a log-loss wreck reached that.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sound_ceiling: Option<Ceiling>,
    /// Candidates scored on the selection split (excluding the base model).
    pub candidates_evaluated: usize,
    /// Of those, how many came from the resumed log.
    pub candidates_resumed: usize,
    /// Of those, how many built bit for bit the same matrices as a candidate evaluated before
    /// them (e.g. two ρ that keep the same rank) and took its metrics instead of an evaluation.
    #[serde(default)]
    pub candidates_same_matrices: usize,
    /// Of those, how many racing stopped before the last selection item because the rule could
    /// no longer choose them (exact racing), or not plausibly (statistical; `race.rs`).
    #[serde(default)]
    pub candidates_stopped: usize,
    /// How the scan raced: `exact`, `statistical`, or `off` (also when the options did not
    /// allow racing, e.g. `compare_rules`).
    #[serde(default)]
    pub race: Race,
    /// Every candidate, in evaluation order.
    pub candidates: Vec<CandidateResult>,
    /// Gradient / mp strategies: every considered matrix, best first.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub ranking: Vec<MatrixScore>,
    /// Loss of the gradient pass.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gradient_loss: Option<f64>,
    /// Time per phase.
    pub seconds: Seconds,
    /// A partial merge of a sharded search: candidates no shard had logged, left out.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub incomplete: Vec<String>,
}

impl SearchReport {
    /// Writes it as `report.json` into `dir` (through a temporary name).
    pub fn write(&self, dir: &std::path::Path) -> crate::error::Result<()> {
        // Through a JSON value, as every report file has been written (keys sorted).
        let value = serde_json::to_value(self).expect("reports serialise");
        let text = serde_json::to_string_pretty(&value).expect("JSON values serialise");
        crate::log::write_atomic(&dir.join("report.json"), text.as_bytes())
    }
}

/// The best test accuracy among every scanned candidate (a diagnostic, never a choice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// The candidate's edits.
    pub edits: Vec<Edit>,
    /// Its selection metrics.
    pub select: Metrics,
    /// Its test metrics.
    pub test: Metrics,
    /// Test accuracy change against the base model.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<AccuracyDelta>,
    /// Candidates it was the best of.
    pub candidates: usize,
}

/// What one selection rule, restricted to some factorizations, would have recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// The rule.
    pub rule: SelectRule,
    /// The factorizations it chose among: one factor's name, or `all`.
    pub factors: String,
    /// The recommended edits (empty: no edit).
    pub edits: Vec<Edit>,
    /// Its selection metrics.
    pub select: Metrics,
    /// Its test metrics.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test: Option<Metrics>,
    /// Test accuracy change against the base model.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<AccuracyDelta>,
    /// Test balanced-accuracy change, where the items share one set of choices.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub balanced_delta: Option<AccuracyDelta>,
    /// Why.
    pub reason: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
