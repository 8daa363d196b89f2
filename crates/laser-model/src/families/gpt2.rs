//! GPT-2 (GPT2LMHeadModel): learned positions, pre-LayerNorm blocks, fused `c_attn`, GELU MLP,
//! LM head tied to the token embedding. Weights are `Conv1D`, stored `[in, out]` and used as is.
//! Radford et al. 2019, *Language Models are Unsupervised Multitask Learners*.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, FamilyEntry};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::layers::{Params, activate, embed, merge_heads, split_heads};
use crate::matrix::MatrixKind;
use crate::weight_path::{Conv1d, LayerNorm, WeightPath, WeightSchema};
use crate::weights::WeightMap;

pub(crate) const GPT2: FamilyEntry = FamilyEntry {
    family: Family::new("gpt2", true),
    model_types: &["gpt2"],
    gguf: None,
    parse_config: |r, _| parse_config(r, GPT2.family, false),
    build: |cfg| Ok(Box::new(Gpt2::new(cfg))),
};

/// The config of `model_type` gpt2, or of gptj (`gptj`: GPT-J keeps GPT-2's config keys,
/// `n_embd`, `n_head`, …, and adds `rotary_dim`).
pub(crate) fn parse_config(
    r: &ConfigReader<'_>,
    family: Family,
    gptj: bool,
) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["n_embd", "hidden_size"])?;
    let heads: usize = r.required(&["n_head", "num_attention_heads"])?;
    let head_dim = r.head_dim(hidden, heads)?;
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
        pad_token_id: r.field(&["pad_token_id"])?,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(family)
    })
}

/// One GPT-2 block's tensors.
#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Conv1d,
    c_proj: Conv1d,
    ln_2: LayerNorm,
    c_fc: Conv1d,
    mlp_proj: Conv1d,
}

impl Block {
    fn new(b: &WeightPath<'_>, c: &ModelConfig) -> Self {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (attn, mlp) = (b.pp("attn"), b.pp("mlp"));
        Self {
            ln_1: b.pp("ln_1").layer_norm(d),
            c_attn: attn.pp("c_attn").conv1d([d, 3 * d], MatrixKind::Qkv),
            c_proj: attn.pp("c_proj").conv1d([d, d], MatrixKind::O),
            ln_2: b.pp("ln_2").layer_norm(d),
            c_fc: mlp.pp("c_fc").conv1d([d, f], MatrixKind::FcIn),
            mlp_proj: mlp.pp("c_proj").conv1d([f, d], MatrixKind::FcOut),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Gpt2 {
    cfg: ModelConfig,
    weights: WeightSchema,
    wte: String,
    wpe: String,
    ln_f: LayerNorm,
    head: String,
    blocks: Vec<Block>,
}

impl Gpt2 {
    fn new(cfg: ModelConfig) -> Self {
        let (d, v) = (cfg.hidden_size, cfg.vocab_size);
        let (weights, (wte, wpe, ln_f, head, blocks)) = WeightSchema::build(|root| {
            let t = root.pp("transformer");
            let wte = t.pp("wte").tensor("weight", &[v, d]);
            let wpe = t.pp("wpe").tensor("weight", &[cfg.max_positions, d]);
            let ln_f = t.pp("ln_f").layer_norm(d);
            let head = if cfg.tie_word_embeddings {
                wte.clone()
            } else {
                root.pp("lm_head").tensor("weight", &[v, d])
            };
            let h = t.pp("h");
            let blocks = (0..cfg.num_layers).map(|l| Block::new(&h.layer(l), &cfg)).collect();
            (wte, wpe, ln_f, head, blocks)
        });
        Self { cfg, weights, wte, wpe, ln_f, head, blocks }
    }
}

impl Architecture for Gpt2 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn weights(&self) -> &WeightSchema {
        &self.weights
    }

    /// Old GPT-2 checkpoints store `h.0.…`, `wte.weight` without the `transformer.` prefix.
    fn normalise_names(&self, weights: WeightMap) -> (WeightMap, Vec<String>) {
        if weights.contains_key(&self.wte) || !weights.contains_key("wte.weight") {
            return (weights, Vec::new());
        }
        let renamed =
            weights
                .into_iter()
                .map(|(k, v)| {
                    if k.starts_with("lm_head") { (k, v) } else { (format!("transformer.{k}"), v) }
                })
                .collect();
        (renamed, Vec::new())
    }

    fn position_table(&self) -> Option<usize> {
        Some(self.cfg.max_positions)
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        embed(p.get(&self.wte), batch.ids.clone(), batch.batch, batch.seq)
            + embed(p.get(&self.wpe), batch.positions.clone(), batch.batch, batch.seq)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let d = c.hidden_size;
        let qkv = b.c_attn.forward(p, b.ln_1.forward(p, x.clone(), c.norm_eps));
        let q = split_heads(qkv.clone().narrow(2, 0, d), c.num_heads);
        let k = split_heads(qkv.clone().narrow(2, d, d), c.num_heads);
        let v = split_heads(qkv.narrow(2, 2 * d, d), c.num_heads);
        let scale = if c.raw.get("scale_attn_weights").and_then(|v| v.as_bool()).unwrap_or(true) {
            1.0 / (c.head_dim as f64).sqrt()
        } else {
            1.0
        };
        let a = merge_heads(ctx.attend(l, q, k, v, scale));
        let x = x + b.c_proj.forward(p, a);
        let h = activate(b.c_fc.forward(p, b.ln_2.forward(p, x.clone(), c.norm_eps)), c.activation);
        x + b.mlp_proj.forward(p, h)
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        self.ln_f.forward(p, x, self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        p.matmul_t(h, &self.head)
    }
}
