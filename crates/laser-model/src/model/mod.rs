//! The loaded model: architecture + device parameters + tokenizer, with matrix addressing
//! (read / replace / restore by HF name) and batched forward passes; decoding from a prompt and the
//! gradient pass live in `decoding.rs` and `gradients.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData, activation};

use crate::arch::{Architecture, BatchInput, Context};
use crate::config::{Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::layers::{HostMatrix, Params};
use crate::matrix::MatrixInfo;
use crate::tokenizer::Tokenizer;
use crate::weights::HostTensor;

pub(crate) mod backend;
mod batches;
mod decoding;
mod dtype;
mod editing;
mod gradients;
mod loading;
mod memory;
mod prefix;

pub use backend::Backend;
pub use decoding::PromptState;
pub use dtype::WeightDtype;
pub use editing::WeightStamp;
pub use gradients::GradientPass;
pub use memory::{Pass, RowShape, mib};
pub use prefix::PrefixKeysValues;
use prefix::SharedPrefix;

/// One scored token: the logits at `position` of sequence `seq` should predict `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTarget {
    /// Index of the sequence in the batch.
    pub seq: usize,
    /// Position whose output distribution is scored.
    pub position: usize,
    /// The token that should be predicted there.
    pub token: u32,
}

/// A batch laid out on the device once and reused across forward passes (masks, rotary tables).
#[derive(Debug, Clone)]
pub struct PreparedBatch {
    batch: BatchInput,
    ctx: Context,
    prefix: Option<SharedPrefix>,
}

/// Hidden states entering some layer, for reruns that start there.
#[derive(Debug, Clone)]
pub struct HiddenStates {
    x: Tensor<3>,
    layer: usize,
    /// The shared prefix's hidden states entering the same layer (its keys and values there and
    /// above depend on the weights, so a rerun recomputes them from here).
    prefix: Option<Tensor<3>>,
}

impl HiddenStates {
    /// The layer these states enter.
    pub fn layer(&self) -> usize {
        self.layer
    }
}

/// A model ready to run and edit.
#[derive(Debug)]
pub struct Model {
    arch: Box<dyn Architecture>,
    device: Device,
    params: Params,
    originals: HashMap<String, (Tensor<2>, Option<HostMatrix>)>,
    matrix_index: HashMap<String, usize>,
    /// HF shapes of every parameter (1-D ones are held as `[1, n]` on the device).
    shapes: HashMap<String, Vec<usize>>,
    tokenizer: Option<Tokenizer>,
    source: PathBuf,
    /// Unique per loaded model, so that a [`WeightStamp`] of one model never matches another's.
    instance: u64,
    /// Per layer, the clock value of the last change to one of its matrices (0: none yet).
    layer_changes: Vec<u64>,
    /// Per layer, its `layer_changes` value before the first of its replacements now in place
    /// (what restoring them all gives back).
    layer_unedited: Vec<u64>,
    change_clock: u64,
    /// Bytes of activations a pass may use (`memory.rs`); `None`: unlimited.
    activation_budget: Option<u64>,
    /// Whether a single row over [`Model::activation_budget`] is refused (a budget the user
    /// set) or runs alone (a default target).
    activation_budget_hard: bool,
    /// How the editable matrices are stored (`dtype.rs`).
    matrix_dtype: WeightDtype,
    /// See [`Model::load_notes`].
    notes: Vec<String>,
}

impl Model {
    /// What loading chose to say: tensors of a checkpoint that the model does not read (a
    /// multimodal checkpoint's vision tower), and how a GGUF's missing keys were filled in.
    pub fn load_notes(&self) -> &[String] {
        &self.notes
    }

    /// The normalised config.
    pub fn config(&self) -> &ModelConfig {
        self.arch.config()
    }

    /// The architecture: its tensors, its forward steps.
    pub(crate) fn arch(&self) -> &dyn Architecture {
        self.arch.as_ref()
    }

    /// How the family scales attention scores and logits (Gemma's query scale and final
    /// soft-cap: options of its own, not in [`ModelConfig`]).
    pub fn score_scales(&self) -> crate::arch::ScoreScales {
        self.arch.score_scales()
    }

    /// The family.
    pub fn family(&self) -> Family {
        self.config().family
    }

