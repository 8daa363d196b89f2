//! GPT-J (GPTJForCausalLM): one LayerNorm feeding attention and MLP in parallel, interleaved
//! ("rotate every two") rotary embeddings on the first `rotary_dim` dimensions of each head,
//! bias-free q/k/v/o, and an untied LM head with bias.
//! Wang & Komatsuzaki 2021, *GPT-J-6B: A 6 Billion Parameter Autoregressive Language Model*.

use burn::tensor::Tensor;

use crate::arch::{Architecture, BatchInput, Context, FamilyEntry};
use crate::config::{Family, ModelConfig};
use crate::layers::{Params, RotaryLayout, activate, embed, merge_heads, split_heads};
use crate::matrix::MatrixKind;
use crate::weight_path::{LayerNorm, Linear, WeightPath, WeightSchema};

pub(crate) const GPTJ: FamilyEntry = FamilyEntry {
    family: Family::new("gptj", true),
    model_types: &["gptj"],
    gguf: None,
    parse_config: |r, _| super::gpt2::parse_config(r, GPTJ.family, true),
    build: |cfg| Ok(Box::new(Gptj::new(cfg))),
};

/// One GPT-J block's tensors.
#[derive(Debug, Clone)]
struct Block {
    ln_1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    fc_in: Linear,
    fc_out: Linear,
}

impl Block {
    fn new(b: &WeightPath<'_>, c: &ModelConfig) -> Self {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (attn, mlp) = (b.pp("attn"), b.pp("mlp"));
        let proj = |name: &str, kind| attn.pp(name).linear([d, d], Some(kind), false);
        Self {
            ln_1: b.pp("ln_1").layer_norm(d),
            q: proj("q_proj", MatrixKind::Q),
            k: proj("k_proj", MatrixKind::K),
            v: proj("v_proj", MatrixKind::V),
            out: proj("out_proj", MatrixKind::O),
            fc_in: mlp.pp("fc_in").linear([f, d], Some(MatrixKind::FcIn), true),
            fc_out: mlp.pp("fc_out").linear([d, f], Some(MatrixKind::FcOut), true),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Gptj {
    cfg: ModelConfig,
    weights: WeightSchema,
    wte: String,
    ln_f: LayerNorm,
    head: String,
    head_bias: String,
    blocks: Vec<Block>,
}

impl Gptj {
    fn new(cfg: ModelConfig) -> Self {
        let (d, v) = (cfg.hidden_size, cfg.vocab_size);
        let (weights, (wte, ln_f, (head, head_bias), blocks)) = WeightSchema::build(|root| {
            let t = root.pp("transformer");
            let wte = t.pp("wte").tensor("weight", &[v, d]);
            let ln_f = t.pp("ln_f").layer_norm(d);
            let lm_head = root.pp("lm_head");
            let head = (lm_head.tensor("weight", &[v, d]), lm_head.tensor("bias", &[v]));
            let h = t.pp("h");
            let blocks = (0..cfg.num_layers).map(|l| Block::new(&h.layer(l), &cfg)).collect();
            (wte, ln_f, head, blocks)
        });
        Self { cfg, weights, wte, ln_f, head, head_bias, blocks }
    }
}

impl Architecture for Gptj {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn weights(&self) -> &WeightSchema {
        &self.weights
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Interleaved)
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        embed(p.get(&self.wte), batch.ids.clone(), batch.batch, batch.seq)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let h = b.ln_1.forward(p, x.clone(), c.norm_eps);
        let proj = |lin: &Linear| split_heads(lin.forward(p, h.clone()), c.num_heads);
        let q = ctx.rotate(proj(&b.q));
        let k = ctx.rotate(proj(&b.k));
        let v = proj(&b.v);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (c.head_dim as f64).sqrt()));
        let attn_out = b.out.forward(p, a);
        let mlp_out = b.fc_out.forward(p, activate(b.fc_in.forward(p, h), c.activation));
        x + attn_out + mlp_out
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        self.ln_f.forward(p, x, self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        p.matmul_t(h, &self.head) + p.get(&self.head_bias)
    }
}
