//! Matrix products in faer, cut into blocks that bound what faer's kernel keeps per thread.
//!
//! faer's x86 kernel packs its operands into buffers each thread keeps for its whole life, in
//! panels sized from the L3 cache the CPU reports. On a VM reporting 480 MiB of L3, the LM head's
//! 262,144-wide product (Gemma 3) packed panels of ~245,000 × 512 floats, ~0.5 GB, and the process
//! held 0.63 GB more from the first head product on — outside every memory estimate, so Gemma 3
//! 270M's gradient pass peaked over the default target (`docs/RESULTS.md`). In blocks of at most
//! [`PRODUCT_BLOCK`] rows and columns of the result no panel exceeds 16,384 × 512 floats (32 MiB).
//! Every result element is still one dot product over the whole depth, in faer's own depth blocks,
//! and a block is far larger than the kernel's tiles.

use faer::{MatMut, MatRef, Par};

/// The most rows, and the most columns, of the result one faer product computes.
const PRODUCT_BLOCK: usize = 16_384;

/// `dst = lhs · rhs`, in blocks of at most [`PRODUCT_BLOCK`] rows and columns of `dst`.
pub(crate) fn product_in_blocks(dst: MatMut<'_, f32>, lhs: MatRef<'_, f32>, rhs: MatRef<'_, f32>) {
    product_in_blocks_of(dst, lhs, rhs, PRODUCT_BLOCK);
}

fn product_in_blocks_of(
    mut dst: MatMut<'_, f32>,
    lhs: MatRef<'_, f32>,
    rhs: MatRef<'_, f32>,
    block: usize,
) {
    let (m, n, k) = (dst.nrows(), dst.ncols(), lhs.ncols());
    for r in (0..m).step_by(block) {
        let rows = block.min(m - r);
        for c in (0..n).step_by(block) {
            let cols = block.min(n - c);
            // Threads only pay off past a few MFLOP (decoding one token is far below).
            let par = if rows * k * cols >= 1 << 22 { Par::rayon(0) } else { Par::Seq };
            faer::linalg::matmul::matmul(
                dst.as_mut().submatrix_mut(r, c, rows, cols),
                faer::Accum::Replace,
                lhs.subrows(r, rows),
                rhs.subcols(c, cols),
                1.0f32,
                par,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random values in [-1, 1) from a seed (no shared state between tests).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Every block size, ragged edges included (blocks that do not divide the rows or the
    /// columns), and a transposed right-hand side (how the linear layers read `W`): each element
    /// equals its dot product in f64.
    #[test]
    fn blocks_cover_every_element_once() {
        let (m, k, n) = (13, 7, 11);
        let a = values(m * k, 1);
        let w = values(n * k, 2);
        let lhs = MatRef::from_row_major_slice(&a, m, k);
        // `rhs = Wᵀ` for a row-major `W: [n, k]`, as `lhs Wᵀ` in a linear layer.
        let rhs = MatRef::from_row_major_slice(&w, n, k).transpose();
        for block in [1, 2, 4, 5, 12, 13, 64] {
            let mut out = vec![f32::NAN; m * n];
            product_in_blocks_of(MatMut::from_row_major_slice_mut(&mut out, m, n), lhs, rhs, block);
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 =
                        (0..k).map(|t| f64::from(a[i * k + t]) * f64::from(w[j * k + t])).sum();
                    let got = f64::from(out[i * n + j]);
                    assert!(
                        (got - exact).abs() <= 1e-5,
                        "block {block}: ({i}, {j}) {got} vs {exact}"
                    );
                }
            }
        }
    }
}
