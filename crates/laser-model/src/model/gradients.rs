//! The gradient pass: mean NLL over token targets and `∂L/∂W` of chosen matrices, micro-batched,
//! with weight gradients taken as faer products (`taps.rs`, `autodiff_ops/linear.rs`).
//!
//! The tokens every sequence starts with (a task prefix, a few-shot preamble) run once for the
//! whole pass, not once per micro-batch: their keys and values are computed first (no graph),
//! every micro-batch reads them as leaves, and the gradients reaching those leaves are summed.
//! Since the prefix's keys and values are all the rows see of it, `∂L/∂W` through the prefix is
//! then one backward pass of `Σ_l ⟨K_l, Ḡ_K,l⟩ + ⟨V_l, Ḡ_V,l⟩` over a rerun of the prefix, the
//! summed cotangents `Ḡ` held constant. A 763-token prefix before ~40-token items (BIG-bench's
//! analogical_similarity) costs about two prefix runs instead of one per item.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use burn::tensor::Tensor;

use super::{Model, Pass, PrefixKeysValues, RowShape, TokenTarget, host_vec};
use crate::arch::KvCache;
use crate::error::{ModelError, Result};
use crate::layers::Params;
use crate::taps::WeightTaps;

/// The result of a gradient pass.
#[derive(Debug, Clone)]
pub struct GradientPass {
    /// Mean NLL over all targets.
    pub loss: f64,
    /// Number of scored tokens.
    pub tokens: usize,
    /// `∂loss/∂W` per requested matrix, row-major in HF orientation.
    pub grads: BTreeMap<String, Vec<f32>>,
    /// Micro-batches the sequences were split into (the micro-batch size and the activation
    /// budget set how many).
    pub micro_batches: usize,
}

