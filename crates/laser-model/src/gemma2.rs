//! Gemma 2 (Gemma2ForCausalLM): token embeddings scaled by √d; RMSNorm as `x̂ · (1 + w)`, four per
//! block (before and after attention, before and after the MLP); grouped-query attention with
//! `rotate_half` RoPE, scores scaled by `query_pre_attn_scalar^-½` and soft-capped
//! (`c · tanh(s / c)`); a GELU-tanh gated MLP; a tied head whose logits are soft-capped too.
//! Alternate layers use a sliding window: sequences longer than it are refused (the model's
//! position limit), so every accepted sequence is attended exactly.
//! Gemma Team 2024, *Gemma 2: Improving Open Language Models at a Practical Size*, arXiv:2408.00118.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices, per_layer_tensors};
use crate::config::ModelConfig;
use crate::layers::{Params, RotaryLayout, activate, merge_heads, rms_norm, soft_cap, split_heads};
use crate::llama::{block_matrices, layer, lm_head, outer_tensors, token_embedding};
use crate::matrix::MatrixInfo;

#[derive(Debug, Clone)]
pub(crate) struct Gemma2 {
    pub(crate) cfg: ModelConfig,
}

impl Gemma2 {
    /// Gemma's RMSNorm: the weight is stored as an offset from 1.
    fn norm(&self, p: &Params, x: Tensor<3>, name: &str) -> Tensor<3> {
        rms_norm(x, p.vec3(name).add_scalar(1.0), self.cfg.norm_eps)
    }
}

impl Architecture for Gemma2 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Half)
    }

    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.cfg;
        let d = c.hidden_size;
        let mut out = outer_tensors(c);
        let mut table: Vec<(&str, Vec<usize>)> = vec![
            ("input_layernorm.weight", vec![d]),
            ("post_attention_layernorm.weight", vec![d]),
            ("pre_feedforward_layernorm.weight", vec![d]),
            ("post_feedforward_layernorm.weight", vec![d]),
        ];
        table.extend(block_matrices(c).into_iter().map(|(n, _, s)| (n, s.to_vec())));
        out.extend(per_layer_tensors(c.num_layers, layer, &table));
        out
    }

    fn editable(&self) -> Vec<MatrixInfo> {
        per_layer_matrices(self.cfg.num_layers, layer, &block_matrices(&self.cfg))
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        token_embedding(p, batch).mul_scalar((self.cfg.hidden_size as f64).sqrt())
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let c = &self.cfg;
        let h = self.norm(p, x.clone(), &layer(l, "input_layernorm.weight"));
        let proj = |name: &str, input: Tensor<3>| {
            p.linear(input, &layer(l, &format!("self_attn.{name}.weight")), None)
        };
        let q = ctx.rotate(split_heads(proj("q_proj", h.clone()), c.num_heads));
        let k = ctx.rotate(split_heads(proj("k_proj", h.clone()), c.num_kv_heads));
        let v = split_heads(proj("v_proj", h), c.num_kv_heads);
        let scalar = c.attention_scalar.unwrap_or(c.head_dim as f64);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / scalar.sqrt()));
        let a = self.norm(p, proj("o_proj", a), &layer(l, "post_attention_layernorm.weight"));
        let x = x + a;
        let h = self.norm(p, x.clone(), &layer(l, "pre_feedforward_layernorm.weight"));
        let gate = p.linear(h.clone(), &layer(l, "mlp.gate_proj.weight"), None);
        let up = p.linear(h, &layer(l, "mlp.up_proj.weight"), None);
        let m =
            p.linear(activate(gate, c.activation) * up, &layer(l, "mlp.down_proj.weight"), None);
        x + self.norm(p, m, &layer(l, "post_feedforward_layernorm.weight"))
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        self.norm(p, x, "model.norm.weight")
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        let logits = lm_head(p, h, &self.cfg);
        match self.cfg.final_logit_softcap {
            Some(cap) => soft_cap(logits, cap),
            None => logits,
        }
    }
}
