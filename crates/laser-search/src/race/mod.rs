//! Exact racing: a scan stops evaluating a candidate as soon as its selection rule can no longer
//! choose it, whatever the selection items it has not seen hold.
//!
//! The selection items are scored in an order fixed before the scan, block by block: each part
//! ([`race_parts`]) shortest items first (`Evaluator::in_blocks`: blocks of similar lengths pad
//! little, and a stopped candidate skips the longest items). Between two
//! blocks, a candidate's outcomes so far bound what its final metrics can be: every unseen item
//! may still be answered correctly (accuracy), every unseen per-item NLL is at least zero
//! (log-loss), every unseen item the base model gets wrong may still become a win (McNemar). If
//! even the best completion cannot beat the base model or a candidate already evaluated on every
//! item, under the rule's own order and tie-breaks, the candidate is stopped; so is one that
//! choose-confirm's log-loss guard leaves out even if every unseen item of its choosing half had
//! an NLL of zero (the guard's bound only rises with an item's NLL).
//!
//! Why the recommendation is the same as a full scan's: the candidate a full scan would choose is
//! never stopped (only a candidate it beats could stop it, and its own final metrics are within
//! every bound), so it is evaluated on every item; a stopped candidate is never chosen; and the
//! rule then picks among the fully evaluated candidates exactly as among all of them. Stops are
//! final (a resumed or sharded scan keeps them): domination is transitive, so a candidate stopped
//! by one that was itself stopped later is still beaten by whichever beat that one.
//!
//! **Confirmation deferred.** Split-confirm and choose-confirm choose on the choosing half alone;
//! the confirming half matters only for the candidate they pick. A racing scan in one process
//! ([`Racer::defer_confirmation`]) therefore stops every candidate once its choosing half is
//! scored (its standing there is final, so it stops others from then on) and, after the scan,
//! scores the other half of the one candidate the rule picks there ([`Racer::pick_to_confirm`]):
//! the same recommendation with the same metrics as a scan that scored every leader on every
//! item, without the confirming halves of the leaders that were overtaken later. A sharded scan
//! scores every leader on every item as before (its merge evaluates nothing).
//!
//! Comparisons of log-losses keep a relative margin of 1e-9 and stop only when the bound is
//! beyond it: floating-point sums in another order must never stop a candidate that could tie.
//!
//! **Statistical racing** ([`Race::Statistical`]) asks the same question of a *plausible* rest
//! instead of the best conceivable one: the unseen items are credited at the upper end of a
//! one-sided Wilson interval (z = [`STATISTICAL_Z`], 99%) of the rate seen so far — correct
//! answers for LASER's order, wins over the base model for the guarded rule — and debited at
//! the lower end of its loss rate; the unseen per-item NLLs at the lower end of a normal interval
//! of their mean (for choose-confirm's guard: of their differences from the base model's, item
//! by item). A candidate that even this optimistic-but-plausible completion cannot make the
//! rule's choice is stopped. It stops every candidate exact racing stops (the plausible rest is
//! never better than the best conceivable one) and more, much earlier; the price is that a
//! candidate that would have finished strongly after a poor start can be lost, so the
//! recommendation may differ from the full scan's. Measured on the suite (`docs/RESULTS.md`),
//! it is the default since the scan widened to 32 candidates; `exact` keeps a full scan's
//! recommendation.

use serde::{Deserialize, Serialize};

use crate::candidate::CandidateResult;
use crate::metrics::{ItemScores, Metrics};
use crate::select::{
    GUARD_ALPHA, SelectRule, discordant, logloss_worse, mcnemar_one_sided, pick_on_choosing_half,
    restrict,
};

/// Whether a scan stops candidates that cannot be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Race {
    /// Every candidate is evaluated on every selection item.
    Off,
    /// A candidate is stopped between two blocks of items once the rule cannot choose it: the
    /// same recommendation, with the same metrics, as [`Race::Off`].
    #[default]
    Exact,
    /// A candidate is stopped between two blocks once the rule could not choose it even if the
    /// remaining items went as well as a 99% interval of its results so far allows: far fewer
    /// items per candidate, at the risk of losing a late bloomer.
    Statistical,
}

impl Race {
    /// Every mode, in help order.
    pub const ALL: [Race; 3] = [Self::Exact, Self::Statistical, Self::Off];

