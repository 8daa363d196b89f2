//! GPT-NeoX / Pythia (GPTNeoXForCausalLM): fused per-head `query_key_value` (each head's q, k, v
//! contiguous), `rotate_half` rotary on the first `rotary_pct · head_dim` dimensions, LayerNorm,
//! optional parallel residual, untied head `embed_out`.
//! Black et al. 2022, *GPT-NeoX-20B*, arXiv:2204.06745; Biderman et al. 2023, *Pythia*, arXiv:2304.01373.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices, per_layer_tensors};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::layers::{Params, RotaryLayout, activate, embed, merge_heads};
use crate::matrix::{MatrixInfo, MatrixKind};

/// The config of `model_type` gpt_neox.
pub(crate) fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = hidden / heads.max(1);
    let pct = r.field::<f64>(&["rotary_pct"])?.or(r.partial_rotary_factor()).unwrap_or(0.25);
    Ok(ModelConfig {
        vocab_size: r.required(&["vocab_size"])?,
        hidden_size: hidden,
        intermediate_size: r.required(&["intermediate_size"])?,
        num_layers: r.required(&["num_hidden_layers"])?,
        num_heads: heads,
        num_kv_heads: heads,
        head_dim,
        norm_eps: r.field(&["layer_norm_eps"])?.unwrap_or(1e-5),
        rope_theta: r.rope_theta(10000.0, &["rotary_emb_base", "rope_theta"])?,
        rotary_dim: (head_dim as f64 * pct) as usize,
        max_positions: r.field(&["max_position_embeddings"])?.unwrap_or(2048),
        activation: r.activation(&["hidden_act"], "gelu")?,
        tie_word_embeddings: r.field(&["tie_word_embeddings"])?.unwrap_or(false),
        attention_bias: r.field(&["attention_bias"])?.unwrap_or(true),
        mlp_bias: true,
        parallel_residual: r.field(&["use_parallel_residual"])?.unwrap_or(true),
        pad_token_id: r.field(&["pad_token_id"])?,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(Family::GptNeox)
    })
}

#[derive(Debug, Clone)]
pub(crate) struct GptNeox {
    pub(crate) cfg: ModelConfig,
}

fn layer(l: usize, rest: &str) -> String {
    format!("gpt_neox.layers.{l}.{rest}")
}

impl Architecture for GptNeox {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Half)
    }

    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.cfg;
        let (d, f, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
        let mut out = vec![
            ("gpt_neox.embed_in.weight".into(), vec![v, d]),
            ("gpt_neox.final_layer_norm.weight".into(), vec![d]),
            ("gpt_neox.final_layer_norm.bias".into(), vec![d]),
            ("embed_out.weight".into(), vec![v, d]),
        ];
        out.extend(per_layer_tensors(
            c.num_layers,
            layer,
            &[
                ("input_layernorm.weight", vec![d]),
                ("input_layernorm.bias", vec![d]),
                ("post_attention_layernorm.weight", vec![d]),
                ("post_attention_layernorm.bias", vec![d]),
                ("attention.query_key_value.weight", vec![3 * d, d]),
                ("attention.query_key_value.bias", vec![3 * d]),
                ("attention.dense.weight", vec![d, d]),
                ("attention.dense.bias", vec![d]),
                ("mlp.dense_h_to_4h.weight", vec![f, d]),
                ("mlp.dense_h_to_4h.bias", vec![f]),
                ("mlp.dense_4h_to_h.weight", vec![d, f]),
                ("mlp.dense_4h_to_h.bias", vec![d]),
            ],
        ));
        out
    }

    fn editable(&self) -> Vec<MatrixInfo> {
        let (d, f) = (self.cfg.hidden_size, self.cfg.intermediate_size);
        per_layer_matrices(
            self.cfg.num_layers,
            layer,
            &[
                ("attention.query_key_value.weight", MatrixKind::Qkv, [3 * d, d]),
                ("attention.dense.weight", MatrixKind::O, [d, d]),
                ("mlp.dense_h_to_4h.weight", MatrixKind::FcIn, [f, d]),
                ("mlp.dense_4h_to_h.weight", MatrixKind::FcOut, [d, f]),
            ],
        )
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        embed(p.get("gpt_neox.embed_in.weight"), batch.ids.clone(), batch.batch, batch.seq)
    }

    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let c = &self.cfg;
        let (heads, hd) = (c.num_heads, c.head_dim);
        let [b, t, _] = x.dims();
        let h = p.layer_norm(x.clone(), &layer(l, "input_layernorm"), self.cfg.norm_eps);
        // [B, T, 3D] → [B, H, T, 3·hd]: each head holds its q, k, v side by side.
        let qkv = p
            .dense(h, &layer(l, "attention.query_key_value"))
            .reshape([b, t, heads, 3 * hd])
            .swap_dims(1, 2);
        let q = ctx.rotate(qkv.clone().narrow(3, 0, hd));
        let k = ctx.rotate(qkv.clone().narrow(3, hd, hd));
        let v = qkv.narrow(3, 2 * hd, hd);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (hd as f64).sqrt()));
        let attn_out = p.dense(a, &layer(l, "attention.dense"));
        let mlp = |x: Tensor<3>| {
            let h = p.layer_norm(x, &layer(l, "post_attention_layernorm"), self.cfg.norm_eps);
            let inner = activate(p.dense(h, &layer(l, "mlp.dense_h_to_4h")), c.activation);
            p.dense(inner, &layer(l, "mlp.dense_4h_to_h"))
        };
        if c.parallel_residual {
            x.clone() + attn_out + mlp(x)
        } else {
            let x = x + attn_out;
            x.clone() + mlp(x)
        }
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        p.layer_norm(x, "gpt_neox.final_layer_norm", self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        p.matmul_t(h, "embed_out.weight")
    }
}
