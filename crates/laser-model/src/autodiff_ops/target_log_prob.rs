//! `log p(target)` per row of the LM head's logits as one autodiff op: the gradient pass's loss.
//! burn's `log_softmax` then `gather` ran a max, a subtraction, a scalar `expf` per vocabulary
//! entry, a sum and a log forward, and as many steps backward, on the main thread: with Gemma 3's
//! 262,144-wide vocabulary, scalar `expf` alone was 8% of a profile of `laser grad`.
//! Here each row is one parallel pass with the vectorised `exp` each way.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Tensor};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use rayon::prelude::*;

use super::{FlexAutodiff, dims2, flex_from_vec, row_major};
use crate::host_kernels::RowLogSumExp;

/// `log_softmax(logits)[i, tokens[i]]` for each row i of an f32 autodiff flex `logits: [N, V]`;
/// `None` when `logits` is not one or a token is outside the vocabulary (the caller then uses
/// burn's ops).
///
/// # Shapes
/// - `logits`: `[N, V]`, `tokens`: `N`
/// - output: `[N]`
pub(crate) fn target_log_probs(logits: &Tensor<2>, tokens: &[u32]) -> Option<Tensor<1>> {
    let [n, v] = logits.dims();
    if tokens.len() != n || v == 0 || tokens.iter().any(|&t| t as usize >= v) {
        return None;
    }
    let x = logits.clone().try_into_primitive::<FlexAutodiff>().ok()?;
    if x.primitive().dtype() != DType::F32 {
        return None;
    }
    let data = row_major(x.primitive());
    let stats: Vec<RowLogSumExp> = data
        .par_chunks(v)
        .map_init(Vec::new, |scratch, row| RowLogSumExp::of(row, scratch))
        .collect();
    let out: Vec<f32> = data
        .chunks(v)
        .zip(tokens.iter().zip(&stats))
        .map(|(row, (&t, s))| s.log_prob(row, t))
        .collect();
    let out = flex_from_vec(out, &[n]);
    drop(data);
    let y = match TargetLogProb.prepare::<NoCheckpointing>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((x.primitive().clone(), tokens.to_vec(), stats), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Some(Tensor::from_primitive::<FlexAutodiff>(y))
}

#[derive(Debug)]
struct TargetLogProb;

impl Backward<Flex, 1> for TargetLogProb {
    /// The logits, the target tokens and each row's log-sum-exp.
    type State = (FlexTensor, Vec<u32>, Vec<RowLogSumExp>);

    /// `∂/∂x[i, j] = dy[i]·(1[j = tokens[i]] − softmax(x[i])[j])`.
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let Some(parent) = parent else { return };
        let (x, tokens, stats) = ops.state;
        let [n, v] = dims2(&x);
        let dy = row_major(&dy);
        // The gradient overwrites the logits' own buffer, which the graph no longer needs,
        // instead of a second `[N, V]` buffer (tens of MB with Gemma's vocabulary, past glibc's
        // `mmap` threshold, so fresh pages each micro-batch). A shared or strided buffer is
        // copied first.
        let whole = x.is_contiguous()
            && x.layout().start_offset() == 0
            && x.bytes().len() == n * v * size_of::<f32>();
        let mut dx = if whole { x } else { x.to_contiguous() };
        dx.storage_mut::<f32>().par_chunks_mut(v).enumerate().for_each(|(i, row)| {
            stats[i].softmax_in_place(row);
            let scale = -dy[i];
            row.iter_mut().for_each(|o| *o *= scale);
            row[tokens[i] as usize] += dy[i];
        });
        grads.register::<Flex>(parent.id, dx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Device, Int, TensorData};

    /// Values and gradients against burn's `log_softmax` + `gather` on the same autodiff graph
    /// (a weighted sum of the outputs, so that every row's `dy` differs), and the values against
    /// f64; a row with a huge spread and two rows sharing one target; the input left as it was.
    #[test]
    fn matches_burns_log_softmax_and_its_gradient() {
        let (n, v) = (4usize, 777usize);
        let mut data: Vec<f32> =
            (0..n * v).map(|i| ((i * 7919 % 1013) as f32 - 500.0) / 40.0).collect();
        data[v + 3] = 80.0;
        let tokens = [5u32, 3, 776, 5];
        let weights = [1.0f32, -2.0, 0.5, 3.0];
        let device = Device::flex().autodiff();
        let leaf = || {
            Tensor::<2>::from_data(TensorData::new(data.clone(), [n, v]), &device).require_grad()
        };
        let w = Tensor::<1>::from_data(TensorData::new(weights.to_vec(), [n]), &device);

        let ours_x = leaf();
        let ours = target_log_probs(&ours_x, &tokens).unwrap();
        let ours_vals = ours.clone().into_data().try_to_vec::<f32>().unwrap();
        let ours_grad = (ours * w.clone()).sum().backward();
        let ours_grad = ours_x.grad(&ours_grad).unwrap().into_data().try_to_vec::<f32>().unwrap();
        // The backward step writes into the logits' buffer only when nothing else holds it.
        assert_eq!(ours_x.clone().into_data().try_to_vec::<f32>().unwrap(), data, "input kept");

        let burn_x = leaf();
        let idx: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
        let idx = Tensor::<2, Int>::from_data(TensorData::new(idx, [n, 1]), &device);
        let burn = log_softmax(burn_x.clone(), 1).gather(1, idx).reshape([n]);
        let burn_grad = (burn * w).sum().backward();
        let burn_grad = burn_x.grad(&burn_grad).unwrap().into_data().try_to_vec::<f32>().unwrap();

        for (r, row) in data.chunks(v).enumerate() {
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
            let lse = max + row.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
            let want = f64::from(row[tokens[r] as usize]) - lse;
            assert!((f64::from(ours_vals[r]) - want).abs() < 1e-5, "row {r}");
            for j in 0..v {
                let p = (f64::from(row[j]) - lse).exp();
                let want =
                    f64::from(weights[r]) * (f64::from(u8::from(j == tokens[r] as usize)) - p);
                let (got, theirs) = (ours_grad[r * v + j], burn_grad[r * v + j]);
                assert!((f64::from(got) - want).abs() < 1e-6, "[{r}, {j}] {got} vs f64 {want}");
                assert!((got - theirs).abs() < 1e-5, "[{r}, {j}] {got} vs burn {theirs}");
            }
        }
        assert!(target_log_probs(&leaf(), &[0, 1, 2, 777]).is_none());
    }
}
