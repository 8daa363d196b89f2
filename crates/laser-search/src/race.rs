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
//! item, under the rule's own order and tie-breaks, the candidate is stopped.
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
//! of their mean. A candidate that even this optimistic-but-plausible completion cannot make the
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

/// Selection items per racing block, by default: a candidate can be stopped after every 20 items.
/// Measured on SmolLM2 (`docs/BENCHMARKS.md`, "Racing the scan"): blocks of 10 raced within 4% of
/// 20 but made every unraced evaluation 16% slower (more, smaller batches); 20 costs nothing
/// unraced.
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
    let k = seen.len();
    if mode != Race::Statistical || k < 2 {
        return 0.0;
    }
    let mean = seen.iter().sum::<f64>() / k as f64;
    let var = seen.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (k - 1) as f64;
    (mean - STATISTICAL_Z * (var / k as f64).sqrt()).max(0.0) * remaining as f64
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
        let base_half = self.base.as_ref().and_then(|(_, b)| self.choosing_half(b));
        match (self.rule, base_half) {
            (SelectRule::ChooseConfirm, Some(base)) => {
                logloss_worse(&base.nll, &half.nll).is_some()
            }
            _ => false,
        }
    }

    fn standing(&self, m: &Metrics, items: &ItemScores) -> Option<Standing> {
        if self.rule.halves() {
            let half = self.choosing_half(items)?;
            let all: Vec<usize> = (0..half.correct.len()).collect();
            let (_, loss) = half.subset(&all);
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
    pub fn pick_to_confirm(&self, base: &Metrics, candidates: &[CandidateResult]) -> Option<usize> {
        let base_half = self.choosing_half(base.items.as_ref()?)?;
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
        if self.rule.halves() && k >= self.choose {
            // The choosing half is scored: with confirmation deferred the candidate waits for
            // the scan's pick; choose-confirm's guard may already leave it out.
            if self.defer || self.choosing_half(partial).is_some_and(|h| self.guarded_out(&h)) {
                return false;
            }
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
mod tests {
    use super::*;

    fn metrics(correct: &[bool], nll: &[f64]) -> Metrics {
        let n = correct.len();
        Metrics {
            n,
            accuracy: 100.0 * count(correct) as f64 / n as f64,
            logloss: nll.iter().sum::<f64>() / n as f64,
            majority: None,
            per_class: None,
            items: Some(ItemScores { correct: correct.to_vec(), nll: nll.to_vec() }),
        }
    }

    fn prefix(correct: &[bool], nll: &[f64]) -> ItemScores {
        ItemScores { correct: correct.to_vec(), nll: nll.to_vec() }
    }

    /// The parts in order, cut into blocks of `block` items (what the evaluator does, but for
    /// its ordering by length).
    fn race_blocks(n: usize, rule: SelectRule, block: usize) -> Vec<Vec<usize>> {
        race_parts(n, rule).iter().flat_map(|p| p.chunks(block).map(<[usize]>::to_vec)).collect()
    }

    #[test]
    fn parts_cover_every_item_once_and_split_confirm_chooses_first() {
        assert_eq!(race_parts(5, SelectRule::Laser), [vec![0, 1, 2, 3, 4]]);
        assert_eq!(race_parts(7, SelectRule::SplitConfirm), [vec![0, 2, 4, 6], vec![1, 3, 5]]);
        assert!(race_parts(0, SelectRule::Guarded).concat().is_empty());
    }

    #[test]
    fn laser_stops_only_what_cannot_beat_the_base_or_the_leader() {
        let blocks = race_blocks(10, SelectRule::Laser, 5);
        let mut r = Racer::new(SelectRule::Laser, &blocks, 3);
        // Base: 6 of 10 right.
        let base: Vec<bool> = (0..10).map(|i| i < 6).collect();
        r.set_base(&metrics(&base, &[1.0; 10]));
        // 1 of 5 right: at best 6 of 10 = the base's accuracy; loss so far 5 × 2.5 / 10 = 1.25 ≥ 1.
        assert!(!r.can_be_chosen(&prefix(&[true, false, false, false, false], &[2.5; 5])));
        // Same counts, lower loss so far: a tie on accuracy could still win on log-loss.
        assert!(r.can_be_chosen(&prefix(&[true, false, false, false, false], &[0.5; 5])));
        // A finished candidate with 9 of 10 raises the bar.
        let leader: Vec<bool> = (0..10).map(|i| i != 0).collect();
        r.finished(&metrics(&leader, &[0.1; 10]));
        assert!(!r.can_be_chosen(&prefix(&[true, true, true, false, false], &[0.0; 5])));
        assert!(r.can_be_chosen(&prefix(&[true, true, true, true, false], &[0.0; 5])));
        // Every item seen: never stopped here (the rule decides).
        assert!(r.can_be_chosen(&prefix(&[false; 10], &[9.0; 10])));
    }

    #[test]
    fn guarded_stops_what_cannot_reach_significance() {
        let blocks = race_blocks(20, SelectRule::Guarded, 10);
        let mut r = Racer::new(SelectRule::Guarded, &blocks, 10);
        // The base model is right on the first 10 items, wrong on the last 10.
        let base: Vec<bool> = (0..20).map(|i| i < 10).collect();
        r.set_base(&metrics(&base, &[1.0; 20]));
        // 6 losses on the first 10: at best 10 wins, 6 losses; p = P(X ≥ 10 | 16) ≈ 0.23 > 0.005.
        let bad =
            prefix(&[false, false, false, false, false, false, true, true, true, true], &[1.0; 10]);
        assert!(mcnemar_one_sided(10, 6) * 10.0 > GUARD_ALPHA);
        assert!(!r.can_be_chosen(&bad));
        // No losses: 10 wins of 10 is p ≈ 0.001 × 10 ≤ 0.05 — it may still pass.
        assert!(r.can_be_chosen(&prefix(&[true; 10], &[1.0; 10])));
    }

    #[test]
    fn split_confirm_races_on_the_choosing_half_only() {
        let blocks = race_blocks(8, SelectRule::SplitConfirm, 2);
        let mut r = Racer::new(SelectRule::SplitConfirm, &blocks, 2);
        // Base right on items 0, 2 (choosing half: 0, 2, 4, 6) and on 1, 3, 5, 7.
        let base = [true, true, true, true, false, true, false, true];
        r.set_base(&metrics(&base, &[1.0; 8]));
        // Race order 0, 2 | 4, 6 | 1, 3 | 5, 7. Wrong on 0 and 2: at best 2 of 4 = base, with a
        // choosing-half loss of at least 6 / 4 > 1: it cannot beat the base model there.
        assert!(!r.can_be_chosen(&prefix(&[false, false], &[3.0, 3.0])));
        // At exactly the base's loss it could only tie, which loses too, but rounding could
        // decide a tie: racing leaves it to the rule.
        assert!(r.can_be_chosen(&prefix(&[false, false], &[2.0, 2.0])));
        // Right on the whole choosing half, wrong on the confirming half so far: never stopped
        // there, the confirmation decides.
        let p = prefix(&[true, true, true, true, false, false], &[0.1; 6]);
        assert!(r.can_be_chosen(&p));
    }

    #[test]
    fn logloss_stops_when_even_zero_loss_from_here_is_too_much() {
        let blocks = race_blocks(4, SelectRule::Logloss, 2);
        let mut r = Racer::new(SelectRule::Logloss, &blocks, 2);
        r.set_base(&metrics(&[true; 4], &[1.0; 4]));
        assert!(!r.can_be_chosen(&prefix(&[true, true], &[3.0, 2.0])));
        assert!(r.can_be_chosen(&prefix(&[true, true], &[1.0, 1.0])));
        r.finished(&metrics(&[true; 4], &[0.25; 4]));
        assert!(!r.can_be_chosen(&prefix(&[true, true], &[1.0, 1.0])));
    }

    #[test]
    fn statistical_racing_stops_a_poor_start_that_exact_racing_keeps() {
        let blocks = race_blocks(100, SelectRule::Laser, 20);
        let base: Vec<bool> = (0..100).map(|i| i < 60).collect();
        let mk = |mode| {
            let mut r = Racer::with_mode(SelectRule::Laser, mode, &blocks, 10);
            r.set_base(&metrics(&base, &[1.0; 100]));
            r
        };
        let (exact, statistical) = (mk(Race::Exact), mk(Race::Statistical));
        // 5 of 20: exact keeps it (5 + 80 could beat 60), but a 99% Wilson bound of 5/20 is
        // 0.51, so at most 5 + 41 = 46 of 100 plausibly: it will not beat the base model's 60.
        let poor = prefix(&[[true; 5].as_slice(), &[false; 15]].concat(), &[1.0; 20]);
        assert!(exact.can_be_chosen(&poor));
        assert!(!statistical.can_be_chosen(&poor));
        // 11 of 20 (bound 0.77: 11 + 62 = 73 > 60) stays in both.
        let fair = prefix(&[[true; 11].as_slice(), &[false; 9]].concat(), &[1.0; 20]);
        assert!(exact.can_be_chosen(&fair) && statistical.can_be_chosen(&fair));
        assert_eq!(statistical.context(), "laser/statistical");
        assert!(statistical.honours(Some("laser/statistical")));
        assert!(!statistical.honours(Some("laser/exact")) && !statistical.honours(None));
        assert!(exact.honours(None) && !exact.honours(Some("guarded/exact")));
    }

    #[test]
    fn statistical_guarded_credits_wins_only_at_the_rate_seen() {
        let blocks = race_blocks(100, SelectRule::Guarded, 20);
        // The base model is wrong on every odd item: 50 wins are possible.
        let base: Vec<bool> = (0..100).map(|i| i % 2 == 0).collect();
        let mk = |mode| {
            let mut r = Racer::with_mode(SelectRule::Guarded, mode, &blocks, 10);
            r.set_base(&metrics(&base, &[1.0; 100]));
            r
        };
        // Race order here is item order; the candidate copies the base model on the first 40
        // items: no win, no loss. Exact: 0 + 30 wins left could still pass; statistical: a rate
        // of 0 of 20 is plausibly at most 0.21, 7 of 30 wins, p = 2^-7 × 10 = 0.08 > 0.05.
        let copy = prefix(&base[..40], &[1.0; 40]);
        assert!(mk(Race::Exact).can_be_chosen(&copy));
        assert!(!mk(Race::Statistical).can_be_chosen(&copy));
        // 12 wins of 20 chances and no loss: it may well pass.
        let good: Vec<bool> = (0..40).map(|i| i % 2 == 0 || i < 24).collect();
        assert!(mk(Race::Statistical).can_be_chosen(&prefix(&good, &[1.0; 40])));
    }

    /// Everything exact racing stops, statistical racing stops too, under every rule; and it
    /// stops more.
    #[test]
    fn statistical_racing_stops_a_superset_of_exact_racing() {
        let mut rng = laser_linalg::rng::SplitMix64::new(7);
        let (mut exact_stops, mut more) = (0, 0);
        for rule in SelectRule::ALL {
            for _ in 0..200 {
                let n = 40;
                let blocks = race_blocks(n, rule, 10);
                let flip = |rng: &mut laser_linalg::rng::SplitMix64, p: usize| {
                    (0..n).map(|_| rng.below(100) < p).collect::<Vec<bool>>()
                };
                let nll = |rng: &mut laser_linalg::rng::SplitMix64| {
                    (0..n).map(|_| rng.below(300) as f64 / 100.0).collect::<Vec<f64>>()
                };
                let (base, base_nll) = (flip(&mut rng, 50), nll(&mut rng));
                let (lead, lead_nll) = (flip(&mut rng, 60), nll(&mut rng));
                let p = rng.below(100);
                let (cand, cand_nll) = (flip(&mut rng, p), nll(&mut rng));
                let k = 10 * (1 + rng.below(3));
                let mut racers = [Race::Exact, Race::Statistical].map(|mode| {
                    let mut r = Racer::with_mode(rule, mode, &blocks, 5);
                    r.set_base(&metrics(&base, &base_nll));
                    r
                });
                if rng.below(2) == 0 {
                    racers.iter_mut().for_each(|r| r.finished(&metrics(&lead, &lead_nll)));
                }
                let order = blocks.concat();
                let seen: Vec<bool> = order[..k].iter().map(|&i| cand[i]).collect();
                let seen_nll: Vec<f64> = order[..k].iter().map(|&i| cand_nll[i]).collect();
                let partial = prefix(&seen, &seen_nll);
                let [exact, statistical] = racers.map(|r| r.can_be_chosen(&partial));
                assert!(exact || !statistical, "{rule}: exact stops, statistical keeps");
                exact_stops += usize::from(!exact);
                more += usize::from(exact && !statistical);
            }
        }
        assert!(
            exact_stops > 0 && more > 0,
            "exact stopped {exact_stops}, statistical {more} more"
        );
    }

    /// Race order of 8 items under a halves rule: the choosing half (even items) first, each
    /// part shuffled as the evaluator's ordering by length may shuffle it.
    fn halves_blocks() -> Vec<Vec<usize>> {
        vec![vec![6, 2], vec![4, 0], vec![7, 1], vec![3, 5]]
    }

    #[test]
    fn the_choosing_half_is_read_back_in_item_order() {
        let r = Racer::new(SelectRule::SplitConfirm, &halves_blocks(), 2);
        // Race positions hold items 6, 2, 4, 0 (NLL = the item's number), then the other half.
        let partial = prefix(&[true, false, false, true, true], &[6.0, 2.0, 4.0, 0.0, 7.0]);
        let half = r.choosing_half(&partial).unwrap();
        assert_eq!(half.nll, [0.0, 2.0, 4.0, 6.0]);
        assert_eq!(half.correct, [true, false, false, true]);
        // Scored on every item: item order already.
        let full = prefix(&[true; 8], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(r.choosing_half(&full).unwrap().nll, [0.0, 2.0, 4.0, 6.0]);
        // Less than the choosing half, or a rule without halves: nothing.
        assert!(r.choosing_half(&prefix(&[true; 2], &[0.0; 2])).is_none());
        let laser = Racer::new(SelectRule::Laser, &halves_blocks(), 2);
        assert!(laser.choosing_half(&partial).is_none());
    }

    #[test]
    fn deferred_confirmation_stops_everyone_after_the_choosing_half_and_picks_its_best() {
        let base = [true, true, false, true, false, true, false, true];
        let mk = |defer| {
            let mut r =
                Racer::new(SelectRule::SplitConfirm, &halves_blocks(), 4).defer_confirmation(defer);
            r.set_base(&metrics(&base, &[1.0; 8]));
            r
        };
        let (deferred, eager) = (mk(true), mk(false));
        assert!(deferred.defers_confirmation() && !eager.defers_confirmation());
        assert!(
            !Racer::new(SelectRule::Guarded, &halves_blocks(), 4)
                .defer_confirmation(true)
                .defers_confirmation()
        );
        // Right on the whole choosing half (base: 1 of 4 there): a leader. Without deferral it
        // goes on to the confirming half; deferred, it waits for the scan's pick.
        let strong = prefix(&[true; 4], &[0.5; 4]);
        assert!(eager.can_be_chosen(&strong) && !deferred.can_be_chosen(&strong));
        // Before the choosing half is done both race alike.
        assert!(deferred.can_be_chosen(&prefix(&[true; 2], &[0.5; 2])));
        // The pick: the best on the choosing half among candidates scored on all of it, in race
        // order (a, b), in item order (c, every item), or not (d, stopped after 2 items).
        let cand = |correct: &[bool], nll: &[f64], stopped: bool| CandidateResult {
            edits: Vec::new(),
            select: metrics(correct, nll),
            stopped_after: stopped.then_some(correct.len()),
        };
        let a = cand(&[true, true, false, false], &[0.5; 4], true);
        let b = cand(&[true, true, true, false], &[0.9; 4], true);
        let c = cand(&[true, false, true, false, true, false, false, false], &[0.1; 8], false);
        let d = cand(&[true, true], &[0.0; 2], true);
        let base_m = metrics(&base, &[1.0; 8]);
        let mut r = mk(true);
        for x in [&a, &b, &c, &d] {
            r.finished(&x.select);
        }
        // b: 3 of 4 on the choosing half; c: items 0, 2, 4, 6 → 3 of 4 too, at a lower loss.
        assert_eq!(r.pick_to_confirm(&base_m, &[a.clone(), b.clone(), d.clone()]), Some(1));
        assert_eq!(r.pick_to_confirm(&base_m, &[a.clone(), b, c, d.clone()]), Some(2));
        // Nothing beats the base model there: nothing to confirm.
        let weak = cand(&[false, true, false, false], &[2.0; 4], true);
        assert_eq!(r.pick_to_confirm(&base_m, &[weak, d]), None);
        // The finished standings (a, b, c) stop what cannot reach 3 of 4 at a loss below 0.1.
        assert!(!r.can_be_chosen(&prefix(&[false, false], &[0.0; 2])));
        assert!(!r.can_be_chosen(&prefix(&[true, false], &[0.3; 2])));
        assert!(r.can_be_chosen(&prefix(&[true, false], &[0.0; 2])));
    }

    #[test]
    fn choose_confirm_stops_what_its_log_loss_guard_leaves_out() {
        let base = [true, false, true, false, true, false, true, false];
        let mut r = Racer::new(SelectRule::ChooseConfirm, &halves_blocks(), 4);
        r.set_base(&metrics(&base, &[1.0; 8]));
        // Right on the whole choosing half but with every NLL doubled there: significantly worse
        // log-loss, so the rule leaves it out — stopped, and it stops no one.
        let wrecked = prefix(&[true; 4], &[2.0, 2.5, 3.0, 2.2]);
        assert!(!r.can_be_chosen(&wrecked));
        r.finished(&Metrics { n: 4, ..metrics(&[true; 4], &[2.0, 2.5, 3.0, 2.2]) });
        assert!(r.can_be_chosen(&prefix(&[true, true], &[1.0; 2])));
        // The same accuracy at the base model's log-loss goes on.
        assert!(r.can_be_chosen(&prefix(&[true; 4], &[1.0; 4])));
    }

    #[test]
    fn race_names_parse() {
        for r in Race::ALL {
            assert_eq!(r.name().parse::<Race>().unwrap(), r);
        }
        assert!("maybe".parse::<Race>().is_err());
    }
}
