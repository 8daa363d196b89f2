//! The evaluation engine: scores a model on a list of items, fast enough to evaluate hundreds of
//! candidate edits.
//!
//! - Every (prompt + continuation) sequence is tokenized and uploaded once, in length-sorted
//!   batches ([`Evaluator::new`]); candidates reuse them.
//! - The LM head runs only at the scored positions (`Model::score_targets`).
//! - An edit at layer ℓ leaves everything before ℓ unchanged: [`Evaluator::cache_layer`] keeps
//!   the hidden states entering ℓ, and [`Evaluator::evaluate`] reruns only layers ℓ.. for every
//!   candidate at ℓ. Each batch's states are computed the first time an evaluation reads them
//!   (blocks a race never reaches cost nothing) and moved up from a lower cached layer when
//!   there is one. The cache carries the [`WeightStamp`] of the layers below ℓ and is used only
//!   while the model still matches it, so no caller can get metrics of a stale model.
//! - Checkpoints ([`Evaluator::keep_states_at`]): the base model's evaluation keeps the states
//!   entering the layers the scan will edit, which it computes on its way up anyway; moving the
//!   cache up to such a layer then costs nothing (`cache.rs`).
//! - Generative items decode greedily with a KV cache.
//!
//! Metrics follow LASER: accuracy in percent; log-loss = the mean over items of the mean per-token
//! NLL of the gold answer under teacher forcing.

use laser_model::{Model, PreparedBatch, TokenTarget, Tokenizer};

use crate::error::{Result, SearchError};
use crate::metrics::{ItemScores, Metrics, Outcome, aggregate, item_scores};
use crate::task::Item;
use crate::tokens::normalise_answer;

mod cache;
mod layout;

use cache::LayerCache;

/// How an item's correctness is decided.
#[derive(Debug, Clone)]
enum Scoring {
    /// Sequences `first..first + n` are the choices; `answer` is gold.
    Choice { first: usize, n: usize, answer: usize, names: Vec<String> },
    /// Sequence `seq`'s first target's top-1 must decode like `answer_text`.
    NextToken { seq: usize, answer_text: String },
    /// Decode from `prompt`; any of `answers` (normalised) must appear in the generation.
    Generate { prompt: Vec<u32>, answers: Vec<String>, max_tokens: usize },
}

/// Where one sequence's targets live.
#[derive(Debug, Clone, Copy)]
struct SeqSlot {
    batch: usize,
    /// Index of its first target in the batch's target list.
    first_target: usize,
    n_targets: usize,
}

#[derive(Debug)]
struct Batch {
    prep: PreparedBatch,
    targets: Vec<TokenTarget>,
}

/// Tokenized, batched items, reusable across candidate edits.
#[derive(Debug)]
pub struct Evaluator {
    scoring: Vec<Scoring>,
    /// Per item: the sequence whose targets are the gold answer (for log-loss).
    gold_seq: Vec<usize>,
    slots: Vec<SeqSlot>,
    batches: Vec<Batch>,
    /// The items in the order they are scored, a block at a time.
    blocks: Vec<Block>,
    cache: Option<LayerCache>,
    /// States entering chosen layers under the weights of the moment they were asked for
    /// ([`Evaluator::keep_states_at`]): the next evaluation under those weights fills them on
    /// its way up, and [`Evaluator::cache_layer`] takes one over instead of computing it again.
    checkpoints: Vec<LayerCache>,
    /// Tokens whose hidden states one checkpoint holds: every batch's padded rows and the shared
    /// prefix.
    state_tokens: usize,
    stop_tokens: Vec<u32>,
}

/// Items scored together: their own batches, so that an evaluation can stop between two blocks.
#[derive(Debug, Clone)]
struct Block {
    /// Item indices, in the order they are scored.
    items: Vec<usize>,
    /// Indices of the block's batches in `Evaluator::batches`.
    batches: std::ops::Range<usize>,
}

/// An evaluation that may have stopped early ([`Evaluator::evaluate_while`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    /// Complete: every item, in item order. Stopped: the items scored so far, in the order they
    /// were scored (the first `metrics.n` of [`Evaluator::blocks`], concatenated).
    pub metrics: Metrics,
    /// Whether every item was scored.
    pub complete: bool,
}

