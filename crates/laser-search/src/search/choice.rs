//! What the scanned candidates become: the chosen edit of a selection (or the base model), every
//! rule's choice for the diagnostic comparison, and the test split's metrics of those choices
//! and (with a comparison) the ceiling, each state evaluated once.

use super::{Scan, SearchConfig, lowest_layer};
use crate::balanced::{balanced_delta, shared_classes};
use crate::candidate::CandidateResult;
use crate::edits::{Edit, Factor};
use crate::error::Result;
use crate::eval::Evaluator;
use crate::interval::AccuracyDelta;
use crate::metrics::Metrics;
use crate::report::{Ceiling, RuleOutcome};
use crate::select::{SelectRule, Selection, select};
use crate::task::Item;

/// The test split's evaluator, and the states it has scored (a rule comparison asks for the same
/// edit several times).
struct TestSplit {
    eval: Evaluator,
    done: Vec<(Vec<Edit>, Metrics)>,
}

impl TestSplit {
    fn metrics(&mut self, scan: &mut Scan<'_>, edits: &[Edit]) -> Result<Metrics> {
        if let Some((_, m)) = self.done.iter().find(|(e, _)| e == edits) {
            return Ok(m.clone());
        }
        // Base-model states entering the lowest edited layer serve the evaluation.
        if let Some(low) = lowest_layer(scan.model, edits)? {
            self.eval.cache_layer(scan.model, low)?;
        }
        scan.engine.apply(scan.model, edits)?;
        let m = self.eval.evaluate(scan.model);
        scan.model.restore_all();
        let m = m?;
        scan.progress.advance();
        self.done.push((edits.to_vec(), m.clone()));
        Ok(m)
    }
}

/// The recommended single edit of a selection, or no edit with the base model's metrics.
pub(super) fn chosen_or_base(
    s: &Selection,
    candidates: &[CandidateResult],
    base: &Metrics,
) -> (Vec<Edit>, Metrics) {
    match s.chosen {
        Some(i) => (candidates[i].edits.clone(), candidates[i].select.clone()),
        None => (Vec::new(), base.clone()),
    }
}

/// Every rule over every single factorization scanned, and over all of them when there are
/// several. Test metrics are filled in by the caller.
pub(super) fn compare_rules(
    candidates: &[CandidateResult],
    base: &Metrics,
    factors: &[Factor],
) -> Vec<RuleOutcome> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    if factors.len() > 1 {
        groups.push(("all".into(), (0..candidates.len()).collect()));
    }
    for f in factors {
        let of: Vec<usize> = (0..candidates.len())
            .filter(|&i| candidates[i].edits.iter().all(|e| e.factor == *f))
            .collect();
        groups.push((f.to_string(), of));
    }
    let mut out = Vec::new();
    for (name, idx) in groups {
        let subset: Vec<CandidateResult> = idx.iter().map(|&i| candidates[i].clone()).collect();
        for rule in SelectRule::ALL {
            let s = select(rule, base, &subset);
            let (edits, m) = chosen_or_base(&s, &subset, base);
            out.push(RuleOutcome {
                rule,
                factors: name.clone(),
                edits,
                select: Metrics { items: None, ..m },
                test: None,
                delta: None,
                balanced_delta: None,
                reason: s.reason,
            });
        }
    }
    out
}

/// What the test split said: nothing when the task has no test items.
pub(super) struct TestScores {
    pub(super) base: Option<Metrics>,
    pub(super) best: Option<Metrics>,
    pub(super) ceiling: Option<Ceiling>,
    /// Balanced-accuracy change of `best`, where the items share one set of choices
    /// (`balanced.rs`).
    pub(super) balanced: Option<AccuracyDelta>,
}

/// The test split, scored once at the end: the base model, the chosen `best` edits, each compared
/// rule's choice (its test metrics and change written into `rules`), and with a rule comparison
/// every candidate for the ceiling — each state once.
pub(super) fn score_test_split(
    scan: &mut Scan<'_>,
    test_items: &[Item],
    cfg: &SearchConfig,
    best: &[Edit],
    rules: &mut [RuleOutcome],
) -> Result<TestScores> {
    let ceiling_candidates = if cfg.compare_rules { scan.candidates.len() } else { 0 };
    scan.progress.phase("test split", 2 + (rules.len() + ceiling_candidates) as u64);
    if test_items.is_empty() {
        return Ok(TestScores { base: None, best: None, ceiling: None, balanced: None });
    }
    let mut test = TestSplit {
        eval: Evaluator::new(scan.model, test_items, cfg.batch_tokens)?,
        done: Vec::new(),
    };
    let classes = shared_classes(test_items);
    let base = test.metrics(scan, &[])?;
    let best = test.metrics(scan, best)?;
    for r in rules.iter_mut() {
        let m = test.metrics(scan, &r.edits)?;
        r.delta = AccuracyDelta::between(&base, &m);
        r.balanced_delta = classes.as_ref().and_then(|c| balanced_delta(c, &base, &m));
        r.test = Some(Metrics { items: None, ..m });
    }
    let ceiling = if ceiling_candidates > 0 { test_ceiling(scan, &mut test, &base)? } else { None };
    let balanced = classes.as_ref().and_then(|c| balanced_delta(c, &base, &best));
    Ok(TestScores { base: Some(base), best: Some(best), ceiling, balanced })
}

/// Every scanned candidate on the test split (each state once, with the rules' choices), and the
/// one with the best test accuracy, ties by lower log-loss: the ceiling of the search space.
fn test_ceiling(
    scan: &mut Scan<'_>,
    test: &mut TestSplit,
    base: &Metrics,
) -> Result<Option<Ceiling>> {
    let candidates: Vec<(Vec<Edit>, Metrics)> =
        scan.candidates.iter().map(|c| (c.edits.clone(), c.select.clone())).collect();
    let mut best: Option<(Vec<Edit>, Metrics, Metrics)> = None;
    for (edits, select) in candidates {
        let m = test.metrics(scan, &edits)?;
        let better = best.as_ref().is_none_or(|(_, _, b)| {
            m.accuracy > b.accuracy || (m.accuracy == b.accuracy && m.logloss < b.logloss)
        });
        if better {
            best = Some((edits, select, m));
        }
    }
    Ok(best.map(|(edits, select, test_m)| Ceiling {
        delta: AccuracyDelta::between(base, &test_m),
        edits,
        select: Metrics { items: None, ..select },
        test: Metrics { items: None, ..test_m },
        candidates: scan.candidates.len(),
    }))
}
