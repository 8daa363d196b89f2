//! Llama (LlamaForCausalLM) and the families that keep its layout: SmolLM2, TinyLlama, Llama-2,
//! Llama 3.x (`llama3` RoPE frequency scaling, in `layers::Rotary`), Mistral (a sliding window,
//! enforced by the model's position limit), Qwen2 / Qwen2.5 (biases on q, k, v) and Qwen3
//! (per-head RMSNorm on q and k before RoPE, explicit `head_dim`).
//!
//! Pre-norm blocks with RMSNorm, grouped-query attention with HF `rotate_half` RoPE, a SwiGLU MLP
//! `down(silu(gate(x)) · up(x))`, and an LM head that may be tied to the token embedding.
//! Touvron et al. 2023, *LLaMA: Open and Efficient Foundation Language Models*, arXiv:2302.13971.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::layers::{
    Params, RotaryLayout, embed, gated, merge_heads, rms_norm, rms_norm_heads, split_heads,
};
use crate::matrix::{MatrixInfo, MatrixKind};

/// The config of `model_type` llama, mistral, qwen2 or qwen3.
pub(crate) fn parse_config(r: &ConfigReader<'_>, model_type: &str) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = r.field(&["head_dim"])?.unwrap_or(hidden / heads.max(1));
    let family = match model_type {
        "mistral" => Family::Mistral,
        "qwen2" => Family::Qwen2,
        "qwen3" => Family::Qwen3,
        _ => Family::Llama,
    };
    // Qwen2 and Qwen3 use a window only when `use_sliding_window` says so; Mistral
    // whenever `sliding_window` is set.
    let window_on = match family {
        Family::Qwen2 | Family::Qwen3 => r.field(&["use_sliding_window"])?.unwrap_or(false),
        _ => true,
    };
    let sliding_window: Option<usize> =
        if window_on { r.field(&["sliding_window"])? } else { None };
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
        max_positions: r.field(&["max_position_embeddings"])?.unwrap_or(2048),
        activation: r.activation(&["hidden_act"], "silu")?,
        tie_word_embeddings: r.field(&["tie_word_embeddings"])?.unwrap_or(false),
        attention_bias: r.field(&["attention_bias"])?.unwrap_or(false),
        mlp_bias: r.field(&["mlp_bias"])?.unwrap_or(false),
        pad_token_id: r.field(&["pad_token_id"])?,
        rope_scaling: r.rope_scaling,
        qkv_bias: family == Family::Qwen2,
        qk_norm: family == Family::Qwen3,
        sliding_window,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(family)
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Llama {
    pub(crate) cfg: ModelConfig,
}

pub(crate) fn layer(l: usize, rest: &str) -> String {
    format!("model.layers.{l}.{rest}")
}

/// The editable matrices of one llama-layout block (suffix, kind, HF shape); Gemma 2 shares them.
pub(crate) fn block_matrices(c: &ModelConfig) -> Vec<(&'static str, MatrixKind, [usize; 2])> {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let (qd, kvd) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
    vec![
        ("self_attn.q_proj.weight", MatrixKind::Q, [qd, d]),
        ("self_attn.k_proj.weight", MatrixKind::K, [kvd, d]),
        ("self_attn.v_proj.weight", MatrixKind::V, [kvd, d]),
        ("self_attn.o_proj.weight", MatrixKind::O, [d, qd]),
        ("mlp.gate_proj.weight", MatrixKind::FcIn, [f, d]),
        ("mlp.up_proj.weight", MatrixKind::FcUp, [f, d]),
        ("mlp.down_proj.weight", MatrixKind::FcOut, [d, f]),
    ]
}

/// The tensors outside the blocks of the llama layout (Phi-3 and Gemma 2 too): the token
/// embedding, the final norm, and the LM head unless it is tied to the embedding.
pub(crate) fn outer_tensors(c: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (d, v) = (c.hidden_size, c.vocab_size);
    let mut out = vec![
        ("model.embed_tokens.weight".into(), vec![v, d]),
        ("model.norm.weight".into(), vec![d]),
    ];
    if !c.tie_word_embeddings {
        out.push(("lm_head.weight".into(), vec![v, d]));
    }
    out
}

/// The llama layout's LM head: `[N, d]` → `[N, V]` through the tied embedding or `lm_head`.
pub(crate) fn lm_head(p: &Params, h: Tensor<2>, c: &ModelConfig) -> Tensor<2> {
    let w = if c.tie_word_embeddings { "model.embed_tokens.weight" } else { "lm_head.weight" };
    p.matmul_t(h, w)
}

/// The llama layout's token embedding.
pub(crate) fn token_embedding(p: &Params, batch: &BatchInput) -> Tensor<3> {
    embed(p.get("model.embed_tokens.weight"), batch.ids.clone(), batch.batch, batch.seq)
}

impl Llama {
    fn bias(&self, p: &Params, on: bool, l: usize, name: &str) -> Option<Tensor<3>> {
        on.then(|| p.vec3(&layer(l, name)))
    }

    /// Whether projection `name` (`q_proj`, …, `o_proj`) has a bias.
    fn attention_bias(&self, name: &str) -> bool {
        self.cfg.attention_bias || (self.cfg.qkv_bias && name != "o_proj")
    }
}

impl Architecture for Llama {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Half)
    }

    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.cfg;
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (qd, kvd) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let mut out = outer_tensors(c);
        for l in 0..c.num_layers {
            out.push((layer(l, "input_layernorm.weight"), vec![d]));
            out.push((layer(l, "post_attention_layernorm.weight"), vec![d]));
            for (name, rows, cols) in
                [("q_proj", qd, d), ("k_proj", kvd, d), ("v_proj", kvd, d), ("o_proj", d, qd)]
            {
                out.push((layer(l, &format!("self_attn.{name}.weight")), vec![rows, cols]));
                if self.attention_bias(name) {
                    out.push((layer(l, &format!("self_attn.{name}.bias")), vec![rows]));
                }
            }
            if c.qk_norm {
                for name in ["q_norm", "k_norm"] {
                    out.push((layer(l, &format!("self_attn.{name}.weight")), vec![c.head_dim]));
                }
            }
            for (name, rows, cols) in [("gate_proj", f, d), ("up_proj", f, d), ("down_proj", d, f)]
            {
                out.push((layer(l, &format!("mlp.{name}.weight")), vec![rows, cols]));
                if c.mlp_bias {
                    out.push((layer(l, &format!("mlp.{name}.bias")), vec![rows]));
                }
            }
        }
        out
    }

    fn editable(&self) -> Vec<MatrixInfo> {
        per_layer_matrices(self.cfg.num_layers, layer, &block_matrices(&self.cfg))
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        token_embedding(p, batch)
    }

    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let c = &self.cfg;
        let h = rms_norm(x.clone(), p.vec3(&layer(l, "input_layernorm.weight")), c.norm_eps);
        let proj = |name: &str, input: Tensor<3>| {
            p.linear(
                input,
                &layer(l, &format!("self_attn.{name}.weight")),
                self.bias(p, self.attention_bias(name), l, &format!("self_attn.{name}.bias")),
            )
        };
        let heads = |name: &str, n: usize| {
            let t = split_heads(proj(name, h.clone()), n);
            let norm = format!("self_attn.{}_norm.weight", &name[..1]);
            if c.qk_norm { rms_norm_heads(t, p.vec4(&layer(l, &norm)), c.norm_eps) } else { t }
        };
        let q = ctx.rotate(heads("q_proj", c.num_heads));
        let k = ctx.rotate(heads("k_proj", c.num_kv_heads));
        let v = split_heads(proj("v_proj", h.clone()), c.num_kv_heads);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (c.head_dim as f64).sqrt()));
        let x = x + proj("o_proj", a);
        let h =
            rms_norm(x.clone(), p.vec3(&layer(l, "post_attention_layernorm.weight")), c.norm_eps);
        let mb = c.mlp_bias;
        let gate = p.linear(
            h.clone(),
            &layer(l, "mlp.gate_proj.weight"),
            self.bias(p, mb, l, "mlp.gate_proj.bias"),
        );
        let up =
            p.linear(h, &layer(l, "mlp.up_proj.weight"), self.bias(p, mb, l, "mlp.up_proj.bias"));
        x + p.linear(
            gated(gate, up, c.activation),
            &layer(l, "mlp.down_proj.weight"),
            self.bias(p, mb, l, "mlp.down_proj.bias"),
        )
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        rms_norm(x, p.vec3("model.norm.weight"), self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        lm_head(p, h, &self.cfg)
    }
}