    /// Where the model was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Attaches (or replaces) the tokenizer; its vocabulary must fit the model's.
    pub fn set_tokenizer(&mut self, tokenizer: Tokenizer) -> Result<()> {
        if tokenizer.vocab_size() > self.config().vocab_size {
            return Err(ModelError::Tokenizer(format!(
                "tokenizer has {} tokens but the model's vocabulary is {}",
                tokenizer.vocab_size(),
                self.config().vocab_size
            )));
        }
        self.tokenizer = Some(tokenizer);
        Ok(())
    }

    /// The tokenizer, when the model came with one.
    pub fn tokenizer(&self) -> Option<&Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// Every editable matrix, in layer order.
    pub fn matrices(&self) -> &[MatrixInfo] {
        self.arch.weights().editable()
    }

    /// The editable matrix `name`.
    pub fn matrix_info(&self, name: &str) -> Result<&MatrixInfo> {
        self.matrix_index.get(name).map(|&i| &self.matrices()[i]).ok_or_else(|| {
            ModelError::UnknownMatrix { name: name.to_owned(), family: self.family().name() }
        })
    }

    /// Any parameter (editable or not) as a host tensor, in HF orientation.
    pub fn parameter(&self, name: &str) -> Option<HostTensor> {
        let t = self.params.map.get(name)?;
        let data = host_vec(t.clone()).ok()?;
        Some(HostTensor { shape: self.shapes[name].clone(), data })
    }

