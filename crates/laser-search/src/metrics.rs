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
