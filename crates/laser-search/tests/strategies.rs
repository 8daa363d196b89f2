//! The strategies on a tiny model: exhaustive finds a planted best edit; gradient with K = all
//! matrices equals exhaustive; the test split cannot influence the choice; an interrupted search
//! resumes to the same result.

mod common;

use common::*;
use laser_search::{
    Edit, EditEngine, Evaluator, Factor, Metrics, Race, SearchConfig, SelectRule, Split, Strategy,
    load_task, run_search,
};

fn config(strategy: Strategy, n: usize) -> SearchConfig {
    SearchConfig {
        strategy,
        n,
        rhos: vec![0.5, 0.1, 0.02],
        top_k: 3,
        rhos_per_matrix: None,
        // The strategies' own tests keep LASER's rule; the rules have theirs below.
        select: SelectRule::Laser,
        // They compare candidate lists across rules and strategies, which racing shortens
        // differently for each rule; racing has its own tests (racing.rs).
        race: Race::Off,
        // Plain SVD: the candidate counts below are matrices × ρ.
        factors: vec![Factor::Svd],
        ..SearchConfig::default()
    }
}

#[test]
fn exhaustive_finds_the_planted_edit_and_gradient_with_all_matrices_agrees() {
    let mut model = tiny("llama");
    let (path, planted) = planted_task(&mut model, 40);
    let task = load_task(&path).unwrap();
    let exhaustive = run_search(&mut model, &task, &config(Strategy::Exhaustive, 40)).unwrap();
    assert!(model.edited().is_empty(), "searches leave the model unedited");
    assert!(exhaustive.base.select.accuracy < 100.0);
    assert_eq!(exhaustive.best.select.accuracy, 100.0, "{:?}", exhaustive.best);
    assert_eq!(exhaustive.candidates_evaluated, model.matrices().len() * 3);
    let planted_result =
        exhaustive.candidates.iter().find(|c| c.edits == vec![planted.clone()]).unwrap();
    assert_eq!(planted_result.select.accuracy, 100.0);
    assert!(exhaustive.best.select.logloss <= planted_result.select.logloss);
    assert!(exhaustive.base.test.is_none(), "all items selected: no test split");

    let all = SearchConfig { top_k: model.matrices().len(), ..config(Strategy::Gradient, 40) };
    let gradient = run_search(&mut model, &task, &all).unwrap();
    assert_eq!(gradient.best.edits, exhaustive.best.edits);
    assert_eq!(gradient.best.select, exhaustive.best.select);
    let key = |c: &laser_search::CandidateResult| format!("{:?}", c.edits);
    let mut a: Vec<String> = gradient.candidates.iter().map(key).collect();
    let mut b: Vec<String> = exhaustive.candidates.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "K = all scans the exhaustive grid");
    assert_eq!(gradient.ranking.len(), model.matrices().len());
    assert!(gradient.seconds.grad > 0.0 && gradient.seconds.svd > 0.0);
}

/// A masked model (LASER's RoBERTa protocol) goes through every phase: the gradient pass, the
/// scan from layer caches, and the test split; with K = all it matches exhaustive.
#[test]
fn a_masked_model_searches_and_gradient_with_all_matrices_matches_exhaustive() {
    let mut model = tiny_roberta();
    let lines: Vec<serde_json::Value> = (0..30)
        .map(|i| serde_json::json!({"prompt": words(500 + i, 3), "choices": ["a", "b"], "answer": (i * 7 % 3 == 0) as usize}))
        .collect();
    let task = load_task(write_jsonl("masked-search", &lines)).unwrap();
    let exhaustive = run_search(&mut model, &task, &config(Strategy::Exhaustive, 20)).unwrap();
    assert_eq!(exhaustive.candidates_evaluated, model.matrices().len() * 3);
    assert_eq!(exhaustive.base.test.as_ref().map(|t| t.n), Some(10));
    let all = SearchConfig { top_k: model.matrices().len(), ..config(Strategy::Gradient, 20) };
    let gradient = run_search(&mut model, &task, &all).unwrap();
    assert_eq!(gradient.best.edits, exhaustive.best.edits);
    assert_eq!(gradient.best.select, exhaustive.best.select);
    assert_eq!(gradient.best.test, exhaustive.best.test);
    assert!(gradient.gradient_loss.is_some_and(|l| l > 0.0));
    assert!(model.edited().is_empty());
}