    /// Names of every parameter the model holds.
    pub fn parameter_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.params.map.keys().cloned().collect();
        names.sort();
        names
    }

    /// The current value of an editable matrix, row-major in HF orientation.
    pub fn matrix(&self, name: &str) -> Result<Vec<f32>> {
        self.matrix_info(name)?;
        let t = self.params.get(name);
        host_vec(t)
    }

    /// Runs a prepared batch from the embeddings (or `from`) up to the input of layer `end`. A
    /// shared prefix runs first, layer by layer, and the rows attend to its keys and values.
    ///
    /// `shared`: the prefix's keys and values, computed once for several batches under the same
    /// weights ([`Model::prefix_keys_values_for`]) — the prefix is then not run here (and the
    /// returned states carry no prefix states).
    fn run_prepared(
        &self,
        params: &Params,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        end: usize,
        shared: Option<&PrefixKeysValues>,
    ) -> HiddenStates {
        let start = from.map_or(0, |h| h.layer);
        let shared = shared.filter(|kv| prep.prefix.is_some() && kv.layer <= start);
        let mut x = match from {
            Some(h) => h.x.clone(),
            None => self.arch.embed(params, &prep.batch),
        };
        let mut px = match (from, shared) {
            (_, Some(_)) => None,
            (Some(h), None) => h.prefix.clone(),
            (None, None) => prep.prefix.as_ref().map(|p| self.arch.embed(params, &p.batch)),
        };
        let cache = match (shared, &prep.prefix, px.take()) {
            (Some(kv), _, _) => Some(kv.cache.clone()),
            (None, Some(prefix), Some(h)) => {
                let (h, cache) = self.run_prefix(params, prefix, h, start, end);
                px = Some(h);
                Some(cache)
            }
            _ => None,
        };
        let rows_ctx = cache.map(|cache| {
            let b = prep.batch.batch;
            prep.ctx.with_cache(
                cache
                    .into_iter()
                    .map(|kv| kv.map(|(k, v)| (k.repeat_dim(0, b), v.repeat_dim(0, b))))
                    .collect(),
            )
        });
        let ctx = rows_ctx.as_ref().unwrap_or(&prep.ctx);
        for l in start..end {
            x = self.arch.block(params, l, x, ctx);
        }
        if let Some(kv) = shared {
            px = kv.states_entering(end);
        }
        HiddenStates { x, layer: end, prefix: px }
    }

    /// Hidden states entering `layer` (0 = right after the embeddings).
    pub fn hidden_before(&self, prep: &PreparedBatch, layer: usize) -> Result<HiddenStates> {
        self.check_layer(layer)?;
        Ok(self.run_prepared(&self.params, prep, None, layer, None))
    }

    /// The hidden states entering `layer` of `prep`'s rows, from `from` (the embeddings without
    /// it), reading the shared prefix's keys and values from `shared` (as
    /// [`Model::score_targets_sharing`] does) instead of running the prefix for this batch. The
    /// states carry the prefix's when `shared` kept them ([`Model::prefix_keys_values_keeping`]);
    /// bit for bit those [`Model::hidden_before`] and [`Model::advance_hidden`] compute.
    pub fn hidden_before_sharing(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        layer: usize,
        shared: Option<&PrefixKeysValues>,
    ) -> Result<HiddenStates> {
        self.check_layer(layer)?;
        if let Some(h) = from.filter(|h| layer < h.layer) {
            return Err(ModelError::Input(format!(
                "cannot move hidden states from layer {} back to {layer}",
                h.layer
            )));
        }
        Ok(self.run_prepared(&self.params, prep, from, layer, shared))
    }

    /// Runs cached hidden states forward to the input of `layer` (≥ their layer): moving a layer
    /// cache up costs only the blocks in between.
    pub fn advance_hidden(
        &self,
        prep: &PreparedBatch,
        states: &HiddenStates,
        layer: usize,
    ) -> Result<HiddenStates> {
        self.check_layer(layer)?;
        if layer < states.layer {
            return Err(ModelError::Input(format!(
                "cannot move hidden states from layer {} back to {layer}",
                states.layer
            )));
        }
        Ok(self.run_prepared(&self.params, prep, Some(states), layer, None))
    }

    fn check_layer(&self, layer: usize) -> Result<()> {
        if layer > self.config().num_layers {
            return Err(ModelError::Input(format!(
                "layer {layer} > {} layers",
                self.config().num_layers
            )));
        }
        Ok(())
    }

    /// The final-norm hidden states of `prep` (from `from`, reading `shared` for the prefix).
    fn final_hidden(
        &self,
        params: &Params,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        shared: Option<&PrefixKeysValues>,
    ) -> Tensor<3> {
        let layers = self.config().num_layers;
        self.arch.final_norm(params, self.run_prepared(params, prep, from, layers, shared).x)
    }

    /// Embeddings through every block and the final norm.
    fn forward_hidden(&self, params: &Params, batch: &BatchInput, ctx: &Context) -> Tensor<3> {
        let mut x = self.arch.embed(params, batch);
        for l in 0..self.config().num_layers {
            x = self.arch.block(params, l, x, ctx);
        }
        self.arch.final_norm(params, x)
    }

    /// Flat row indices `seq·T + position` of the targets, validated. Positions count from each
    /// row's first token (after a shared prefix, if any).
    fn target_rows(&self, prep: &PreparedBatch, targets: &[(usize, usize)]) -> Result<Vec<i64>> {
        targets
            .iter()
            .map(|&(s, p)| {
                let len = *prep.batch.lengths.get(s).ok_or_else(|| {
                    ModelError::Input(format!("target names sequence {s} of {}", prep.batch.batch))
                })? - prep.batch.offset;
                if p >= len {
                    return Err(ModelError::Input(format!(
                        "target position {p} is past sequence {s} (length {len})"
                    )));
                }
                Ok((s * prep.batch.seq + p) as i64)
            })
            .collect()
    }

    fn head_rows(
        &self,
        params: &Params,
        prep: &PreparedBatch,
        hidden: Tensor<3>,
        rows: Vec<i64>,
    ) -> Tensor<2> {
        let d = self.config().hidden_size;
        let flat = hidden.reshape([prep.batch.batch * prep.batch.seq, d]);
        let n = rows.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &flat.device());
        self.arch.head(params, flat.select(0, idx))
    }

    /// Log-softmax rows `[N, V]` at `(seq, position)` pairs, optionally starting from cached
    /// hidden states (which must come from the same prepared batch).
    pub fn log_probs_at(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        at: &[(usize, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        let rows = self.target_rows(prep, at)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let hidden = self.final_hidden(&self.params, prep, from, None);
        let lp = activation::log_softmax(self.head_rows(&self.params, prep, hidden, rows), 1);
        let v = self.config().vocab_size;
        let data = host_vec(lp)?;
        Ok(data.chunks(v).map(<[f32]>::to_vec).collect())
    }

    /// `log p(token)` for each target, computed on the device (no `[N, V]` transfer).
    pub fn target_log_probs(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        targets: &[TokenTarget],
    ) -> Result<Vec<f32>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let lp = self.target_log_prob_tensor(&self.params, prep, from, None, targets)?;
        host_vec(lp)
    }

    /// Flat rows of the targets' positions, after checking positions and tokens.
    fn checked_target_rows(
        &self,
        prep: &PreparedBatch,
        targets: &[TokenTarget],
    ) -> Result<Vec<i64>> {
        let v = self.config().vocab_size;
        if let Some(bad) = targets.iter().find(|t| t.token as usize >= v) {
            return Err(ModelError::Input(format!(
                "target token {} ≥ vocabulary size {v}",
                bad.token
            )));
        }
        let at: Vec<(usize, usize)> = targets.iter().map(|t| (t.seq, t.position)).collect();
        self.target_rows(prep, &at)
    }

    fn target_log_prob_tensor(
        &self,
        params: &Params,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        shared: Option<&PrefixKeysValues>,
        targets: &[TokenTarget],
    ) -> Result<Tensor<1>> {
        let rows = self.checked_target_rows(prep, targets)?;
        let hidden = self.final_hidden(params, prep, from, shared);
        let logits = self.head_rows(params, prep, hidden, rows);
        let tokens: Vec<u32> = targets.iter().map(|t| t.token).collect();
        if let Some(lp) = crate::autodiff_ops::target_log_probs(&logits, &tokens) {
            return Ok(lp);
        }
        Ok(gather_targets(activation::log_softmax(logits, 1), targets))
    }

    /// For each target: `log p(token)` and the top-1 token of that position's distribution (the
    /// prediction next-token tasks compare with the answer).
    pub fn score_targets(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        targets: &[TokenTarget],
    ) -> Result<Vec<(f32, u32)>> {
        self.score_targets_sharing(prep, from, None, targets)
    }

    /// [`Model::score_targets`] reading the shared prefix's keys and values from `shared`
    /// (computed by [`Model::prefix_keys_values_for`] for a batch with the same prefix, from the
    /// same layer, under the same weights) instead of running the prefix for this batch.
    pub fn score_targets_sharing(
        &self,
        prep: &PreparedBatch,
        from: Option<&HiddenStates>,
        shared: Option<&PrefixKeysValues>,
        targets: &[TokenTarget],
    ) -> Result<Vec<(f32, u32)>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.checked_target_rows(prep, targets)?;
        let hidden = self.final_hidden(&self.params, prep, from, shared);
        let logits = self.head_rows(&self.params, prep, hidden, rows);
        let tokens: Vec<u32> = targets.iter().map(|t| t.token).collect();
        if let Some(scored) = crate::host_kernels::target_log_probs(&logits, &tokens) {
            return Ok(scored);
        }
        let lp = activation::log_softmax(logits, 1);
        let top = lp.clone().argmax(1).reshape([targets.len()]);
        let top = top
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .map_err(|e| ModelError::Backend(format!("{e:?}")))?;
        let picked = host_vec(gather_targets(lp, targets))?;
        Ok(picked.into_iter().zip(top).map(|(l, t)| (l, t as u32)).collect())
    }

    /// Logits at every position, `[B][T][V]` flattened row-major (padding positions included).
    pub fn all_logits(&self, seqs: &[Vec<u32>]) -> Result<Vec<f32>> {
        let prep = self.prepare(seqs)?;
        let hidden = self.final_hidden(&self.params, &prep, None, None);
        let rows: Vec<i64> = (0..(prep.batch.batch * prep.batch.seq) as i64).collect();
        let logits = self.head_rows(&self.params, &prep, hidden, rows);
        host_vec(logits)
    }

    fn require_causal(&self) -> Result<()> {
        if self.family().is_causal() {
            Ok(())
        } else {
            Err(ModelError::Input(format!(
                "{} is a masked language model: it cannot continue a prompt",
                self.family().name()
            )))
        }
    }
}

/// Copies a tensor to the host as f32.
fn host_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Backend(format!("{e:?}")))
}

/// Index of the largest value (the first on ties).
fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| if x > best.1 { (i, x) } else { best })
        .0
}

/// `lp[i, targets[i].token]` for each row i of a `[N, V]` log-probability matrix.
fn gather_targets(lp: Tensor<2>, targets: &[TokenTarget]) -> Tensor<1> {
    let n = targets.len();
    let tok: Vec<i64> = targets.iter().map(|t| i64::from(t.token)).collect();
    let idx = Tensor::<2, Int>::from_data(TensorData::new(tok, [n, 1]), &lp.device());
    lp.gather(1, idx).reshape([n])
}
