//! The contract every architecture file implements, and the per-batch inputs they share.
//!
//! A forward pass is `embed → block(0) → … → block(L−1) → final_norm → head`. Exposing the steps
//! separately lets the search cache the hidden states entering layer ℓ and rerun only the layers
//! after an edit.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor};

use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::gguf::arch_keys::ArchMetadata;
use crate::layers::{
    Params, Rotary, RotaryLayout, attention, attention_mask_data, int_tensor, mask_tensor,
    packed_attention_mask_data,
};
use crate::weight_path::WeightSchema;
use crate::weights::{HostTensor, WeightMap};

/// A right-padded batch of token sequences on a device.
#[derive(Debug, Clone)]
pub struct BatchInput {
    /// Flat `[B·T]` token ids (padding uses the model's pad id, or 0).
    pub(crate) ids: Tensor<1, Int>,
    /// Flat `[B·T]` learned-position ids (gpt2, roberta).
    pub(crate) positions: Tensor<1, Int>,
    /// The same ids on the host (the host rotary kernel reads them).
    pub(crate) position_ids: Arc<Vec<i64>>,
    /// Total length of each sequence, cached prefix included.
    pub(crate) lengths: Vec<usize>,
    /// Length of the cached prefix before every sequence (their first position).
    pub(crate) offset: usize,
    /// B.
    pub(crate) batch: usize,
    /// T, the longest length.
    pub(crate) seq: usize,
    /// Packed rows: per row, the segment of each token (0 = prompt, c + 1 = continuation c).
    pub(crate) segments: Option<Vec<Vec<u16>>>,
    /// One past the largest position used, counted after the cached prefix (sizes the rotary
    /// tables).
    pub(crate) max_position: usize,
}

/// Keys and values of every layer for the positions already processed, `[B, KV, T, hd]` each.
pub(crate) type KvCache = Vec<Option<(Tensor<4>, Tensor<4>)>>;

/// Per-batch tensors the blocks share: the attention mask, rotary tables, and optionally a KV
/// cache that attention reads from and appends to (incremental decoding, shared prompts).
#[derive(Debug, Clone)]
pub struct Context {
    pub(crate) mask: Tensor<4>,
    pub(crate) rotary: Option<Rotary>,
    /// Position of the first token of this batch (the cached prefix length).
    pub(crate) offset: usize,
    /// Per-token positions of packed rows (rotary tables are gathered by them), on the device
    /// and on the host.
    pub(crate) token_positions: Option<(Tensor<1, Int>, Arc<Vec<i64>>)>,
    pub(crate) cache: Option<RefCell<KvCache>>,
    /// Attention-score soft-capping (Gemma 2).
    pub(crate) softcap: Option<f64>,
    /// Sliding-window layers (Gemma 3): their mask, their rotary tables, and which layers.
    pub(crate) local: Option<LocalContext>,
}

/// What a sliding-window layer reads instead of the context's mask and rotary tables.
#[derive(Debug, Clone)]
pub(crate) struct LocalContext {
    mask: Tensor<4>,
    rotary: Rotary,
    sliding: Arc<Vec<bool>>,
}

/// One family in the registry (`families/mod.rs`): its name, the configs and GGUF files that are
/// its own, how it reads its config and how it builds itself. Each family file declares its entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FamilyEntry {
    pub(crate) family: Family,
    /// The `config.json` `model_type`s it reads.
    pub(crate) model_types: &'static [&'static str],
    /// How it reads a llama.cpp GGUF, if it does.
    pub(crate) gguf: Option<GgufForm>,
    /// Parses a config of one of `model_types` (the second argument).
    pub(crate) parse_config: fn(&ConfigReader<'_>, &str) -> Result<ModelConfig>,
    /// The architecture of a parsed config.
    pub(crate) build: fn(ModelConfig) -> Result<Box<dyn Architecture>>,
}

/// A family's `config.json` keys from a GGUF's metadata, and notes on what the file does not say.
pub(crate) type GgufConfig = (serde_json::Value, Vec<String>);