/// How the engine lays out the items; the default is the fast layout. The other exists so that
/// the benchmarks can measure what each optimisation saves (`benches/eval_engine.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalLayout {
    /// One packed row per item (the prompt once, every choice after it under a tree mask; for a
    /// masked model, one row per answer length with all those choices scored at its masks);
    /// `false`: one row per (prompt, choice), the prompt recomputed for each choice.
    pub share_prompts: bool,
    /// Causal models: the longest token prefix common to every prompt (a BIG-bench task prefix,
    /// a fixed template opening) runs once per batch, not once per row.
    pub share_prefix: bool,
}

impl Default for EvalLayout {
    fn default() -> Self {
        Self { share_prompts: true, share_prefix: true }
    }
}

impl Evaluator {
    /// Tokenizes `items` and uploads them in batches of at most `batch_tokens` padded tokens.
    pub fn new(model: &Model, items: &[Item], batch_tokens: usize) -> Result<Self> {
        Self::with_layout(model, items, batch_tokens, EvalLayout::default())
    }

    /// [`Evaluator::new`] with an explicit layout.
    pub fn with_layout(
        model: &Model,
        items: &[Item],
        batch_tokens: usize,
        layout: EvalLayout,
    ) -> Result<Self> {
        Self::build(model, items, batch_tokens, layout, &[(0..items.len()).collect()], usize::MAX)
    }

    /// [`Evaluator::new`] scoring the items a block at a time: the `parts` (item indices, each
    /// exactly once) one after the other, each shortest items first in blocks of `block` items
    /// (the first part's first block in two halves, so that a race looks after half a block
    /// too); [`Evaluator::evaluate_while`] can stop between two blocks ([`Evaluator::blocks`]).
    /// Each block is batched on its own (similar lengths: little padding); the task prefix
    /// shared by every prompt is shared still.
    pub fn in_blocks(
        model: &Model,
        items: &[Item],
        batch_tokens: usize,
        parts: &[Vec<usize>],
        block: usize,
    ) -> Result<Self> {
        let mut seen = vec![false; items.len()];
        for &i in parts.iter().flatten() {
            if i >= items.len() || std::mem::replace(&mut seen[i], true) {
                return Err(SearchError::Config(format!(
                    "evaluation block item {i} is out of range or repeated"
                )));
            }
        }
        if seen.contains(&false) {
            return Err(SearchError::Config("evaluation blocks leave items out".into()));
        }
        Self::build(model, items, batch_tokens, EvalLayout::default(), parts, block.max(1))
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.scoring.len()
    }

    /// Device batches the items are laid out in (the token and memory budgets set how many).
    pub fn batches(&self) -> usize {
        self.batches.len()
    }

    /// Whether there are no items (never: `new` rejects that).
    pub fn is_empty(&self) -> bool {
        self.scoring.is_empty()
    }

    /// Keeps the hidden states entering `layer` under the model as it is now; later evaluations
    /// start there while no matrix below `layer` changes (and run the whole model otherwise).
    /// Each batch's states are computed when an evaluation first reads them, moved up from a
    /// valid lower cache when it holds them (running only the blocks in between). A no-op when
    /// the cache already holds that layer and is still valid, so callers need not track its
    /// state.
    pub fn cache_layer(&mut self, model: &Model, layer: usize) -> Result<()> {
        if self.cache.as_ref().is_some_and(|c| c.layer == layer && c.valid_for(model)) {
            return Ok(());
        }
        if layer > model.config().num_layers {
            return Err(SearchError::Config(format!(
                "layer {layer} > {} layers",
                model.config().num_layers
            )));
        }
        // States of a valid lower cache were computed under the weights below `layer` as they
        // are now, so they only need moving up; anything else starts empty.
        let lower = self.cache.take().filter(|c| c.layer < layer && c.valid_for(model));
        self.cache = Some(match cache::take_checkpoint(&mut self.checkpoints, model, layer) {
            Some(kept) => kept.merged_with(lower),
            None => match lower {
                Some(lower) => LayerCache { below: model.weights_below(layer), layer, ..lower },
                None => LayerCache::empty(model, layer, self.batches.len()),
            },
        });
        Ok(())
    }

