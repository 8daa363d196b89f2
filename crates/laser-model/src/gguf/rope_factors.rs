//! Llama 3.x RoPE scaling from a GGUF's `rope_freqs.weight`. llama.cpp's converter does not
//! store the `rope_type: llama3` parameters; it stores their effect, one divisor per rotary
//! frequency (1 for short wavelengths, `factor` for long ones, a smooth blend between). This
//! recovers parameters that reproduce every divisor, so the model runs — and exports to an HF
//! `config.json` — exactly as the original.
//!
//! The blend is `1/f = (1 − s)/factor + s` with `s = (L/λ − lo)/(hi − lo)`, linear in `1/λ`: the
//! divisors fix `factor` and the line `s(1/λ)`, which leaves one degree of freedom among
//! (`lo`, `hi`, `L`). Every Llama 3.x release uses `lo = 1`; so does this fit, and `hi = 4`
//! too when fewer than two divisors fall in the band (then any value consistent with them is
//! exact).

use std::f64::consts::TAU;

use crate::config::Llama3RopeScaling;

/// How closely the recovered parameters must reproduce each stored divisor (relative; the
/// divisors are f32 computed from f32 frequencies).
const TOLERANCE: f64 = 1e-5;

/// Parameters of `rope_type: llama3` reproducing `factors` (one per rotary frequency
/// `θ^(−2i/rotary_dim)`), `Ok(None)` when every factor is 1 (no scaling), or an error message
/// when no such parameters exist.
pub(crate) fn llama3_from_factors(
    factors: &[f32],
    theta: f64,
    rotary_dim: usize,
) -> Result<Option<Llama3RopeScaling>, String> {
    if factors.len() * 2 != rotary_dim {
        return Err(format!(
            "{} factors for a rotary width of {rotary_dim} (need {})",
            factors.len(),
            rotary_dim / 2
        ));
    }
    if let Some(bad) = factors.iter().find(|f| !(f.is_finite() && **f >= 1.0 - TOLERANCE as f32)) {
        return Err(format!("factor {bad} (llama3 scaling divides by factors ≥ 1)"));
    }
    let factor = factors.iter().fold(1.0f64, |m, &f| m.max(f64::from(f)));
    if factor - 1.0 <= TOLERANCE {
        return Ok(None);
    }
    let wavelength = |i: usize| TAU * theta.powf((2 * i) as f64 / rotary_dim as f64);
    let near = |a: f64, b: f64| (a - b).abs() <= TOLERANCE * b;
    // (1/λ, s) of the frequencies in the band.
    let band: Vec<(f64, f64)> = factors
        .iter()
        .enumerate()
        .map(|(i, &f)| (i, f64::from(f)))
        .filter(|&(_, f)| !near(f, 1.0) && !near(f, factor))
        .map(|(i, f)| (1.0 / wavelength(i), (1.0 / f - 1.0 / factor) / (1.0 - 1.0 / factor)))
        .collect();
    let low = 1.0;
    let (high, context) = match band.as_slice() {
        [] => {
            // No frequency in the band: put its edges between the kept and the stretched ones.
            let longest_kept = (0..factors.len())
                .filter(|&i| near(f64::from(factors[i]), 1.0))
                .map(wavelength)
                .fold(0.0, f64::max);
            let shortest_stretched = (0..factors.len())
                .filter(|&i| near(f64::from(factors[i]), factor))
                .map(wavelength)
                .fold(f64::INFINITY, f64::min);
            let high = 4.0;
            let context = if longest_kept == 0.0 {
                shortest_stretched / 2.0
            } else if shortest_stretched.is_infinite() {
                longest_kept * high * 2.0
            } else {
                (longest_kept * high * shortest_stretched).sqrt()
            };
            (high, context)
        }
        [(x, s)] => {
            let high = 4.0;
            (high, (s * (high - low) + low) / x)
        }
        points => {
            // Least squares s = a·x + b; then b = −lo/(hi − lo), a = L/(hi − lo).
            let n = points.len() as f64;
            let (sx, ss) = points.iter().fold((0.0, 0.0), |(a, b), (x, s)| (a + x, b + s));
            let (mx, ms) = (sx / n, ss / n);
            let cov: f64 = points.iter().map(|(x, s)| (x - mx) * (s - ms)).sum();
            let var: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
            let a = cov / var;
            let b = ms - a * mx;
            if !(a > 0.0 && b < 0.0) {
                return Err("the band of blended factors does not follow llama3's blend".into());
            }
            let width = -low / b;
            (low + width, a * width)
        }
    };
    let fits = |high: f64, context: f64| {
        let s = Llama3RopeScaling {
            factor,
            low_freq_factor: low,
            high_freq_factor: high,
            original_max_position_embeddings: context,
        };
        let exact = factors.iter().enumerate().all(|(i, &f)| {
            let inv = theta.powf(-((2 * i) as f64) / rotary_dim as f64);
            near(inv / s.scale(inv), f64::from(f))
        });
        exact.then_some(s)
    };
    // Round numbers that fit as well are the ones the model was released with.
    [((high * 1e6).round() / 1e6, context.round()), (high, context)]
        .into_iter()
        .find_map(|(high, context)| fits(high, context))
        .map(Some)
        .ok_or_else(|| {
            "no llama3 rope scaling (factor, low/high_freq_factor, original context) reproduces them"
                .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The divisors HF's llama3 frequencies imply (`tests/common/gguf_writer.rs` writes them with
    /// llama.cpp's converter formula instead).
    fn hf_factors(s: &Llama3RopeScaling, theta: f64, dim: usize) -> Vec<f32> {
        (0..dim / 2)
            .map(|i| {
                let inv = theta.powf(-((2 * i) as f64) / dim as f64);
                (inv / s.scale(inv)) as f32
            })
            .collect()
    }

    fn released(factor: f64) -> Llama3RopeScaling {
        Llama3RopeScaling {
            factor,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        }
    }

    #[test]
    fn llama_3_1_and_3_2_parameters_come_back_exactly() {
        for (factor, dim) in [(8.0, 128), (32.0, 64), (32.0, 128)] {
            let truth = released(factor);
            let fitted = llama3_from_factors(&hf_factors(&truth, 500000.0, dim), 500000.0, dim)
                .unwrap()
                .unwrap();
            assert_eq!(fitted, truth, "factor {factor}, rotary width {dim}");
        }
    }

    #[test]
    fn a_band_of_one_frequency_still_reproduces_every_factor() {
        // The tiny llama3 oracle: θ = 500000, width 16, original context 16.
        let truth = Llama3RopeScaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 16.0,
        };
        let factors = hf_factors(&truth, 500000.0, 16);
        let fitted = llama3_from_factors(&factors, 500000.0, 16).unwrap().unwrap();
        assert_eq!(hf_factors(&fitted, 500000.0, 16), factors);
    }

    #[test]
    fn unit_factors_mean_no_scaling_and_others_are_refused() {
        assert_eq!(llama3_from_factors(&[1.0; 8], 10000.0, 16), Ok(None));
        assert!(llama3_from_factors(&[1.0; 8], 10000.0, 32).unwrap_err().contains("8 factors"));
        assert!(llama3_from_factors(&[0.5; 8], 10000.0, 16).unwrap_err().contains("0.5"));
        // Factors that fall and rise again follow no llama3 blend.
        let mut zigzag = vec![1.0f32; 64];
        for (i, f) in zigzag.iter_mut().enumerate().skip(20) {
            *f = if i % 2 == 0 { 2.0 } else { 5.0 };
        }
        assert!(llama3_from_factors(&zigzag, 500000.0, 128).is_err());
    }
}
