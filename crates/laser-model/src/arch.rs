//! The contract every architecture file implements, and the per-batch inputs they share.
//!
//! A forward pass is `embed → block(0) → … → block(L−1) → final_norm → head`. Exposing the steps
//! separately lets the search cache the hidden states entering layer ℓ and rerun only the layers
//! after an edit.

use burn::tensor::{Device, Int, Tensor};

use crate::config::{Family, ModelConfig};
use crate::layers::{Params, Rotary, RotaryLayout, attention_mask, int_tensor};
use crate::matrix::MatrixInfo;

/// A right-padded batch of token sequences on a device.
#[derive(Debug, Clone)]
pub struct BatchInput {
    /// Flat `[B·T]` token ids (padding uses the model's pad id, or 0).
    pub(crate) ids: Tensor<1, Int>,
    /// Flat `[B·T]` learned-position ids (gpt2, roberta).
    pub(crate) positions: Tensor<1, Int>,
    /// Real length of each sequence.
    pub(crate) lengths: Vec<usize>,
    /// B.
    pub(crate) batch: usize,
    /// T, the longest length.
    pub(crate) seq: usize,
}

/// Per-batch tensors the blocks share: the attention mask and rotary tables.
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) mask: Tensor<4>,
    pub(crate) rotary: Option<Rotary>,
}

pub(crate) trait Architecture: Send + Sync + std::fmt::Debug {
    fn config(&self) -> &ModelConfig;
    /// Every tensor the forward pass reads, with its HF shape (validated at load).
    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)>;
    /// The editable matrices (DESIGN.md's table), in layer order.
    fn editable(&self) -> Vec<MatrixInfo>;
    fn rotary_layout(&self) -> Option<RotaryLayout> {
        None
    }
    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3>;
    fn block(&self, p: &Params, layer: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3>;
    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3>;
    /// `[N, D]` final hidden states → `[N, V]` logits.
    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2>;
}

impl BatchInput {
    /// Pads `seqs` on the right to a common length. Sequences must be non-empty (checked by the
    /// caller, which names the item).
    pub(crate) fn new(seqs: &[Vec<u32>], cfg: &ModelConfig, device: &Device) -> Self {
        let seq = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let pad = i64::from(cfg.pad_token_id.unwrap_or(0));
        let mut ids = Vec::with_capacity(seqs.len() * seq);
        let mut positions = Vec::with_capacity(seqs.len() * seq);
        for s in seqs {
            for i in 0..seq {
                let real = i < s.len();
                ids.push(if real { i64::from(s[i]) } else { pad });
                positions.push(match cfg.family {
                    // RoBERTa numbers real tokens from padding_idx + 1; padding keeps padding_idx.
                    Family::Roberta if real => pad + 1 + i as i64,
                    Family::Roberta => pad,
                    _ => i as i64,
                });
            }
        }
        Self {
            ids: int_tensor(ids, device),
            positions: int_tensor(positions, device),
            lengths: seqs.iter().map(Vec::len).collect(),
            batch: seqs.len(),
            seq,
        }
    }
}

impl Context {
    pub(crate) fn new(arch: &dyn Architecture, batch: &BatchInput, device: &Device) -> Self {
        let cfg = arch.config();
        let mask = attention_mask(&batch.lengths, batch.seq, cfg.family.is_causal(), device);
        let rotary = arch
            .rotary_layout()
            .map(|layout| Rotary::new(cfg.rotary_dim, cfg.rope_theta, batch.seq, layout, device));
        Self { mask, rotary }
    }
}
