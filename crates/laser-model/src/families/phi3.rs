//! Phi-3 (Phi3ForCausalLM): the llama block with two fused projections — `qkv_proj` holds the
//! query, key and value rows stacked (`[(H + 2·KV)·hd, d]`, kind `qkv`), and `gate_up_proj` the
//! gate and up rows stacked (`[2·F, d]`, kind `fc_gate_up`); LASER's edit acts on each fused
//! matrix as stored. RMSNorm, `rotate_half` RoPE on the first `partial_rotary_factor · hd`
//! dimensions, SwiGLU `down(silu(gate) · up)`.
//! Abdin et al. 2024, *Phi-3 Technical Report*, arXiv:2404.14219.

use burn::tensor::Tensor;

use super::llama::Outer;
use serde_json::json;

use crate::arch::{Architecture, BatchInput, Context, FamilyEntry, GgufConfig, GgufForm};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::gguf::arch_keys::ArchMetadata;
use crate::layers::{Params, RotaryLayout, gated, merge_heads, rms_norm, split_heads};
use crate::matrix::MatrixKind;
use crate::weight_path::{Linear, WeightPath, WeightSchema};

pub(crate) const PHI3: FamilyEntry = FamilyEntry {
    family: Family::new("phi3", true),
    model_types: &["phi3"],
    gguf: Some(GgufForm {
        architectures: &["phi3"],
        config: gguf_config,
        tensor_name: gguf_tensor_name,
        restore: GgufForm::stored_as_is,
    }),
    parse_config: |r, _| parse_config(r),
    build: |cfg| Ok(Box::new(Phi3::new(cfg))),
};

/// A `phi3` GGUF's keys: the rotated share of each head as `partial_rotary_factor`.
fn gguf_config(m: &ArchMetadata<'_>) -> Result<GgufConfig> {
    let (rotary_dim, head_dim) = (m.rotary_dim, m.head_dim);
    if rotary_dim > head_dim || head_dim == 0 {
        return Err(ModelError::config(
            m.path,
            format!("GGUF rotary width {rotary_dim} exceeds the head width {head_dim}"),
        ));
    }
    let extra = json!({
        "architectures": ["Phi3ForCausalLM"],
        "model_type": "phi3",
        "hidden_act": "silu",
        "partial_rotary_factor": rotary_dim as f64 / head_dim as f64,
        "original_max_position_embeddings":
            m.u64("rope.scaling.original_context_length").or(m.u64("context_length")),
        "sliding_window": m.window,
    });
    Ok((extra, Vec::new()))
}

/// Phi-3's fused tensors: `attn_qkv` and `ffn_up` (its gate and up rows).
fn gguf_tensor_name(part: &str) -> Option<&'static str> {
    match part {
        "attn_qkv.weight" => Some("self_attn.qkv_proj.weight"),
        "ffn_up.weight" => Some("mlp.gate_up_proj.weight"),
        _ => None,
    }
}

/// The config of `model_type` phi3.
fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = r.head_dim(hidden, heads)?;
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
        ..ModelConfig::defaults_for(PHI3.family)
    })
}

/// One Phi-3 block's tensors.
#[derive(Debug, Clone)]
struct Block {
    input_norm: String,
    qkv: Linear,
    o: Linear,
    post_attention_norm: String,
    gate_up: Linear,
    down: Linear,
}

impl Block {
    fn new(b: &WeightPath<'_>, c: &ModelConfig) -> Self {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let qkv_rows = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
        let (attn, mlp) = (b.pp("self_attn"), b.pp("mlp"));
        Self {
            input_norm: b.pp("input_layernorm").tensor("weight", &[d]),
            post_attention_norm: b.pp("post_attention_layernorm").tensor("weight", &[d]),
            qkv: attn.pp("qkv_proj").linear([qkv_rows, d], Some(MatrixKind::Qkv), false),
            o: attn.pp("o_proj").linear([d, c.num_heads * c.head_dim], Some(MatrixKind::O), false),
            gate_up: mlp.pp("gate_up_proj").linear([2 * f, d], Some(MatrixKind::FcGateUp), false),
            down: mlp.pp("down_proj").linear([d, f], Some(MatrixKind::FcOut), false),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Phi3 {
    cfg: ModelConfig,
    weights: WeightSchema,
    outer: Outer,
    blocks: Vec<Block>,
}

impl Phi3 {
    fn new(cfg: ModelConfig) -> Self {
        let (weights, outer, blocks) = Outer::model(&cfg, Block::new);
        Self { cfg, weights, outer, blocks }
    }
}

impl Architecture for Phi3 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn weights(&self) -> &WeightSchema {
        &self.weights
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Half)
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        self.outer.embed(p, batch)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let (qd, kvd) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let h = rms_norm(x.clone(), p.vec3(&b.input_norm), c.norm_eps);
        let qkv = b.qkv.forward(p, h);
        let q = ctx.rotate(split_heads(qkv.clone().narrow(2, 0, qd), c.num_heads));
        let k = ctx.rotate(split_heads(qkv.clone().narrow(2, qd, kvd), c.num_kv_heads));
        let v = split_heads(qkv.narrow(2, qd + kvd, kvd), c.num_kv_heads);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (c.head_dim as f64).sqrt()));
        let x = x + b.o.forward(p, a);
        let h = rms_norm(x.clone(), p.vec3(&b.post_attention_norm), c.norm_eps);
        let gate_up = b.gate_up.forward(p, h);
        let f = c.intermediate_size;
        let gate = gate_up.clone().narrow(2, 0, f);
        let up = gate_up.narrow(2, f, f);
        x + b.down.forward(p, gated(gate, up, c.activation))
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        rms_norm(x, p.vec3(&self.outer.norm), self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        self.outer.head(p, h)
    }
}
