//! The rules that choose on the even-numbered selection items and confirm on the odd-numbered
//! ones: split-confirm (a higher accuracy there) and choose-confirm (one paired test there, and
//! the log-loss guard on both halves).
//!
//! Choosing reads the choosing half alone ([`pick_on_choosing_half`]), so a scan may score only
//! that half of every candidate and the other half of the one picked (`search/scan.rs`).

use super::{Choice, GUARD_ALPHA, SelectRule, Selection, items_of, laser_best};
use crate::metrics::{ItemScores, Metrics};
use crate::select::stats::{discordant, logloss_worse, mcnemar_one_sided};

/// The base model's per-item results and the two halves of the selection items: the choosing
/// (even-numbered) and the confirming (odd-numbered) ones.
fn halves(base: &Metrics) -> Option<(&ItemScores, Vec<usize>, Vec<usize>)> {
    let items = items_of(base)?;
    Some((items, (0..base.n).step_by(2).collect(), (1..base.n).step_by(2).collect()))
}

/// `items` on the items `at`, in that order.
pub(crate) fn restrict(items: &ItemScores, at: &[usize]) -> ItemScores {
    ItemScores {
        correct: at.iter().map(|&j| items.correct[j]).collect(),
        nll: at.iter().map(|&j| items.nll[j]).collect(),
    }
}

/// What a halves rule picks on the choosing half alone.
pub(crate) struct HalfPick {
    /// The candidate and its (accuracy, log-loss) on the choosing half, when it beats the base
    /// model there.
    pub(crate) pick: Option<(usize, (f64, f64))>,
    /// Candidates choose-confirm's log-loss guard left out.
    pub(crate) guarded_out: usize,
}

/// The choosing step of `rule` (split-confirm or choose-confirm): LASER's order over the
/// candidates' results on the choosing half (`base` and every candidate restricted to the same
/// items in the same order), choose-confirm leaving out those whose log-loss there is
/// significantly worse than the base model's; the pick must beat the base model there.
pub(crate) fn pick_on_choosing_half(
    rule: SelectRule,
    base: &ItemScores,
    candidates: impl IntoIterator<Item = (usize, ItemScores)>,
) -> HalfPick {
    let on_base = base.overall();
    let mut guarded_out = 0;
    let best = laser_best(candidates.into_iter().filter_map(|(i, items)| {
        if rule == SelectRule::ChooseConfirm && logloss_worse(&base.nll, &items.nll).is_some() {
            guarded_out += 1;
            return None;
        }
        Some((i, items.overall()))
    }));
    let pick = best.filter(|(_, m)| m.0 > on_base.0 || (m.0 == on_base.0 && m.1 < on_base.1));
    HalfPick { pick, guarded_out }
}

/// The live candidates' results on the choosing half.
fn on_choosing_half<'c>(
    c: &'c Choice<'_>,
    choose: &'c [usize],
) -> impl Iterator<Item = (usize, ItemScores)> + 'c {
    c.live.iter().filter_map(|&i| Some((i, restrict(items_of(&c.candidates[i].select)?, choose))))
}

/// LASER's rule on the choosing half, confirmed by a strictly higher accuracy on the other.
pub(super) fn split_confirm(c: &Choice<'_>) -> Selection {
    let Choice { rule, base, candidates, .. } = *c;
    let none = |reason: String| Selection { rule, chosen: None, p_value: None, reason };
    let Some((base_items, choose, confirm)) = halves(base) else {
        return none("per-item selection results are missing; the base model is returned".into());
    };
    let (base_choose, base_confirm) = (base_items.subset(&choose), base_items.subset(&confirm));
    let half = restrict(base_items, &choose);
    let Some((i, on_choose)) =
        pick_on_choosing_half(rule, &half, on_choosing_half(c, &choose)).pick
    else {
        return none(
            "no edit beats the base model on the choosing half; the base model is returned".into(),
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

/// Chosen on one half (log-loss guarded), confirmed on the other by one one-sided McNemar
/// test, and refused when the other half's log-loss is significantly worse.
pub(super) fn choose_confirm(c: &Choice<'_>) -> Selection {
    let Choice { rule, base, candidates, .. } = *c;
    let none = |reason: String| Selection { rule, chosen: None, p_value: None, reason };
    let Some((base_items, choose, confirm)) = halves(base) else {
        return none("per-item selection results are missing; the base model is returned".into());
    };
    let base_choose = base_items.subset(&choose);
    let half = restrict(base_items, &choose);
    let HalfPick { pick, guarded_out } =
        pick_on_choosing_half(rule, &half, on_choosing_half(c, &choose));
    let Some((i, on_choose)) = pick else {
        return none(format!(
            "no edit beats the base model on the choosing half{}; the base model is returned",
            match guarded_out {
                0 => String::new(),
                g => format!(" ({g} left out: log-loss significantly worse than the base model's)"),
            }
        ));
    };
    let items = items_of(&candidates[i].select).expect("filtered");
    let base_confirm = confirm.iter().map(|&j| base_items.correct[j]);
    let cand_confirm: Vec<bool> = confirm.iter().map(|&j| items.correct[j]).collect();
    let (wins, losses) = discordant(base_confirm, &cand_confirm);
    let p = mcnemar_one_sided(wins, losses);
    let (on_confirm, base_on_confirm) = (items.subset(&confirm), base_items.subset(&confirm));
    if let Some((mean, low)) =
        logloss_worse(&restrict(base_items, &confirm).nll, &restrict(items, &confirm).nll)
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
