//! Exact racing (`race.rs`) against the full scan it replaces: on planted and noise tasks, under
//! every selection rule and both scanning strategies, a raced search recommends the same edit
//! with the same metrics; every candidate it evaluates on every item has the full scan's metrics;
//! it stops candidates (else it would prove nothing); and it keeps all of that through a resumed
//! log, a sharded search and its merge, and a BIG-bench suite task.

mod common;

use common::*;
use laser_model::Model;
use laser_search::{
    Race, SearchConfig, SearchReport, SelectRule, Shard, Strategy, Task, load_task, merge_search,
    run_search, run_search_shard,
};

fn config(strategy: Strategy, rule: SelectRule, race: Race, n: usize) -> SearchConfig {
    SearchConfig {
        strategy,
        n,
        rhos: vec![0.5, 0.1, 0.02],
        top_k: 4,
        rhos_per_matrix: None,
        select: rule,
        race,
        race_block: 5,
        // One factorization: the races' properties do not depend on it, and a second doubles
        // every scan.
        factors: vec![laser_search::Factor::Svd],
        ..SearchConfig::default()
    }
}

/// `raced` recommends what `full` does, with the same metrics, and every candidate `raced` scored
/// on every item has `full`'s metrics. Returns how many `raced` stopped.
fn assert_same_choice(full: &SearchReport, raced: &SearchReport, what: &str) -> usize {
    assert_eq!(full.candidates_stopped, 0, "{what}: the full scan stops nothing");
    assert_eq!(raced.best, full.best, "{what}: {}", raced.selection.reason);
    assert_eq!(raced.selection.chosen.is_some(), full.selection.chosen.is_some(), "{what}");
    assert_eq!(raced.delta, full.delta, "{what}");
    assert_eq!(raced.base, full.base, "{what}");
    assert_eq!(raced.candidates_evaluated, full.candidates_evaluated, "{what}");
    if full.selection.chosen.is_some() {
        assert_eq!(raced.selection, full.selection, "{what}: the chosen edit's reason and p");
    }
    let mut stopped = 0;
    for (r, f) in raced.candidates.iter().zip(&full.candidates) {
        assert_eq!(r.edits, f.edits, "{what}: the same candidates in the same order");
        match r.stopped_after {
            None => assert_eq!(r.select, f.select, "{what}: {:?}", r.edits),
            Some(k) => {
                stopped += 1;
                assert!(k < full.base.select.n && k == r.select.n, "{what}: stopped after {k}");
                // Blocks of 5 items, the first scored in halves (2 + 3).
                assert!(k == 2 || k % 5 == 0, "{what}: stops fall between blocks, not after {k}");
            }
        }
    }
    assert_eq!(raced.candidates_stopped, stopped, "{what}");
    if stopped == raced.candidates_evaluated {
        assert!(raced.best.edits.is_empty(), "{what}");
        let reason = &raced.selection.reason;
        assert!(
            reason.starts_with("racing stopped all") && reason.contains("could still"),
            "{reason}"
        );
    }
    stopped
}

/// A two-choice task whose gold answers are coin flips: any selection gain is chance.
fn noise_task(items: usize) -> Task {
    let mut rng = laser_linalg::rng::SplitMix64::new(11);
    let lines: Vec<serde_json::Value> = (0..items)
        .map(|i| serde_json::json!({"prompt": words(3000 + i as u64, 3), "choices": ["a", "b"], "answer": rng.below(2)}))
        .collect();
    load_task(write_jsonl(&format!("race-noise{items}"), &lines)).unwrap()
}

