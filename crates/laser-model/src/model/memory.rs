//! How much memory a forward or gradient pass needs for its activations, and the budget that
//! batches are split to fit (issue 17: no input may make the process abort on allocation).
//!
//! The estimate is an upper bound built from the shapes the layers allocate, not a measurement:
//! per row of `T` tokens, the hidden-size tensors of one layer (residual, norms, q/k/v, their
//! rotary copies, attention output, projections: ≤ 12 of `T × w`, where `w` is the wider of the
//! hidden size and the attention width `heads × head_dim` — Gemma 3 270M's queries and attention
//! output are 1,024 wide in a 640-wide model, and counting them at 640 let one gradient
//! micro-batch behind a 755-token prefix grow the process by 2.66 GB on a 2.28 GB activation
//! budget), the FFN tensors (gate, up, activation, product: 4 of `T × F`), the attention maps
//! (scores, mask, softmax and its normaliser: 4 of `H × T × T'` where `T'` counts the keys
//! attended, shared prefix included) and the LM head at the scored positions (logits,
//! log-softmax, their gradient: 3 of `V`). A gradient pass keeps every layer's tensors for the
//! backward pass (all `L` layers of the hidden-size, FFN and two attention-map terms) on top of
//! one layer's transient.

use super::Model;
use crate::config::ModelConfig;
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
        activation_bytes_for(self.config(), pass, rows, shape)
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

/// [`Model::activation_bytes`] for a model of `c`'s dimensions.
fn activation_bytes_for(c: &ModelConfig, pass: Pass, rows: usize, shape: RowShape) -> u64 {
    let (w, f, h, l, v) = (
        c.hidden_size.max(c.num_heads.saturating_mul(c.head_dim)) as u64,
        c.intermediate_size.max(c.hidden_size) as u64,
        c.num_heads as u64,
        c.num_layers as u64,
        c.vocab_size as u64,
    );
    let t = shape.tokens as u64;
    let keys = t + shape.prefix as u64;
    let linear = t.saturating_mul(12 * w + 4 * f);
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

/// `bytes` in MiB (or GiB from 10 GiB), one decimal.
pub fn mib(bytes: u64) -> String {
    let m = bytes as f64 / (1u64 << 20) as f64;
    if m >= 10_240.0 { format!("{:.1} GiB", m / 1024.0) } else { format!("{m:.1} MiB") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Family;

    /// Gemma 3 270M's dimensions with attention `head_dim` wide per head.
    fn gemma3_270m(head_dim: usize) -> ModelConfig {
        ModelConfig {
            vocab_size: 262_144,
            hidden_size: 640,
            intermediate_size: 2048,
            num_layers: 18,
            num_heads: 4,
            num_kv_heads: 1,
            head_dim,
            ..ModelConfig::defaults_for(Family::new("gemma3", true))
        }
    }

    /// The hidden-size terms count the attention width where it is the wider: with 4 × 256 =
    /// 1,024 against 640, every one of the 12 `T × w` tensors is 384 wider, in each kept layer
    /// and the transient one; an attention no wider than the model (4 × 160, 4 × 128) counts at
    /// the hidden size.
    #[test]
    fn a_wider_attention_than_the_model_is_counted_at_its_width() {
        let shape = RowShape { tokens: 39, prefix: 755, scored: 6 };
        let (t, rows) = (39u64, 28usize);
        for (pass, layers) in [(Pass::Forward, 1u64), (Pass::Gradient, 18 + 1)] {
            let wide = activation_bytes_for(&gemma3_270m(256), pass, rows, shape);
            let even = activation_bytes_for(&gemma3_270m(160), pass, rows, shape);
            let narrow = activation_bytes_for(&gemma3_270m(128), pass, rows, shape);
            assert_eq!(wide - even, rows as u64 * layers * t * 12 * (1024 - 640) * F32, "{pass:?}");
            assert_eq!(narrow, even, "{pass:?}");
        }
    }
}
