//! Token sequences checked against what the model can attend (its position table, window or
//! context length) and prepared as device batches: padded rows, packed rows of a prompt and its
//! continuations, and a prefix they share, run once.

use burn::tensor::Device;

use super::{Model, PreparedBatch, SharedPrefix, TokenTarget};
use crate::arch::{BatchInput, Context};
use crate::error::{ModelError, Result};

impl Model {
    pub(super) fn check_sequences(&self, seqs: &[Vec<u32>]) -> Result<()> {
        self.check_sequences_at(seqs, 0)
    }

    /// The most positions a sequence may span, and what sets the limit: a learned position table
    /// (gpt2, roberta), or a sliding attention window (mistral; a longer sequence would need the
    /// window's mask, and refusing is never silently wrong).
    /// The most tokens one sequence may hold (prompt and answer together), and what sets it.
    pub fn context_length(&self) -> (usize, &'static str) {
        self.position_limit()
    }

    pub(super) fn position_limit(&self) -> (usize, &'static str) {
        let cfg = self.config();
        match self.arch.position_table() {
            Some(table) => (table, "its position table"),
            // RoPE extrapolates without failing, but past the trained context its outputs are
            // not the model's: refused, like an over-long sequence of a position table.
            None => match cfg.sliding_window {
                Some(w) if w < cfg.max_positions => (w, "its sliding attention window"),
                _ => (cfg.max_positions, "its context length, max_position_embeddings"),
            },
        }
    }

    /// Checks a batch whose tokens follow a cached prefix of `offset` tokens.
    pub(super) fn check_sequences_at(&self, seqs: &[Vec<u32>], offset: usize) -> Result<()> {
        if seqs.is_empty() {
            return Err(ModelError::Input("empty batch".into()));
        }
        let cfg = self.config();
        let (max_len, limit) = self.position_limit();
        for (i, s) in seqs.iter().enumerate() {
            if s.is_empty() {
                return Err(ModelError::Input(format!("sequence {i} is empty")));
            }
            if offset + s.len() > max_len {
                return Err(ModelError::Input(format!(
                    "sequence {i} has {} tokens; this model takes at most {max_len} ({limit})",
                    offset + s.len()
                )));
            }
            if let Some(&bad) = s.iter().find(|&&t| t as usize >= cfg.vocab_size) {
                return Err(ModelError::Input(format!(
                    "sequence {i} has token id {bad} ≥ vocabulary size {}",
                    cfg.vocab_size
                )));
            }
        }
        Ok(())
    }

    /// Pads and uploads a batch once, for several forward passes over it.
    pub fn prepare(&self, seqs: &[Vec<u32>]) -> Result<PreparedBatch> {
        self.prepare_on(seqs, &self.device)
    }

    pub(super) fn prepare_on(&self, seqs: &[Vec<u32>], device: &Device) -> Result<PreparedBatch> {
        self.check_sequences(seqs)?;
        Ok(self.prepare_after_on(&[], seqs, device))
    }

    /// A batch of sequences that all continue `prefix` (checked by the caller, whole): the prefix
    /// runs once per forward pass as a batch of one, and the sequences attend to it.
    pub(super) fn prepare_after_on(
        &self,
        prefix: &[u32],
        seqs: &[Vec<u32>],
        device: &Device,
    ) -> PreparedBatch {
        let p = prefix.len();
        let batch = BatchInput::new(seqs, p, self.arch.as_ref(), device);
        let ctx = Context::new(self.arch.as_ref(), &batch, p, None, device);
        PreparedBatch { batch, ctx, prefix: self.shared_prefix(prefix, device) }
    }

    pub(super) fn shared_prefix(&self, prefix: &[u32], device: &Device) -> Option<SharedPrefix> {
        (!prefix.is_empty()).then(|| {
            let batch = BatchInput::new(&[prefix.to_vec()], 0, self.arch.as_ref(), device);
            let ctx = Context::new(self.arch.as_ref(), &batch, 0, None, device);
            SharedPrefix { batch, ctx }
        })
    }