#[test]
fn exact_racing_recommends_what_the_full_scan_recommends() {
    let mut model = tiny("llama");
    let (path, planted) = planted_task(&mut model, 60);
    let tasks = [("planted", load_task(&path).unwrap()), ("noise", noise_task(60))];
    let mut stopped = 0;
    let mut chosen_planted = 0;
    let mut all_stopped = 0;
    for (name, task) in &tasks {
        for strategy in [Strategy::Exhaustive, Strategy::Gradient] {
            for rule in SelectRule::ALL {
                let what = format!("{name} {strategy} {rule}");
                let full =
                    run_search(&mut model, task, &config(strategy, rule, Race::Off, 40)).unwrap();
                let raced =
                    run_search(&mut model, task, &config(strategy, rule, Race::Exact, 40)).unwrap();
                stopped += assert_same_choice(&full, &raced, &what);
                if rule.halves() {
                    // Confirmation deferred: only the choosing half's pick is scored on the
                    // confirming half.
                    let complete =
                        raced.candidates.iter().filter(|c| c.stopped_after.is_none()).count();
                    assert!(complete <= 1, "{what}: {complete} candidates scored on every item");
                }
                all_stopped += usize::from(raced.candidates_stopped == raced.candidates_evaluated);
                chosen_planted += usize::from(raced.best.edits == vec![planted.clone()]);
                assert!(model.edited().is_empty(), "{what}: searches leave the model unedited");
            }
        }
    }
    assert!(stopped > 0, "racing stopped no candidate in 16 searches");
    assert!(all_stopped > 0, "no search where racing stopped every candidate (its reason)");
    assert!(chosen_planted > 0, "some rule recommends the planted edit");
}

