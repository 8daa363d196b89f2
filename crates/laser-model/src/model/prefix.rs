//! A task prefix every row of a batch starts with (a BIG-bench task's preamble, a fixed
//! template opening): run once per forward pass as a batch of one, its keys and values read by
//! every row — and, kept with its hidden states, carried by the rows' states so that a rerun from
//! them can run it on.

use burn::tensor::Tensor;

use super::{HiddenStates, Model, PreparedBatch};
use crate::arch::{BatchInput, Context, KvCache};
use crate::layers::Params;

/// Tokens every row of a packed batch starts with: run once per forward pass as a batch of one,
/// the rows attend to its keys and values instead of recomputing it each.
#[derive(Debug, Clone)]
pub(super) struct SharedPrefix {
    pub(super) batch: BatchInput,
    pub(super) ctx: Context,
}

/// The keys and values a shared prefix produces in the layers from `layer` up, under the weights
/// they were computed with: batches that continue the same prefix read them instead of each
/// running the prefix ([`Model::prefix_keys_values_for`]).
#[derive(Debug, Clone)]
pub struct PrefixKeysValues {
    pub(super) cache: KvCache,
    pub(super) layer: usize,
    /// The prefix's hidden states entering each layer from `layer` up (index `l − layer`), when
    /// kept ([`Model::prefix_keys_values_keeping`]): rows run with these keys and values then
    /// carry their prefix's states, so that they can be run on later without it. Empty when not
    /// kept.
    pub(super) states: Vec<Tensor<3>>,
}

impl PrefixKeysValues {
    /// The prefix's hidden states entering `layer`, when kept.
    pub(super) fn states_entering(&self, layer: usize) -> Option<Tensor<3>> {
        layer.checked_sub(self.layer).and_then(|i| self.states.get(i)).cloned()
    }
}

impl Model {
    /// Runs a shared prefix from its hidden states `h` entering layer `start` to the input of
    /// layer `end`: those states, and the keys and values of the layers in between (`None`
    /// elsewhere).
    pub(super) fn run_prefix(
        &self,
        params: &Params,
        prefix: &SharedPrefix,
        h: Tensor<3>,
        start: usize,
        end: usize,
    ) -> (Tensor<3>, KvCache) {
        let (mut states, cache) = self.run_prefix_keeping(params, prefix, h, start, end, false);
        (states.pop().expect("the last states are always kept"), cache)
    }

    /// [`Model::run_prefix`] returning the states entering every layer `start..=end` when
    /// `keep` (only those entering `end` otherwise).
    fn run_prefix_keeping(
        &self,
        params: &Params,
        prefix: &SharedPrefix,
        mut h: Tensor<3>,
        start: usize,
        end: usize,
        keep: bool,
    ) -> (Vec<Tensor<3>>, KvCache) {
        let ctx = prefix.ctx.with_cache(vec![None; self.config().num_layers]);
        let mut states = Vec::with_capacity(if keep { end - start + 1 } else { 1 });
        for l in start..end {
            if keep {
                states.push(h.clone());
            }
            h = self.arch.block(params, l, h, &ctx);
        }
        states.push(h);
        (states, ctx.into_cache().unwrap_or_default())
    }

    /// The keys and values of every layer over a shared prefix (its last hidden states are not
    /// needed: rows read only its keys and values).
    pub(super) fn prefix_keys_values(&self, params: &Params, prefix: &SharedPrefix) -> KvCache {
        let h = self.arch.embed(params, &prefix.batch);
        self.run_prefix(params, prefix, h, 0, self.config().num_layers).1
    }

    /// The keys and values of `prep`'s shared prefix in every layer from `from`'s (all, without
    /// it), under the weights as they are now: one run of the prefix that every batch with the
    /// same prefix and the same starting layer can read ([`Model::score_targets_sharing`])
    /// instead of running it again. `None` when `prep` has no shared prefix.
    pub fn prefix_keys_values_for(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
    ) -> Option<PrefixKeysValues> {
        self.prefix_run(prep, from, false)
    }

    /// [`Model::prefix_keys_values_for`] also keeping the prefix's hidden states entering every
    /// layer, so that the states [`Model::hidden_before_sharing`] computes with it carry them
    /// (memory: the prefix's tokens × hidden size per layer, for as long as it is held).
    pub fn prefix_keys_values_keeping(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
    ) -> Option<PrefixKeysValues> {
        self.prefix_run(prep, from, true)
    }

    fn prefix_run(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        keep: bool,
    ) -> Option<PrefixKeysValues> {
        let prefix = prep.prefix.as_ref()?;
        let (h, layer) = match from {
            Some(states) => (states.prefix.clone()?, states.layer),
            None => (self.arch.embed(&self.params, &prefix.batch), 0),
        };
        let layers = self.config().num_layers;
        let (states, cache) = self.run_prefix_keeping(&self.params, prefix, h, layer, layers, keep);
        Some(PrefixKeysValues { cache, layer, states: if keep { states } else { Vec::new() } })
    }
}