/// A family's GGUF form: which `general.architecture`s are its own, and how llama.cpp's converter
/// wrote what the family reads (`families/gguf.rs` does the rest, the same for every family).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GgufForm {
    /// llama.cpp's architecture names.
    pub(crate) architectures: &'static [&'static str],
    /// The family's own `config.json` keys (`model_type` and `architectures` among them) from the
    /// metadata, over those every family shares; and notes on what the file does not say.
    pub(crate) config: fn(&ArchMetadata<'_>) -> Result<GgufConfig>,
    /// The HF name (after `model.layers.N.`) of a block tensor (after `blk.N.`) whose llama.cpp
    /// name means another tensor in this family than in the llama layout.
    pub(crate) tensor_name: fn(&str) -> Option<&'static str>,
    /// Undoes what the converter changed in the tensor of llama.cpp name `name`.
    pub(crate) restore: fn(&str, HostTensor, &ModelConfig, &Path) -> Result<HostTensor>,
}

impl GgufForm {
    /// A [`GgufForm::tensor_name`] for families that keep llama.cpp's llama-layout names.
    pub(crate) fn llama_layout_names(_part: &str) -> Option<&'static str> {
        None
    }

    /// A [`GgufForm::restore`] for families whose tensors the converter stored as they are.
    pub(crate) fn stored_as_is(
        _name: &str,
        t: HostTensor,
        _cfg: &ModelConfig,
        _path: &Path,
    ) -> Result<HostTensor> {
        Ok(t)
    }
}

/// How a family scales attention scores and logits beyond the shared core — its own options,
/// which writers of other formats must state (GGUF export) and tests compare.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScoreScales {
    /// Scores are scaled by `query_scalar^-½` (Gemma's `query_pre_attn_scalar`); `None`:
    /// `head_dim^-½`.
    pub query_scalar: Option<f64>,
    /// Logits pass through `c · tanh(z / c)` (Gemma's `final_logit_softcapping`).
    pub final_logit_softcap: Option<f64>,
}

/// What every family file implements: its tensors (named once, through [`WeightSchema`]) and the
/// steps of its forward pass.
pub(crate) trait Architecture: Send + Sync + std::fmt::Debug {
    fn config(&self) -> &ModelConfig;
    /// Every tensor the forward pass reads, with its HF shape (validated at load), and the
    /// editable matrices among them.
    fn weights(&self) -> &WeightSchema;
    fn rotary_layout(&self) -> Option<RotaryLayout> {
        None
    }
    /// The family's scaling of scores and logits; the default: `head_dim^-½`, no soft-cap.
    fn score_scales(&self) -> ScoreScales {
        ScoreScales::default()
    }
    /// A checkpoint's tensors under the names [`Architecture::weights`] lists (older or
    /// multimodal layouts store them under others), and notes for the user.
    fn normalise_names(&self, weights: WeightMap) -> (WeightMap, Vec<String>) {
        (weights, Vec::new())
    }
    /// The size of a learned position table, which bounds a sequence's positions; `None` for
    /// rotary families.
    fn position_table(&self) -> Option<usize> {
        None
    }
    /// The id of the learned position of token `position` (`real`: not padding).
    fn position_id(&self, position: usize, _real: bool) -> i64 {
        position as i64
    }
    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3>;
    fn block(&self, p: &Params, layer: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3>;
    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3>;
    /// `[N, D]` final hidden states → `[N, V]` logits.
    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2>;
}

impl BatchInput {
    /// Pads `seqs` on the right to a common length; their tokens sit at positions `offset..` after
    /// a cached prefix of `offset` tokens. Sequences must be non-empty (checked by the caller,
    /// which names the item).
    pub(crate) fn new(
        seqs: &[Vec<u32>],
        offset: usize,
        arch: &dyn Architecture,
        device: &Device,
    ) -> Self {
        let cfg = arch.config();
        let seq = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let pad = i64::from(cfg.pad_token_id.unwrap_or(0));
        let mut ids = Vec::with_capacity(seqs.len() * seq);
        let mut positions = Vec::with_capacity(seqs.len() * seq);
        for s in seqs {
            for i in 0..seq {
                let real = i < s.len();
                ids.push(if real { i64::from(s[i]) } else { pad });
                positions.push(arch.position_id(offset + i, real));
            }
        }
        Self {
            ids: int_tensor(ids, device),
            positions: int_tensor(positions.clone(), device),
            position_ids: Arc::new(positions),
            lengths: seqs.iter().map(|s| offset + s.len()).collect(),
            offset,
            batch: seqs.len(),
            seq,
            segments: None,
            max_position: seq,
        }
    }

