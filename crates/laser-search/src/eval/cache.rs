//! Hidden states kept between evaluations: the layer cache candidates at one layer start from,
//! and checkpoints — the states entering chosen layers, kept from one evaluation of the model as
//! it is (the base model's) so that a cache moved up to such a layer is ready at once instead of
//! running every batch from the embeddings again.

use std::sync::{Mutex, MutexGuard, PoisonError};

use laser_model::{HiddenStates, Model, PrefixKeysValues, PreparedBatch, WeightStamp};

/// The hidden states entering `layer` under weights stamped `below`, per batch as evaluations
/// read them.
#[derive(Debug)]
pub(super) struct LayerCache {
    pub(super) layer: usize,
    pub(super) below: WeightStamp,
    /// Per batch: nothing yet, the states entering a lower layer (kept from a cache this one
    /// moved up from, under the same weights), or those entering `layer`.
    pub(super) states: Vec<Mutex<Option<HiddenStates>>>,
}

impl LayerCache {
    /// An empty cache of `batches` batches entering `layer` under `model`'s weights as they are.
    pub(super) fn empty(model: &Model, layer: usize, batches: usize) -> Self {
        Self {
            layer,
            below: model.weights_below(layer),
            states: (0..batches).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Whether the states are still those `model` computes: no matrix below `layer` changed.
    pub(super) fn valid_for(&self, model: &Model) -> bool {
        model.weights_below(self.layer) == self.below
    }

    /// Batch `bi`'s slot (one evaluation at a time reads a cache; a panic elsewhere leaves
    /// valid states behind).
    fn slot(&self, bi: usize) -> MutexGuard<'_, Option<HiddenStates>> {
        self.states[bi].lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether batch `bi`'s states entering `layer` are held.
    pub(super) fn holds(&self, bi: usize) -> bool {
        self.slot(bi).as_ref().is_some_and(|h| h.layer() == self.layer)
    }

    /// Batch `bi`'s states entering `layer` (computed or moved up now if need be, and kept).
    /// The caller has checked [`LayerCache::valid_for`]: the layers run here are unedited.
    pub(super) fn states(
        &self,
        model: &Model,
        prep: &PreparedBatch,
        bi: usize,
    ) -> laser_model::Result<MutexGuard<'_, Option<HiddenStates>>> {
        let mut slot = self.slot(bi);
        let ready = slot.as_ref().is_some_and(|h| h.layer() == self.layer);
        if !ready {
            let h = match slot.take() {
                Some(lower) => model.advance_hidden(prep, &lower, self.layer)?,
                None => model.hidden_before(prep, self.layer)?,
            };
            *slot = Some(h);
        }
        Ok(slot)
    }

    /// This checkpoint as the layer cache: its states, and those of `lower` (a valid cache below
    /// its layer) for the batches it holds none of, to be moved up when read.
    pub(super) fn merged_with(self, lower: Option<LayerCache>) -> Self {
        if let Some(lower) = lower {
            for (mine, theirs) in self.states.iter().zip(lower.states) {
                let mut mine = mine.lock().unwrap_or_else(PoisonError::into_inner);
                if mine.is_none() {
                    *mine = theirs.into_inner().unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        self
    }
}

/// Takes the checkpoint at `layer` out of `checkpoints`, if one is valid for `model`, and drops
/// those at or below `layer` (a scan moves up; what is below is not read again).
pub(super) fn take_checkpoint(
    checkpoints: &mut Vec<LayerCache>,
    model: &Model,
    layer: usize,
) -> Option<LayerCache> {
    let at = checkpoints.iter().position(|c| c.layer == layer && c.valid_for(model));
    let taken = at.map(|i| checkpoints.swap_remove(i));
    checkpoints.retain(|c| c.layer > layer);
    taken
}

/// Batch `bi`'s states entering the highest of `fill` (valid checkpoints above `from`'s layer,
/// ascending), computed from `from` (the embeddings without it) one checkpoint at a time and
/// kept in each on the way; the rows read the prefix's keys and values from `shared`, which
/// must have kept the prefix's states too ([`Model::prefix_keys_values_keeping`]), so that the
/// kept states carry them. Bit for bit the states a run straight through computes.
pub(super) fn fill_checkpoints(
    fill: &[&LayerCache],
    model: &Model,
    prep: &PreparedBatch,
    bi: usize,
    from: Option<&HiddenStates>,
    shared: Option<&PrefixKeysValues>,
) -> laser_model::Result<Option<HiddenStates>> {
    let mut h = from.cloned();
    for c in fill {
        let mut slot = c.slot(bi);
        let next = match slot.as_ref().filter(|s| s.layer() == c.layer) {
            Some(kept) => kept.clone(),
            None => {
                let next = model.hidden_before_sharing(prep, h.as_ref(), c.layer, shared)?;
                *slot = Some(next.clone());
                next
            }
        };
        h = Some(next);
    }
    Ok(h)
}
