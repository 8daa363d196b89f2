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
//! counts among the candidates scanned (the guarded rule's Bonferroni factor).

use serde::{Deserialize, Serialize};

use crate::metrics::{ItemScores, Metrics};
use crate::report::CandidateResult;

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

/// One-sided exact McNemar test: the probability of at least `wins` successes among
/// `wins + losses` fair coin flips (the discordant items), i.e. that an edit which is no better
/// than the base model wins at least this often.
pub fn mcnemar_one_sided(wins: usize, losses: usize) -> f64 {
    let n = wins + losses;
    if n == 0 {
        return 1.0;
    }
    // Σ_{k ≥ wins} C(n, k) / 2^n, in log space (n may be in the thousands).
    let ln_choose = |k: usize| ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k);
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let p: f64 = (wins..=n).map(|k| (ln_choose(k) - ln_half_n).exp()).sum();
    p.min(1.0)
}

fn ln_factorial(n: usize) -> f64 {
    (2..=n).map(|k| (k as f64).ln()).sum()
}

/// (candidate right where base wrong, base right where candidate wrong) over paired outcomes:
/// the base model's `base`, the candidate's `cand` (as many as `base` yields).
pub(crate) fn discordant(base: impl Iterator<Item = bool>, cand: &[bool]) -> (usize, usize) {
    base.zip(cand).fold((0, 0), |(w, l), (b, &c)| match (b, c) {
        (false, true) => (w + 1, l),
        (true, false) => (w, l + 1),
        _ => (w, l),
    })
}

