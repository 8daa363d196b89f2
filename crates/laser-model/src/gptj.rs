//! GPT-J (GPTJForCausalLM): one LayerNorm feeding attention and MLP in parallel, interleaved
//! ("rotate every two") rotary embeddings on the first `rotary_dim` dimensions of each head,
//! bias-free q/k/v/o, and an untied LM head with bias.
//! Wang & Komatsuzaki 2021, *GPT-J-6B: A 6 Billion Parameter Autoregressive Language Model*.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices, per_layer_tensors};
use crate::config::ModelConfig;
use crate::layers::{Params, RotaryLayout, activate, embed, layer_norm, merge_heads, split_heads};
use crate::matrix::{MatrixInfo, MatrixKind};

#[derive(Debug, Clone)]
pub(crate) struct Gptj {
    pub(crate) cfg: ModelConfig,
}

fn layer(l: usize, rest: &str) -> String {
    format!("transformer.h.{l}.{rest}")
}

impl Architecture for Gptj {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Interleaved)
    }

    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.cfg;
        let (d, f, v) = (c.hidden_size, c.intermediate_size, c.vocab_size);
        let mut out = vec![
            ("transformer.wte.weight".into(), vec![v, d]),
            ("transformer.ln_f.weight".into(), vec![d]),
            ("transformer.ln_f.bias".into(), vec![d]),
            ("lm_head.weight".into(), vec![v, d]),
            ("lm_head.bias".into(), vec![v]),
        ];
        out.extend(per_layer_tensors(
            c.num_layers,
            layer,
            &[
                ("ln_1.weight", vec![d]),
                ("ln_1.bias", vec![d]),
                ("attn.q_proj.weight", vec![d, d]),
                ("attn.k_proj.weight", vec![d, d]),
                ("attn.v_proj.weight", vec![d, d]),
                ("attn.out_proj.weight", vec![d, d]),
                ("mlp.fc_in.weight", vec![f, d]),
                ("mlp.fc_in.bias", vec![f]),
                ("mlp.fc_out.weight", vec![d, f]),
                ("mlp.fc_out.bias", vec![d]),
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
                ("attn.q_proj.weight", MatrixKind::Q, [d, d]),
                ("attn.k_proj.weight", MatrixKind::K, [d, d]),
                ("attn.v_proj.weight", MatrixKind::V, [d, d]),
                ("attn.out_proj.weight", MatrixKind::O, [d, d]),
                ("mlp.fc_in.weight", MatrixKind::FcIn, [f, d]),
                ("mlp.fc_out.weight", MatrixKind::FcOut, [d, f]),
            ],
        )
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        embed(p.get("transformer.wte.weight"), batch.ids.clone(), batch.batch, batch.seq)
    }

    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let c = &self.cfg;
        let h = layer_norm(
            x.clone(),
            p.vec3(&layer(l, "ln_1.weight")),
            p.vec3(&layer(l, "ln_1.bias")),
            c.norm_eps,
        );
        let proj =
            |name: &str| split_heads(p.linear(h.clone(), &layer(l, name), None), c.num_heads);
        let q = ctx.rotate(proj("attn.q_proj.weight"));
        let k = ctx.rotate(proj("attn.k_proj.weight"));
        let v = proj("attn.v_proj.weight");
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (c.head_dim as f64).sqrt()));
        let attn_out = p.linear(a, &layer(l, "attn.out_proj.weight"), None);
        let inner = activate(
            p.linear(h, &layer(l, "mlp.fc_in.weight"), Some(p.vec3(&layer(l, "mlp.fc_in.bias")))),
            c.activation,
        );
        let mlp_out = p.linear(
            inner,
            &layer(l, "mlp.fc_out.weight"),
            Some(p.vec3(&layer(l, "mlp.fc_out.bias"))),
        );
        x + attn_out + mlp_out
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
        p.matmul_t(h, "lm_head.weight") + p.get("lm_head.bias")
    }
}