#[test]
fn rhos_per_matrix_scans_the_best_predicted_rhos_of_each_top_matrix() {
    let mut model = tiny("llama");
    let (path, _) = planted_task(&mut model, 30);
    let task = load_task(&path).unwrap();
    let full = run_search(&mut model, &task, &config(Strategy::Gradient, 30)).unwrap();
    let one = SearchConfig { rhos_per_matrix: Some(1), ..config(Strategy::Gradient, 30) };
    let short = run_search(&mut model, &task, &one).unwrap();
    assert_eq!(short.ranking, full.ranking, "the ranking does not depend on the shortlist");
    let expected: Vec<(String, f32)> =
        full.ranking.iter().take(3).map(|s| (s.name.clone(), s.best_rho)).collect();
    let mut got: Vec<(String, f32)> =
        short.candidates.iter().map(|c| (c.edits[0].name.clone(), c.edits[0].rho)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want = expected.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want, "one candidate per top matrix, at its predicted best ρ");
    for s in &full.ranking {
        assert_eq!(s.rhos_by_score.first(), Some(&s.best_rho));
        let mut sorted = s.rhos_by_score.clone();
        sorted.sort_by(f32::total_cmp);
        assert_eq!(sorted, vec![0.02, 0.1, 0.5], "a permutation of the grid");
    }
    // Every shortlisted candidate has the metrics the full scan measured for it.
    for c in &short.candidates {
        assert!(full.candidates.contains(c), "{:?}", c.edits);
    }
    let two = SearchConfig { rhos_per_matrix: Some(2), ..config(Strategy::Gradient, 30) };
    assert_eq!(run_search(&mut model, &task, &two).unwrap().candidates_evaluated, 6);
    let zero = SearchConfig { rhos_per_matrix: Some(0), ..config(Strategy::Gradient, 30) };
    let err = run_search(&mut model, &task, &zero).unwrap_err().to_string();
    assert!(err.contains("`rhos_per_matrix`"), "{err}");
}

#[test]
fn poisoning_the_test_split_changes_nothing_that_was_chosen() {
    let mut model = tiny("gpt2");
    let lines: Vec<serde_json::Value> = (0..60)
        .map(|i| serde_json::json!({"prompt": words(50 + i, 3), "choices": ["a", "b"], "answer": (i % 2)}))
        .collect();
    let clean = load_task(write_jsonl("clean", &lines)).unwrap();
    let split = Split::new(60, 30, 0).unwrap();
    let mut poisoned_lines = lines.clone();
    for &i in &split.test {
        poisoned_lines[i] =
            serde_json::json!({"prompt": "zzzz qqqq", "choices": ["zz", "qq"], "answer": 1});
    }
    let poisoned = load_task(write_jsonl("poisoned", &poisoned_lines)).unwrap();
    let cfg = SearchConfig { n: 30, ..config(Strategy::Gradient, 30) };
    let a = run_search(&mut model, &clean, &cfg).unwrap();
    let b = run_search(&mut model, &poisoned, &cfg).unwrap();
    assert_eq!(a.best.edits, b.best.edits);
    assert_eq!(a.base.select, b.base.select);
    assert_eq!(a.candidates, b.candidates);
    assert_eq!(a.ranking, b.ranking, "the gradient pass saw only selection items");
    assert_ne!(a.base.test, b.base.test, "the poison did reach the test split");
}

