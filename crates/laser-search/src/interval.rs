//! The change in accuracy between two model states on the same items, with a 95% paired-bootstrap
//! interval: items are resampled with replacement and both states are scored on the same
//! resample, so that the interval reflects the items' shared difficulty (Efron & Tibshirani 1993,
//! percentile interval).

use laser_linalg::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// Resamples drawn for an interval.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// An accuracy change (percentage points) with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AccuracyDelta {
    /// Adapted minus base accuracy, in percentage points.
    pub accuracy: f64,
    /// 2.5th percentile of the bootstrap distribution.
    pub ci_low: f64,
    /// 97.5th percentile.
    pub ci_high: f64,
}

impl AccuracyDelta {
    /// The whole interval lies below zero: the edit made the model worse on these items.
    pub fn harmed(&self) -> bool {
        self.ci_high < 0.0
    }

    /// The whole interval lies above zero.
    pub fn helped(&self) -> bool {
        self.ci_low > 0.0
    }

    /// Paired bootstrap of per-item correctness (`base[i]`, `adapted[i]` score the same item).
    /// `None` when the lists differ in length or are empty.
    pub fn paired_bootstrap(
        base: &[bool],
        adapted: &[bool],
        resamples: usize,
        seed: u64,
    ) -> Option<Self> {
        let n = base.len();
        if n == 0 || adapted.len() != n || resamples == 0 {
            return None;
        }
        // Per item: +1, 0 or −1; the accuracy change is their mean.
        let diff: Vec<i32> =
            base.iter().zip(adapted).map(|(&b, &a)| i32::from(a) - i32::from(b)).collect();
        let to_pct = |sum: i64| 100.0 * sum as f64 / n as f64;
        let observed = to_pct(diff.iter().map(|&d| i64::from(d)).sum());
        let mut rng = SplitMix64::new(seed);
        let mut stats: Vec<f64> = (0..resamples)
            .map(|_| to_pct((0..n).map(|_| i64::from(diff[rng.below(n)])).sum()))
            .collect();
        stats.sort_by(f64::total_cmp);
        let at = |q: f64| stats[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
        Some(Self { accuracy: observed, ci_low: at(0.025), ci_high: at(0.975) })
    }

    /// The change from `base` to `adapted` (metrics of the same items, with per-item results).
    pub fn between(base: &Metrics, adapted: &Metrics) -> Option<Self> {
        let (b, a) = (base.items.as_ref()?, adapted.items.as_ref()?);
        Self::paired_bootstrap(&b.correct, &a.correct, BOOTSTRAP_RESAMPLES, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_states_have_a_zero_interval() {
        let v = vec![true, false, true, true];
        let d = AccuracyDelta::paired_bootstrap(&v, &v, 500, 1).unwrap();
        assert_eq!((d.accuracy, d.ci_low, d.ci_high), (0.0, 0.0, 0.0));
        assert!(!d.harmed() && !d.helped());
    }

    #[test]
    fn a_uniform_gain_is_significant_and_a_coin_flip_is_not() {
        // 40 of 200 items fixed, none broken: +20 points, interval well above 0.
        let base: Vec<bool> = (0..200).map(|i| i % 2 == 0).collect();
        let adapted: Vec<bool> = (0..200).map(|i| i % 2 == 0 || i % 10 == 1).collect();
        let d = AccuracyDelta::paired_bootstrap(&base, &adapted, 2000, 7).unwrap();
        assert!((d.accuracy - 10.0).abs() < 1e-9, "{d:?}");
        assert!(d.helped() && d.ci_low > 5.0 && d.ci_high < 15.0, "{d:?}");
        // As many fixed as broken: the interval straddles 0.
        let swapped: Vec<bool> =
            (0..200).map(|i| if i % 10 < 2 { !base[i] } else { base[i] }).collect();
        let d = AccuracyDelta::paired_bootstrap(&base, &swapped, 2000, 7).unwrap();
        assert_eq!(d.accuracy, 0.0);
        assert!(d.ci_low < 0.0 && d.ci_high > 0.0, "{d:?}");
        // The mirror image of a gain is a harm.
        let d = AccuracyDelta::paired_bootstrap(&adapted, &base, 2000, 7).unwrap();
        assert!(d.harmed(), "{d:?}");
    }

    #[test]
    fn mismatched_lengths_have_no_interval() {
        assert!(AccuracyDelta::paired_bootstrap(&[true], &[true, false], 10, 0).is_none());
        assert!(AccuracyDelta::paired_bootstrap(&[], &[], 10, 0).is_none());
    }
}
