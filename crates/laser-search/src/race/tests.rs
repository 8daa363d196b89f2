//! The racer's stops against hand-worked cases: each rule stops only what cannot (or, statistically,
//! will not plausibly) be chosen, and confirmation deferred reads back the choosing half.

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
    assert!(exact_stops > 0 && more > 0, "exact stopped {exact_stops}, statistical {more} more");
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
    let mut r = mk(true);
    for x in [&a, &b, &c, &d] {
        r.finished(&x.select);
    }
    // b: 3 of 4 on the choosing half; c: items 0, 2, 4, 6 → 3 of 4 too, at a lower loss.
    assert_eq!(r.pick_to_confirm(&[a.clone(), b.clone(), d.clone()]), Some(1));
    assert_eq!(r.pick_to_confirm(&[a.clone(), b, c, d.clone()]), Some(2));
    // Nothing beats the base model there: nothing to confirm.
    let weak = cand(&[false, true, false, false], &[2.0; 4], true);
    assert_eq!(r.pick_to_confirm(&[weak, d]), None);
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
fn choose_confirm_s_guard_stops_a_log_loss_wreck_before_its_choosing_half_ends() {
    let blocks = race_blocks(100, SelectRule::ChooseConfirm, 20);
    let base: Vec<bool> = (0..100).map(|i| i % 4 < 2).collect();
    let mk = |rule, mode| {
        let mut r = Racer::with_mode(rule, mode, &blocks, 10);
        r.set_base(&metrics(&base, &[1.0; 100]));
        r
    };
    // Right on every item seen (the base model: half), at about twice the base model's NLL.
    let wreck = |k: usize| {
        let nll: Vec<f64> = (0..k).map(|p| if p % 2 == 0 { 1.8 } else { 2.2 }).collect();
        prefix(&vec![true; k], &nll)
    };
    // 20 of 50 seen: 30 unseen items at an NLL of zero could still pull the choosing half's
    // log-loss below the base model's (20 × +1 − 30 × 1 < 0), so exact racing keeps it; the
    // differences seen (+1 ± 0.2) plausibly go on above +0.9, so statistical racing stops it.
    assert!(mk(SelectRule::ChooseConfirm, Race::Exact).can_be_chosen(&wreck(20)));
    assert!(!mk(SelectRule::ChooseConfirm, Race::Statistical).can_be_chosen(&wreck(20)));
    // 40 seen: even 10 zeros leave it significantly worse (mean +0.6): stopped exactly too.
    assert!(!mk(SelectRule::ChooseConfirm, Race::Exact).can_be_chosen(&wreck(40)));
    // No guard, no stop: split-confirm keeps it in both modes.
    for mode in [Race::Exact, Race::Statistical] {
        assert!(mk(SelectRule::SplitConfirm, mode).can_be_chosen(&wreck(40)));
    }
    // The same answers at the base model's NLL go on under choose-confirm.
    let sound = prefix(&[true; 40], &[1.0; 40]);
    for mode in [Race::Exact, Race::Statistical] {
        assert!(mk(SelectRule::ChooseConfirm, mode).can_be_chosen(&sound));
    }
}

#[test]
fn race_names_parse() {
    for r in Race::ALL {
        assert_eq!(r.name().parse::<Race>().unwrap(), r);
    }
    assert!("maybe".parse::<Race>().is_err());
}