    /// Keeps the hidden states entering each of `layers` (those from 1 to the last block's)
    /// from the next evaluation under the model's weights as they are now, so that
    /// [`Evaluator::cache_layer`] to one of them later costs nothing — the next evaluation
    /// computes them on its way up anyway. At most `max_bytes` of states are kept (the highest
    /// layers first: they save the most); returns the layers kept. Replaces earlier checkpoints.
    pub fn keep_states_at(
        &mut self,
        model: &Model,
        layers: &[usize],
        max_bytes: u64,
    ) -> Vec<usize> {
        let per_layer = self.checkpoint_bytes(model);
        let last = model.config().num_layers;
        let mut wanted: Vec<usize> =
            layers.iter().copied().filter(|&l| l > 0 && l < last).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let fit = usize::try_from(max_bytes / per_layer.max(1)).unwrap_or(usize::MAX);
        let kept = wanted.split_off(wanted.len().saturating_sub(fit));
        self.checkpoints =
            kept.iter().map(|&l| LayerCache::empty(model, l, self.batches.len())).collect();
        kept
    }

    /// Bytes of one checkpoint: every batch's hidden states (f32) entering one layer.
    pub fn checkpoint_bytes(&self, model: &Model) -> u64 {
        (self.state_tokens * model.config().hidden_size * std::mem::size_of::<f32>()) as u64
    }

