//! Scoring at the target positions: each row's log-probability of its target token and its most
//! likely token, from the LM head's logits in one parallel pass with the vectorised `exp`.
//! burn's `log_softmax`, `argmax` and `gather` ran on the main thread with libm's `expf` over
//! every vocabulary entry: 0.2 s of a `laser eval` run's remaining serial time (SmolLM2's 49,152
//! entries × ~400 scored positions).

use rayon::prelude::*;

use super::{exp_slice, flex_f32, row_major};
use burn::tensor::Tensor;

/// `(log p(target), argmax)` per row of a plain flex `logits: [N, V]`, `targets.len() == N`;
/// `None` when `logits` is not one or a target is outside the vocabulary (the caller then uses
/// burn's ops). The argmax is the first index of the largest logit.
pub(crate) fn target_log_probs(logits: &Tensor<2>, targets: &[u32]) -> Option<Vec<(f32, u32)>> {
    let [n, v] = logits.dims();
    if targets.len() != n || v == 0 || targets.iter().any(|&t| t as usize >= v) {
        return None;
    }
    let flex = flex_f32(logits)?;
    let data = row_major(&flex);
    Some(
        data.par_chunks(v)
            .zip(targets.par_iter())
            .map_init(Vec::new, |scratch, (row, &target)| score_row(row, target, scratch))
            .collect(),
    )
}

/// One row: `x[target] − max − ln Σ exp(x − max)` and the first index of the max.
fn score_row(row: &[f32], target: u32, scratch: &mut Vec<f32>) -> (f32, u32) {
    let stats = RowLogSumExp::of(row, scratch);
    (stats.log_prob(row, target), stats.top as u32)
}

/// A row's largest logit (its first index and value) and `ln Σ exp(x − max)`, summed in f64 (a
/// 262,144-wide vocabulary stays at f32 rounding of the result).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowLogSumExp {
    top: usize,
    max: f32,
    log_sum: f64,
}

impl RowLogSumExp {
    /// The statistics of `row`; `scratch` is reused across rows.
    pub(crate) fn of(row: &[f32], scratch: &mut Vec<f32>) -> Self {
        let (mut top, mut max) = (0usize, f32::NEG_INFINITY);
        for (i, &x) in row.iter().enumerate() {
            if x > max {
                (top, max) = (i, x);
            }
        }
        scratch.clear();
        scratch.extend(row.iter().map(|&x| x - max));
        exp_slice(scratch);
        let sum: f64 = scratch.iter().map(|&e| f64::from(e)).sum();
        Self { top, max, log_sum: sum.ln() }
    }

    /// `log p(target) = x[target] − max − ln Σ exp(x − max)`.
    pub(crate) fn log_prob(&self, row: &[f32], target: u32) -> f32 {
        (f64::from(row[target as usize] - self.max) - self.log_sum) as f32
    }

    /// Replaces the row these statistics were taken of by its softmax, `exp(x − max − ln Σ)`.
    pub(crate) fn softmax_in_place(&self, row: &mut [f32]) {
        let shift = self.log_sum as f32;
        for x in row.iter_mut() {
            *x = *x - self.max - shift;
        }
        exp_slice(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// Against f64 log-softmax on rows with a tie for the max (the first wins) and a large
    /// spread of logits.
    #[test]
    fn log_probs_and_argmax_match_f64() {
        let (n, v) = (5usize, 1000usize);
        let mut data: Vec<f32> =
            (0..n * v).map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 40.0).collect();
        data[2 * v + 10] = 30.0;
        data[2 * v + 900] = 30.0;
        let targets = [0u32, 999, 10, 500, 1];
        let logits = Tensor::<2>::from_data(TensorData::new(data.clone(), [n, v]), &Device::flex());
        let got = target_log_probs(&logits, &targets).unwrap();
        for (r, row) in data.chunks(v).enumerate() {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
            let lse = max + row.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
            let want = f64::from(row[targets[r] as usize]) - lse;
            assert!((f64::from(got[r].0) - want).abs() < 1e-5, "row {r}: {} vs {want}", got[r].0);
            let first_max = row.iter().position(|&x| f64::from(x) == max).unwrap();
            assert_eq!(got[r].1 as usize, first_max, "row {r}");
        }
        assert_eq!(got[2].1, 10);
        assert!(target_log_probs(&logits, &[0, 1, 2, 3, 1000]).is_none());
    }

    /// A vocabulary as wide as SmolLM2's: the sum of 49,152 exponentials stays accurate to f32
    /// rounding of the result (burn's f32 `log_softmax` was ~1e-4 off the PyTorch reference's
    /// log-loss on the bundled task; this kernel is within 1e-6 of it).
    #[test]
    fn a_wide_vocabulary_keeps_f32_accuracy() {
        let v = 49_152usize;
        let row: Vec<f32> =
            (0..v).map(|i| ((i * 2_654_435_761usize) % 10_007) as f32 / 1000.0).collect();
        let logits = Tensor::<2>::from_data(TensorData::new(row.clone(), [1, v]), &Device::flex());
        let (lp, _) = target_log_probs(&logits, &[123]).unwrap()[0];
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
        let lse = max + row.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
        let want = f64::from(row[123]) - lse;
        assert!((f64::from(lp) - want).abs() < 2e-6, "{lp} vs {want}");
    }
}
