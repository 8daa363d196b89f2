//! Phi-3 (Phi3ForCausalLM): the llama block with two fused projections — `qkv_proj` holds the
//! query, key and value rows stacked (`[(H + 2·KV)·hd, d]`, kind `qkv`), and `gate_up_proj` the
//! gate and up rows stacked (`[2·F, d]`, kind `fc_gate_up`); LASER's edit acts on each fused
//! matrix as stored. RMSNorm, `rotate_half` RoPE on the first `partial_rotary_factor · hd`
//! dimensions, SwiGLU `down(silu(gate) · up)`.
//! Abdin et al. 2024, *Phi-3 Technical Report*, arXiv:2404.14219.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices, per_layer_tensors};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::layers::{Params, RotaryLayout, gated, merge_heads, rms_norm, split_heads};
use crate::llama::{layer, lm_head, outer_tensors, token_embedding};
use crate::matrix::{MatrixInfo, MatrixKind};

/// The config of `model_type` phi3.
pub(crate) fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = hidden / heads.max(1);
    let pct =
        r.field::<f64>(&["partial_rotary_factor"])?.or(r.partial_rotary_factor()).unwrap_or(1.0);
    if !(pct > 0.0 && pct <= 1.0) {
        return Err(ModelError::config(
            r.path,
            format!("partial_rotary_factor {pct} is outside (0, 1]"),
        ));
    }
    Ok(ModelConfig {
        vocab_size: r.required(&["vocab_size"])?,
        hidden_size: hidden,
        intermediate_size: r.required(&["intermediate_size"])?,
        num_layers: r.required(&["num_hidden_layers"])?,
        num_heads: heads,
        num_kv_heads: r.field(&["num_key_value_heads"])?.unwrap_or(heads),
        head_dim,
        norm_eps: r.field(&["rms_norm_eps"])?.unwrap_or(1e-5),
        rope_theta: r.rope_theta(10000.0, &["rope_theta"])?,
        rotary_dim: (head_dim as f64 * pct) as usize,
        max_positions: r.field(&["max_position_embeddings"])?.unwrap_or(4096),
        activation: r.activation(&["hidden_act"], "silu")?,
        tie_word_embeddings: r.field(&["tie_word_embeddings"])?.unwrap_or(false),
        pad_token_id: r.field(&["pad_token_id"])?,
        rope_scaling: r.rope_scaling,
        sliding_window: r.field(&["sliding_window"])?,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(Family::Phi3)
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Phi3 {
    pub(crate) cfg: ModelConfig,
}

impl Phi3 {
    /// (rows of `qkv_proj`, rows of `gate_up_proj`).
    fn fused_rows(&self) -> (usize, usize) {
        let c = &self.cfg;
        ((c.num_heads + 2 * c.num_kv_heads) * c.head_dim, 2 * c.intermediate_size)
    }
}

impl Architecture for Phi3 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Half)
    }

    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.cfg;
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (qkv, gate_up) = self.fused_rows();
        let mut out = outer_tensors(c);
        out.extend(per_layer_tensors(
            c.num_layers,
            layer,
            &[
                ("input_layernorm.weight", vec![d]),
                ("post_attention_layernorm.weight", vec![d]),
                ("self_attn.qkv_proj.weight", vec![qkv, d]),
                ("self_attn.o_proj.weight", vec![d, c.num_heads * c.head_dim]),
                ("mlp.gate_up_proj.weight", vec![gate_up, d]),
                ("mlp.down_proj.weight", vec![d, f]),
            ],
        ));
        out
    }

    fn editable(&self) -> Vec<MatrixInfo> {
        let c = &self.cfg;
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (qkv, gate_up) = self.fused_rows();
        per_layer_matrices(
            c.num_layers,
            layer,
            &[
                ("self_attn.qkv_proj.weight", MatrixKind::Qkv, [qkv, d]),
                ("self_attn.o_proj.weight", MatrixKind::O, [d, c.num_heads * c.head_dim]),
                ("mlp.gate_up_proj.weight", MatrixKind::FcGateUp, [gate_up, d]),
                ("mlp.down_proj.weight", MatrixKind::FcOut, [d, f]),
            ],
        )
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        token_embedding(p, batch)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let c = &self.cfg;
        let (qd, kvd) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let h = rms_norm(x.clone(), p.vec3(&layer(l, "input_layernorm.weight")), c.norm_eps);
        let qkv = p.linear(h, &layer(l, "self_attn.qkv_proj.weight"), None);
        let q = ctx.rotate(split_heads(qkv.clone().narrow(2, 0, qd), c.num_heads));
        let k = ctx.rotate(split_heads(qkv.clone().narrow(2, qd, kvd), c.num_kv_heads));
        let v = split_heads(qkv.narrow(2, qd + kvd, kvd), c.num_kv_heads);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (c.head_dim as f64).sqrt()));
        let x = x + p.linear(a, &layer(l, "self_attn.o_proj.weight"), None);
        let h =
            rms_norm(x.clone(), p.vec3(&layer(l, "post_attention_layernorm.weight")), c.norm_eps);
        let gate_up = p.linear(h, &layer(l, "mlp.gate_up_proj.weight"), None);
        let f = c.intermediate_size;
        let gate = gate_up.clone().narrow(2, 0, f);
        let up = gate_up.narrow(2, f, f);
        x + p.linear(gated(gate, up, c.activation), &layer(l, "mlp.down_proj.weight"), None)
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        rms_norm(x, p.vec3("model.norm.weight"), self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        lm_head(p, h, &self.cfg)
    }
}
