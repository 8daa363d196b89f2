//! How much memory a forward or gradient pass needs for its activations, and the budget that
//! batches are split to fit (issue 17: no input may make the process abort on allocation).
//!
//! The estimate is an upper bound built from the shapes the layers allocate, not a measurement:
//! per row of `T` tokens, the hidden-size tensors of one layer (residual, norms, q/k/v, their
//! rotary copies, attention output, projections: ≤ 12 of `T × d`), the FFN tensors (gate, up,
//! activation, product: 4 of `T × F`), the attention maps (scores, mask, softmax and its
//! normaliser: 4 of `H × T × T'` where `T'` counts the keys attended, shared prefix included) and
//! the LM head at the scored positions (logits, log-softmax, their gradient: 3 of `V`). A
//! gradient pass keeps every layer's tensors for the backward pass (all `L` layers of the
//! hidden-size, FFN and two attention-map terms) on top of one layer's transient.

use super::Model;
use crate::error::{ModelError, Result};

/// Which pass an estimate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Inference: one layer's tensors live at a time.
    Forward,
    /// Forward under autodiff plus backward: every layer's tensors are kept.
    Gradient,
}

/// The shape of one batch row, as far as memory is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowShape {
    /// Tokens the row runs through the layers.
    pub tokens: usize,
    /// Keys each token may attend to beyond its own row (a shared prefix run once per batch).
    pub prefix: usize,
    /// Positions scored by the LM head.
    pub scored: usize,
}

const F32: u64 = 4;

impl Model {
    /// Bytes of activations `rows` rows of `shape` need in `pass` (an upper bound; module docs).
    pub fn activation_bytes(&self, pass: Pass, rows: usize, shape: RowShape) -> u64 {
        let c = self.config();
        let (d, f, h, l, v) = (
            c.hidden_size as u64,
            c.intermediate_size.max(c.hidden_size) as u64,
            c.num_heads as u64,
            c.num_layers as u64,
            c.vocab_size as u64,
        );
        let t = shape.tokens as u64;
        let keys = t + shape.prefix as u64;
        let linear = t.saturating_mul(12 * d + 4 * f);
        let maps = h.saturating_mul(t).saturating_mul(keys);
        let head = (shape.scored as u64).saturating_mul(3 * v);
        let one_layer = linear.saturating_add(maps.saturating_mul(4));
        let per_row = match pass {
            Pass::Forward => one_layer.saturating_add(head),
            Pass::Gradient => l
                .saturating_mul(linear.saturating_add(maps.saturating_mul(2)))
                .saturating_add(one_layer)
                .saturating_add(head),
        };
        per_row.saturating_mul(rows as u64).saturating_mul(F32)
    }

    /// Limits the activation memory of every later forward and gradient pass to `bytes`
    /// (`None`: no limit). Batches and gradient micro-batches are split to fit; a single row
    /// that cannot fit is refused ([`Model::check_activation_budget`]).
    pub fn set_activation_budget(&mut self, bytes: Option<u64>) {
        self.activation_budget = bytes;
        self.activation_budget_hard = true;
    }

    /// Like [`Model::set_activation_budget`], but a target rather than a limit: batches and
    /// micro-batches are split to fit it, and a single row over it runs alone instead of being
    /// refused (a default that a long prompt must not turn into an error).
    pub fn set_activation_target(&mut self, bytes: u64) {
        self.activation_budget = Some(bytes);
        self.activation_budget_hard = false;
    }

    /// Whether the budget refuses a single row that cannot fit (set by
    /// [`Model::set_activation_budget`]) rather than running it alone.
    pub fn activation_budget_is_hard(&self) -> bool {
        self.activation_budget.is_some() && self.activation_budget_hard
    }

    /// The limit set by [`Model::set_activation_budget`].
    pub fn activation_budget(&self) -> Option<u64> {
        self.activation_budget
    }

    /// Whether `rows` rows of `shape` fit the budget in `pass` (always, without a budget).
    pub fn fits_budget(&self, pass: Pass, rows: usize, shape: RowShape) -> bool {
        self.activation_budget.is_none_or(|b| self.activation_bytes(pass, rows, shape) <= b)
    }

    /// An error unless one row of `shape` fits the budget in `pass`; `what` names the row for
    /// the message (e.g. "sequence 3").
    pub fn check_activation_budget(&self, pass: Pass, shape: RowShape, what: &str) -> Result<()> {
        match self.activation_budget {
            Some(budget) if self.activation_budget_hard && !self.fits_budget(pass, 1, shape) => {
                Err(ModelError::Input(over_budget(
                    what,
                    shape.tokens,
                    self.activation_bytes(pass, 1, shape),
                    budget,
                )))
            }
            _ => Ok(()),
        }
    }

    /// Bytes the model's weights occupy now: device tensors, host copies of the matrices where
    /// the backend's buffer cannot be read in place (ndarray), and the originals of edited
    /// matrices kept for restoring.
    pub fn resident_bytes(&self) -> u64 {
        let bytes =
            |t: &burn::tensor::Tensor<2>| t.shape().num_elements() as u64 * t.dtype().size() as u64;
        let device: u64 = self.params.map.values().map(bytes).sum();
        let host: u64 = self.params.host.values().map(|m| m.extra_bytes()).sum();
        let originals: u64 = self
            .originals
            .values()
            .map(|(t, h)| bytes(t) + h.as_ref().map_or(0, |m| m.extra_bytes()))
            .sum();
        device + host + originals
    }

    /// Bytes held in host copies of matrices beside their device tensors: 0 on the flex
    /// backend, whose buffers are read in place; every matrix again on ndarray or a GPU.
    pub fn host_copy_bytes(&self) -> u64 {
        let current: u64 = self.params.host.values().map(|m| m.extra_bytes()).sum();
        let kept: u64 =
            self.originals.values().filter_map(|(_, h)| h.as_ref().map(|m| m.extra_bytes())).sum();
        current + kept
    }

    /// Bytes of the gradient accumulators of every editable matrix (one f32 per weight).
    pub fn matrix_bytes(&self) -> u64 {
        self.matrices().iter().map(|m| (m.shape[0] * m.shape[1]) as u64).sum::<u64>() * F32
    }
}

/// The message of a row that cannot fit: both sizes in MiB.
pub fn over_budget(what: &str, tokens: usize, need: u64, budget: u64) -> String {
    format!(
        "{what}: {tokens} tokens need about {} of activations, over the {} memory budget; shorten \
         or truncate it, or raise the budget",
        mib(need),
        mib(budget)
    )
}

/// `bytes` in MiB (or GiB from 10 GiB), one decimal.
pub fn mib(bytes: u64) -> String {
    let m = bytes as f64 / (1u64 << 20) as f64;
    if m >= 10_240.0 { format!("{:.1} GiB", m / 1024.0) } else { format!("{m:.1} MiB") }
}
