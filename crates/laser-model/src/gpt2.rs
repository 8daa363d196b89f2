//! GPT-2 (GPT2LMHeadModel): learned positions, pre-LayerNorm blocks, fused `c_attn`, GELU MLP,
//! LM head tied to the token embedding. Weights are `Conv1D`, stored `[in, out]` and used as is.
//! Radford et al. 2019, *Language Models are Unsupervised Multitask Learners*.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices, per_layer_tensors};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::layers::{Params, activate, embed, layer_norm, merge_heads, split_heads};
use crate::matrix::{MatrixInfo, MatrixKind};

/// The config of `model_type` gpt2 or gptj (GPT-J keeps GPT-2's config keys, `n_embd`, `n_head`,
/// …, and adds `rotary_dim`).
pub(crate) fn parse_config(r: &ConfigReader<'_>, model_type: &str) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["n_embd", "hidden_size"])?;
    let heads: usize = r.required(&["n_head", "num_attention_heads"])?;
    let gptj = model_type == "gptj";
    let head_dim = hidden / heads.max(1);
    Ok(ModelConfig {
        vocab_size: r.required(&["vocab_size"])?,
        hidden_size: hidden,
        intermediate_size: r.field(&["n_inner"])?.unwrap_or(hidden.saturating_mul(4)),
        num_layers: r.required(&["n_layer", "num_hidden_layers"])?,
        num_heads: heads,
        num_kv_heads: heads,
        head_dim,
        norm_eps: r.field(&["layer_norm_epsilon"])?.unwrap_or(1e-5),
        rope_theta: 10000.0,
        rotary_dim: if gptj { r.field(&["rotary_dim"])?.unwrap_or(head_dim) } else { 0 },
        max_positions: r.field(&["n_positions", "max_position_embeddings"])?.unwrap_or(1024),
        activation: r.activation(&["activation_function"], "gelu_new")?,
        tie_word_embeddings: r.field(&["tie_word_embeddings"])?.unwrap_or(!gptj),
        attention_bias: !gptj,
        mlp_bias: true,
        parallel_residual: gptj,
        pad_token_id: r.field(&["pad_token_id"])?,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(if gptj { Family::Gptj } else { Family::Gpt2 })
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Gpt2 {
    pub(crate) cfg: ModelConfig,
}

fn layer(l: usize, rest: &str) -> String {
    format!("transformer.h.{l}.{rest}")
}

impl Architecture for Gpt2 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.cfg;
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let mut out = vec![
            ("transformer.wte.weight".into(), vec![c.vocab_size, d]),
            ("transformer.wpe.weight".into(), vec![c.max_positions, d]),
            ("transformer.ln_f.weight".into(), vec![d]),
            ("transformer.ln_f.bias".into(), vec![d]),
        ];
        if !c.tie_word_embeddings {
            out.push(("lm_head.weight".into(), vec![c.vocab_size, d]));
        }
        out.extend(per_layer_tensors(
            c.num_layers,
            layer,
            &[
                ("ln_1.weight", vec![d]),
                ("ln_1.bias", vec![d]),
                ("attn.c_attn.weight", vec![d, 3 * d]),
                ("attn.c_attn.bias", vec![3 * d]),
                ("attn.c_proj.weight", vec![d, d]),
                ("attn.c_proj.bias", vec![d]),
                ("ln_2.weight", vec![d]),
                ("ln_2.bias", vec![d]),
                ("mlp.c_fc.weight", vec![d, f]),
                ("mlp.c_fc.bias", vec![f]),
                ("mlp.c_proj.weight", vec![f, d]),
                ("mlp.c_proj.bias", vec![d]),
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
                ("attn.c_attn.weight", MatrixKind::Qkv, [d, 3 * d]),
                ("attn.c_proj.weight", MatrixKind::O, [d, d]),
                ("mlp.c_fc.weight", MatrixKind::FcIn, [d, f]),
                ("mlp.c_proj.weight", MatrixKind::FcOut, [f, d]),
            ],
        )
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        embed(p.get("transformer.wte.weight"), batch.ids.clone(), batch.batch, batch.seq)
            + embed(
                p.get("transformer.wpe.weight"),
                batch.positions.clone(),
                batch.batch,
                batch.seq,
            )
    }

    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let c = &self.cfg;
        let d = c.hidden_size;
        let ln = |x: Tensor<3>, n: &str| {
            layer_norm(
                x,
                p.vec3(&layer(l, &format!("{n}.weight"))),
                p.vec3(&layer(l, &format!("{n}.bias"))),
                c.norm_eps,
            )
        };
        let conv = |x: Tensor<3>, n: &str| {
            p.conv1d(x, &layer(l, &format!("{n}.weight")), p.vec3(&layer(l, &format!("{n}.bias"))))
        };
        let qkv = conv(ln(x.clone(), "ln_1"), "attn.c_attn");
        let q = split_heads(qkv.clone().narrow(2, 0, d), c.num_heads);
        let k = split_heads(qkv.clone().narrow(2, d, d), c.num_heads);
        let v = split_heads(qkv.narrow(2, 2 * d, d), c.num_heads);
        let scale = if c.raw.get("scale_attn_weights").and_then(|v| v.as_bool()).unwrap_or(true) {
            1.0 / (c.head_dim as f64).sqrt()
        } else {
            1.0
        };
        let a = merge_heads(ctx.attend(l, q, k, v, scale));
        let x = x + conv(a, "attn.c_proj");
        let h = activate(conv(ln(x.clone(), "ln_2"), "mlp.c_fc"), c.activation);
        x + conv(h, "mlp.c_proj")
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        layer_norm(
            x,
            p.vec3("transformer.ln_f.weight"),
            p.vec3("transformer.ln_f.bias"),
            self.cfg.norm_eps,
        )
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        let w =
            if self.cfg.tie_word_embeddings { "transformer.wte.weight" } else { "lm_head.weight" };
        p.matmul_t(h, w)
    }
}
