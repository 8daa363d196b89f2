//! Decoding from a prompt: one prefill keeps the prompt's keys and values, so that several
//! continuations (answer choices) are scored, or tokens generated greedily, without recomputing it.

use burn::tensor::{Int, Tensor, TensorData, activation};

use super::{Model, argmax, host_vec};
use crate::arch::{BatchInput, Context, KvCache};
use crate::error::Result;

/// A prompt after [`Model::prefill`]: its KV cache and final hidden state.
#[derive(Debug, Clone)]
pub struct PromptState {
    cache: KvCache,
    len: usize,
    last: Tensor<2>,
}

impl PromptState {
    /// Prompt length in tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the prompt is empty (never: prefill rejects empty prompts).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Model {
    /// Runs a prompt once and keeps its keys and values, so that several continuations (answer
    /// choices, generated tokens) are scored without recomputing it.
    pub fn prefill(&self, prompt: &[u32]) -> Result<PromptState> {
        self.require_causal()?;
        let seqs = [prompt.to_vec()];
        self.check_sequences(&seqs)?;
        let batch = BatchInput::new(&seqs, 0, self.arch.as_ref(), &self.device);
        let empty = vec![None; self.config().num_layers];
        let ctx = Context::new(self.arch.as_ref(), &batch, 0, Some(empty), &self.device);
        let hidden = self.forward_hidden(&self.params, &batch, &ctx);
        let d = self.config().hidden_size;
        let last = hidden.narrow(1, prompt.len() - 1, 1).reshape([1, d]);
        let cache = ctx.into_cache().unwrap_or_default();
        Ok(PromptState { cache, len: prompt.len(), last })
    }

    /// The next-token log-probabilities after the prompt (`[V]`).
    pub fn next_token_log_probs(&self, state: &PromptState) -> Result<Vec<f32>> {
        host_vec(activation::log_softmax(self.arch.head(&self.params, state.last.clone()), 1))
    }

    /// Per-token log-probabilities of each continuation after the prompt: `out[c][k]` is
    /// `log p(conts[c][k] | prompt, conts[c][..k])`. Continuations run as one padded batch over
    /// the prompt's cached keys.
    pub fn continuation_log_probs(
        &self,
        state: &PromptState,
        conts: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>> {
        self.check_sequences_at(conts, state.len)?;
        let b = conts.len();
        let cache: KvCache = state
            .cache
            .iter()
            .map(|kv| {
                kv.as_ref().map(|(k, v)| (k.clone().repeat_dim(0, b), v.clone().repeat_dim(0, b)))
            })
            .collect();
        let batch = BatchInput::new(conts, state.len, self.arch.as_ref(), &self.device);
        let ctx = Context::new(self.arch.as_ref(), &batch, state.len, Some(cache), &self.device);
        let hidden = self.forward_hidden(&self.params, &batch, &ctx);
        // The first token of each continuation is predicted by the prompt's last position.
        let first = self.next_token_log_probs(state)?;
        let mut out: Vec<Vec<f32>> = conts.iter().map(|c| vec![first[c[0] as usize]]).collect();
        let mut rows = Vec::new();
        let mut toks = Vec::new();
        for (ci, c) in conts.iter().enumerate() {
            for (k, &tok) in c.iter().enumerate().skip(1) {
                rows.push((ci * batch.seq + k - 1) as i64);
                toks.push(i64::from(tok));
            }
        }
        if !rows.is_empty() {
            let d = self.config().hidden_size;
            let n = rows.len();
            let flat = hidden.reshape([b * batch.seq, d]);
            let idx = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &self.device);
            let lp = activation::log_softmax(self.arch.head(&self.params, flat.select(0, idx)), 1);
            let tok = Tensor::<2, Int>::from_data(TensorData::new(toks, [n, 1]), &self.device);
            let picked = host_vec(lp.gather(1, tok).reshape([n]))?;
            let mut it = picked.into_iter();
            for (ci, c) in conts.iter().enumerate() {
                out[ci].extend(it.by_ref().take(c.len() - 1));
            }
        }
        Ok(out)
    }

    /// Greedy decoding with a KV cache: at most `max_new_tokens` tokens, stopping after any token
    /// in `stop` (which is included in the output) or at the model's position limit.
    pub fn generate_greedy(
        &self,
        prompt: &[u32],
        max_new_tokens: usize,
        stop: &[u32],
    ) -> Result<Vec<u32>> {
        let mut state = self.prefill(prompt)?;
        let mut out = Vec::with_capacity(max_new_tokens);
        let (max_len, _) = self.position_limit();
        while out.len() < max_new_tokens {
            let next = argmax(&self.next_token_log_probs(&state)?) as u32;
            out.push(next);
            if stop.contains(&next) || out.len() == max_new_tokens || state.len + 1 >= max_len {
                break;
            }
            state = self.extend(state, next)?;
        }
        Ok(out)
    }

    /// Appends one token to a prompt state.
    fn extend(&self, state: PromptState, token: u32) -> Result<PromptState> {
        let seqs = [vec![token]];
        self.check_sequences_at(&seqs, state.len)?;
        let batch = BatchInput::new(&seqs, state.len, self.arch.as_ref(), &self.device);
        let ctx =
            Context::new(self.arch.as_ref(), &batch, state.len, Some(state.cache), &self.device);
        let hidden = self.forward_hidden(&self.params, &batch, &ctx);
        let last = hidden.reshape([1, self.config().hidden_size]);
        Ok(PromptState { cache: ctx.into_cache().unwrap_or_default(), len: state.len + 1, last })
    }
}
