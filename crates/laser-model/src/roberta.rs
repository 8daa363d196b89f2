//! RoBERTa (RobertaForMaskedLM): post-LayerNorm bidirectional encoder, learned positions offset
//! by `padding_idx + 1`, and an MLM head `dense → gelu → LayerNorm → decoder` whose decoder is
//! tied to the word embeddings. Liu et al. 2019, *RoBERTa*, arXiv:1907.11692.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, per_layer_matrices, per_layer_tensors};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::layers::{Params, activate, embed, gelu_erf, merge_heads, split_heads};
use crate::matrix::{MatrixInfo, MatrixKind};

/// The config of `model_type` roberta.
pub(crate) fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    Ok(ModelConfig {
        vocab_size: r.required(&["vocab_size"])?,
        hidden_size: hidden,
        intermediate_size: r.required(&["intermediate_size"])?,
        num_layers: r.required(&["num_hidden_layers"])?,
        num_heads: heads,
        num_kv_heads: heads,
        head_dim: hidden / heads.max(1),
        norm_eps: r.field(&["layer_norm_eps"])?.unwrap_or(1e-12),
        max_positions: r.required(&["max_position_embeddings"])?,
        activation: r.activation(&["hidden_act"], "gelu")?,
        tie_word_embeddings: true,
        attention_bias: true,
        mlp_bias: true,
        pad_token_id: Some(r.field(&["pad_token_id"])?.unwrap_or(1)),
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(Family::Roberta)
    })
}

#[derive(Debug, Clone)]
pub(crate) struct Roberta {
    pub(crate) cfg: ModelConfig,
}

fn layer(l: usize, rest: &str) -> String {
    format!("roberta.encoder.layer.{l}.{rest}")
}

const WORDS: &str = "roberta.embeddings.word_embeddings.weight";

impl Architecture for Roberta {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let c = &self.cfg;
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let mut out = vec![
            (WORDS.into(), vec![c.vocab_size, d]),
            ("roberta.embeddings.position_embeddings.weight".into(), vec![c.max_positions, d]),
            ("roberta.embeddings.LayerNorm.weight".into(), vec![d]),
            ("roberta.embeddings.LayerNorm.bias".into(), vec![d]),
            ("lm_head.dense.weight".into(), vec![d, d]),
            ("lm_head.dense.bias".into(), vec![d]),
            ("lm_head.layer_norm.weight".into(), vec![d]),
            ("lm_head.layer_norm.bias".into(), vec![d]),
            ("lm_head.bias".into(), vec![c.vocab_size]),
        ];
        out.extend(per_layer_tensors(
            c.num_layers,
            layer,
            &[
                ("attention.self.query.weight", vec![d, d]),
                ("attention.self.query.bias", vec![d]),
                ("attention.self.key.weight", vec![d, d]),
                ("attention.self.key.bias", vec![d]),
                ("attention.self.value.weight", vec![d, d]),
                ("attention.self.value.bias", vec![d]),
                ("attention.output.dense.weight", vec![d, d]),
                ("attention.output.dense.bias", vec![d]),
                ("attention.output.LayerNorm.weight", vec![d]),
                ("attention.output.LayerNorm.bias", vec![d]),
                ("intermediate.dense.weight", vec![f, d]),
                ("intermediate.dense.bias", vec![f]),
                ("output.dense.weight", vec![d, f]),
                ("output.dense.bias", vec![d]),
                ("output.LayerNorm.weight", vec![d]),
                ("output.LayerNorm.bias", vec![d]),
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
                ("attention.self.query.weight", MatrixKind::Q, [d, d]),
                ("attention.self.key.weight", MatrixKind::K, [d, d]),
                ("attention.self.value.weight", MatrixKind::V, [d, d]),
                ("attention.output.dense.weight", MatrixKind::O, [d, d]),
                ("intermediate.dense.weight", MatrixKind::FcIn, [f, d]),
                ("output.dense.weight", MatrixKind::FcOut, [d, f]),
            ],
        )
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        let (b, t) = (batch.batch, batch.seq);
        let mut x = embed(p.get(WORDS), batch.ids.clone(), b, t)
            + embed(
                p.get("roberta.embeddings.position_embeddings.weight"),
                batch.positions.clone(),
                b,
                t,
            );
        if p.has("roberta.embeddings.token_type_embeddings.weight") {
            // Single-segment inputs: every token has type 0.
            let row0 = p.get("roberta.embeddings.token_type_embeddings.weight").narrow(0, 0, 1);
            x = x + row0.unsqueeze_dim(0);
        }
        p.layer_norm(x, "roberta.embeddings.LayerNorm", self.cfg.norm_eps)
    }

    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let c = &self.cfg;
        let proj = |name: &str| split_heads(p.dense(x.clone(), &layer(l, name)), c.num_heads);
        let a = ctx.attend(
            l,
            proj("attention.self.query"),
            proj("attention.self.key"),
            proj("attention.self.value"),
            1.0 / (c.head_dim as f64).sqrt(),
        );
        let h = p.layer_norm(
            x.clone() + p.dense(merge_heads(a), &layer(l, "attention.output.dense")),
            &layer(l, "attention.output.LayerNorm"),
            self.cfg.norm_eps,
        );
        let inner = activate(p.dense(h.clone(), &layer(l, "intermediate.dense")), c.activation);
        p.layer_norm(
            h + p.dense(inner, &layer(l, "output.dense")),
            &layer(l, "output.LayerNorm"),
            self.cfg.norm_eps,
        )
    }

    fn final_norm(&self, _p: &Params, x: Tensor<3>) -> Tensor<3> {
        x // post-LN encoder: each block already ends in a LayerNorm
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        let h3: Tensor<3> = h.unsqueeze_dim(0);
        let x = gelu_erf(p.dense(h3, "lm_head.dense"));
        let x = p.layer_norm(x, "lm_head.layer_norm", self.cfg.norm_eps);
        let [_, n, d] = x.dims();
        p.matmul_t(x.reshape([n, d]), WORDS) + p.get("lm_head.bias")
    }
}
