//! What a suite reports: one row per task (base and adapted metrics, the change with its
//! interval, the edits and the reason, rule comparisons, collateral) and the suite's totals —
//! the shapes `suite.json` holds and `render.rs` draws.

use serde::{Deserialize, Serialize};

use crate::edits::Edit;
use crate::interval::AccuracyDelta;
use crate::metrics::Metrics;
use crate::report::RuleOutcome;
use crate::select::SelectRule;

/// Accuracy and log-loss of one model state (a suite row keeps aggregates only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMetrics {
    /// Selection split.
    pub select: Metrics,
    /// Test split.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub test: Option<Metrics>,
}

/// One task's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteTaskResult {
    /// Task name (file stem).
    pub task: String,
    /// Task file.
    pub path: String,
    /// Selection items.
    pub n_select: usize,
    /// Test items (after `--test-max`).
    pub n_test: usize,
    /// The base model.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub base: Option<StateMetrics>,
    /// The adapted model (equal to the base when no edit is recommended).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub adapted: Option<StateMetrics>,
    /// Test accuracy change with its 95% paired-bootstrap interval.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<AccuracyDelta>,
    /// Test balanced-accuracy change with its interval, where the items share one set of
    /// choices (`balanced.rs`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub balanced_delta: Option<AccuracyDelta>,
    /// The recommended edits (empty: no edit).
    pub edits: Vec<Edit>,
    /// Why these edits, or why none.
    pub reason: String,
    /// Wall time of the task's search.
    pub seconds: f64,
    /// With `compare_rules`: each rule's choice and its test change.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub rules: Vec<RuleOutcome>,
    /// With `compare_rules`: the best test accuracy among every scanned candidate (a
    /// diagnostic, never a choice): whether the space or the rule limits the task's gain.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ceiling: Option<crate::report::Ceiling>,
    /// With `compare_rules`: the same among the candidates within the log-loss bound
    /// (`SOUND_LOGLOSS_RATIO`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sound_ceiling: Option<crate::report::Ceiling>,
    /// With `keep_going`: why the task failed (no metrics then).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
    /// With `collateral`: the recommended edit scored on every other task's selection items.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collateral: Option<crate::collateral::Collateral>,
}

/// Totals of one selection rule across the suite (from a rule comparison).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// The rule.
    pub rule: SelectRule,
    /// The factorizations it chose among.
    pub factors: String,
    /// Mean test accuracy change over the tasks (points).
    pub mean_delta: f64,
    /// Tasks whose interval lies entirely below zero.
    pub harmed: usize,
    /// Tasks whose interval lies entirely above zero.
    pub helped: usize,
    /// Of those, the tasks whose balanced accuracy rose significantly too (or that have none).
    #[serde(default)]
    pub helped_balanced: usize,
    /// Tasks where the rule recommended an edit.
    pub edited: usize,
}

/// What `run_suite` returns (and `laser suite --json` prints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    /// Model source.
    pub model: String,
    /// The rule that chose each task's recommendation.
    pub select_rule: SelectRule,
    /// One row per task, in input order.
    pub tasks: Vec<SuiteTaskResult>,
    /// Mean test accuracy change over the tasks that ran (points).
    pub mean_delta: f64,
    /// Tasks significantly harmed (interval entirely below zero).
    pub harmed: usize,
    /// Tasks significantly helped (interval entirely above zero).
    pub helped: usize,
    /// Of those, the tasks whose balanced accuracy rose significantly too, or whose items'
    /// choices differ (no balanced accuracy): help that is not a move onto the majority class.
    #[serde(default)]
    pub helped_balanced: usize,
    /// Tasks that failed (`keep_going`).
    pub failed: usize,
    /// Tasks read back from a previous run.
    pub resumed: usize,
    /// With `compare_rules`: every rule's totals.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub rules: Vec<RuleSummary>,
    /// With `collateral`: the mean, over tasks whose recommendation edits the model, of the
    /// edit's mean accuracy change on the other tasks' selection items (points).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_collateral: Option<f64>,
    /// With `compare_rules`: tasks whose ceiling (the best scanned candidate on the test split)
    /// significantly beats the base model.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ceiling_helped: Option<usize>,
    /// With `compare_rules`: tasks whose sound ceiling (the best candidate whose test log-loss
    /// is within 1.25× the base model's) significantly beats the base model — what any rule
    /// that refuses log-loss wrecks could at most have helped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sound_ceiling_helped: Option<usize>,
    /// Wall time of this run (resumed tasks cost nothing).
    pub seconds: f64,
}
