//! GELU's tanh approximation times the up projection, `gelu_tanh(g)·u`, in SiLU's fused kernel
//! (one vectorised `exp` pass), and both its gradients in one pass: the gated MLP of Gemma 2 and
//! 3 (`gelu_pytorch_tanh`).
//!
//! Built from burn ops it was several passes over the `[B, T, 4·d]` activations, one of them
//! `x³` as an elementwise libm `powf` call: a profile of `laser eval` on Gemma 3 270M put 61% of
//! the forward pass in that `powf` and its loop, against 21% in the matmuls. The gradient pass ran
//! the tensor form (`layers::gelu_tanh`: scalar `tanhf`, `expm1f` and burn's elementwise steps,
//! forward and backward) until it got the fused op of `autodiff_ops/gated.rs`, which calls
//! [`gelu_tanh_mul_values`] and [`gelu_tanh_mul_backward`].

use burn::tensor::Tensor;

use super::{gated_mul, sigmoid_gated_backward, sigmoid_gated_values};

/// √(2/π), the tanh approximation's scale.
pub(crate) const SQRT_2_OVER_PI: f32 =
    std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;
/// The cubic term's coefficient.
pub(crate) const CUBIC: f32 = 0.044_715;

/// `gelu_tanh(gate) · up` elementwise for plain flex tensors; `None` otherwise.
pub(crate) fn gelu_tanh_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    gated_mul(gate, up, gelu_tanh_mul_values)
}

/// `½·g·(1 + tanh z)·u` with `z = √(2/π)·(g + 0.044715·g³)`, for equal-length slices: since
/// `½·(1 + tanh z) = σ(2z)`, this is `g·σ(2z)·u`, whose one transcendental is the vectorised
/// `exp` (which saturates to 0 and +∞, giving the limits `g·u` and 0).
pub(crate) fn gelu_tanh_mul_values(g: &[f32], u: &[f32]) -> Vec<f32> {
    sigmoid_gated_values(g, u, twice_z)
}

/// The gradients of `y = gelu_tanh(g)·u = g·σ(2z)·u` given `dy`, each only when asked for:
/// `2z = 2·√(2/π)·(g + 0.044715·g³)`, whose derivative is `2·√(2/π)·(1 + 3·0.044715·g²)`.
pub(crate) fn gelu_tanh_mul_backward(
    g: &[f32],
    u: &[f32],
    dy: &[f32],
    want_g: bool,
    want_u: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    sigmoid_gated_backward(g, u, dy, (want_g, want_u), twice_z, |x| {
        2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * CUBIC * x * x)
    })
}

/// `2z = 2·√(2/π)·(x + 0.044715·x³)`, the argument of the sigmoid.
#[inline(always)]
fn twice_z(x: f32) -> f32 {
    2.0 * SQRT_2_OVER_PI * (x + CUBIC * x * x * x)
}

#[cfg(test)]
mod tests {
    use super::super::{PARALLEL_MIN, from_vec};
    use super::*;

    /// The textbook form, in f64: `½·g·(1 + tanh(√(2/π)·(g + 0.044715·g³)))·u`.
    fn gelu_tanh_mul_f64(g: f64, u: f64) -> f64 {
        let s = (2.0 / std::f64::consts::PI).sqrt();
        0.5 * g * (1.0 + (s * (g + 0.044715 * g.powi(3))).tanh()) * u
    }

    /// Against the tanh form in f64 across the parallel threshold (both code paths), from deep
    /// in the negative tail (where `e^(−2z)` overflows to +∞) to large positive inputs.
    #[test]
    fn gelu_tanh_mul_matches_the_tanh_form() {
        for n in [9usize, PARALLEL_MIN + 5] {
            let g: Vec<f32> = (0..n).map(|i| ((i * 37 % 201) as f32 - 100.0) / 6.0).collect();
            let u: Vec<f32> = (0..n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 20.0).collect();
            let y = gelu_tanh_mul_values(&g, &u);
            for i in 0..n {
                let want = gelu_tanh_mul_f64(f64::from(g[i]), f64::from(u[i]));
                let got = f64::from(y[i]);
                assert!((got - want).abs() <= 2e-6 * (1.0 + want.abs()), "y[{i}] {got} vs {want}");
            }
        }
        // The limits: far left 0 (not NaN), far right g·u, and 0 at 0.
        let y = gelu_tanh_mul_values(&[-60.0, 60.0, 0.0], &[2.0, 2.0, 3.0]);
        assert_eq!(y, [0.0, 120.0, 0.0]);
    }

