//! The rules that read every selection item at once: LASER's (accuracy, ties by log-loss),
//! log-loss alone, and the guarded rule (a Bonferroni-corrected paired test against the base).

use super::{Choice, GUARD_ALPHA, Selection, items_of, laser_best};
use crate::select::stats::{discordant, mcnemar_one_sided};

/// LASER's rule: the highest selection accuracy (ties: lower log-loss), when above the base's.
pub(super) fn laser(c: &Choice<'_>) -> Selection {
    let Choice { rule, base, candidates, live } = *c;
    let none = |reason: String| Selection { rule, chosen: None, p_value: None, reason };
    let whole = |i: usize| (candidates[i].select.accuracy, candidates[i].select.logloss);
    let (i, _) = laser_best(&mut live.iter().map(|&i| (i, whole(i)))).expect("non-empty");
    if candidates[i].select.better_than(base) {
        Selection {
            rule,
            chosen: Some(i),
            p_value: None,
            reason: "highest selection accuracy (ties: lower log-loss), above the base model"
                .into(),
        }
    } else {
        none("no edit beats the base model's selection accuracy; the base model is returned".into())
    }
}

/// The lowest selection log-loss, when below the base model's.
pub(super) fn logloss(c: &Choice<'_>) -> Selection {
    let Choice { rule, base, candidates, live } = *c;
    let none = |reason: String| Selection { rule, chosen: None, p_value: None, reason };
    let i = live
        .iter()
        .copied()
        .min_by(|&a, &b| candidates[a].select.logloss.total_cmp(&candidates[b].select.logloss))
        .expect("non-empty");
    if candidates[i].select.logloss < base.logloss {
        Selection {
            rule,
            chosen: Some(i),
            p_value: None,
            reason: "lowest selection log-loss, below the base model's".into(),
        }
    } else {
        none(
            "no edit lowers the base model's selection log-loss; the base model is returned".into(),
        )
    }
}

/// The smallest Bonferroni-adjusted one-sided McNemar p-value against the base, when ≤ α.
pub(super) fn guarded(c: &Choice<'_>) -> Selection {
    let Choice { rule, base, candidates, live } = *c;
    let none = |reason: String| Selection { rule, chosen: None, p_value: None, reason };
    let Some(base_items) = items_of(base) else {
        return none("per-item selection results are missing; the base model is returned".into());
    };
    let c = candidates.len() as f64;
    // (adjusted p, index), best first: smallest p, then LASER's order.
    let mut tested: Vec<(f64, usize)> = live
        .iter()
        .filter_map(|&i| {
            let items = items_of(&candidates[i].select)?;
            let (wins, losses) = discordant(base_items.correct.iter().copied(), &items.correct);
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
        None => none("per-item selection results are missing; the base model is returned".into()),
    }
}