    /// The CLI name (`exact`, `statistical`, `off`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Exact => "exact",
            Self::Statistical => "statistical",
        }
    }

    /// What a report says of a candidate this mode stopped.
    pub fn stopped_because(self) -> &'static str {
        match self {
            Self::Statistical => "not plausibly chosen",
            Self::Exact | Self::Off => "cannot be chosen",
        }
    }
}

impl std::fmt::Display for Race {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Race {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|r| r.name()).collect();
            format!("unknown race mode `{s}` (expected {})", names.join(" or "))
        })
    }
}

/// Selection items per racing block, by default: a candidate can be stopped after its first 10
/// items and then after every 20 (the evaluator scores the first block in two halves).
/// Measured on SmolLM2 (`docs/BENCHMARKS.md`, "Racing the scan"): blocks of 10 raced within 4% of
/// 20 but made every unraced evaluation 16% slower (more, smaller batches); 20 costs nothing
/// unraced. Most statistical stops come at the first look, hence the half block before it
/// ("The guard raced, and a first look after 10 items").
pub const RACE_BLOCK: usize = 20;

/// The parts of `n` selection items that are scored one after the other (each cut into blocks by
/// the evaluator). Split-confirm scores its choosing half (the even-numbered items) first, so
/// that a candidate beaten there is stopped before the other half; every other rule, one part.
pub fn race_parts(n: usize, rule: SelectRule) -> Vec<Vec<usize>> {
    if rule.halves() {
        vec![(0..n).step_by(2).collect(), (1..n).step_by(2).collect()]
    } else {
        vec![(0..n).collect()]
    }
}

/// The one-sided normal quantile of statistical racing's intervals: 2.326, a 99% bound at each
/// look. Every block boundary is a look, so the chance of losing a given candidate that would
/// have won is not 1% — the suite measurement in `docs/BENCHMARKS.md` says what it costs.
pub const STATISTICAL_Z: f64 = 2.326;

/// How many of `remaining` unseen trials may still succeed, given `successes` of `trials` seen:
/// all of them (exact), or the upper end of a one-sided Wilson interval of the rate seen, times
/// `remaining`, rounded up (statistical; all of them before any trial is seen).
fn plausible_successes(mode: Race, successes: usize, trials: usize, remaining: usize) -> usize {
    if mode != Race::Statistical || trials == 0 {
        return remaining;
    }
    let (_, hi) = wilson(successes, trials, STATISTICAL_Z);
    ((hi * remaining as f64).ceil() as usize).min(remaining)
}

/// How few of `remaining` unseen trials may fail, given `failures` of `trials` seen: none (exact),
/// or the lower end of a one-sided Wilson interval, times `remaining`, rounded down.
fn plausible_failures(mode: Race, failures: usize, trials: usize, remaining: usize) -> usize {
    if mode != Race::Statistical || trials == 0 {
        return 0;
    }
    let (lo, _) = wilson(failures, trials, STATISTICAL_Z);
    ((lo * remaining as f64).floor() as usize).min(remaining)
}

/// The least plausible sum of `remaining` unseen per-item NLLs given the `seen` ones: zero
/// (exact), or `remaining` times the lower end of a one-sided normal interval of their mean,
/// never below zero (statistical; zero before two are seen).
fn plausible_nll_sum(mode: Race, seen: &[f64], remaining: usize) -> f64 {
    plausible_mean_floor(mode, seen).map_or(0.0, |m| m.max(0.0) * remaining as f64)
}

/// The least plausible mean of unseen values given the `seen` ones (per-item NLLs, or their
/// differences from the base model's): the lower end of a one-sided normal interval
/// (z = [`STATISTICAL_Z`]) of their mean; `None` racing exactly, or before two are seen.
fn plausible_mean_floor(mode: Race, seen: &[f64]) -> Option<f64> {
    let k = seen.len();
    if mode != Race::Statistical || k < 2 {
        return None;
    }
    let mean = seen.iter().sum::<f64>() / k as f64;
    let var = seen.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (k - 1) as f64;
    Some(mean - STATISTICAL_Z * (var / k as f64).sqrt())
}

