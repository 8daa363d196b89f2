//! Gemma 2 (Gemma2ForCausalLM): token embeddings scaled by √d; RMSNorm as `x̂ · (1 + w)`, four per
//! block (before and after attention, before and after the MLP); grouped-query attention with
//! `rotate_half` RoPE, scores scaled by `query_pre_attn_scalar^-½` and soft-capped
//! (`c · tanh(s / c)`); a GELU-tanh gated MLP; a tied head whose logits are soft-capped too.
//! Alternate layers use a sliding window: sequences longer than it are refused (the model's
//! position limit), so every accepted sequence is attended exactly.
//! Gemma Team 2024, *Gemma 2: Improving Open Language Models at a Practical Size*, arXiv:2408.00118.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices, per_layer_tensors};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::layers::{Params, RotaryLayout, gated, merge_heads, rms_norm, soft_cap, split_heads};
use crate::llama::{block_matrices, layer, lm_head, outer_tensors, token_embedding};
use crate::matrix::MatrixInfo;

/// The config of `model_type` gemma2.
pub(crate) fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = r.field(&["head_dim"])?.unwrap_or(hidden / heads.max(1));
    let layer_types: Option<Vec<String>> = r.field(&["layer_types"])?;
    // Gemma 2 alternates sliding and global layers; without `layer_types` every other
    // layer slides, as in HF's default.
    let any_sliding =
        layer_types.as_ref().is_none_or(|t| t.iter().any(|x| x == "sliding_attention"));
    let positive = |key: &str| -> Result<Option<f64>> {
        match r.field::<f64>(&[key])? {
            Some(v) if !(v.is_finite() && v > 0.0) => {
                Err(ModelError::config(r.path, format!("`{key}` = {v} must be positive")))
            }
            v => Ok(v),
        }
    };
    Ok(ModelConfig {
        vocab_size: r.required(&["vocab_size"])?,
        hidden_size: hidden,
        intermediate_size: r.required(&["intermediate_size"])?,
        num_layers: r.required(&["num_hidden_layers"])?,
        num_heads: heads,
        num_kv_heads: r.field(&["num_key_value_heads"])?.unwrap_or(heads),
        head_dim,
        norm_eps: r.field(&["rms_norm_eps"])?.unwrap_or(1e-6),
        rope_theta: r.rope_theta(10000.0, &["rope_theta"])?,
        rotary_dim: head_dim,
        max_positions: r.field(&["max_position_embeddings"])?.unwrap_or(8192),
        activation: r.activation(&["hidden_activation", "hidden_act"], "gelu_pytorch_tanh")?,
        tie_word_embeddings: r.field(&["tie_word_embeddings"])?.unwrap_or(true),
        attention_bias: r.field(&["attention_bias"])?.unwrap_or(false),
        pad_token_id: r.field(&["pad_token_id"])?,
        rope_scaling: r.rope_scaling,
        sliding_window: if any_sliding { r.field(&["sliding_window"])? } else { None },
        attn_logit_softcap: positive("attn_logit_softcapping")?,
        final_logit_softcap: positive("final_logit_softcapping")?,
        attention_scalar: Some(positive("query_pre_attn_scalar")?.unwrap_or(head_dim as f64)),
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(Family::Gemma2)
    })
}

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
        let m = p.linear(gated(gate, up, c.activation), &layer(l, "mlp.down_proj.weight"), None);
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
