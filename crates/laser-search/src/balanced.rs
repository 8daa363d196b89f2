//! Balanced accuracy: the mean of the per-class accuracies, where every item offers the same
//! choices (intent_recognition's 7 intents, a yes/no task), and its change between two model
//! states with a 95% paired-bootstrap interval.
//!
//! A low-rank edit can raise plain accuracy by moving a model onto the majority class: on a task
//! whose gold answers are 60% "no", answering "no" everywhere scores 60%. Balanced accuracy gives
//! every class the same weight, so that move scores 50% — the same as chance. A suite counts a
//! task as helped in the strict sense only when its balanced accuracy rises significantly too
//! (`SuiteReport::helped_balanced`). Where the items' choices differ (date_understanding's dates,
//! ruin_names' puns) there is no class to drift towards and no balanced accuracy.

use laser_linalg::rng::SplitMix64;

use crate::interval::{AccuracyDelta, BOOTSTRAP_RESAMPLES};
use crate::metrics::Metrics;
use crate::task::{Item, Target};

/// Each item's gold class (an index into the shared choices, sorted by text), when every item
/// is a multiple-choice item with the same set of choices; `None` otherwise (or for no items).
pub fn shared_classes(items: &[Item]) -> Option<Vec<usize>> {
    let set = |item: &Item| -> Option<Vec<String>> {
        match &item.target {
            Target::Choice { choices, .. } => {
                let mut names: Vec<String> = choices.iter().map(|c| c.trim().to_owned()).collect();
                names.sort();
                Some(names)
            }
            _ => None,
        }
    };
    let shared = set(items.first()?)?;
    if shared.len() < 2 {
        return None;
    }
    items
        .iter()
        .map(|item| {
            if set(item)? != shared {
                return None;
            }
            let Target::Choice { choices, answer } = &item.target else { return None };
            shared.binary_search(&choices[*answer].trim().to_owned()).ok()
        })
        .collect()
}

/// Balanced accuracy (percent) of `correct` over the items `indices` (with repeats, for a
/// resample): the mean, over the classes present, of each class's accuracy.
fn balanced_over(classes: &[usize], correct: &[bool], indices: impl Iterator<Item = usize>) -> f64 {
    let k = classes.iter().max().map_or(0, |&m| m + 1);
    let (mut n, mut right) = (vec![0usize; k], vec![0usize; k]);
    for i in indices {
        n[classes[i]] += 1;
        right[classes[i]] += usize::from(correct[i]);
    }
    let present: Vec<f64> =
        n.iter().zip(&right).filter(|(n, _)| **n > 0).map(|(&n, &r)| r as f64 / n as f64).collect();
    100.0 * present.iter().sum::<f64>() / present.len().max(1) as f64
}

/// Balanced accuracy (percent) of per-item `correct` answers with gold `classes`.
pub fn balanced_accuracy(classes: &[usize], correct: &[bool]) -> f64 {
    balanced_over(classes, correct, 0..correct.len().min(classes.len()))
}

/// The balanced-accuracy change from `base` to `adapted` (per-item results on the same items,
/// whose gold classes are `classes`), with a 95% paired-bootstrap percentile interval: both
/// states are scored on each resample of the items. `None` without per-item results or when the
/// lengths differ.
pub fn balanced_delta(
    classes: &[usize],
    base: &Metrics,
    adapted: &Metrics,
) -> Option<AccuracyDelta> {
    let (b, a) = (&base.items.as_ref()?.correct, &adapted.items.as_ref()?.correct);
    let n = classes.len();
    if n == 0 || b.len() != n || a.len() != n {
        return None;
    }
    let observed = balanced_accuracy(classes, a) - balanced_accuracy(classes, b);
    let mut rng = SplitMix64::new(0);
    let resamples = BOOTSTRAP_RESAMPLES;
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            let pick: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
            balanced_over(classes, a, pick.iter().copied())
                - balanced_over(classes, b, pick.iter().copied())
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some(AccuracyDelta { accuracy: observed, ci_low: at(0.025), ci_high: at(0.975) })
}

