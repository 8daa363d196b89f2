//! How the evaluation engine cuts length-sorted rows into batches.
//!
//! A batch is a `[B, T]` block: every row is padded to the batch's longest, and the padding costs
//! as much arithmetic as real tokens. Task prompts are seldom of one length (the bundled task's
//! run from ~30 to ~120 tokens), so cutting the sorted rows greedily into the largest batches the
//! token budget allows padded its 5,694 selection tokens to 8,197. Small batches waste little
//! padding but pay a fixed cost each (every weight streamed once more, smaller products that run
//! further from the machine's peak). [`partition`] chooses the cut points that minimise padded
//! tokens plus a per-batch cost, exactly, by dynamic programming over the sorted rows.

use std::ops::Range;

/// The fixed cost of one more batch, in padded-token equivalents: what keeps [`partition`] from
/// cutting every row into its own batch. Chosen on SmolLM2 and the bundled task's selection items
/// (`docs/BENCHMARKS.md`, issue 18): 0 (no padding, dozens of tiny batches) took twice as long,
/// 16 and 256 a few percent longer than 64.
pub(crate) const BATCH_COST_TOKENS: usize = 64;

/// Cuts rows `0..lengths.len()`, sorted longest first, into consecutive batches that minimise
/// `Σ (rows × longest) + batch_cost × batches`. `max_end(start)` is one past the last row a batch
/// starting at `start` may hold (at least `start + 1`; the budgets it encodes grow with the batch,
/// so every shorter batch from `start` fits too).
///
/// # Panics
/// If `lengths` is not sorted longest first, or `max_end` returns an end outside
/// `start + 1..=lengths.len()` (both are the caller's invariants).
pub(crate) fn partition(
    lengths: &[usize],
    batch_cost: usize,
    max_end: impl Fn(usize) -> usize,
) -> Vec<Range<usize>> {
    let n = lengths.len();
    assert!(lengths.windows(2).all(|w| w[0] >= w[1]), "rows must be sorted longest first");
    // best[i]: the least cost of rows i.., and where the first batch from i ends.
    let mut best = vec![(0usize, n); n + 1];
    for start in (0..n).rev() {
        let end_max = max_end(start);
        assert!(end_max > start && end_max <= n, "batch end {end_max} for row {start} of {n}");
        best[start] = (start + 1..=end_max)
            .map(|end| ((end - start) * lengths[start] + batch_cost + best[end].0, end))
            .min()
            .expect("at least one row fits");
    }
    let mut batches = Vec::new();
    let mut start = 0;
    while start < n {
        let end = best[start].1;
        batches.push(start..end);
        start = end;
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use laser_linalg::rng::SplitMix64;

    fn cost(lengths: &[usize], batch_cost: usize, batches: &[Range<usize>]) -> usize {
        batches.iter().map(|b| b.len() * lengths[b.start] + batch_cost).sum()
    }

    /// Every way of cutting `0..n` into consecutive batches within `max_end`.
    fn all_cuts(
        start: usize,
        n: usize,
        max_end: &dyn Fn(usize) -> usize,
    ) -> Vec<Vec<Range<usize>>> {
        if start == n {
            return vec![Vec::new()];
        }
        (start + 1..=max_end(start))
            .flat_map(|end| {
                all_cuts(end, n, max_end).into_iter().map(move |mut rest| {
                    rest.insert(0, start..end);
                    rest
                })
            })
            .collect()
    }

    #[test]
    fn matches_brute_force_on_random_rows() {
        let mut rng = SplitMix64::new(7);
        for case in 0..200 {
            let n = 1 + rng.below(9);
            let mut lengths: Vec<usize> = (0..n).map(|_| 1 + rng.below(120)).collect();
            lengths.sort_unstable_by(|a, b| b.cmp(a));
            let budget = lengths[0] + rng.below(400);
            let batch_cost = rng.below(300);
            let max_end = |start: usize| {
                (start + 1..=n)
                    .take_while(|&e| (e - start) * lengths[start] <= budget)
                    .last()
                    .unwrap_or(start + 1)
            };
            let got = partition(&lengths, batch_cost, max_end);
            // A partition of 0..n, within the budget.
            assert_eq!(got.first().map(|b| b.start), Some(0), "case {case}");
            assert!(got.windows(2).all(|w| w[0].end == w[1].start), "case {case}");
            assert_eq!(got.last().map(|b| b.end), Some(n), "case {case}");
            assert!(got.iter().all(|b| b.end <= max_end(b.start)), "case {case}");
            let optimum =
                all_cuts(0, n, &max_end).iter().map(|c| cost(&lengths, batch_cost, c)).min();
            assert_eq!(Some(cost(&lengths, batch_cost, &got)), optimum, "case {case}: {lengths:?}");
        }
    }

    /// The case that motivated it: one long row no longer pads a full batch of short ones.
    #[test]
    fn a_long_row_gets_a_batch_of_its_own() {
        let lengths = [120, 50, 50, 50, 50, 50, 50, 50];
        let got = partition(&lengths, 16, |_| lengths.len());
        assert_eq!(got, vec![0..1, 1..8]);
        // With no cost per batch the split is the same (no padding at all either way) …
        assert_eq!(cost(&lengths, 0, &partition(&lengths, 0, |_| 8)), 470);
        // … and with a cost above the padding saved, one batch.
        assert_eq!(partition(&lengths, 1000, |_| 8), vec![0..8]);
    }
}
