//! RoBERTa (RobertaForMaskedLM): post-LayerNorm bidirectional encoder, learned positions offset
//! by `padding_idx + 1`, and an MLM head `dense → gelu → LayerNorm → decoder` whose decoder is
//! tied to the word embeddings. Liu et al. 2019, *RoBERTa*, arXiv:1907.11692.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, FamilyEntry};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::layers::{Params, activate, embed, gelu_erf, merge_heads, split_heads};
use crate::matrix::MatrixKind;
use crate::weight_path::{LayerNorm, Linear, WeightPath, WeightSchema};

pub(crate) const ROBERTA: FamilyEntry = FamilyEntry {
    family: Family::new("roberta", false),
    model_types: &["roberta"],
    gguf: None,
    parse_config: |r, _| parse_config(r),
    build: |cfg| Ok(Box::new(Roberta::new(cfg))),
};

/// The config of `model_type` roberta.
fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = r.head_dim(hidden, heads)?;
    Ok(ModelConfig {
        vocab_size: r.required(&["vocab_size"])?,
        hidden_size: hidden,
        intermediate_size: r.required(&["intermediate_size"])?,
        num_layers: r.required(&["num_hidden_layers"])?,
        num_heads: heads,
        num_kv_heads: heads,
        head_dim,
        norm_eps: r.field(&["layer_norm_eps"])?.unwrap_or(1e-12),
        max_positions: r.required(&["max_position_embeddings"])?,
        activation: r.activation(&["hidden_act"], "gelu")?,
        tie_word_embeddings: true,
        pad_token_id: Some(r.field(&["pad_token_id"])?.unwrap_or(1)),
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(ROBERTA.family)
    })
}

/// One RoBERTa encoder layer's tensors.
#[derive(Debug, Clone)]
struct Block {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Block {
    fn new(b: &WeightPath<'_>, c: &ModelConfig) -> Self {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (attn, attn_out) = (b.pp("attention").pp("self"), b.pp("attention").pp("output"));
        let proj = |name: &str, kind| attn.pp(name).linear([d, d], Some(kind), true);
        Self {
            query: proj("query", MatrixKind::Q),
            key: proj("key", MatrixKind::K),
            value: proj("value", MatrixKind::V),
            attention_out: attn_out.pp("dense").linear([d, d], Some(MatrixKind::O), true),
            attention_norm: attn_out.pp("LayerNorm").layer_norm(d),
            intermediate: b.pp("intermediate").pp("dense").linear(
                [f, d],
                Some(MatrixKind::FcIn),
                true,
            ),
            output: b.pp("output").pp("dense").linear([d, f], Some(MatrixKind::FcOut), true),
            output_norm: b.pp("output").pp("LayerNorm").layer_norm(d),
        }
    }
}

/// The embeddings' and the MLM head's tensors.
#[derive(Debug, Clone)]
struct Outer {
    words: String,
    positions: String,
    /// Some checkpoints carry token-type embeddings (single-segment inputs read row 0).
    token_types: String,
    embed_norm: LayerNorm,
    head_dense: Linear,
    head_norm: LayerNorm,
    head_bias: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Roberta {
    cfg: ModelConfig,
    weights: WeightSchema,
    outer: Outer,
    blocks: Vec<Block>,
}

impl Roberta {
    fn new(cfg: ModelConfig) -> Self {
        let (d, v) = (cfg.hidden_size, cfg.vocab_size);
        let (weights, (outer, blocks)) = WeightSchema::build(|root| {
            let emb = root.pp("roberta").pp("embeddings");
            let head = root.pp("lm_head");
            let outer = Outer {
                words: emb.pp("word_embeddings").tensor("weight", &[v, d]),
                positions: emb.pp("position_embeddings").tensor("weight", &[cfg.max_positions, d]),
                token_types: emb.pp("token_type_embeddings").optional_rows("weight", d),
                embed_norm: emb.pp("LayerNorm").layer_norm(d),
                head_dense: head.pp("dense").linear([d, d], None, true),
                head_norm: head.pp("layer_norm").layer_norm(d),
                head_bias: head.tensor("bias", &[v]),
            };
            let layers = root.pp("roberta").pp("encoder").pp("layer");
            let blocks = (0..cfg.num_layers).map(|l| Block::new(&layers.layer(l), &cfg)).collect();
            (outer, blocks)
        });
        Self { cfg, weights, outer, blocks }
    }
}

impl Architecture for Roberta {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn weights(&self) -> &WeightSchema {
        &self.weights
    }

    /// The table holds `padding_idx + 1` positions before the first real one.
    fn position_table(&self) -> Option<usize> {
        let pad = self.cfg.pad_token_id.unwrap_or(1) as usize;
        Some(self.cfg.max_positions.saturating_sub(pad + 1))
    }

    /// RoBERTa numbers real tokens from `padding_idx + 1`; padding keeps `padding_idx`.
    fn position_id(&self, position: usize, real: bool) -> i64 {
        let pad = i64::from(self.cfg.pad_token_id.unwrap_or(0));
        if real { pad + 1 + position as i64 } else { pad }
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        let (b, t, o) = (batch.batch, batch.seq, &self.outer);
        let mut x = embed(p.get(&o.words), batch.ids.clone(), b, t)
            + embed(p.get(&o.positions), batch.positions.clone(), b, t);
        if p.has(&o.token_types) {
            // Single-segment inputs: every token has type 0.
            let row0 = p.get(&o.token_types).narrow(0, 0, 1);
            x = x + row0.unsqueeze_dim(0);
        }
        o.embed_norm.forward(p, x, self.cfg.norm_eps)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let proj = |lin: &Linear| split_heads(lin.forward(p, x.clone()), c.num_heads);
        let a = ctx.attend(
            l,
            proj(&b.query),
            proj(&b.key),
            proj(&b.value),
            1.0 / (c.head_dim as f64).sqrt(),
        );
        let h = b.attention_norm.forward(
            p,
            x.clone() + b.attention_out.forward(p, merge_heads(a)),
            c.norm_eps,
        );
        let inner = activate(b.intermediate.forward(p, h.clone()), c.activation);
        b.output_norm.forward(p, h + b.output.forward(p, inner), c.norm_eps)
    }

    fn final_norm(&self, _p: &Params, x: Tensor<3>) -> Tensor<3> {
        x // post-LN encoder: each block already ends in a LayerNorm
    }

    /// # Shapes
    /// `h: [N, d]` → `[N, V]`.
    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        let o = &self.outer;
        let h3: Tensor<3> = h.unsqueeze_dim(0);
        let x = gelu_erf(o.head_dense.forward(p, h3));
        let x = o.head_norm.forward(p, x, self.cfg.norm_eps);
        let [_, n, d] = x.dims();
        p.matmul_t(x.reshape([n, d]), &o.words) + p.get(&o.head_bias)
    }
}
