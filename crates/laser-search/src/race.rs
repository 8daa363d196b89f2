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
//! Comparisons of log-losses keep a relative margin of 1e-9 and stop only when the bound is
//! beyond it: floating-point sums in another order must never stop a candidate that could tie.

use serde::{Deserialize, Serialize};

use crate::metrics::{ItemScores, Metrics};
use crate::select::{GUARD_ALPHA, SelectRule, discordant, logloss_worse, mcnemar_one_sided};

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
}

impl Race {
    /// Every mode, in help order.
    pub const ALL: [Race; 2] = [Self::Exact, Self::Off];

    /// The CLI name (`exact`, `off`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Exact => "exact",
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
    /// Race position → selection item.
    order: Vec<usize>,
    /// Items of the choosing half (split-confirm): race positions `0..choose`.
    choose: usize,
    /// The candidates the rule will choose among (guarded's Bonferroni factor).
    candidates: usize,
    base: Option<(Standing, ItemScores)>,
    /// Base-model errors among race positions `k..` for every k.
    base_wrong_after: Vec<usize>,
    finished: Vec<Standing>,
}

impl Racer {
    /// A race for `rule` over items scored in the order of `blocks` (`Evaluator::blocks` of
    /// [`race_parts`]), among `candidates` candidates in all (every shard's, for a sharded
    /// scan).
    pub fn new(rule: SelectRule, blocks: &[Vec<usize>], candidates: usize) -> Self {
        let order: Vec<usize> = blocks.concat();
        let choose = if rule.halves() { order.len().div_ceil(2) } else { order.len() };
        Self {
            rule,
            order,
            choose,
            candidates,
            base: None,
            base_wrong_after: Vec::new(),
            finished: Vec::new(),
        }
    }

    /// The candidates the rule will choose among.
    pub fn set_candidates(&mut self, candidates: usize) {
        self.candidates = candidates;
    }

    fn standing(&self, m: &Metrics, items: &ItemScores) -> Standing {
        match self.rule {
            SelectRule::SplitConfirm | SelectRule::ChooseConfirm => {
                let choose: Vec<usize> = (0..items.correct.len()).step_by(2).collect();
                let correct = choose.iter().filter(|&&i| items.correct[i]).count();
                Standing { correct, loss: items.subset(&choose).1, p: None }
            }
            _ => {
                let correct = items.correct.iter().filter(|&&c| c).count();
                let p = match (self.rule, &self.base) {
                    (SelectRule::Guarded, Some((_, base))) => {
                        let (w, l) = discordant(base.correct.iter().copied(), &items.correct);
                        Some(mcnemar_one_sided(w, l))
                    }
                    _ => None,
                };
                Standing { correct, loss: m.logloss, p }
            }
        }
    }

    /// Records the base model's metrics (every selection item, in item order). Without them (or
    /// without per-item results) nothing is ever stopped.
    pub fn set_base(&mut self, base: &Metrics) {
        let Some(items) = base.items.as_ref().filter(|i| i.correct.len() == self.order.len())
        else {
            return;
        };
        let standing = self.standing(base, items);
        let mut after = vec![0; self.order.len() + 1];
        for k in (0..self.order.len()).rev() {
            after[k] = after[k + 1] + usize::from(!items.correct[self.order[k]]);
        }
        self.base_wrong_after = after;
        self.base = Some((standing, items.clone()));
    }

    /// Records a candidate evaluated on every item (item order).
    pub fn finished(&mut self, m: &Metrics) {
        if let Some(items) = m.items.as_ref().filter(|i| i.correct.len() == self.order.len()) {
            // A candidate choose-confirm's log-loss guard leaves out can never be chosen, so it
            // must not stop others either.
            if let (SelectRule::ChooseConfirm, Some((_, base))) = (self.rule, &self.base) {
                let choose: Vec<usize> = (0..items.nll.len()).step_by(2).collect();
                let on =
                    |x: &ItemScores| -> Vec<f64> { choose.iter().map(|&j| x.nll[j]).collect() };
                if logloss_worse(&on(base), &on(items)).is_some() {
                    return;
                }
            }
            let s = self.standing(m, items);
            self.finished.push(s);
        }
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
        // "c cannot be strictly better than s by accuracy, ties by lower log-loss."
        let beaten_by = |best_correct: usize, least_loss: f64, s: &Standing| {
            best_correct < s.correct
                || (best_correct == s.correct && clearly_above(least_loss, s.loss))
        };
        match self.rule {
            // LASER's rule is split-confirm's choice with every item in the choosing half.
            SelectRule::Laser | SelectRule::SplitConfirm | SelectRule::ChooseConfirm => {
                let seen = k.min(self.choose);
                let best = count(&partial.correct[..seen]) + (self.choose - seen);
                let least_loss =
                    partial.nll[..seen].iter().sum::<f64>() / self.choose.max(1) as f64;
                !(beaten_by(best, least_loss, base)
                    || self.finished.iter().any(|s| beaten_by(best, least_loss, s)))
            }
            SelectRule::Logloss => {
                let least_loss = partial.nll.iter().sum::<f64>() / n as f64;
                // It must end strictly below the base model and below every earlier minimum.
                !(clearly_above(least_loss, base.loss)
                    || self.finished.iter().any(|s| clearly_above(least_loss, s.loss)))
            }
            SelectRule::Guarded => {
                let base_seen = self.order[..k].iter().map(|&i| base_items.correct[i]);
                let (wins, losses) = discordant(base_seen, &partial.correct);
                let p_least = mcnemar_one_sided(wins + self.base_wrong_after[k], losses);
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
    fn race_names_parse() {
        for r in Race::ALL {
            assert_eq!(r.name().parse::<Race>().unwrap(), r);
        }
        assert!("maybe".parse::<Race>().is_err());
    }
}