    /// Both gradients against central differences of the f64 tanh form, across the parallel
    /// threshold, into both tails; and only the asked-for gradient is computed.
    #[test]
    fn gelu_tanh_mul_gradients_match_finite_differences() {
        for n in [11usize, PARALLEL_MIN + 3] {
            let g: Vec<f32> = (0..n).map(|i| ((i * 37 % 241) as f32 - 120.0) / 20.0).collect();
            let u: Vec<f32> = (0..n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 20.0).collect();
            let dy: Vec<f32> = (0..n).map(|i| ((i * 29 % 31) as f32 - 15.0) / 7.0).collect();
            let (dg, du) = gelu_tanh_mul_backward(&g, &u, &dy, true, true);
            let (dg, du) = (dg.unwrap(), du.unwrap());
            let h = 1e-5;
            for i in 0..n {
                let (gi, ui, d) = (f64::from(g[i]), f64::from(u[i]), f64::from(dy[i]));
                let want_dg =
                    d * (gelu_tanh_mul_f64(gi + h, ui) - gelu_tanh_mul_f64(gi - h, ui)) / (2.0 * h);
                let want_du = d * gelu_tanh_mul_f64(gi, 1.0);
                let (got_dg, got_du) = (f64::from(dg[i]), f64::from(du[i]));
                assert!(
                    (got_dg - want_dg).abs() <= 1e-5 * (1.0 + want_dg.abs()),
                    "dg[{i}] {got_dg} vs {want_dg}"
                );
                assert!(
                    (got_du - want_du).abs() <= 1e-5 * (1.0 + want_du.abs()),
                    "du[{i}] {got_du} vs {want_du}"
                );
            }
        }
        // Far tails: the gate's gradient tends to dy·u on the right and 0 on the left.
        let (dg, du) =
            gelu_tanh_mul_backward(&[-60.0, 60.0], &[2.0, 2.0], &[1.5, 1.5], true, false);
        assert_eq!(dg.unwrap(), [0.0, 3.0]);
        assert!(du.is_none());
    }

    /// The tensor form GPT-2's plain MLP and the other backends use, against the f64 tanh form
    /// and against burn's own `gelu_approximate` (the `powf` form it replaces); and the fused
    /// gated kernel against that tensor form times `up`.
    #[test]
    fn the_tensor_form_and_the_fused_kernel_agree_with_burn_and_f64() {
        let n = 4 * 301;
        let g: Vec<f32> = (0..n).map(|i| ((i * 37 % 301) as f32 - 150.0) / 15.0).collect();
        let u: Vec<f32> = (0..n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 20.0).collect();
        let gate = from_vec(g.clone(), [4, 1, 301]);
        let up = from_vec(u.clone(), [4, 1, 301]);
        let ours = crate::layers::gelu_tanh(gate.clone()).into_data().try_to_vec::<f32>().unwrap();
        let burn_form = burn::tensor::activation::gelu_approximate(gate.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let fused = gelu_tanh_mul(&gate, &up).unwrap().into_data().try_to_vec::<f32>().unwrap();
        for i in 0..n {
            let want = gelu_tanh_mul_f64(f64::from(g[i]), 1.0);
            let got = f64::from(ours[i]);
            assert!(
                (got - want).abs() <= 2e-6 * (1.0 + want.abs()),
                "gelu({}) {got} vs {want}",
                g[i]
            );
            assert!((ours[i] - burn_form[i]).abs() <= 1e-6 * (1.0 + ours[i].abs()));
            let unfused = ours[i] * u[i];
            assert!((fused[i] - unfused).abs() <= 2e-6 * (1.0 + unfused.abs()), "fused [{i}]");
        }
    }
}
