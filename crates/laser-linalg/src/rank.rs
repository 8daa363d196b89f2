//! LASER's rank map: a kept-rank fraction ρ ∈ (0, 1] becomes `k = floor(ρ · min(m, n))`, at least 1.

use crate::error::{LinalgError, Result};

/// LASER's reference grid of kept-rank fractions (Sharma et al. 2023).
pub const LASER_RHO_GRID: [f32; 9] = [0.9, 0.8, 0.6, 0.4, 0.2, 0.1, 0.05, 0.01, 0.005];

/// Checks that ρ lies in (0, 1] (NaN is rejected).
pub fn check_rho(rho: f32) -> Result<()> {
    if rho > 0.0 && rho <= 1.0 { Ok(()) } else { Err(LinalgError::RhoOutOfRange(rho)) }
}

/// The f64 nearest to the shortest decimal that reads back as `x` (0.1f32 → 0.1, not
/// 0.10000000149011612): how a person wrote the value, for comparisons and JSON.
pub fn shortest_decimal(x: f32) -> f64 {
    // Rust's `Display` of a float is its shortest round-tripping decimal.
    format!("{x}").parse::<f64>().unwrap_or(f64::from(x))
}

/// `k = floor(ρ · min(m, n))`, at least 1. The product is taken in f64 so that ρ = 0.1 on
/// min = 10 gives 1, not 0 (0.1f32 · 10 rounds below 1 in f32 arithmetic only by luck).
pub fn kept_rank(rho: f32, rows: usize, cols: usize) -> Result<usize> {
    check_rho(rho)?;
    let min = rows.min(cols);
    if min == 0 {
        return Err(LinalgError::Empty { rows, cols });
    }
    // Round ρ to its shortest decimal first: users think of 0.1 as one tenth, not 0.100000001.
    let rho = shortest_decimal(rho);
    let k = (rho * min as f64 + 1e-9).floor() as usize;
    Ok(k.clamp(1, min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_decimal_is_the_value_as_written_and_reads_back_as_the_same_f32() {
        for (x, written) in [(0.1f32, 0.1f64), (0.9, 0.9), (1e-5, 1e-5), (0.25, 0.25), (3.0, 3.0)] {
            assert_eq!(shortest_decimal(x), written);
            assert_eq!(shortest_decimal(x) as f32, x);
        }
        assert_ne!(f64::from(0.1f32), 0.1, "the widening it replaces is not exact");
    }

    #[test]
    fn rank_map_follows_laser() {
        assert_eq!(kept_rank(1.0, 576, 1536).unwrap(), 576);
        assert_eq!(kept_rank(0.1, 10, 20).unwrap(), 1);
        assert_eq!(kept_rank(0.01, 576, 576).unwrap(), 5);
        assert_eq!(kept_rank(0.005, 576, 576).unwrap(), 2);
        assert_eq!(kept_rank(0.001, 64, 64).unwrap(), 1, "at least one");
        assert_eq!(kept_rank(0.9, 192, 576).unwrap(), 172);
        for bad in [0.0, -0.5, 1.0001, f32::NAN, f32::INFINITY] {
            assert!(matches!(kept_rank(bad, 4, 4), Err(LinalgError::RhoOutOfRange(_))), "{bad}");
        }
        assert!(matches!(kept_rank(0.5, 0, 4), Err(LinalgError::Empty { .. })));
    }
}