#[test]
fn an_interrupted_search_resumes_to_the_same_result() {
    let mut model = tiny("gpt_neox");
    let lines: Vec<serde_json::Value> = (0..24)
        .map(|i| serde_json::json!({"prompt": words(900 + i, 2), "choices": ["a", "b", "c"], "answer": (i % 3)}))
        .collect();
    let task = load_task(write_jsonl("resume", &lines)).unwrap();
    let out = tmpdir("resume");
    let cfg = SearchConfig { out: Some(out.clone()), ..config(Strategy::Exhaustive, 16) };
    let full = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(full.candidates_resumed, 0);
    // Simulate a kill: keep the header, the base and 5 candidates, plus half of the next line.
    let log = out.join("candidates.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let torn = &lines[7][..lines[7].len() / 2];
    std::fs::write(&log, format!("{}\n{torn}", lines[..7].join("\n"))).unwrap();
    let resumed = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(resumed.candidates_resumed, 5);
    assert_eq!(resumed.best, full.best);
    assert_eq!(resumed.candidates, full.candidates);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        text.lines().count(),
        "the torn line was replaced"
    );
    let again = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(again.candidates_resumed, again.candidates_evaluated);
    assert_eq!(again.best, full.best);
    // A different search refuses the folder.
    let other = SearchConfig { n: 12, ..cfg.clone() };
    assert!(
        run_search(&mut model, &task, &other).unwrap_err().to_string().contains("different search")
    );
    // A damaged whole line is refused with its number, not dropped with every line after it.
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for (damage, why) in [("{\"key\": \"x\"}", "not a logged candidate"), ("{oops", "key must be")]
    {
        lines[3] = damage.into();
        std::fs::write(&log, lines.join("\n") + "\n").unwrap();
        let err = run_search(&mut model, &task, &cfg).unwrap_err().to_string();
        assert!(err.contains("candidates.jsonl:4:") && err.contains(why), "{err}");
        assert!(err.contains("damaged"), "{err}");
    }
    // A logged key that does not match its edits would hand one candidate's metrics to another.
    let mut c: serde_json::Value = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
    c["key"] = serde_json::json!("model.layers.0.mlp.up_proj.weight|0.5|svd");
    lines[3] = c.to_string();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let err = run_search(&mut model, &task, &cfg).unwrap_err().to_string();
    assert!(err.contains("does not match its edits"), "{err}");
    std::fs::remove_dir_all(out).unwrap();
}

/// Regression (issue 18): two ρ that keep the same rank build the same matrix, and the scan
/// evaluated that model twice. The second now takes the first's metrics, which must be what an
/// evaluation gives.
#[test]
fn candidates_that_build_the_same_matrices_are_evaluated_once() {
    let mut model = tiny("llama");
    let (path, _) = planted_task(&mut model, 20);
    let task = load_task(&path).unwrap();
    // Every matrix of the tiny llama has at most 64 columns or rows: ρ = 0.02 and 0.01 both
    // keep rank 1, ρ = 0.5 keeps 16 or 32.
    let cfg = SearchConfig { rhos: vec![0.5, 0.02, 0.01], ..config(Strategy::Exhaustive, 20) };
    let report = run_search(&mut model, &task, &cfg).unwrap();
    let matrices = model.matrices().len();
    assert_eq!(report.candidates_evaluated, 3 * matrices);
    assert_eq!(report.candidates_same_matrices, matrices, "one per matrix: ρ = 0.01");
    let split = Split::new(task.items.len(), 20, cfg.seed).unwrap();
    let items = Split::items(&task, &split.select);
    let evaluator = Evaluator::new(&model, &items, cfg.batch_tokens).unwrap();
    let mut engine = EditEngine::new(cfg.seed);
    for name in [PLANTED, "model.layers.0.self_attn.k_proj.weight"] {
        let scanned = |rho: f32| {
            report.candidates.iter().find(|c| c.edits == vec![Edit::svd(name, rho)]).unwrap()
        };
        assert_eq!(scanned(0.01).select, scanned(0.02).select, "{name}");
        engine.apply(&mut model, &[Edit::svd(name, 0.01)]).unwrap();
        // Reports keep no per-item outcomes.
        let fresh = Metrics { items: None, ..evaluator.evaluate(&model).unwrap() };
        model.restore_all();
        assert_eq!(scanned(0.01).select, fresh, "{name}: reused metrics = an evaluation");
        assert_ne!(scanned(0.5).select, fresh, "{name}: another rank, other metrics");
    }
}