/// Whether a test change counts as help in the strict sense: accuracy significantly up and, where
/// the items share one set of choices, balanced accuracy significantly up too.
pub fn helped_in_balance(delta: &AccuracyDelta, balanced: Option<&AccuracyDelta>) -> bool {
    delta.helped() && balanced.is_none_or(AccuracyDelta::helped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ItemScores;

    fn choice(choices: &[&str], answer: usize) -> Item {
        Item {
            prompt: "q".into(),
            target: Target::Choice {
                choices: choices.iter().map(|c| c.to_string()).collect(),
                answer,
            },
        }
    }

    fn metrics(correct: Vec<bool>) -> Metrics {
        let n = correct.len();
        Metrics {
            n,
            accuracy: 100.0 * correct.iter().filter(|&&c| c).count() as f64 / n as f64,
            logloss: 1.0,
            majority: None,
            per_class: None,
            items: Some(ItemScores { correct, nll: vec![1.0; n] }),
        }
    }

    #[test]
    fn classes_need_one_shared_choice_set() {
        // The same choices in another order and with other spacing are one set.
        let items = [choice(&[" yes", " no"], 0), choice(&["no", "yes "], 0)];
        assert_eq!(shared_classes(&items), Some(vec![1, 0]), "sorted: no = 0, yes = 1");
        assert_eq!(shared_classes(&[choice(&["a", "b"], 1), choice(&["a", "c"], 1)]), None);
        assert_eq!(shared_classes(&[choice(&["only"], 0)]), None);
        assert_eq!(shared_classes(&[]), None);
    }

    /// Moving every answer onto the majority class raises plain accuracy significantly and
    /// balanced accuracy not at all; separating the classes raises both.
    #[test]
    fn a_move_onto_the_majority_class_is_no_balanced_gain() {
        // 120 items, 84 of class 0 (70%), 36 of class 1.
        let classes: Vec<usize> = (0..120).map(|i| usize::from(i % 10 >= 7)).collect();
        // Base: right on half of each class (50% plain, 50% balanced).
        let base: Vec<bool> = (0..120).map(|i| (i / 10) % 2 == 0).collect();
        let majority: Vec<bool> = classes.iter().map(|&c| c == 0).collect();
        let (b, m) = (metrics(base.clone()), metrics(majority.clone()));
        assert!((balanced_accuracy(&classes, &base) - 50.0).abs() < 1e-9);
        assert!((balanced_accuracy(&classes, &majority) - 50.0).abs() < 1e-9);
        let plain = AccuracyDelta::between(&b, &m).unwrap();
        assert!(plain.helped() && (plain.accuracy - 20.0).abs() < 1e-9, "{plain:?}");
        let balanced = balanced_delta(&classes, &b, &m).unwrap();
        assert!(balanced.accuracy.abs() < 1e-9 && !balanced.helped(), "{balanced:?}");
        assert!(!helped_in_balance(&plain, Some(&balanced)));
        // Where the choices differ per item, accuracy alone decides.
        assert!(helped_in_balance(&plain, None));
        // Right on 6 of 7 of class 0 and 2 of 3 of class 1: balanced 76.2%, both rise.
        let skilled: Vec<bool> = (0..120).map(|i| i % 10 != 3 && i % 10 != 8).collect();
        let balanced = balanced_delta(&classes, &b, &metrics(skilled.clone())).unwrap();
        assert!(balanced.helped() && (balanced.accuracy - 26.19).abs() < 0.01, "{balanced:?}");
        let plain = AccuracyDelta::between(&b, &metrics(skilled.clone())).unwrap();
        assert!(helped_in_balance(&plain, Some(&balanced)));
        // Without per-item results, or with another item count, there is no interval.
        let bare = Metrics { items: None, ..b.clone() };
        assert!(balanced_delta(&classes, &bare, &m).is_none());
        assert!(balanced_delta(&classes[..10], &b, &m).is_none());
    }
}