impl Model {
    /// One backward pass: mean NLL over `targets` and `∂L/∂W` for each matrix in `names` (any 2-D
    /// parameter), in HF orientation. Sequences are processed `micro_batch` at a time (fewer where
    /// the activation budget needs it) with gradients accumulated, so peak memory is bounded by
    /// the micro-batch, not the sample count.
    pub fn loss_and_gradients(
        &self,
        seqs: &[Vec<u32>],
        targets: &[TokenTarget],
        names: &[String],
        micro_batch: usize,
    ) -> Result<GradientPass> {
        self.check_sequences(seqs)?;
        if targets.is_empty() {
            return Err(ModelError::Input("no target tokens to score".into()));
        }
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        for n in &wanted {
            match self.shapes.get(*n) {
                Some(shape) if shape.len() == 2 => {}
                _ => {
                    return Err(ModelError::UnknownMatrix {
                        name: (*n).to_owned(),
                        family: self.family().name(),
                    });
                }
            }
        }
        let ad = self.device.clone().autodiff();
        // Block matrices are only ever used as linear maps: their gradients come from the taps.
        // Anything else asked for (an embedding, a tied head) is tracked by autodiff itself.
        let tapped: HashSet<String> = wanted
            .iter()
            .filter(|n| self.matrix_index.contains_key(**n))
            .map(|n| (*n).to_owned())
            .collect();
        let taps = Arc::new(WeightTaps::new(
            tapped
                .iter()
                .map(|n| {
                    let [r, c] = self.params.get_stored(n).dims();
                    (n.clone(), [r, c])
                })
                .collect(),
        ));
        let mut tracked = HashMap::new();
        let params = Params {
            // The host views inference reads: the gradient pass's linear op reads them too. Not
            // for a weight autodiff tracks itself (its gradient must flow through burn's matmul).
            host: self
                .params
                .host
                .iter()
                .filter(|(k, _)| tapped.contains(*k) || !wanted.contains(k.as_str()))
                .map(|(k, m)| (k.clone(), m.clone()))
                .collect(),
            taps: Some(taps.clone()),
            map: self
                .params
                .map
                .iter()
                .map(|(k, t)| {
                    let mut a = t.clone().autodiff();
                    if wanted.contains(k.as_str()) && !tapped.contains(k) {
                        a = a.require_grad();
                        tracked.insert(k.clone(), a.clone());
                    }
                    (k.clone(), a)
                })
                .collect(),
        };
        // Checked against whole sequences here: positions move when a shared prefix is split off.
        if let Some(t) =
            targets.iter().find(|t| seqs.get(t.seq).is_none_or(|s| t.position >= s.len()))
        {
            return Err(ModelError::Input(format!(
                "target ({}, {}) is outside the {} sequences",
                t.seq,
                t.position,
                seqs.len()
            )));
        }
        let total = targets.len() as f64;
        // The tokens every sequence starts with run once for the whole pass (module docs).
        let p = self.common_prefix_len(seqs, targets);
        let rest: Vec<Vec<u32>> = seqs.iter().map(|s| s[p..].to_vec()).collect();
        let targets: Vec<TokenTarget> =
            targets.iter().map(|t| TokenTarget { position: t.position - p, ..*t }).collect();
        // Its keys and values by the inference path (no graph kept); the rows read them as
        // leaves, and their gradients, summed over the micro-batches, go back through the
        // prefix once at the end.
        let prefix_values: Option<KvCache> = self
            .shared_prefix(&seqs[0][..p], &self.device)
            .map(|prefix| self.prefix_keys_values(&self.params, &prefix));
        let mut prefix_cotangents: KvCache = vec![None; prefix_values.as_ref().map_or(0, Vec::len)];
        let chunks = self.micro_batches(seqs, &rest, &targets, p, micro_batch)?;
        let micro_batches = chunks.len();
        let mut acc: HashMap<String, Tensor<2>> = HashMap::new();
        let mut add_tracked = |grads: &burn::tensor::Gradients| {
            for (name, t) in &tracked {
                if let Some(g) = t.grad(grads) {
                    let g = g.without_autodiff();
                    let sum = match acc.remove(name) {
                        Some(prev) => prev + g,
                        None => g,
                    };
                    acc.insert(name.clone(), sum);
                }
            }
        };
        let mut loss = 0.0f64;
        for (start, end) in chunks {
            let chunk_targets: Vec<TokenTarget> = targets
                .iter()
                .filter(|t| t.seq >= start && t.seq < end)
                .map(|t| TokenTarget { seq: t.seq - start, ..*t })
                .collect();
            if chunk_targets.is_empty() {
                continue;
            }
            let chunk = &rest[start..end];
            tracing::debug!(
                rows = end - start,
                shared_prefix = p,
                longest_row = chunk.iter().map(Vec::len).max().unwrap_or(0),
                "gradient micro-batch"
            );
            let leaves: Option<KvCache> = prefix_values.as_ref().map(|kv| {
                kv.iter()
                    .map(|kv| {
                        kv.as_ref().map(|(k, v)| {
                            (
                                k.clone().autodiff().require_grad(),
                                v.clone().autodiff().require_grad(),
                            )
                        })
                    })
                    .collect()
            });
            let prep = self.prepare_after_on(&seqs[0][..p], chunk, &ad);
            let shared = leaves.clone().map(|cache| PrefixKeysValues {
                cache,
                layer: 0,
                states: Vec::new(),
            });
            let lp =
                self.target_log_prob_tensor(&params, &prep, None, shared.as_ref(), &chunk_targets)?;
            let chunk_loss = lp.sum().neg().div_scalar(total);
            loss += f64::from(host_vec(chunk_loss.clone())?[0]);
            let grads = chunk_loss.backward();
            taps.accumulate(&grads)?;
            add_tracked(&grads);
            for (sum, leaf) in prefix_cotangents.iter_mut().zip(leaves.iter().flatten()) {
                let Some((k, v)) = leaf else { continue };
                let (Some(gk), Some(gv)) = (k.grad(&grads), v.grad(&grads)) else { continue };
                let (gk, gv) = (gk.without_autodiff(), gv.without_autodiff());
                *sum = Some(match sum.take() {
                    Some((sk, sv)) => (sk + gk, sv + gv),
                    None => (gk, gv),
                });
            }
        }
        // The prefix's share: ∂L/∂W through its keys and values is the backward pass of
        // Σ_l ⟨K_l, ∂L/∂K_l⟩ + ⟨V_l, ∂L/∂V_l⟩ with the summed cotangents held constant.
        if let Some(prefix) = self.shared_prefix(&seqs[0][..p], &ad) {
            let inner = self
                .prefix_keys_values(&params, &prefix)
                .into_iter()
                .zip(&prefix_cotangents)
                .filter_map(|(kv, g)| {
                    let ((k, v), (gk, gv)) = (kv?, g.as_ref()?);
                    Some((k * gk.clone().autodiff()).sum() + (v * gv.clone().autodiff()).sum())
                })
                .reduce(|a, b| a + b);
            if let Some(inner) = inner {
                tracing::debug!(tokens = p, "gradient pass: the shared prefix's backward");
                let grads = inner.backward();
                taps.accumulate(&grads)?;
                add_tracked(&grads);
            }
        }
        let mut acc_host = taps.take_sums();
        let mut grads = BTreeMap::new();
        for name in names {
            let g = match (acc.remove(name), acc_host.remove(name)) {
                (Some(g), _) => host_vec(g)?,
                (None, Some(g)) => g,
                (None, None) => {
                    // No path from this matrix to the loss (e.g. a layer past every target): zero.
                    let [r, c] = self.params.get(name).dims();
                    vec![0.0; r * c]
                }
            };
            grads.insert(name.clone(), g);
        }
        Ok(GradientPass { loss, tokens: targets.len(), grads, micro_batches })
    }
}