#[test]
fn compose_and_mp_return_valid_edit_sets() {
    let mut model = tiny("llama");
    let (path, _) = planted_task(&mut model, 30);
    let task = load_task(&path).unwrap();
    let compose = run_search(&mut model, &task, &config(Strategy::Compose, 30)).unwrap();
    assert!(compose.best.select.accuracy >= compose.base.select.accuracy);
    // Greedy stacking starts from the best single edit, so it is never below it.
    let best_single = compose
        .candidates
        .iter()
        .filter(|c| c.edits.len() == 1)
        .map(|c| c.select.accuracy)
        .fold(f64::NEG_INFINITY, f64::max);
    if best_single > compose.base.select.accuracy {
        assert!(!compose.best.edits.is_empty());
        assert!(compose.best.select.accuracy >= best_single, "{:?}", compose.best);
    }
    let mut names: Vec<&str> = compose.best.edits.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), compose.best.edits.len(), "one edit per matrix");
    let mp = run_search(&mut model, &task, &config(Strategy::Mp, 30)).unwrap();
    assert!(mp.best.select.accuracy >= mp.base.select.accuracy);
    assert_eq!(mp.ranking.len(), model.matrices().len());
}

#[test]
fn multi_subspace_factors_are_scanned_and_bad_options_rejected() {
    let mut model = tiny("gptj");
    let lines: Vec<serde_json::Value> =
        (0..12).map(|i| serde_json::json!({"prompt": words(i, 2), "answer": "x"})).collect();
    let task = load_task(write_jsonl("factors", &lines)).unwrap();
    let cfg = SearchConfig {
        factors: vec![Factor::Svd, Factor::Blocks(2), Factor::KMeans(2), Factor::KSubspaces(2)],
        rhos: vec![0.25],
        layers: Some((1, 1)),
        top_k: 2,
        ..config(Strategy::Gradient, 12)
    };
    let r = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(r.candidates_evaluated, 2 * 4);
    assert!(r.candidates.iter().all(|c| model.matrix_info(&c.edits[0].name).unwrap().layer == 1));
    for (bad, needle) in [
        (SearchConfig { rhos: vec![1.5], ..cfg.clone() }, "outside (0, 1]"),
        (SearchConfig { layers: Some((0, 7)), ..cfg.clone() }, "`layers`"),
        (SearchConfig { n: 13, ..cfg.clone() }, "exceeds"),
        (SearchConfig { top_k: 0, ..cfg.clone() }, "`top_k`"),
        (
            SearchConfig { kinds: Some(vec![laser_model::MatrixKind::FcUp]), ..cfg.clone() },
            "no matrix",
        ),
    ] {
        let err = run_search(&mut model, &task, &bad).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

/// Guarded rule, "edit" path: a planted edit that fixes every item it changes is recommended,
/// with a p-value that survives the correction for the number of candidates.
#[test]
fn guarded_selection_recommends_a_planted_edit_that_helps() {
    let mut model = tiny("llama");
    let (path, planted) = planted_task(&mut model, 60);
    let task = load_task(&path).unwrap();
    let cfg = SearchConfig { select: SelectRule::Guarded, ..config(Strategy::Exhaustive, 60) };
    let r = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(r.selection.rule, SelectRule::Guarded);
    assert_eq!(r.best.edits.len(), 1, "{}", r.selection.reason);
    assert_eq!(r.best.select.accuracy, 100.0);
    let p = r.selection.p_value.unwrap();
    assert!(p <= laser_search::GUARD_ALPHA, "p = {p}");
    let planted_result = r.candidates.iter().find(|c| c.edits == vec![planted.clone()]).unwrap();
    assert_eq!(planted_result.select.accuracy, 100.0);
}

/// Guarded rule, "no edit" path: gold answers drawn at random, so that any selection gain is
/// chance. LASER's rule still recommends the luckiest edit; the guarded rule returns the base
/// model, its test change is exactly zero, and the report says why in one line.
#[test]
fn guarded_selection_returns_the_base_model_when_no_edit_is_supported() {
    let mut model = tiny("llama");
    let mut rng = laser_linalg::rng::SplitMix64::new(11);
    let lines: Vec<serde_json::Value> = (0..80)
        .map(|i| serde_json::json!({"prompt": words(3000 + i, 3), "choices": ["a", "b"], "answer": rng.below(2)}))
        .collect();
    let task = load_task(write_jsonl("noise", &lines)).unwrap();
    let laser = run_search(&mut model, &task, &config(Strategy::Exhaustive, 40)).unwrap();
    assert_eq!(laser.best.edits.len(), 1, "LASER's rule takes a chance gain");
    assert!(laser.best.select.accuracy > laser.base.select.accuracy);
    let cfg = SearchConfig { select: SelectRule::Guarded, ..config(Strategy::Exhaustive, 40) };
    let guarded = run_search(&mut model, &task, &cfg).unwrap();
    assert!(guarded.best.edits.is_empty());
    assert_eq!(guarded.best.select, guarded.base.select);
    assert_eq!(guarded.best.test, guarded.base.test);
    assert!(
        guarded.selection.reason.contains("no edit beats the base model"),
        "{}",
        guarded.selection.reason
    );
    assert!(guarded.selection.p_value.unwrap() > laser_search::GUARD_ALPHA);
    let d = guarded.delta.unwrap();
    assert_eq!((d.accuracy, d.ci_low, d.ci_high), (0.0, 0.0, 0.0));
    // The same candidates were scanned: only the rule differs.
    assert_eq!(guarded.candidates, laser.candidates);
}

/// `compare_rules` reports every rule's choice with its test change, and the reported choice of
/// the configured rule is the search's own.
#[test]
fn comparing_rules_replays_every_rule_on_one_scan() {
    let mut model = tiny("llama");
    let (path, _) = planted_task(&mut model, 60);
    let task = load_task(&path).unwrap();
    let cfg = SearchConfig {
        select: SelectRule::Guarded,
        compare_rules: true,
        factors: vec![Factor::Svd, Factor::Blocks(2)],
        rhos: vec![0.02],
        test_max: Some(10),
        ..config(Strategy::Exhaustive, 40)
    };
    let r = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(r.base.test.as_ref().unwrap().n, 10, "--test-max caps the test split");
    // 5 rules × (all, svd, blocks:2).
    assert_eq!(r.rules.len(), 15);
    let own = r.rules.iter().find(|o| o.rule == SelectRule::Guarded && o.factors == "all").unwrap();
    assert_eq!(own.edits, r.best.edits);
    assert_eq!(own.test.as_ref().map(|t| t.accuracy), r.best.test.as_ref().map(|t| t.accuracy));
    for o in &r.rules {
        assert!(o.test.is_some() && o.delta.is_some(), "{o:?}");
        assert!(o.edits.iter().all(|e| o.factors == "all" || e.factor.to_string() == o.factors));
    }
    // The ceiling: at least every rule's choice; and, on the uncapped test split, exactly the
    // best test accuracy any scanned candidate reaches when evaluated on its own.
    let ceiling = r.ceiling.as_ref().expect("compare_rules reports the ceiling");
    assert_eq!((ceiling.candidates, ceiling.test.n), (r.candidates.len(), 10));
    for o in &r.rules {
        assert!(ceiling.test.accuracy >= o.test.as_ref().unwrap().accuracy, "{o:?}");
    }
    let r = run_search(&mut model, &task, &SearchConfig { test_max: None, ..cfg.clone() }).unwrap();
    let ceiling = r.ceiling.clone().unwrap();
    let mut engine = EditEngine::new(cfg.seed);
    let alone: Vec<(f64, f64)> = r
        .candidates
        .iter()
        .map(|c| {
            engine.apply(&mut model, &c.edits).unwrap();
            let request = laser_search::EvalRequest {
                n: 40,
                split: laser_search::SplitChoice::Test,
                ..Default::default()
            };
            let e = laser_search::evaluate(&model, &task, &request).unwrap();
            model.restore_all();
            (e.metrics().accuracy, e.metrics().logloss)
        })
        .collect();
    let best_of = |within: &dyn Fn(f64) -> bool| {
        alone.iter().filter(|(_, l)| within(*l)).map(|(a, _)| *a).fold(f64::NEG_INFINITY, f64::max)
    };
    let best = best_of(&|_| true);
    assert_eq!(ceiling.test.accuracy, best, "{alone:?}");
    let at = r.candidates.iter().position(|c| c.edits == ceiling.edits).unwrap();
    assert_eq!(alone[at].0, best);
    // The sound ceiling: the same among the candidates whose test log-loss, evaluated alone, is
    // within the bound of the base model's.
    let bound = laser_search::SOUND_LOGLOSS_RATIO * r.base.test.as_ref().unwrap().logloss;
    let sound_best = best_of(&|l| l <= bound);
    match &r.sound_ceiling {
        Some(sound) => {
            assert_eq!(sound.test.accuracy, sound_best, "{alone:?}");
            let at = r.candidates.iter().position(|c| c.edits == sound.edits).unwrap();
            assert!(alone[at].1 <= bound && sound.test.logloss <= bound, "{sound:?}");
            if ceiling.test.logloss <= bound {
                assert_eq!(sound.edits, ceiling.edits);
            }
        }
        None => assert!(alone.iter().all(|(_, l)| *l > bound), "{alone:?}"),
    }
    // The summary and report.md name both, and say where they coincide.
    let summary = laser_search::render::summary(&r, None);
    let line = summary.lines().find(|l| l.starts_with("sound ceiling (diagnostic): ")).unwrap();
    let same = r.sound_ceiling.as_ref().is_some_and(|s| s.edits == ceiling.edits);
    assert_eq!(line.contains("the ceiling (test log-loss within 1.25×"), same, "{line}");
    assert!(laser_search::render::markdown(&r, None).contains("Sound ceiling (diagnostic): "));
}

/// The balanced-accuracy change a search reports is the change of the mean of its own per-class
/// test accuracies (an independent route: the evaluator's class counts); a task whose items
/// offer different choices has none.
#[test]
fn the_balanced_accuracy_change_is_the_change_of_the_per_class_mean() {
    let mut model = tiny("llama");
    let (path, planted) = planted_task(&mut model, 80);
    let task = load_task(&path).unwrap();
    let cfg = SearchConfig { layers: Some((1, 1)), ..config(Strategy::Exhaustive, 30) };
    let r = run_search(&mut model, &task, &cfg).unwrap();
    assert_eq!(r.best.edits, vec![planted], "{}", r.selection.reason);
    let mean_per_class = |m: &Metrics| {
        let c = m.per_class.as_ref().expect("a choice task has classes");
        c.iter().map(|c| c.accuracy).sum::<f64>() / c.len() as f64
    };
    let (base, best) = (r.base.test.as_ref().unwrap(), r.best.test.as_ref().unwrap());
    let d = r.balanced_delta.expect("every item offers a and b");
    assert!((d.accuracy - (mean_per_class(best) - mean_per_class(base))).abs() < 1e-9, "{d:?}");
    assert!(d.ci_low <= d.accuracy && d.accuracy <= d.ci_high && d.helped(), "{d:?}");

    // The same items, every other one offering other choices: no balanced accuracy.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if i % 2 == 1 {
                v["choices"] = serde_json::json!(["a", "c"]);
            }
            v
        })
        .collect();
    let mixed = load_task(write_jsonl("planted-mixed-choices", &lines)).unwrap();
    let r = run_search(&mut model, &mixed, &cfg).unwrap();
    assert!(r.delta.is_some() && r.balanced_delta.is_none());
}
