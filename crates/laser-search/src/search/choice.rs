//! What the scanned candidates become: the chosen edit of a selection (or the base model), every
//! rule's choice for the diagnostic comparison, and the test split's metrics of those choices
//! and (with a comparison) the ceilings, each state evaluated once.

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
    /// The same among the candidates within the log-loss bound ([`ceilings`]).
    pub(super) sound_ceiling: Option<Ceiling>,
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
        return Ok(TestScores {
            base: None,
            best: None,
            ceiling: None,
            sound_ceiling: None,
            balanced: None,
        });
    }
    // The scan's freed batches and factorizations go back before the test split's own are
    // built (`laser_model::allocator`).
    laser_model::allocator::release_freed_memory();
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
    let (ceiling, sound_ceiling) =
        if ceiling_candidates > 0 { test_ceiling(scan, &mut test, &base)? } else { (None, None) };
    let balanced = classes.as_ref().and_then(|c| balanced_delta(c, &base, &best));
    Ok(TestScores { base: Some(base), best: Some(best), ceiling, sound_ceiling, balanced })
}

/// Every scanned candidate on the test split (each state once, with the rules' choices), and the
/// ceilings among them (`ceilings`).
fn test_ceiling(
    scan: &mut Scan<'_>,
    test: &mut TestSplit,
    base: &Metrics,
) -> Result<(Option<Ceiling>, Option<Ceiling>)> {
    let candidates: Vec<(Vec<Edit>, Metrics)> =
        scan.candidates.iter().map(|c| (c.edits.clone(), c.select.clone())).collect();
    let mut tested = Vec::with_capacity(candidates.len());
    for (edits, select) in candidates {
        let m = test.metrics(scan, &edits)?;
        tested.push(TestedCandidate { edits, select, test: m });
    }
    Ok(ceilings(base, tested))
}

/// A scanned candidate with its selection and test metrics.
struct TestedCandidate {
    edits: Vec<Edit>,
    select: Metrics,
    test: Metrics,
}

/// The ceiling of the search space — the candidate with the best test accuracy, ties by lower
/// test log-loss — and the *sound* ceiling: the same among the candidates whose test log-loss is
/// at most [`SOUND_LOGLOSS_RATIO`] × the base model's (an edit that wins answers by wrecking the
/// language model is not one a user would take; where the two differ, only the wreck reached the
/// plain ceiling).
fn ceilings(base: &Metrics, tested: Vec<TestedCandidate>) -> (Option<Ceiling>, Option<Ceiling>) {
    let n = tested.len();
    let better = |m: &Metrics, b: &Option<&TestedCandidate>| {
        b.is_none_or(|b| {
            m.accuracy > b.test.accuracy
                || (m.accuracy == b.test.accuracy && m.logloss < b.test.logloss)
        })
    };
    let (mut best, mut sound): (Option<&TestedCandidate>, Option<&TestedCandidate>) = (None, None);
    for c in &tested {
        if better(&c.test, &best) {
            best = Some(c);
        }
        if c.test.logloss <= SOUND_LOGLOSS_RATIO * base.logloss && better(&c.test, &sound) {
            sound = Some(c);
        }
    }
    let ceiling = |c: &TestedCandidate| Ceiling {
        delta: AccuracyDelta::between(base, &c.test),
        edits: c.edits.clone(),
        select: Metrics { items: None, ..c.select.clone() },
        test: Metrics { items: None, ..c.test.clone() },
        candidates: n,
    };
    (best.map(ceiling), sound.map(ceiling))
}

/// The bound on an edit's test log-loss against the base model's (+25%): above it, an edit that
/// gains accuracy counts as a log-loss wreck, and it is left out of the sound ceiling.
pub const SOUND_LOGLOSS_RATIO: f64 = 1.25;

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(accuracy: f64, logloss: f64) -> Metrics {
        Metrics { n: 100, accuracy, logloss, majority: None, per_class: None, items: None }
    }

    fn tested(name: &str, accuracy: f64, logloss: f64) -> TestedCandidate {
        let edit = Edit::svd(name, 0.1);
        TestedCandidate {
            edits: vec![edit],
            select: metrics(50.0, 1.0),
            test: metrics(accuracy, logloss),
        }
    }

    fn first_name(c: &Option<Ceiling>) -> Option<&str> {
        c.as_ref().map(|c| c.edits[0].name.as_str())
    }

    /// A planted wreck — the best test accuracy with 4× the base log-loss — is the plain
    /// ceiling and not the sound one, which is the best candidate within 1.25× (the bound
    /// itself included); of equal accuracies, the lower log-loss.
    #[test]
    fn the_sound_ceiling_leaves_out_a_log_loss_wreck() {
        let base = metrics(40.0, 2.0);
        let (plain, sound) = ceilings(
            &base,
            vec![
                tested("weak", 45.0, 1.9),
                tested("wreck", 70.0, 8.0),
                tested("just_over", 60.0, 2.5001),
                tested("at_bound", 56.0, 2.5),
            ],
        );
        assert_eq!(first_name(&plain), Some("wreck"));
        assert_eq!(first_name(&sound), Some("at_bound"));
        let sound = sound.unwrap();
        assert_eq!((sound.candidates, sound.test.accuracy), (4, 56.0));
        // Every candidate a wreck: a plain ceiling, no sound one.
        let (plain, sound) = ceilings(&base, vec![tested("wreck", 70.0, 8.0)]);
        assert!(plain.is_some() && sound.is_none());
        // No wreck: the two coincide; of equal accuracies the lower log-loss.
        let (plain, sound) = ceilings(
            &base,
            vec![tested("higher_loss", 50.0, 2.2), tested("lower_loss", 50.0, 2.1)],
        );
        let lower = Some("lower_loss");
        assert_eq!((first_name(&plain), first_name(&sound)), (lower, lower));
    }
}