    /// Batches whose states entering the cached layer are held now; the others are computed
    /// (or moved up) when an evaluation first reads them.
    pub fn cached_batches(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| (0..self.batches.len()).filter(|&bi| c.holds(bi)).count())
    }

    /// Drops the layer cache and the checkpoints.
    pub fn clear_cache(&mut self) {
        self.cache = None;
        self.checkpoints.clear();
    }

    /// The layer the cache starts at, if any.
    pub fn cached_layer(&self) -> Option<usize> {
        self.cache.as_ref().map(|c| c.layer)
    }

    /// The items in the order they are scored, block by block.
    pub fn blocks(&self) -> Vec<Vec<usize>> {
        self.blocks.iter().map(|b| b.items.clone()).collect()
    }

    /// Scores every item under the model as it is now (from the layer cache when it is valid
    /// for this model, from the embeddings otherwise).
    pub fn evaluate(&self, model: &Model) -> Result<Metrics> {
        Ok(self.evaluate_while(model, |_| true)?.metrics)
    }

    /// [`Evaluator::evaluate`] a block at a time: before each block after the first, `go_on`
    /// sees the outcomes so far (in the order scored) and may stop the evaluation there.
    pub fn evaluate_while(
        &self,
        model: &Model,
        go_on: impl FnMut(&ItemScores) -> bool,
    ) -> Result<Evaluated> {
        self.score_blocks(model, Vec::new(), go_on)
    }

    /// [`Evaluator::evaluate`] continued from an evaluation [`Evaluator::evaluate_while`]
    /// stopped: `scored` holds its per-item results in the order scored (whole blocks); only the
    /// blocks after them are scored. The metrics are those of a full evaluation. Errors when
    /// `scored` does not end at a block boundary (results of another evaluator).
    pub fn evaluate_rest(&self, model: &Model, scored: &ItemScores) -> Result<Metrics> {
        let covered = &self.blocks[..self.blocks_covering(scored.correct.len())];
        let items: Vec<usize> = covered.iter().flat_map(|b| b.items.iter().copied()).collect();
        if items.len() != scored.correct.len() || scored.nll.len() != scored.correct.len() {
            return Err(SearchError::Config(format!(
                "{} earlier results do not end at a block boundary of this evaluation",
                scored.correct.len()
            )));
        }
        let outcomes = items
            .iter()
            .enumerate()
            .map(|(p, &i)| Outcome {
                item: i,
                correct: scored.correct[p],
                nll: scored.nll[p],
                class: self.gold_class(i),
            })
            .collect();
        Ok(self.score_blocks(model, outcomes, |_| true)?.metrics)
    }

    /// Scores the blocks after those `outcomes` already cover (whole blocks, in order), asking
    /// `go_on` before each block after the first scored here whether to go on.
    fn score_blocks<'e>(
        &'e self,
        model: &Model,
        mut outcomes: Vec<Outcome<'e>>,
        mut go_on: impl FnMut(&ItemScores) -> bool,
    ) -> Result<Evaluated> {
        let cache = self.cache.as_ref().filter(|c| c.valid_for(model));
        if cache.is_none() && self.cache.is_some() {
            tracing::debug!("layer cache is stale (a matrix below it changed): full forward");
        }
        let tok = model.tokenizer().expect("checked in new");
        let first = self.blocks_covering(outcomes.len());
        // Checkpoints above where this evaluation starts, under its weights: filled on the way.
        let start = cache.map_or(0, |c| c.layer);
        let fill: Vec<&LayerCache> =
            self.checkpoints.iter().filter(|c| c.layer > start && c.valid_for(model)).collect();
        // Every batch continues the same task prefix: its keys and values are computed once
        // per evaluation (from the layer cache's prefix states when valid), not once per batch;
        // with its hidden states when checkpoints keep rows' states (they carry the prefix's).
        let shared = match self.batches.first() {
            Some(first) => {
                let states = cache.map(|c| c.states(model, &first.prep, 0)).transpose()?;
                let from = states.as_ref().and_then(|s| s.as_ref());
                match fill.is_empty() {
                    true => model.prefix_keys_values_for(&first.prep, from),
                    false => model.prefix_keys_values_keeping(&first.prep, from),
                }
            }
            None => None,
        };
        for (b, block) in self.blocks.iter().enumerate().skip(first) {
            if b > first && !go_on(&item_scores(&outcomes)) {
                return Ok(Evaluated { metrics: aggregate(&outcomes), complete: false });
            }
            // Per batch of the block: (log-prob, top-1) of each target.
            let scored: Vec<Vec<(f32, u32)>> = block
                .batches
                .clone()
                .map(|bi| {
                    let batch = &self.batches[bi];
                    let states = cache.map(|c| c.states(model, &batch.prep, bi)).transpose()?;
                    let from = states.as_ref().and_then(|s| s.as_ref());
                    // Through the checkpoints to fill (none: `from` as it is).
                    let shared = shared.as_ref();
                    let h = cache::fill_checkpoints(&fill, model, &batch.prep, bi, from, shared)?;
                    model.score_targets_sharing(&batch.prep, h.as_ref(), shared, &batch.targets)
                })
                .collect::<laser_model::Result<_>>()?;
            let seq_scores = |s: usize| -> &[(f32, u32)] {
                let slot = self.slots[s];
                let batch = &scored[slot.batch - block.batches.start];
                &batch[slot.first_target..slot.first_target + slot.n_targets]
            };
            for &i in &block.items {
                outcomes.push(self.outcome(model, tok, i, &seq_scores)?);
            }
        }
        outcomes.sort_by_key(|o| o.item);
        Ok(Evaluated { metrics: aggregate(&outcomes), complete: true })
    }

    /// How many leading blocks `items` scored items fill.
    fn blocks_covering(&self, items: usize) -> usize {
        let mut covered = 0;
        self.blocks
            .iter()
            .take_while(|b| {
                covered += b.items.len();
                covered <= items
            })
            .count()
    }

    /// Item `i`'s gold class: its gold choice's name (choice tasks).
    fn gold_class(&self, i: usize) -> Option<&str> {
        match &self.scoring[i] {
            Scoring::Choice { answer, names, .. } => Some(names[*answer].as_str()),
            _ => None,
        }
    }

    /// Item `i`'s outcome from its sequences' scores.
    fn outcome<'s>(
        &self,
        model: &Model,
        tok: &Tokenizer,
        i: usize,
        seq_scores: &dyn Fn(usize) -> &'s [(f32, u32)],
    ) -> Result<Outcome<'_>> {
        let gold = seq_scores(self.gold_seq[i]);
        let nll = -gold.iter().map(|&(l, _)| f64::from(l)).sum::<f64>() / gold.len() as f64;
        let correct = match &self.scoring[i] {
            Scoring::Choice { first, n, answer, .. } => {
                let totals: Vec<f64> = (0..*n)
                    .map(|c| seq_scores(first + c).iter().map(|&(l, _)| f64::from(l)).sum())
                    .collect();
                let pred =
                    (0..*n).fold(0, |best, c| if totals[c] > totals[best] { c } else { best });
                pred == *answer
            }
            Scoring::NextToken { seq, answer_text } => {
                let top = tok.token_text(seq_scores(*seq)[0].1)?;
                top.trim().to_lowercase() == answer_text.trim().to_lowercase()
            }
            Scoring::Generate { prompt, answers, max_tokens } => {
                let out = model.generate_greedy(prompt, *max_tokens, &self.stop_tokens)?;
                let text = normalise_answer(&tok.decode(&out)?);
                answers.iter().any(|a| text.contains(a.as_str()))
            }
        };
        Ok(Outcome { item: i, correct, nll, class: self.gold_class(i) })
    }
}
