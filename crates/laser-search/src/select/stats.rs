//! The statistics the rules test with: the exact one-sided McNemar test on paired correctness,
//! and the log-loss guard (a one-sided paired bootstrap of per-item NLL).

/// One-sided exact McNemar test: the probability of at least `wins` successes among
/// `wins + losses` fair coin flips (the discordant items), i.e. that an edit which is no better
/// than the base model wins at least this often.
pub fn mcnemar_one_sided(wins: usize, losses: usize) -> f64 {
    let n = wins + losses;
    if n == 0 {
        return 1.0;
    }
    // Σ_{k ≥ wins} C(n, k) / 2^n, in log space (n may be in the thousands).
    let ln_choose = |k: usize| ln_factorial(n) - ln_factorial(k) - ln_factorial(n - k);
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let p: f64 = (wins..=n).map(|k| (ln_choose(k) - ln_half_n).exp()).sum();
    p.min(1.0)
}

fn ln_factorial(n: usize) -> f64 {
    (2..=n).map(|k| (k as f64).ln()).sum()
}

/// (candidate right where base wrong, base right where candidate wrong) over paired outcomes:
/// the base model's `base`, the candidate's `cand` (as many as `base` yields).
pub(crate) fn discordant(base: impl Iterator<Item = bool>, cand: &[bool]) -> (usize, usize) {
    base.zip(cand).fold((0, 0), |(w, l), (b, &c)| match (b, c) {
        (false, true) => (w + 1, l),
        (true, false) => (w, l + 1),
        _ => (w, l),
    })
}

/// The log-loss guard: whether `cand`'s mean per-item NLL is significantly worse (higher) than
/// `base`'s on the same items — the lower end of a one-sided 95% paired-bootstrap interval of the
/// mean difference above zero. Returns (mean difference, that lower end) when it is.
pub fn logloss_worse(base: &[f64], cand: &[f64]) -> Option<(f64, f64)> {
    let n = base.len();
    if n == 0 || cand.len() != n {
        return None;
    }
    let diff: Vec<f64> = base.iter().zip(cand).map(|(b, c)| c - b).collect();
    let mean = diff.iter().sum::<f64>() / n as f64;
    if mean <= 0.0 {
        return None;
    }
    let mut rng = laser_linalg::rng::SplitMix64::new(0);
    let resamples = crate::interval::BOOTSTRAP_RESAMPLES;
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| diff[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    stats.sort_by(f64::total_cmp);
    let low = stats[((0.05 * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (low > 0.0).then_some((mean, low))
}