impl Model {
    /// Consecutive runs of sequences, each run's gradient pass within the activation budget
    /// (memory.rs); a sequence that does not fit alone is refused under a hard budget (whole:
    /// the same test as `laser-search`'s fit check).
    ///
    /// The rows are `rest`, the sequences after their common prefix of `prefix` tokens, which
    /// runs once for the whole pass: a run is sized on the rows' own tokens, attending to the
    /// prefix. `micro_batch` caps the tokens a run computes at those of `micro_batch` whole
    /// sequences: without a shared prefix, `micro_batch` rows; behind a long one (a few-shot
    /// task prefix), many more short rows.
    fn micro_batches(
        &self,
        seqs: &[Vec<u32>],
        rest: &[Vec<u32>],
        targets: &[TokenTarget],
        prefix: usize,
        micro_batch: usize,
    ) -> Result<Vec<(usize, usize)>> {
        let mut scored = vec![0usize; seqs.len()];
        for t in targets {
            scored[t.seq] += 1;
        }
        let whole = |i: usize| RowShape { tokens: seqs[i].len(), prefix: 0, scored: scored[i] };
        let fits = |range: std::ops::Range<usize>| {
            let suffix = rest[range.clone()].iter().map(Vec::len).max().unwrap_or(0);
            let rows = range.len();
            let shape = RowShape {
                tokens: suffix,
                prefix,
                scored: scored[range].iter().copied().max().unwrap_or(0),
            };
            rows * suffix <= micro_batch.max(1) * (suffix + prefix)
                && self.fits_budget(Pass::Gradient, rows, shape)
        };
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < seqs.len() {
            self.check_activation_budget(
                Pass::Gradient,
                whole(start),
                &format!("sequence {start}"),
            )?;
            let mut end = start + 1;
            while end < seqs.len() && fits(start..end + 1) {
                end += 1;
            }
            chunks.push((start, end));
            start = end;
        }
        Ok(chunks)
    }
}
