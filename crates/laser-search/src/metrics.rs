//! What an evaluation reports: accuracy (per class too), log-loss, each item's correctness and
//! NLL (for paired tests and subsets), and LASER's rule for which of two results is better.

use serde::{Deserialize, Serialize};

/// Accuracy of one class (choice tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    /// Class name (the choice text, trimmed).
    pub class: String,
    /// Items whose gold answer is this class.
    pub n: usize,
    /// Percent of them answered correctly.
    pub accuracy: f64,
}

/// Metrics of a model on a set of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Items scored.
    pub n: usize,
    /// Percent correct.
    pub accuracy: f64,
    /// Mean per-token NLL of the gold answer.
    pub logloss: f64,
    /// Percent of items in the most frequent gold class (choice tasks): the accuracy of always
    /// answering it, which a low-rank edit can drift towards.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub majority: Option<f64>,
    /// Accuracy per gold class (choice tasks).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub per_class: Option<Vec<ClassAccuracy>>,
    /// Per-item outcomes in the order the items were given: what paired tests and intervals
    /// between two model states need (the selection rules, the suite's bootstrap).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub items: Option<ItemScores>,
}

impl Metrics {
    /// Whether these metrics could have come from an evaluation (read back from a log, they may
    /// not): percentages in [0, 100], a log-loss that is not NaN, per-item outcomes for `n` items.
    pub fn check(&self) -> std::result::Result<(), String> {
        let percent = |x: f64| (0.0..=100.0).contains(&x);
        if !percent(self.accuracy) || !self.majority.is_none_or(percent) {
            return Err(format!("accuracy {} or majority rate outside [0, 100]", self.accuracy));
        }
        if self.logloss.is_nan() {
            return Err("log-loss is NaN".into());
        }
        if let Some(items) = &self.items
            && (items.correct.len() != self.n || items.nll.len() != self.n)
        {
            return Err(format!(
                "{} items with {} outcomes and {} losses",
                self.n,
                items.correct.len(),
                items.nll.len()
            ));
        }
        Ok(())
    }
}

/// Per-item outcomes of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScores {
    /// Whether each item was answered correctly, as a string of `0` / `1` (compact in logs).
    #[serde(with = "bits")]
    pub correct: Vec<bool>,
    /// Each item's gold-answer NLL (mean per token).
    pub nll: Vec<f64>,
}

impl ItemScores {
    /// Accuracy (percent) and log-loss over the items at `indices`.
    pub fn subset(&self, indices: &[usize]) -> (f64, f64) {
        let n = indices.len().max(1) as f64;
        let correct = indices.iter().filter(|&&i| self.correct[i]).count() as f64;
        let loss: f64 = indices.iter().map(|&i| self.nll[i]).sum();
        (100.0 * correct / n, loss / n)
    }

    /// (accuracy in percent, mean NLL) over every item, summed in item order as
    /// [`ItemScores::subset`] sums.
    pub fn overall(&self) -> (f64, f64) {
        self.subset(&(0..self.correct.len()).collect::<Vec<usize>>())
    }
}

/// `Vec<bool>` as a string of `0` / `1`.
mod bits {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[bool], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.iter().map(|&b| if b { '1' } else { '0' }).collect::<String>())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<bool>, D::Error> {
        let text = String::deserialize(d)?;
        text.chars()
            .map(|c| match c {
                '1' => Ok(true),
                '0' => Ok(false),
                other => Err(D::Error::custom(format!("expected 0 or 1, found {other:?}"))),
            })
            .collect()
    }
}

impl Metrics {
    /// Whether `self` beats `other` by LASER's rule: higher accuracy, ties broken by lower loss.
    pub fn better_than(&self, other: &Metrics) -> bool {
        self.accuracy > other.accuracy
            || (self.accuracy == other.accuracy && self.logloss < other.logloss)
    }
}

/// One item's outcome.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome<'a> {
    pub(crate) item: usize,
    pub(crate) correct: bool,
    pub(crate) nll: f64,
    /// The gold choice's name (choice tasks).
    pub(crate) class: Option<&'a str>,
}

/// The per-item results of `outcomes`, in their order.
pub(crate) fn item_scores(outcomes: &[Outcome<'_>]) -> ItemScores {
    ItemScores {
        correct: outcomes.iter().map(|o| o.correct).collect(),
        nll: outcomes.iter().map(|o| o.nll).collect(),
    }
}

/// Metrics over `outcomes`, per-item results in their order.
pub(crate) fn aggregate(outcomes: &[Outcome<'_>]) -> Metrics {
    let mut classes: Vec<(&str, usize, usize)> = Vec::new(); // (name, n, correct)
    for o in outcomes {
        if let Some(name) = o.class {
            let entry = match classes.iter().position(|(c, _, _)| *c == name) {
                Some(p) => p,
                None => {
                    classes.push((name, 0, 0));
                    classes.len() - 1
                }
            };
            classes[entry].1 += 1;
            classes[entry].2 += usize::from(o.correct);
        }
    }
    let n = outcomes.len();
    let correct = outcomes.iter().filter(|o| o.correct).count();
    let loss: f64 = outcomes.iter().map(|o| o.nll).sum();
    let pct = |c: usize, n: usize| 100.0 * c as f64 / n.max(1) as f64;
    let (majority, per_class) = if classes.is_empty() {
        (None, None)
    } else {
        classes.sort_by(|a, b| a.0.cmp(b.0));
        let n_choice: usize = classes.iter().map(|c| c.1).sum();
        let top = classes.iter().map(|c| c.1).max().unwrap_or(0);
        (
            Some(pct(top, n_choice)),
            Some(
                classes
                    .into_iter()
                    .map(|(class, n, c)| ClassAccuracy {
                        class: class.to_owned(),
                        n,
                        accuracy: pct(c, n),
                    })
                    .collect(),
            ),
        )
    };
    Metrics {
        n,
        accuracy: pct(correct, n),
        logloss: loss / n.max(1) as f64,
        majority,
        per_class,
        items: Some(item_scores(outcomes)),
    }
}
