//! What the scanned candidates become: the chosen edit of a selection (or the base model), every
//! rule's choice for the diagnostic comparison, and the test split's metrics of those choices,
//! each state evaluated once.

use super::{Scan, lowest_layer};
use crate::edits::{Edit, Factor};
use crate::error::Result;
use crate::eval::Evaluator;
use crate::metrics::Metrics;
use crate::report::{CandidateResult, RuleOutcome};
use crate::select::{SelectRule, Selection, select};

/// The test split's evaluator, and the states it has scored (a rule comparison asks for the same
/// edit several times).
pub(super) struct TestSplit {
    pub(super) eval: Evaluator,
    pub(super) done: Vec<(Vec<Edit>, Metrics)>,
}

impl TestSplit {
    pub(super) fn metrics(&mut self, scan: &mut Scan<'_>, edits: &[Edit]) -> Result<Metrics> {
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
                reason: s.reason,
            });
        }
    }
    out
}