    /// How many leading tokens a causal micro-batch can run once for all its sequences: their
    /// common prefix, stopping before the first scored position (whose output must be a row's).
    pub(super) fn common_prefix_len(&self, seqs: &[Vec<u32>], targets: &[TokenTarget]) -> usize {
        if !self.family().is_causal() {
            return 0; // every token of a bidirectional model sees the whole sequence
        }
        let first_scored = targets.iter().map(|t| t.position).min().unwrap_or(0);
        let shortest = seqs.iter().map(|s| s.len() - 1).min().unwrap_or(0);
        seqs.iter().fold(first_scored.min(shortest), |n, s| {
            n.min(seqs[0].iter().zip(s).take_while(|(a, b)| a == b).count())
        })
    }

    /// Packs each prompt with all its continuations into one row: the prompt is computed once,
    /// and each continuation sees the prompt and itself only (its positions follow the prompt).
    /// Returns the batch and, per row and continuation, the positions whose outputs predict each
    /// continuation token — ready for [`TokenTarget`]s. Causal families only.
    pub fn prepare_packed(
        &self,
        rows: &[(Vec<u32>, Vec<Vec<u32>>)],
    ) -> Result<(PreparedBatch, Vec<Vec<Vec<usize>>>)> {
        self.prepare_packed_after(&[], rows)
    }

    /// [`Model::prepare_packed`] for rows that all continue `prefix`: the prefix runs once per
    /// forward pass and every row attends to it, as if each row began with it. Positions in the
    /// returned predictors count from the row's first token (after the prefix).
    pub fn prepare_packed_after(
        &self,
        prefix: &[u32],
        rows: &[(Vec<u32>, Vec<Vec<u32>>)],
    ) -> Result<(PreparedBatch, Vec<Vec<Vec<usize>>>)> {
        self.require_causal()?;
        if rows.is_empty() {
            return Err(ModelError::Input("empty batch".into()));
        }
        let cfg = self.config();
        if !prefix.is_empty() {
            self.check_sequences(&[prefix.to_vec()])?;
        }
        let p = prefix.len();
        let (max_positions, limit) = self.position_limit();
        let mut predictors = Vec::with_capacity(rows.len());
        for (i, (prompt, conts)) in rows.iter().enumerate() {
            if prompt.is_empty()
                || conts.is_empty()
                || conts.iter().any(Vec::is_empty)
                || conts.len() >= u16::MAX as usize
            {
                return Err(ModelError::Input(format!(
                    "row {i} needs a prompt and 1..65535 non-empty continuations"
                )));
            }
            let longest = conts.iter().map(Vec::len).max().unwrap_or(0);
            if p + prompt.len() + longest > max_positions {
                return Err(ModelError::Input(format!(
                    "row {i} reaches position {}; this model takes at most {max_positions} ({limit})",
                    p + prompt.len() + longest
                )));
            }
            if let Some(&bad) =
                prompt.iter().chain(conts.iter().flatten()).find(|&&t| t as usize >= cfg.vocab_size)
            {
                return Err(ModelError::Input(format!(
                    "row {i} has token id {bad} ≥ vocabulary size {}",
                    cfg.vocab_size
                )));
            }
            let mut start = prompt.len();
            let mut per = Vec::with_capacity(conts.len());
            for cont in conts {
                let mut at = vec![prompt.len() - 1];
                at.extend((1..cont.len()).map(|k| start + k - 1));
                start += cont.len();
                per.push(at);
            }
            predictors.push(per);
        }
        let batch = BatchInput::packed(rows, p, cfg, &self.device);
        let ctx = Context::new(self.arch.as_ref(), &batch, p, None, &self.device);
        let prefix = self.shared_prefix(prefix, &self.device);
        Ok((PreparedBatch { batch, ctx, prefix }, predictors))
    }
}