    /// Rows that each hold a prompt followed by several continuations, every continuation
    /// positioned right after the prompt and blind to the others (a tree of shared prefix); the
    /// rows start at position `offset`, after a cached prefix they all share.
    pub(crate) fn packed(
        rows: &[(Vec<u32>, Vec<Vec<u32>>)],
        offset: usize,
        cfg: &ModelConfig,
        device: &Device,
    ) -> Self {
        let lens: Vec<usize> =
            rows.iter().map(|(p, cs)| p.len() + cs.iter().map(Vec::len).sum::<usize>()).collect();
        let seq = lens.iter().copied().max().unwrap_or(0);
        let pad = i64::from(cfg.pad_token_id.unwrap_or(0));
        let mut ids = Vec::with_capacity(rows.len() * seq);
        let mut positions = Vec::with_capacity(rows.len() * seq);
        let mut segments = Vec::with_capacity(rows.len());
        let mut max_position = 0;
        for (prompt, conts) in rows {
            let mut seg = Vec::with_capacity(seq);
            for (i, &t) in prompt.iter().enumerate() {
                ids.push(i64::from(t));
                positions.push((offset + i) as i64);
                seg.push(0u16);
            }
            max_position = max_position.max(prompt.len());
            for (c, cont) in conts.iter().enumerate() {
                for (k, &t) in cont.iter().enumerate() {
                    ids.push(i64::from(t));
                    positions.push((offset + prompt.len() + k) as i64);
                    seg.push(c as u16 + 1);
                }
                max_position = max_position.max(prompt.len() + cont.len());
            }
            for _ in seg.len()..seq {
                ids.push(pad);
                positions.push(0);
            }
            segments.push(seg);
        }
        Self {
            ids: int_tensor(ids, device),
            positions: int_tensor(positions.clone(), device),
            position_ids: Arc::new(positions),
            lengths: lens.iter().map(|l| offset + l).collect(),
            offset,
            batch: rows.len(),
            seq,
            segments: Some(segments),
            max_position,
        }
    }
}

/// Hides, on a sliding-window layer, every key more than `window − 1` positions before its query
/// (`hidden`: the batch's mask, `[B, T, offset + T]`). Keys of the cached prefix sit at positions
/// `0..offset`; packed rows' tokens at their own positions. Padded queries keep their keys.
pub(crate) fn window_mask(hidden: &mut [bool], batch: &BatchInput, offset: usize, window: usize) {
    let (t, tk) = (batch.seq, offset + batch.seq);
    let window = window as i64;
    for bi in 0..batch.batch {
        // Real tokens of the row (after the prefix): padded query rows are left as they are.
        let real = batch.lengths[bi] - offset;
        let position = |i: usize| -> i64 {
            match &batch.segments {
                Some(_) => batch.position_ids[bi * t + i],
                None => (offset + i) as i64,
            }
        };
        for i in 0..real.min(t) {
            let q = position(i);
            let row = &mut hidden[(bi * t + i) * tk..(bi * t + i + 1) * tk];
            for (j, h) in row.iter_mut().enumerate() {
                let k = if j < offset { j as i64 } else { position(j - offset) };
                if q - k >= window {
                    *h = true;
                }
            }
        }
    }
}

impl Context {
    /// A context for a batch at `offset`, reading and extending `cache` when given.
    pub(crate) fn new(
        arch: &dyn Architecture,
        batch: &BatchInput,
        offset: usize,
        cache: Option<KvCache>,
        device: &Device,
    ) -> Self {
        let cfg = arch.config();
        let mask = match &batch.segments {
            Some(segments) => packed_attention_mask_data(segments, batch.seq, offset),
            None => attention_mask_data(&batch.lengths, batch.seq, offset, cfg.family.is_causal()),
        };
        let positions = offset + batch.max_position;
        let rotary = arch.rotary_layout().map(|layout| {
            Rotary::new(
                cfg.rotary_dim,
                cfg.rope_theta,
                cfg.rope_scaling.as_ref(),
                cfg.rope_linear_factor,
                positions,
                layout,
                device,
            )
        });
        let local = cfg.local_attention.as_ref().map(|la| {
            let mut windowed = mask.clone();
            window_mask(&mut windowed, batch, offset, la.window);
            LocalContext {
                mask: mask_tensor(windowed, batch.batch, batch.seq, offset, device),
                rotary: Rotary::new(
                    cfg.rotary_dim,
                    la.rope_theta,
                    None,
                    None,
                    positions,
                    arch.rotary_layout().unwrap_or(RotaryLayout::Half),
                    device,
                ),
                sliding: Arc::new(la.sliding.clone()),
            }
        });
        let mask = mask_tensor(mask, batch.batch, batch.seq, offset, device);
        let token_positions =
            batch.segments.as_ref().map(|_| (batch.positions.clone(), batch.position_ids.clone()));
        Self {
            mask,
            rotary,
            offset,
            token_positions,
            cache: cache.map(RefCell::new),
            softcap: cfg.attn_logit_softcap,
            local,
        }
    }