/// The log-loss guard: whether `cand`'s mean per-item NLL is significantly worse (higher) than
/// `base`'s on the same items — the lower end of a one-sided 95% paired-bootstrap interval of the
/// mean difference above zero. Returns (mean difference, that lower end) when it is.
pub fn logloss_worse(base: &[f64], cand: &[f64]) -> Option<(f64, f64)> {
    let n = base.len();
    if n == 0 || cand.len() != n {
        return None;
    }
    let diff: Vec<f64> = base.iter().zip(cand).map(|(b, c)| c - b).collect();
    let mean = diff.iter().sum::<f64>() / n as f64;
    if mean <= 0.0 {
        return None;
    }
    let mut rng = laser_linalg::rng::SplitMix64::new(0);
    let resamples = crate::interval::BOOTSTRAP_RESAMPLES;
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| diff[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    stats.sort_by(f64::total_cmp);
    let low = stats[((0.05 * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (low > 0.0).then_some((mean, low))
}

fn items_of(m: &Metrics) -> Option<&ItemScores> {
    m.items.as_ref().filter(|i| i.correct.len() == m.n && i.nll.len() == m.n)
}

/// Applies `rule` to single-edit candidates scanned against `base` (all on the selection split).
pub fn select(rule: SelectRule, base: &Metrics, candidates: &[CandidateResult]) -> Selection {
    let laser_best = |over: &mut dyn Iterator<Item = (usize, (f64, f64))>| {
        over.fold(None::<(usize, (f64, f64))>, |best, (i, m)| match best {
            Some((_, b)) if !(m.0 > b.0 || (m.0 == b.0 && m.1 < b.1)) => best,
            _ => Some((i, m)),
        })
    };
    let whole = |i: usize| (candidates[i].select.accuracy, candidates[i].select.logloss);
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
            SelectRule::SplitConfirm | SelectRule::ChooseConfirm => {
                "none could still beat the base model on the choosing half".into()
            }
            SelectRule::Laser => "none could still beat the base model's accuracy".into(),
        };
        return none(format!(
            "racing stopped all {} candidates: {why}; the base model is returned",
            candidates.len()
        ));
    }
    match rule {
        SelectRule::Laser => {
            let (i, _) = laser_best(&mut live.iter().map(|&i| (i, whole(i)))).expect("non-empty");
            if candidates[i].select.better_than(base) {
                Selection {
                    rule,
                    chosen: Some(i),
                    p_value: None,
                    reason:
                        "highest selection accuracy (ties: lower log-loss), above the base model"
                            .into(),
                }
            } else {
                none(
                    "no edit beats the base model's selection accuracy; the base model is returned"
                        .into(),
                )
            }
        }
        SelectRule::Logloss => {
            let i = live
                .iter()
                .copied()
                .min_by(|&a, &b| {
                    candidates[a].select.logloss.total_cmp(&candidates[b].select.logloss)
                })
                .expect("non-empty");
            if candidates[i].select.logloss < base.logloss {
                Selection {
                    rule,
                    chosen: Some(i),
                    p_value: None,
                    reason: "lowest selection log-loss, below the base model's".into(),
                }
            } else {
                none("no edit lowers the base model's selection log-loss; the base model is returned".into())
            }
        }
        SelectRule::Guarded => {
            let Some(base_items) = items_of(base) else {
                return none(
                    "per-item selection results are missing; the base model is returned".into(),
                );
            };
            let c = candidates.len() as f64;
            // (adjusted p, index), best first: smallest p, then LASER's order.
            let mut tested: Vec<(f64, usize)> = live
                .iter()
                .filter_map(|&i| {
                    let items = items_of(&candidates[i].select)?;
                    let (wins, losses) =
                        discordant(base_items.correct.iter().copied(), &items.correct);
                    Some(((mcnemar_one_sided(wins, losses) * c).min(1.0), i))
                })
                .collect();
            tested.sort_by(|a, b| {
                a.0.total_cmp(&b.0).then_with(|| {
                    let (x, y) = (&candidates[a.1].select, &candidates[b.1].select);
                    y.accuracy.total_cmp(&x.accuracy).then(x.logloss.total_cmp(&y.logloss))
                })
            });
            match tested.first() {
                Some(&(p, i)) if p <= GUARD_ALPHA => Selection {
                    rule,
                    chosen: Some(i),
                    p_value: Some(p),
                    reason: format!(
                        "beats the base model on the selection items (one-sided McNemar, p = {p:.3} after Bonferroni over {} candidates)",
                        candidates.len()
                    ),
                },
                Some(&(p, _)) => Selection {
                    rule,
                    chosen: None,
                    p_value: Some(p),
                    reason: format!(
                        "no edit beats the base model on the selection items with confidence (best p = {p:.3} after Bonferroni over {} candidates, α = {GUARD_ALPHA}{}); the base model is returned",
                        candidates.len(),
                        match candidates.len() - live.len() {
                            0 => String::new(),
                            s => format!("; {s} stopped by racing could not pass"),
                        }
                    ),
                },
                None => none(
                    "per-item selection results are missing; the base model is returned".into(),
                ),
            }
        }
        SelectRule::SplitConfirm => {
            let Some(base_items) = items_of(base) else {
                return none(
                    "per-item selection results are missing; the base model is returned".into(),
                );
            };
            let choose: Vec<usize> = (0..base.n).step_by(2).collect();
            let confirm: Vec<usize> = (1..base.n).step_by(2).collect();
            let (base_choose, base_confirm) =
                (base_items.subset(&choose), base_items.subset(&confirm));
            let best = laser_best(
                &mut live
                    .iter()
                    .filter_map(|&i| Some((i, items_of(&candidates[i].select)?.subset(&choose)))),
            );
            let Some((i, on_choose)) = best.filter(|(_, m)| {
                m.0 > base_choose.0 || (m.0 == base_choose.0 && m.1 < base_choose.1)
            }) else {
                return none(
                    "no edit beats the base model on the choosing half; the base model is returned"
                        .into(),
                );
            };
            let on_confirm = items_of(&candidates[i].select).expect("filtered").subset(&confirm);
            if on_confirm.0 > base_confirm.0 {
                Selection {
                    rule,
                    chosen: Some(i),
                    p_value: None,
                    reason: format!(
                        "best on the choosing half ({:.1}% vs {:.1}%), confirmed on the other half ({:.1}% vs {:.1}%)",
                        on_choose.0, base_choose.0, on_confirm.0, base_confirm.0
                    ),
                }
            } else {
                none(format!(
                    "the edit chosen on one half of the selection items is not better on the other ({:.1}% vs {:.1}%); the base model is returned",
                    on_confirm.0, base_confirm.0
                ))
            }
        }
        SelectRule::ChooseConfirm => {
            let Some(base_items) = items_of(base) else {
                return none(
                    "per-item selection results are missing; the base model is returned".into(),
                );
            };
            let choose: Vec<usize> = (0..base.n).step_by(2).collect();
            let confirm: Vec<usize> = (1..base.n).step_by(2).collect();
            let nll_on = |items: &ItemScores, at: &[usize]| -> Vec<f64> {
                at.iter().map(|&j| items.nll[j]).collect()
            };
            let base_choose = base_items.subset(&choose);
            let base_choose_nll = nll_on(base_items, &choose);
            let mut guarded_out = 0;
            let best = laser_best(&mut live.iter().filter_map(|&i| {
                let items = items_of(&candidates[i].select)?;
                if logloss_worse(&base_choose_nll, &nll_on(items, &choose)).is_some() {
                    guarded_out += 1;
                    return None;
                }
                Some((i, items.subset(&choose)))
            }));
            let Some((i, on_choose)) = best.filter(|(_, m)| {
                m.0 > base_choose.0 || (m.0 == base_choose.0 && m.1 < base_choose.1)
            }) else {
                return none(format!(
                    "no edit beats the base model on the choosing half{}; the base model is returned",
                    match guarded_out {
                        0 => String::new(),
                        g => format!(
                            " ({g} left out: log-loss significantly worse than the base model's)"
                        ),
                    }
                ));
            };
            let items = items_of(&candidates[i].select).expect("filtered");
            let base_confirm = confirm.iter().map(|&j| base_items.correct[j]);
            let cand_confirm: Vec<bool> = confirm.iter().map(|&j| items.correct[j]).collect();
            let (wins, losses) = discordant(base_confirm, &cand_confirm);
            let p = mcnemar_one_sided(wins, losses);
            let (on_confirm, base_on_confirm) =
                (items.subset(&confirm), base_items.subset(&confirm));
            if let Some((mean, low)) =
                logloss_worse(&nll_on(base_items, &confirm), &nll_on(items, &confirm))
            {
                return Selection {
                    rule,
                    chosen: None,
                    p_value: Some(p),
                    reason: format!(
                        "the edit chosen on one half raises log-loss significantly on the other \
                         ({:.3} → {:.3}, +{mean:.3}, 95% lower bound +{low:.3}); the base model is \
                         returned",
                        base_on_confirm.1, on_confirm.1
                    ),
                };
            }
            if p <= GUARD_ALPHA {
                Selection {
                    rule,
                    chosen: Some(i),
                    p_value: Some(p),
                    reason: format!(
                        "best on the choosing half ({:.1}% vs {:.1}%), confirmed on the other half \
                         ({:.1}% vs {:.1}%, one-sided McNemar p = {p:.3}, one test), log-loss \
                         {:.3} → {:.3}",
                        on_choose.0,
                        base_choose.0,
                        on_confirm.0,
                        base_on_confirm.0,
                        base_on_confirm.1,
                        on_confirm.1
                    ),
                }
            } else {
                Selection {
                    rule,
                    chosen: None,
                    p_value: Some(p),
                    reason: format!(
                        "the edit chosen on one half is not significantly better on the other \
                         ({:.1}% vs {:.1}%, one-sided McNemar p = {p:.3} > {GUARD_ALPHA}); the \
                         base model is returned",
                        on_confirm.0, base_on_confirm.0
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_binomial_tail() {
        // P(X ≥ 8 | n = 10, ½) = (45 + 10 + 1) / 1024.
        assert!((mcnemar_one_sided(8, 2) - 56.0 / 1024.0).abs() < 1e-12);
        assert!((mcnemar_one_sided(0, 5) - 1.0).abs() < 1e-12);
        assert!((mcnemar_one_sided(5, 0) - 1.0 / 32.0).abs() < 1e-12);
        assert_eq!(mcnemar_one_sided(0, 0), 1.0);
        // Symmetric: P(X ≥ 3 | 6) + P(X ≥ 4 | 6) = 1.
        assert!((mcnemar_one_sided(3, 3) + mcnemar_one_sided(4, 2) - 1.0).abs() < 1e-12);
        // Large n stays finite and tiny.
        let p = mcnemar_one_sided(700, 300);
        assert!(p > 0.0 && p < 1e-30, "{p}");
    }

    /// Metrics of `correct` / `nll` per item (accuracy and log-loss their means).
    fn metrics(correct: &[bool], nll: &[f64]) -> Metrics {
        let n = correct.len();
        Metrics {
            n,
            accuracy: 100.0 * correct.iter().filter(|&&c| c).count() as f64 / n as f64,
            logloss: nll.iter().sum::<f64>() / n as f64,
            majority: None,
            per_class: None,
            items: Some(ItemScores { correct: correct.to_vec(), nll: nll.to_vec() }),
        }
    }

    fn candidate(name: &str, correct: &[bool], nll: &[f64]) -> CandidateResult {
        CandidateResult {
            edits: vec![crate::edits::Edit {
                name: name.into(),
                rho: 0.5,
                factor: crate::edits::Factor::Svd,
                seed: None,
                max_iter: None,
            }],
            select: metrics(correct, nll),
            stopped_after: None,
        }
    }

    /// 60 items: the base model right on every third; `fixes` of its wrong items per half become
    /// right (the halves are the even and the odd items).
    fn planted(fixes_even: usize, fixes_odd: usize) -> Vec<bool> {
        let base: Vec<bool> = (0..60).map(|i| i % 3 == 0).collect();
        let (mut even, mut odd) = (0, 0);
        base.iter()
            .enumerate()
            .map(|(i, &b)| {
                let fix = if i % 2 == 0 { &mut even } else { &mut odd };
                let limit = if i % 2 == 0 { fixes_even } else { fixes_odd };
                if !b && *fix < limit {
                    *fix += 1;
                    true
                } else {
                    b
                }
            })
            .collect()
    }

    #[test]
    fn choose_confirm_confirms_a_real_gain_with_one_test_and_refuses_the_rest() {
        let base_correct = planted(0, 0);
        let flat = vec![1.0; 60];
        let base = metrics(&base_correct, &flat);
        // Better on both halves: confirmed by one McNemar test on the other half (10 wins, 0
        // losses: p = 2^-10), however many candidates were scanned.
        let real = candidate("real", &planted(10, 10), &flat);
        let mut many: Vec<CandidateResult> =
            (0..200).map(|i| candidate(&format!("noise{i}"), &base_correct, &flat)).collect();
        many.push(real.clone());
        let s = select(SelectRule::ChooseConfirm, &base, &many);
        assert_eq!(s.chosen, Some(200), "{}", s.reason);
        assert!((s.p_value.unwrap() - 0.5f64.powi(10)).abs() < 1e-12);
        assert!(s.reason.contains("one test"), "{}", s.reason);
        // A smaller gain, 5 fixes per half, among the same 200 others: one test on the other
        // half (p = 1/32) confirms it, where the guarded rule's Bonferroni factor (10 wins:
        // p = 2^-10 × 201 ≈ 0.2) returns the base model.
        many.pop();
        many.push(candidate("modest", &planted(5, 5), &flat));
        let s = select(SelectRule::ChooseConfirm, &base, &many);
        assert_eq!((s.chosen, s.p_value), (Some(200), Some(1.0 / 32.0)), "{}", s.reason);
        let g = select(SelectRule::Guarded, &base, &many);
        assert_eq!(g.chosen, None, "{}", g.reason);
        assert!((g.p_value.unwrap() - 201.0 / 1024.0).abs() < 1e-9);
        // Better on the choosing half only: chosen there, not confirmed.
        let lucky = candidate("lucky", &planted(10, 0), &flat);
        let s = select(SelectRule::ChooseConfirm, &base, &[lucky]);
        assert_eq!(s.chosen, None);
        assert!(s.reason.contains("not significantly better"), "{}", s.reason);
        // A small gain on the other half (3 wins): p = 1/8, no edit.
        let small = candidate("small", &planted(10, 3), &flat);
        let s = select(SelectRule::ChooseConfirm, &base, &[small]);
        assert_eq!(s.chosen, None);
        assert!((s.p_value.unwrap() - 0.125).abs() < 1e-12);
    }

    #[test]
    fn choose_confirm_refuses_an_accuracy_gain_that_wrecks_log_loss() {
        let base_correct = planted(0, 0);
        let flat = vec![1.0; 60];
        let base = metrics(&base_correct, &flat);
        // Gains on both halves, but log-loss 1 → 5 on every odd (confirming) item.
        let wrecked_odd: Vec<f64> = (0..60).map(|i| if i % 2 == 1 { 5.0 } else { 1.0 }).collect();
        let s = select(
            SelectRule::ChooseConfirm,
            &base,
            &[candidate("wreck", &planted(10, 10), &wrecked_odd)],
        );
        assert_eq!(s.chosen, None);
        assert!(s.reason.contains("raises log-loss significantly"), "{}", s.reason);
        // Wrecked on the choosing half: left out before choosing, so a clean runner-up wins.
        let wrecked_even: Vec<f64> = (0..60).map(|i| if i % 2 == 0 { 5.0 } else { 1.0 }).collect();
        let s = select(
            SelectRule::ChooseConfirm,
            &base,
            &[
                candidate("wreck", &planted(15, 15), &wrecked_even),
                candidate("clean", &planted(10, 10), &flat),
            ],
        );
        assert_eq!(s.chosen, Some(1), "{}", s.reason);
        // The guard is one-sided and paired: noise around the base's NLL is not "worse".
        let noisy: Vec<f64> = (0..60).map(|i| if i % 2 == 0 { 1.2 } else { 0.8 }).collect();
        assert!(logloss_worse(&flat, &noisy).is_none());
        assert!(logloss_worse(&flat, &vec![1.5; 60]).is_some());
        assert!(logloss_worse(&flat, &vec![0.5; 60]).is_none());
    }

    #[test]
    fn rules_parse_and_print_their_names() {
        for r in SelectRule::ALL {
            assert_eq!(r.name().parse::<SelectRule>().unwrap(), r);
        }
        assert!("best".parse::<SelectRule>().is_err());
    }
}
