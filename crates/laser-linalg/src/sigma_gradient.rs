//! Singular-value gradients and the first-order loss change of truncation.
//!
//! With `W = U diag(σ) Vᵀ` and `G = ∂L/∂W`, the gradient of the loss with respect to σ_i is
//! `g_i = u_iᵀ G v_i` — the diagonal of `Uᵀ G V`, computed here as column dots of `U` and `G V`
//! (O(m·n·r), never the r×r product). Truncating to rank k sets σ_i = 0 for i ≥ k (0-based), so to
//! first order `ΔL(k) = −Σ_{i≥k} σ_i g_i` (Sreeram et al. 2025, "Compress to Impress").

use faer::{Mat, MatRef, Par};

use crate::error::{Result, check_matrix, check_shape};
use crate::svd::ThinSvd;

/// `g_i = u_iᵀ G v_i` for every singular triplet of `svd`; `g` is `∂L/∂W` in W's orientation.
pub fn sigma_gradient(svd: &ThinSvd, g: MatRef<'_, f32>) -> Result<Vec<f32>> {
    sigma_gradient_with(svd, g, Par::Seq)
}

/// [`sigma_gradient`] with explicit parallelism for the `G V` product.
pub fn sigma_gradient_with(svd: &ThinSvd, g: MatRef<'_, f32>, par: Par) -> Result<Vec<f32>> {
    check_shape((svd.nrows(), svd.ncols()), g.shape())?;
    check_matrix(g)?;
    let mut gv = Mat::<f32>::zeros(svd.nrows(), svd.rank());
    faer::linalg::matmul::matmul(gv.as_mut(), faer::Accum::Replace, g, svd.v.as_ref(), 1.0f32, par);
    Ok((0..svd.rank())
        .map(|i| {
            let u = svd.u.col_as_slice(i);
            let gvi = gv.col_as_slice(i);
            u.iter().zip(gvi).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>() as f32
        })
        .collect())
}

/// `ΔL(k) = −Σ_{i≥k} σ_i g_i` for every kept rank k = 0..=r (suffix sums, f64); `ΔL(r) = 0`.
pub fn predicted_loss_change(sigma: &[f32], grad_sigma: &[f32]) -> Result<Vec<f64>> {
    check_shape((sigma.len(), 1), (grad_sigma.len(), 1))?;
    Ok(suffix_sums(sigma.iter().zip(grad_sigma).map(|(&s, &g)| -f64::from(s) * f64::from(g))))
}

/// How a truncation is scored from (σ, g); higher means "more worth truncating to rank k".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TruncationScore {
    /// `−ΔL(k) = Σ_{i≥k} σ_i g_i`: the predicted loss decrease, in loss units.
    #[default]
    FirstOrder,
    /// `Σ_{i≥k} |g_i|`: how strongly the loss reacts to the removed directions, sign-blind.
    TailGradMagnitude,
    /// `−ΔL(k) / (‖σ_tail‖₂ ‖g_tail‖₂)`: the cosine between the removed spectrum and its gradient,
    /// in [−1, 1]; scale-free, so matrices of different norms compare fairly.
    Cosine,
}

impl TruncationScore {
    /// Every score, for sweeps.
    pub const ALL: [TruncationScore; 3] = [Self::FirstOrder, Self::TailGradMagnitude, Self::Cosine];

    /// A short stable name (`first-order`, `tail-grad`, `cosine`).
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstOrder => "first-order",
            Self::TailGradMagnitude => "tail-grad",
            Self::Cosine => "cosine",
        }
    }

    /// Parses [`TruncationScore::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for TruncationScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TruncationScore {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::from_name(s).ok_or_else(|| {
            format!("unknown score `{s}` (expected first-order, tail-grad or cosine)")
        })
    }
}

/// The score of truncating to every kept rank k = 0..=r (index k), all at once.
pub fn truncation_scores(
    sigma: &[f32],
    grad_sigma: &[f32],
    score: TruncationScore,
) -> Result<Vec<f64>> {
    check_shape((sigma.len(), 1), (grad_sigma.len(), 1))?;
    let pairs = || sigma.iter().zip(grad_sigma).map(|(&s, &g)| (f64::from(s), f64::from(g)));
    Ok(match score {
        TruncationScore::FirstOrder => suffix_sums(pairs().map(|(s, g)| s * g)),
        TruncationScore::TailGradMagnitude => suffix_sums(pairs().map(|(_, g)| g.abs())),
        TruncationScore::Cosine => {
            let dot = suffix_sums(pairs().map(|(s, g)| s * g));
            let ss = suffix_sums(pairs().map(|(s, _)| s * s));
            let gg = suffix_sums(pairs().map(|(_, g)| g * g));
            dot.iter()
                .zip(ss.iter().zip(&gg))
                .map(
                    |(&d, (&s, &g))| {
                        if s > 0.0 && g > 0.0 { d / (s.sqrt() * g.sqrt()) } else { 0.0 }
                    },
                )
                .collect()
        }
    })
}

/// `out[k] = Σ_{i≥k} x_i` for k = 0..=len, with `out[len] = 0`.
fn suffix_sums(xs: impl DoubleEndedIterator<Item = f64> + ExactSizeIterator) -> Vec<f64> {
    let mut out = vec![0.0; xs.len() + 1];
    for (i, x) in xs.enumerate().rev() {
        out[i] = out[i + 1] + x;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_sums_and_scores_on_a_hand_example() {
        let s = [3.0, 2.0, 1.0];
        let g = [0.5, -1.0, 2.0];
        let dl = predicted_loss_change(&s, &g).unwrap();
        assert_eq!(dl, vec![-(1.5 - 2.0 + 2.0), -(-2.0 + 2.0), -2.0, 0.0]);
        let fo = truncation_scores(&s, &g, TruncationScore::FirstOrder).unwrap();
        assert_eq!(fo, dl.iter().map(|x| -x).collect::<Vec<_>>());
        let tg = truncation_scores(&s, &g, TruncationScore::TailGradMagnitude).unwrap();
        assert_eq!(tg, vec![3.5, 3.0, 2.0, 0.0]);
        let cos = truncation_scores(&s, &g, TruncationScore::Cosine).unwrap();
        assert!((cos[2] - 1.0).abs() < 1e-12, "one aligned pair has cosine 1");
        assert!(cos.iter().all(|c| c.abs() <= 1.0 + 1e-12));
        assert!(predicted_loss_change(&s, &g[..2]).is_err());
        for s in TruncationScore::ALL {
            assert_eq!(TruncationScore::from_name(s.name()), Some(s));
        }
    }
}