    /// The sliding-window context of `layer`, when it slides.
    fn local_at(&self, layer: usize) -> Option<&LocalContext> {
        self.local.as_ref().filter(|lc| lc.sliding.get(layer).copied().unwrap_or(false))
    }

    /// Applies the rotary embeddings of `layer` (its own tables on a sliding layer).
    pub(crate) fn rotate_layer(&self, layer: usize, x: Tensor<4>) -> Tensor<4> {
        match self.local_at(layer) {
            Some(lc) => self.rotate_with(Some(&lc.rotary), x),
            None => self.rotate(x),
        }
    }

    /// Applies rotary embeddings at this batch's positions.
    pub(crate) fn rotate(&self, x: Tensor<4>) -> Tensor<4> {
        self.rotate_with(self.rotary.as_ref(), x)
    }

    fn rotate_with(&self, rotary: Option<&Rotary>, x: Tensor<4>) -> Tensor<4> {
        match (rotary, &self.token_positions) {
            (Some(r), Some((p, host))) => r.apply_at(x, p, host),
            (Some(r), None) => r.apply(x, self.offset),
            (None, _) => x,
        }
    }

    /// Attention of this batch's queries over the cached keys (if any) and its own; the new keys
    /// and values are appended to the cache.
    pub(crate) fn attend(
        &self,
        layer: usize,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        scale: f64,
    ) -> Tensor<4> {
        let (k, v) = match &self.cache {
            Some(cache) => {
                let mut cache = cache.borrow_mut();
                let (k, v) = match cache[layer].take() {
                    Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
                    None => (k, v),
                };
                cache[layer] = Some((k.clone(), v.clone()));
                (k, v)
            }
            None => (k, v),
        };
        let mask = self.local_at(layer).map_or(&self.mask, |lc| &lc.mask);
        attention(q, k, v, mask, scale, self.softcap)
    }

    /// This context reading and extending `cache` instead of its own.
    pub(crate) fn with_cache(&self, cache: KvCache) -> Self {
        Self { cache: Some(RefCell::new(cache)), ..self.clone() }
    }

    /// The cache after this batch, for the next step.
    pub(crate) fn into_cache(self) -> Option<KvCache> {
        self.cache.map(RefCell::into_inner)
    }
}