/// A candidate stopped by racing: a stop decided by a candidate that was itself stopped later is
/// final, and a resumed raced search reads it back; one without racing scores it on every item.
#[test]
fn raced_logs_resume_and_a_search_without_racing_completes_them() {
    let mut model = tiny("llama");
    let (path, _) = planted_task(&mut model, 60);
    let task = load_task(&path).unwrap();
    let out = tmpdir("race-resume");
    let cfg = SearchConfig {
        out: Some(out.clone()),
        ..config(Strategy::Exhaustive, SelectRule::Laser, Race::Exact, 40)
    };
    let raced = run_search(&mut model, &task, &cfg).unwrap();
    assert!(raced.candidates_stopped > 0);
    // Cut the log after the base and 7 candidates: the rest is evaluated again.
    let log = out.join("candidates.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let kept: Vec<&str> = text.lines().take(9).collect();
    std::fs::write(&log, kept.join("\n") + "\n").unwrap();
    let resumed = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(resumed.candidates_resumed, 7);
    assert_eq!(resumed.candidates, raced.candidates);
    assert_eq!(resumed.best, raced.best);
    // Without racing, the stopped candidates are scored on every item and the report is a full
    // scan's.
    let off = SearchConfig { race: Race::Off, ..cfg.clone() };
    let completed = run_search(&mut model, &task, &off).unwrap();
    assert_eq!(completed.candidates_resumed, raced.candidates_evaluated - raced.candidates_stopped);
    let fresh = run_search(&mut model, &task, &SearchConfig { out: None, ..off.clone() }).unwrap();
    assert_eq!(completed.candidates, fresh.candidates);
    assert_eq!(completed.best, fresh.best);
    std::fs::remove_dir_all(out).unwrap();
}

/// Each shard races against its own candidates; the merge still recommends what one process does.
#[test]
fn raced_shards_merge_to_the_recommendation_of_one_process() {
    let mut model: Model = tiny("llama");
    let (path, _) = planted_task(&mut model, 60);
    let task = load_task(&path).unwrap();
    for rule in [SelectRule::Laser, SelectRule::Guarded, SelectRule::ChooseConfirm] {
        let full =
            run_search(&mut model, &task, &config(Strategy::Exhaustive, rule, Race::Off, 40))
                .unwrap();
        let dir = tmpdir(&format!("race-shards-{rule}"));
        let cfg = SearchConfig {
            out: Some(dir.clone()),
            ..config(Strategy::Exhaustive, rule, Race::Exact, 40)
        };
        for i in 1..=3 {
            let shard = Shard::new(i, 3).unwrap();
            run_search_shard(&mut model, &task, &cfg, shard, &laser_search::NoProgress).unwrap();
        }
        let merged =
            merge_search(&mut model, &task, &cfg, 3, false, &laser_search::NoProgress).unwrap();
        assert_same_choice(&full, &merged, &format!("merged shards, {rule}"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// Confirmation deferred (split-confirm racing in one process): the pick's scoring on every item
/// is the log's last record; a scan that ended before it (the record cut) resumes every
/// candidate from the log, scores the pick again and ends as the first did.
#[test]
fn a_deferred_confirmation_is_logged_last_and_a_resumed_scan_redoes_it() {
    let mut model = tiny("llama");
    let (path, _) = planted_task(&mut model, 60);
    let task = load_task(&path).unwrap();
    let out = tmpdir("race-deferred");
    let cfg = SearchConfig {
        out: Some(out.clone()),
        ..config(Strategy::Exhaustive, SelectRule::SplitConfirm, Race::Exact, 40)
    };
    let raced = run_search(&mut model, &task, &cfg).unwrap();
    let full =
        run_search(&mut model, &task, &SearchConfig { out: None, race: Race::Off, ..cfg.clone() })
            .unwrap();
    assert_same_choice(&full, &raced, "deferred split-confirm");
    let pick: Vec<_> = raced.candidates.iter().filter(|c| c.stopped_after.is_none()).collect();
    assert_eq!(pick.len(), 1, "the planted task has a pick on the choosing half");
    // Every other candidate stopped at the latest after the choosing half (20 of 40 items).
    assert!(raced.candidates.iter().all(|c| c.stopped_after.is_none_or(|k| k <= 20)));
    let log = out.join("candidates.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.contains(&pick[0].edits[0].key()) && !last.contains("stopped_by"), "{last}");
    std::fs::write(&log, lines[..lines.len() - 1].join("\n") + "\n").unwrap();
    let resumed = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(resumed.candidates_resumed, raced.candidates_evaluated);
    assert_eq!(resumed.candidates, raced.candidates);
    assert_eq!((&resumed.best, &resumed.selection), (&raced.best, &raced.selection));
    // Resumed once more, the log holds the pick complete: the same report again.
    let again = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(again.candidates, raced.candidates);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), lines.len());
    // Its stopped candidates' results are in the order of 5-item blocks: a search with another
    // block size does not read them.
    let other = SearchConfig { race_block: 4, ..cfg.clone() };
    let err = run_search(&mut model, &task, &other).unwrap_err().to_string();
    assert!(err.contains("different search"), "{err}");
    std::fs::remove_dir_all(out).unwrap();
}

/// Real BIG-bench items (long shared task prefixes, several choices) on the tiny model.
#[test]
fn exact_racing_recommends_what_the_full_scan_recommends_on_suite_tasks() {
    let Some(data) = shared_data_or_skip("exact_racing_..._on_suite_tasks") else {
        return;
    };
    let mut model = tiny("llama");
    let mut stopped = 0;
    for name in ["hyperbaton", "implicatures"] {
        let task = load_task(data.join(format!("bigbench-suite/{name}.json"))).unwrap();
        for rule in SelectRule::ALL {
            let cfg = |race| SearchConfig {
                test_max: Some(20),
                truncate: Some(laser_search::Truncate::Left),
                ..config(Strategy::Exhaustive, rule, race, 40)
            };
            let full = run_search(&mut model, &task, &cfg(Race::Off)).unwrap();
            let raced = run_search(&mut model, &task, &cfg(Race::Exact)).unwrap();
            stopped += assert_same_choice(&full, &raced, &format!("{name} {rule}"));
        }
    }
    assert!(stopped > 0, "racing stopped no candidate on the suite tasks");
}

/// Items scored on the selection split over every candidate.
fn items_scored(r: &SearchReport) -> usize {
    r.candidates.iter().map(|c| c.select.n).sum()
}

/// Statistical racing: under every rule it scores fewer items than exact racing on the planted
/// task, never changes the metrics of a candidate it scores on every item, and still recommends
/// the planted edit wherever the full scan does.
#[test]
fn statistical_racing_scores_fewer_items_and_keeps_the_planted_winner() {
    let mut model = tiny("llama");
    let (path, planted) = planted_task(&mut model, 60);
    let task = load_task(&path).unwrap();
    let (mut exact_items, mut statistical_items, mut planted_kept) = (0, 0, 0);
    for rule in SelectRule::ALL {
        let cfg = |race| config(Strategy::Exhaustive, rule, race, 40);
        let full = run_search(&mut model, &task, &cfg(Race::Off)).unwrap();
        let exact = run_search(&mut model, &task, &cfg(Race::Exact)).unwrap();
        let raced = run_search(&mut model, &task, &cfg(Race::Statistical)).unwrap();
        assert_eq!(
            (full.race, exact.race, raced.race),
            (Race::Off, Race::Exact, Race::Statistical)
        );
        assert_eq!(raced.candidates_evaluated, full.candidates_evaluated, "{rule}");
        for (r, f) in raced.candidates.iter().zip(&full.candidates) {
            assert_eq!(r.edits, f.edits, "{rule}");
            if r.stopped_after.is_none() {
                assert_eq!(r.select, f.select, "{rule}: {:?}", r.edits);
            }
        }
        if full.best.edits == vec![planted.clone()] {
            assert_eq!(raced.best.edits, full.best.edits, "{rule}: {}", raced.selection.reason);
            assert_eq!(raced.delta, full.delta, "{rule}");
            planted_kept += 1;
        }
        exact_items += items_scored(&exact);
        statistical_items += items_scored(&raced);
    }
    assert!(planted_kept > 0, "no rule's full scan chose the planted edit");
    assert!(
        statistical_items < exact_items,
        "statistical racing scored {statistical_items} items, exact {exact_items}"
    );
}

/// A race's stops are its own: an exact race resuming a statistical race's log scores those
/// candidates again and ends as a fresh exact race does, and so does a race under another rule.
#[test]
fn an_exact_race_does_not_reuse_statistical_stops() {
    let mut model = tiny("llama");
    let (path, _) = planted_task(&mut model, 60);
    let task = load_task(&path).unwrap();
    let out = tmpdir("race-statistical-resume");
    let cfg = |race| SearchConfig {
        out: Some(out.clone()),
        ..config(Strategy::Exhaustive, SelectRule::Guarded, race, 40)
    };
    let statistical = run_search(&mut model, &task, &cfg(Race::Statistical)).unwrap();
    assert!(statistical.candidates_stopped > 0);
    let log = std::fs::read_to_string(out.join("candidates.jsonl")).unwrap();
    assert!(log.contains("\"stopped_by\":\"guarded/statistical\""), "{log}");
    // Resumed by the same race, nothing is scored again.
    let again = run_search(&mut model, &task, &cfg(Race::Statistical)).unwrap();
    assert_eq!(again.candidates_resumed, statistical.candidates_evaluated);
    assert_eq!(again.candidates, statistical.candidates);
    let exact = run_search(&mut model, &task, &cfg(Race::Exact)).unwrap();
    assert_eq!(
        exact.candidates_resumed,
        statistical.candidates_evaluated - statistical.candidates_stopped
    );
    let fresh =
        run_search(&mut model, &task, &SearchConfig { out: None, ..cfg(Race::Exact) }).unwrap();
    assert_eq!(exact.candidates, fresh.candidates);
    assert_eq!(exact.best, fresh.best);
    // Nor does a race under another rule reuse the guarded rule's stops: LASER's rule resuming
    // the same log ends as a fresh LASER race does.
    let laser = |out: Option<std::path::PathBuf>| SearchConfig {
        out,
        ..config(Strategy::Exhaustive, SelectRule::Laser, Race::Exact, 40)
    };
    let resumed = run_search(&mut model, &task, &laser(Some(out.clone()))).unwrap();
    let fresh = run_search(&mut model, &task, &laser(None)).unwrap();
    assert!(resumed.candidates_resumed < resumed.candidates_evaluated);
    assert_eq!(resumed.candidates, fresh.candidates);
    assert_eq!(resumed.best, fresh.best);
    std::fs::remove_dir_all(out).unwrap();
}
