//! Selection rules: how the scanned candidates (single edits scored on the selection split) turn
//! into the recommended edit — or into "no edit", when the selection items do not support one.
//!
//! - [`SelectRule::Laser`]: LASER's rule, highest selection accuracy, ties by lower log-loss,
//!   recommended when it beats the base model.
//! - [`SelectRule::Logloss`]: lowest selection log-loss, recommended when below the base's.
//! - [`SelectRule::Guarded`]: an edit is recommended only if it beats the base model on the
//!   selection items by a one-sided exact McNemar test on per-item correctness, Bonferroni-
//!   corrected for the number of candidates scanned (choosing the best of C candidates and then
//!   testing it as if it were the only one overstates the evidence C-fold). Among the candidates
//!   that pass, the one with the smallest p-value wins (ties by LASER's order).
//! - [`SelectRule::SplitConfirm`]: LASER's rule on the even-numbered selection items, confirmed on
//!   the odd-numbered ones (strictly higher accuracy than the base model there).
//! - [`SelectRule::ChooseConfirm`]: chosen as split-confirm chooses (among candidates whose
//!   log-loss on the choosing half is not significantly worse than the base model's), then
//!   confirmed on the other half by one one-sided exact McNemar test at α = 0.05 — one test, so
//!   no penalty for the width of the scan — and refused when its log-loss there is significantly
//!   worse than the base model's ([`logloss_worse`]: an edit that gains accuracy by wrecking the
//!   language model is not recommended).
//!
//! Every rule reads only selection metrics; the test split is never consulted. A candidate that
//! racing stopped early (`race.rs`) could not have been chosen: it is passed over, and still
//! counts among the candidates scanned (the guarded rule's Bonferroni factor). Split-confirm and
//! choose-confirm choose on the choosing half alone ([`pick_on_choosing_half`]), which is what
//! lets a racing scan score the confirming half of their pick only.

mod halves;
mod stats;
#[cfg(test)]
mod tests;
mod whole;

use serde::{Deserialize, Serialize};

use crate::candidate::CandidateResult;
use crate::metrics::{ItemScores, Metrics};

pub(crate) use halves::{pick_on_choosing_half, restrict};
pub(crate) use stats::discordant;
pub use stats::{logloss_worse, mcnemar_one_sided};

/// A named rule that picks the recommended edit from scanned candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelectRule {
    /// Accuracy, ties by log-loss (LASER).
    Laser,
    /// Log-loss alone.
    Logloss,
    /// A significant paired gain over the base model, or no edit.
    Guarded,
    /// Chosen on one half of the selection items, confirmed on the other.
    SplitConfirm,
    /// Chosen on one half, confirmed on the other by a paired test, log-loss guarded.
    ChooseConfirm,
}

impl SelectRule {
    /// Every rule, in report order.
    pub const ALL: [SelectRule; 5] =
        [Self::Laser, Self::Logloss, Self::Guarded, Self::SplitConfirm, Self::ChooseConfirm];

    /// The CLI name (`laser`, `logloss`, `guarded`, `split-confirm`, `choose-confirm`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Laser => "laser",
            Self::Logloss => "logloss",
            Self::Guarded => "guarded",
            Self::SplitConfirm => "split-confirm",
            Self::ChooseConfirm => "choose-confirm",
        }
    }

    /// Whether the rule chooses on the even-numbered selection items and confirms on the others
    /// (racing scores the choosing half first).
    pub fn halves(self) -> bool {
        matches!(self, Self::SplitConfirm | Self::ChooseConfirm)
    }
}

impl std::fmt::Display for SelectRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SelectRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|r| r.name()).collect();
            format!("unknown selection rule `{s}` (expected {})", names.join(", "))
        })
    }
}

/// What a rule decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The rule.
    pub rule: SelectRule,
    /// Index of the chosen candidate in the scan's list; `None`: no edit is supported.
    pub chosen: Option<usize>,
    /// Guarded: the Bonferroni-adjusted one-sided McNemar p-value of the chosen candidate, or of
    /// the most promising one when none passed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub p_value: Option<f64>,
    /// One line a person can read: why this edit, or why none.
    pub reason: String,
}

/// Significance level of the guarded rule.
pub const GUARD_ALPHA: f64 = 0.05;

fn items_of(m: &Metrics) -> Option<&ItemScores> {
    m.items.as_ref().filter(|i| i.correct.len() == m.n && i.nll.len() == m.n)
}

/// LASER's order over `(index, (accuracy, log-loss))`: the first with the highest accuracy, ties
/// by strictly lower log-loss.
fn laser_best(over: impl Iterator<Item = (usize, (f64, f64))>) -> Option<(usize, (f64, f64))> {
    over.fold(None::<(usize, (f64, f64))>, |best, (i, m)| match best {
        Some((_, b)) if !(m.0 > b.0 || (m.0 == b.0 && m.1 < b.1)) => best,
        _ => Some((i, m)),
    })
}

/// What every rule chooses from: the base model's and the candidates' selection metrics, and the
/// candidates racing did not stop.
#[derive(Clone, Copy)]
struct Choice<'a> {
    rule: SelectRule,
    base: &'a Metrics,
    candidates: &'a [CandidateResult],
    live: &'a [usize],
}

/// Applies `rule` to single-edit candidates scanned against `base` (all on the selection split).
pub fn select(rule: SelectRule, base: &Metrics, candidates: &[CandidateResult]) -> Selection {
    let none = |reason: String| Selection { rule, chosen: None, p_value: None, reason };
    if candidates.is_empty() {
        return none("no candidate was scanned; the base model is returned".into());
    }
    let live: Vec<usize> =
        (0..candidates.len()).filter(|&i| candidates[i].stopped_after.is_none()).collect();
    if live.is_empty() {
        let why = match rule {
            SelectRule::Guarded => format!(
                "none could still beat the base model with confidence (p ≤ {GUARD_ALPHA} after Bonferroni over {} candidates)",
                candidates.len()
            ),
            SelectRule::Logloss => "none could still end below the base model's log-loss".into(),
            SelectRule::SplitConfirm => {
                "none could still beat the base model on the choosing half".into()
            }
            SelectRule::ChooseConfirm => "none could still beat the base model on the choosing \
                half with a log-loss there not significantly worse than the base model's"
                .into(),
            SelectRule::Laser => "none could still beat the base model's accuracy".into(),
        };
        return none(format!(
            "racing stopped all {} candidates: {why}; the base model is returned",
            candidates.len()
        ));
    }
    let c = Choice { rule, base, candidates, live: &live };
    match rule {
        SelectRule::Laser => whole::laser(&c),
        SelectRule::Logloss => whole::logloss(&c),
        SelectRule::Guarded => whole::guarded(&c),
        SelectRule::SplitConfirm => halves::split_confirm(&c),
        SelectRule::ChooseConfirm => halves::choose_confirm(&c),
    }
}