/// The Wilson score interval of `successes` in `trials` at normal quantile `z`.
fn wilson(successes: usize, trials: usize, z: f64) -> (f64, f64) {
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// `x` is above `y` by more than rounding could explain.
fn clearly_above(x: f64, y: f64) -> bool {
    x > y + 1e-9 * y.abs().max(f64::MIN_POSITIVE)
}

/// A fully evaluated state (the base model or a candidate), in the terms its rule compares.
#[derive(Debug, Clone)]
struct Standing {
    /// Items answered correctly (split-confirm: on the choosing half).
    correct: usize,
    /// Mean NLL (split-confirm: over the choosing half), as the rule computes it.
    loss: f64,
    /// Guarded: the unadjusted one-sided McNemar p-value against the base model.
    p: Option<f64>,
}

/// What a racing scan knows: the base model, the candidates evaluated on every item, and the
/// order the items are scored in.
#[derive(Debug, Clone)]
pub struct Racer {
    rule: SelectRule,
    /// Exact or statistical.
    mode: Race,
    /// Race position → selection item.
    order: Vec<usize>,
    /// Items of the choosing half (split-confirm): race positions `0..choose`.
    choose: usize,
    /// The candidates the rule will choose among (guarded's Bonferroni factor).
    candidates: usize,
    /// Split-confirm and choose-confirm in one process: every candidate stops after the choosing
    /// half; the pick's other half is scored after the scan.
    defer: bool,
    base: Option<(Standing, ItemScores)>,
    /// Base-model errors among race positions `k..` for every k.
    base_wrong_after: Vec<usize>,
    finished: Vec<Standing>,
}

impl Racer {
    /// An exact race for `rule` over items scored in the order of `blocks` (`Evaluator::blocks`
    /// of [`race_parts`]), among `candidates` candidates in all (every shard's, for a sharded
    /// scan).
    pub fn new(rule: SelectRule, blocks: &[Vec<usize>], candidates: usize) -> Self {
        Self::with_mode(rule, Race::Exact, blocks, candidates)
    }

    /// [`Racer::new`] in `mode` ([`Race::Off`] races exactly: a scan that does not race builds
    /// no racer).
    pub fn with_mode(
        rule: SelectRule,
        mode: Race,
        blocks: &[Vec<usize>],
        candidates: usize,
    ) -> Self {
        let order: Vec<usize> = blocks.concat();
        let choose = if rule.halves() { order.len().div_ceil(2) } else { order.len() };
        Self {
            rule,
            mode,
            order,
            choose,
            candidates,
            defer: false,
            base: None,
            base_wrong_after: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// The race as the candidate log records a stop: `rule/mode`, e.g. `guarded/exact`. A logged
    /// stop is reused only by a race with the same context: one rule's stop says nothing of
    /// another's choice, and a statistical stop is no exact one.
    pub fn context(&self) -> String {
        format!("{}/{}", self.rule, self.mode)
    }

    /// Whether a logged stop, made by the race `by` (`None`: a log from before stops recorded
    /// their race, when every race was exact), holds for this race.
    pub fn honours(&self, by: Option<&str>) -> bool {
        match by {
            Some(by) => by == self.context(),
            None => self.mode == Race::Exact,
        }
    }

    /// The candidates the rule will choose among.
    pub fn set_candidates(&mut self, candidates: usize) {
        self.candidates = candidates;
    }

    /// With `defer` (and a halves rule; any other rule ignores it): every candidate stops once
    /// its choosing half is scored, and [`Racer::pick_to_confirm`] says which one to score on
    /// the other half after the scan. Only a scan in one process defers: a shard cannot know
    /// the other shards' pick.
    pub fn defer_confirmation(mut self, defer: bool) -> Self {
        self.defer = defer && self.rule.halves();
        self
    }

    /// Whether candidates stop after the choosing half ([`Racer::defer_confirmation`]).
    pub fn defers_confirmation(&self) -> bool {
        self.defer
    }

    /// Results on the choosing half (the even-numbered items, in item order) of a state scored
    /// on every item (item order) or, under a halves rule, on at least the choosing half (race
    /// order, whose first part is the choosing half); `None` for fewer items.
    fn choosing_half(&self, items: &ItemScores) -> Option<ItemScores> {
        let (n, scored) = (self.order.len(), items.correct.len());
        if scored == n {
            let even: Vec<usize> = (0..n).step_by(2).collect();
            return Some(restrict(items, &even));
        }
        if !self.rule.halves() || scored < self.choose {
            return None;
        }
        let mut positions: Vec<usize> = (0..self.choose).collect();
        positions.sort_by_key(|&p| self.order[p]);
        Some(restrict(items, &positions))
    }

    /// Whether choose-confirm's log-loss guard leaves out a state with these results on the
    /// choosing half: it can never be chosen.
    fn guarded_out(&self, half: &ItemScores) -> bool {
        match (self.rule, self.base_half()) {
            (SelectRule::ChooseConfirm, Some(base)) => {
                logloss_worse(&base.nll, &half.nll).is_some()
            }
            _ => false,
        }
    }

    /// Whether choose-confirm's log-loss guard will leave out a candidate whose choosing half is
    /// scored up to race position `partial.nll.len()` (all of it: [`Racer::guarded_out`]). The
    /// guard's own test runs on the choosing half completed at the best the race allows each
    /// unseen item: an NLL of zero (exact), or the base model's NLL there plus the lower end of
    /// a one-sided normal interval (z = [`STATISTICAL_Z`]) of the differences seen so far, never
    /// below zero (statistical; exact before two are seen). The test's bound never falls when
    /// any item's NLL rises (its resampled means are sums over the same drawn positions), so a
    /// completion the guard leaves out means every completion is left out (exact), or every
    /// plausible one (statistical, never more lenient than exact).
    fn guard_leaves_out(&self, partial: &ItemScores) -> bool {
        let Some((_, base)) = self.base.as_ref().filter(|_| self.rule == SelectRule::ChooseConfirm)
        else {
            return false;
        };
        let seen = partial.nll.len().min(self.choose);
        if seen == 0 {
            return false;
        }
        let diffs: Vec<f64> = (0..seen).map(|p| partial.nll[p] - base.nll[self.order[p]]).collect();
        // No floor racing exactly: every unseen item at an NLL of zero.
        let floor = plausible_mean_floor(self.mode, &diffs).unwrap_or(f64::NEG_INFINITY);
        // The choosing half in item order, as the rule tests it.
        let mut positions: Vec<usize> = (0..self.choose).collect();
        positions.sort_by_key(|&p| self.order[p]);
        let (base_nll, cand_nll): (Vec<f64>, Vec<f64>) = positions
            .iter()
            .map(|&p| {
                let b = base.nll[self.order[p]];
                let c = if p < seen { partial.nll[p] } else { (b + floor).max(0.0) };
                (b, c)
            })
            .unzip();
        logloss_worse(&base_nll, &cand_nll).is_some()
    }

    /// The base model's results on the choosing half ([`Racer::set_base`]).
    fn base_half(&self) -> Option<ItemScores> {
        self.base.as_ref().and_then(|(_, b)| self.choosing_half(b))
    }

    fn standing(&self, m: &Metrics, items: &ItemScores) -> Option<Standing> {
        if self.rule.halves() {
            let half = self.choosing_half(items)?;
            let (_, loss) = half.overall();
            return Some(Standing { correct: count(&half.correct), loss, p: None });
        }
        if items.correct.len() != self.order.len() {
            return None;
        }
        let correct = count(&items.correct);
        let p = match (self.rule, &self.base) {
            (SelectRule::Guarded, Some((_, base))) => {
                let (w, l) = discordant(base.correct.iter().copied(), &items.correct);
                Some(mcnemar_one_sided(w, l))
            }
            _ => None,
        };
        Some(Standing { correct, loss: m.logloss, p })
    }

    /// Records the base model's metrics (every selection item, in item order). Without them (or
    /// without per-item results) nothing is ever stopped.
    pub fn set_base(&mut self, base: &Metrics) {
        let Some(items) = base.items.as_ref().filter(|i| i.correct.len() == self.order.len())
        else {
            return;
        };
        let Some(standing) = self.standing(base, items) else {
            return;
        };
        let mut after = vec![0; self.order.len() + 1];
        for k in (0..self.order.len()).rev() {
            after[k] = after[k + 1] + usize::from(!items.correct[self.order[k]]);
        }
        self.base_wrong_after = after;
        self.base = Some((standing, items.clone()));
    }

    /// Records a candidate's metrics once they are final for the rule: scored on every item
    /// (item order) or, under a halves rule, on the whole choosing half (race order). Anything
    /// less is ignored.
    pub fn finished(&mut self, m: &Metrics) {
        let Some(items) = m.items.as_ref() else {
            return;
        };
        // A candidate choose-confirm's log-loss guard leaves out can never be chosen, so it must
        // not stop others either.
        if self.choosing_half(items).is_some_and(|half| self.guarded_out(&half)) {
            return;
        }
        if let Some(s) = self.standing(m, items) {
            self.finished.push(s);
        }
    }

    /// With confirmation deferred: the candidate the rule picks on the choosing half among
    /// `candidates` (those scored on at least that half), which must then be scored on every
    /// item; `None` when none beats the base model there.
    pub fn pick_to_confirm(&self, candidates: &[CandidateResult]) -> Option<usize> {
        let base_half = self.base_half()?;
        let halves = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, self.choosing_half(c.select.items.as_ref()?)?)));
        pick_on_choosing_half(self.rule, &base_half, halves).pick.map(|(i, _)| i)
    }

    /// Whether the rule may still choose a candidate whose outcomes on the first
    /// `partial.correct.len()` items of the race order are `partial`.
    pub fn can_be_chosen(&self, partial: &ItemScores) -> bool {
        let Some((base, base_items)) = &self.base else {
            return true;
        };
        let n = self.order.len();
        let k = partial.correct.len();
        if k >= n {
            return true;
        }
        // With confirmation deferred, a candidate whose choosing half is scored waits for the
        // scan's pick.
        if self.rule.halves() && k >= self.choose && self.defer {
            return false;
        }
        // Choose-confirm's guard may leave it out already, or before its choosing half ends.
        if self.guard_leaves_out(partial) {
            return false;
        }
        // "c cannot be strictly better than s by accuracy, ties by lower log-loss."
        let beaten_by = |best_correct: usize, least_loss: f64, s: &Standing| {
            best_correct < s.correct
                || (best_correct == s.correct && clearly_above(least_loss, s.loss))
        };
        match self.rule {
            // LASER's rule is split-confirm's choice with every item in the choosing half.
            SelectRule::Laser | SelectRule::SplitConfirm | SelectRule::ChooseConfirm => {
                let seen = k.min(self.choose);
                let right = count(&partial.correct[..seen]);
                let best = right + plausible_successes(self.mode, right, seen, self.choose - seen);
                let seen_nll = &partial.nll[..seen];
                let least_loss = (seen_nll.iter().sum::<f64>()
                    + plausible_nll_sum(self.mode, seen_nll, self.choose - seen))
                    / self.choose.max(1) as f64;
                !(beaten_by(best, least_loss, base)
                    || self.finished.iter().any(|s| beaten_by(best, least_loss, s)))
            }
            SelectRule::Logloss => {
                let least_loss = (partial.nll.iter().sum::<f64>()
                    + plausible_nll_sum(self.mode, &partial.nll, n - k))
                    / n as f64;
                // It must end strictly below the base model and below every earlier minimum.
                !(clearly_above(least_loss, base.loss)
                    || self.finished.iter().any(|s| clearly_above(least_loss, s.loss)))
            }
            SelectRule::Guarded => {
                let base_seen = self.order[..k].iter().map(|&i| base_items.correct[i]);
                let (wins, losses) = discordant(base_seen, &partial.correct);
                // Wins can only come where the base model is wrong, losses where it is right.
                let wrong_after = self.base_wrong_after[k];
                let wrong_seen = self.base_wrong_after[0] - wrong_after;
                let right_seen = k - wrong_seen;
                let right_after = (n - k) - wrong_after;
                let p_least = mcnemar_one_sided(
                    wins + plausible_successes(self.mode, wins, wrong_seen, wrong_after),
                    losses + plausible_failures(self.mode, losses, right_seen, right_after),
                );
                let c = self.candidates.max(1) as f64;
                let cannot_pass = clearly_above(p_least * c, GUARD_ALPHA);
                let beaten = self
                    .finished
                    .iter()
                    .filter_map(|s| s.p)
                    .any(|p| (p * c).min(1.0) <= GUARD_ALPHA && clearly_above(p_least, p));
                !(cannot_pass || beaten)
            }
        }
    }
}

fn count(bits: &[bool]) -> usize {
    bits.iter().filter(|&&b| b).count()
}

#[cfg(test)]
mod tests;
