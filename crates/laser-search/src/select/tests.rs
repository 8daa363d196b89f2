//! The rules' planted cases and the statistics' identities.

use super::*;
use crate::metrics::ItemScores;

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
