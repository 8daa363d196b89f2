//! The error type of every fallible call in this crate: small, `Copy`, and specific about the
//! offending value so that callers can name it in their own messages.

/// What went wrong in a linear-algebra call.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum LinalgError {
    /// A matrix with no rows or no columns.
    #[error("matrix is empty ({rows}×{cols})")]
    Empty { rows: usize, cols: usize },
    /// A NaN or infinite entry.
    #[error("matrix has a non-finite entry {value} at row {row}, column {col}")]
    NonFinite { row: usize, col: usize, value: f32 },
    /// A NaN or infinite singular value (index in the given order).
    #[error("singular value {index} is not finite ({value})")]
    NonFiniteSingularValue { index: usize, value: f32 },
    /// Two matrices (or a matrix and a buffer) that must agree in shape do not.
    #[error("shape mismatch: expected {expected_rows}×{expected_cols}, got {rows}×{cols}")]
    ShapeMismatch { expected_rows: usize, expected_cols: usize, rows: usize, cols: usize },
    /// A kept-rank fraction outside (0, 1].
    #[error("kept-rank fraction ρ = {0} is outside (0, 1]")]
    RhoOutOfRange(f32),
    /// A rank outside 1..=min(m, n).
    #[error("rank {rank} is outside 1..={max}")]
    RankOutOfRange { rank: usize, max: usize },
    /// A cluster count of zero or larger than the number of rows.
    #[error("cluster count {clusters} is invalid for a matrix with {rows} rows (need 1..={rows})")]
    ClusterCount { clusters: usize, rows: usize },
    /// The iterative SVD did not converge.
    #[error("SVD did not converge")]
    NoConvergence,
}

/// Shorthand for results of this crate.
pub type Result<T, E = LinalgError> = std::result::Result<T, E>;

/// Checks that `w` is non-empty and finite, so that no later call panics on it.
pub fn check_matrix(w: faer::MatRef<'_, f32>) -> Result<()> {
    let (rows, cols) = w.shape();
    if rows == 0 || cols == 0 {
        return Err(LinalgError::Empty { rows, cols });
    }
    for col in 0..cols {
        for row in 0..rows {
            let value = w[(row, col)];
            if !value.is_finite() {
                return Err(LinalgError::NonFinite { row, col, value });
            }
        }
    }
    Ok(())
}

/// Checks that `got` has the shape `expected`.
pub fn check_shape(expected: (usize, usize), got: (usize, usize)) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(LinalgError::ShapeMismatch {
            expected_rows: expected.0,
            expected_cols: expected.1,
            rows: got.0,
            cols: got.1,
        })
    }
}
