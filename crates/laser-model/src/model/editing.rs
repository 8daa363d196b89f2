//! Editing a loaded model: replacing a matrix, restoring it bit for bit, and the per-layer change
//! clock behind [`WeightStamp`], which lets caches of hidden states check that the weights they
//! were computed under are still the model's.

use burn::tensor::{Tensor, TensorData};

use super::Model;
use crate::error::{ModelError, Result};
use crate::layers::HostMatrix;
use crate::weights::check_finite;

/// Identifies the weights of layers `0..L` of one model at one moment: two stamps taken with
/// [`Model::weights_below`] are equal only if those layers hold the same weights — none of their
/// matrices was replaced in between, or every one replaced was restored since (a restored layer
/// gets back the stamp it had before its first replacement, so hidden states computed before a
/// candidate edit stay usable after it). Caches of hidden states check it before trusting what
/// they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightStamp {
    instance: u64,
    changes: Vec<u64>,
}

pub(super) static NEXT_INSTANCE: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(1);

impl Model {
    /// The stamp of layers `0..layer`'s weights as they are now.
    pub fn weights_below(&self, layer: usize) -> WeightStamp {
        let end = layer.min(self.layer_changes.len());
        WeightStamp { instance: self.instance, changes: self.layer_changes[..end].to_vec() }
    }

    /// Records that matrix `name` changed (for [`Model::weights_below`]).
    fn touch(&mut self, name: &str) {
        if let Some(layer) = self.layer_of(name) {
            self.touch_layer(layer);
        }
    }

    pub(super) fn touch_layer(&mut self, layer: usize) {
        if let Some(slot) = self.layer_changes.get_mut(layer) {
            self.change_clock += 1;
            *slot = self.change_clock;
        }
    }

    fn layer_of(&self, name: &str) -> Option<usize> {
        self.matrix_index.get(name).map(|&i| self.matrices()[i].layer)
    }

    /// Whether any matrix of `layer` is replaced now (its original kept).
    fn layer_edited(&self, layer: usize) -> bool {
        self.originals.keys().any(|n| self.layer_of(n) == Some(layer))
    }

    /// Replaces an editable matrix (row-major, HF orientation). The original is kept for
    /// [`Model::restore_matrix`]; replacing twice keeps the first original.
    pub fn replace_matrix(&mut self, name: &str, data: Vec<f32>) -> Result<()> {
        let shape = self.matrix_info(name)?.shape;
        if data.len() != shape[0] * shape[1] {
            return Err(ModelError::TensorShape {
                name: name.to_owned(),
                expected: shape.to_vec(),
                got: vec![data.len()],
            });
        }
        check_finite(name, &data)?;
        let new = self.stored(Tensor::from_data(TensorData::new(data, shape), &self.device));
        let new_host = match self.params.host.contains_key(name) {
            true => Some(HostMatrix::of(&new)?),
            false => None,
        };
        let old =
            self.params.map.insert(name.to_owned(), new).expect("editable matrices are parameters");
        let old_host = new_host.and_then(|h| self.params.host.insert(name.to_owned(), h));
        if let Some(layer) = self.layer_of(name).filter(|&l| !self.layer_edited(l)) {
            // The stamp its restoration gives back (`WeightStamp`).
            self.layer_unedited[layer] = self.layer_changes[layer];
        }
        self.originals.entry(name.to_owned()).or_insert((old, old_host));
        self.touch(name);
        Ok(())
    }

    /// Restores one matrix to its loaded value, bit for bit (no reload).
    pub fn restore_matrix(&mut self, name: &str) -> Result<()> {
        self.matrix_info(name)?;
        if let Some(orig) = self.originals.remove(name) {
            self.put_back(name.to_owned(), orig);
        }
        Ok(())
    }

    /// Restores every edited matrix.
    pub fn restore_all(&mut self) {
        let originals: Vec<_> = self.originals.drain().collect();
        for (name, orig) in originals {
            self.put_back(name, orig);
        }
    }

    /// Puts an original back (`name` already out of `originals`). Once no matrix of its layer is
    /// replaced, the layer holds its weights from before the first replacement, bit for bit, and
    /// gets that stamp back.
    fn put_back(&mut self, name: String, (tensor, host): (Tensor<2>, Option<HostMatrix>)) {
        self.touch(&name);
        if let Some(layer) = self.layer_of(&name).filter(|&l| !self.layer_edited(l)) {
            self.layer_changes[layer] = self.layer_unedited[layer];
        }
        if let Some(h) = host {
            self.params.host.insert(name.clone(), h);
        }
        self.params.map.insert(name, tensor);
    }

    /// Names of the matrices currently edited, sorted.
    pub fn edited(&self) -> Vec<String> {
        let mut v: Vec<String> = self.originals.keys().cloned().collect();
        v.sort();
        v
    }
}
