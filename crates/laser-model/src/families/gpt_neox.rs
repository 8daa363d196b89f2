//! GPT-NeoX / Pythia (GPTNeoXForCausalLM): fused per-head `query_key_value` (each head's q, k, v
//! contiguous), `rotate_half` rotary on the first `rotary_pct · head_dim` dimensions, LayerNorm,
//! optional parallel residual, untied head `embed_out`.
//! Black et al. 2022, *GPT-NeoX-20B*, arXiv:2204.06745; Biderman et al. 2023, *Pythia*, arXiv:2304.01373.

use burn::tensor::Tensor;
use serde::Deserialize;

use crate::arch::{Architecture, BatchInput, Context, FamilyEntry};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::Result;
use crate::layers::{Params, RotaryLayout, activate, embed, merge_heads};
use crate::matrix::MatrixKind;
use crate::weight_path::{LayerNorm, Linear, WeightPath, WeightSchema};

pub(crate) const GPT_NEOX: FamilyEntry = FamilyEntry {
    family: Family::new("gpt_neox", true),
    model_types: &["gpt_neox"],
    gguf: None,
    parse_config: |r, _| parse_config(r),
    build: |cfg| Ok(Box::new(GptNeox::new(cfg)?)),
};

/// GPT-NeoX's own options (HF keys).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
struct NeoxOptions {
    /// Biases on the fused q/k/v projection and the attention output (`dense`).
    attention_bias: bool,
    /// Attention and MLP read the same input and add to the residual together (Pythia's form).
    use_parallel_residual: bool,
}

impl Default for NeoxOptions {
    /// HF's `GPTNeoXConfig` defaults.
    fn default() -> Self {
        Self { attention_bias: true, use_parallel_residual: true }
    }
}

/// The config of `model_type` gpt_neox.
fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    r.options::<NeoxOptions>()?;
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = r.head_dim(hidden, heads)?;
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
        pad_token_id: r.field(&["pad_token_id"])?,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(GPT_NEOX.family)
    })
}

/// One GPT-NeoX block's tensors.
#[derive(Debug, Clone)]
struct Block {
    input_norm: LayerNorm,
    post_attention_norm: LayerNorm,
    qkv: Linear,
    dense: Linear,
    h_to_4h: Linear,
    to_h: Linear,
}

impl Block {
    fn new(b: &WeightPath<'_>, c: &ModelConfig, opts: NeoxOptions) -> Self {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let (attn, mlp) = (b.pp("attention"), b.pp("mlp"));
        let bias = opts.attention_bias;
        Self {
            input_norm: b.pp("input_layernorm").layer_norm(d),
            post_attention_norm: b.pp("post_attention_layernorm").layer_norm(d),
            qkv: attn.pp("query_key_value").linear([3 * d, d], Some(MatrixKind::Qkv), bias),
            dense: attn.pp("dense").linear([d, d], Some(MatrixKind::O), bias),
            h_to_4h: mlp.pp("dense_h_to_4h").linear([f, d], Some(MatrixKind::FcIn), true),
            to_h: mlp.pp("dense_4h_to_h").linear([d, f], Some(MatrixKind::FcOut), true),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct GptNeox {
    cfg: ModelConfig,
    opts: NeoxOptions,
    weights: WeightSchema,
    embed_in: String,
    final_norm: LayerNorm,
    embed_out: String,
    blocks: Vec<Block>,
}

impl GptNeox {
    fn new(cfg: ModelConfig) -> Result<Self> {
        let opts: NeoxOptions = cfg.options()?;
        let (d, v) = (cfg.hidden_size, cfg.vocab_size);
        let (weights, (embed_in, final_norm, embed_out, blocks)) = WeightSchema::build(|root| {
            let neox = root.pp("gpt_neox");
            let embed_in = neox.pp("embed_in").tensor("weight", &[v, d]);
            let final_norm = neox.pp("final_layer_norm").layer_norm(d);
            let embed_out = root.pp("embed_out").tensor("weight", &[v, d]);
            let layers = neox.pp("layers");
            let blocks =
                (0..cfg.num_layers).map(|l| Block::new(&layers.layer(l), &cfg, opts)).collect();
            (embed_in, final_norm, embed_out, blocks)
        });
        Ok(Self { cfg, opts, weights, embed_in, final_norm, embed_out, blocks })
    }
}

impl Architecture for GptNeox {
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
        embed(p.get(&self.embed_in), batch.ids.clone(), batch.batch, batch.seq)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let (heads, hd) = (c.num_heads, c.head_dim);
        let [bsz, t, _] = x.dims();
        let h = b.input_norm.forward(p, x.clone(), c.norm_eps);
        // [B, T, 3D] → [B, H, T, 3·hd]: each head holds its q, k, v side by side.
        let qkv = b.qkv.forward(p, h).reshape([bsz, t, heads, 3 * hd]).swap_dims(1, 2);
        let q = ctx.rotate(qkv.clone().narrow(3, 0, hd));
        let k = ctx.rotate(qkv.clone().narrow(3, hd, hd));
        let v = qkv.narrow(3, 2 * hd, hd);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (hd as f64).sqrt()));
        let attn_out = b.dense.forward(p, a);
        let mlp = |x: Tensor<3>| {
            let h = b.post_attention_norm.forward(p, x, c.norm_eps);
            b.to_h.forward(p, activate(b.h_to_4h.forward(p, h), c.activation))
        };
        if self.opts.use_parallel_residual {
            x.clone() + attn_out + mlp(x)
        } else {
            let x = x + attn_out;
            x.clone() + mlp(x)
        }
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        self.final_norm.forward(p, x, self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        p.matmul_t(h, &self.embed_out)
    }
}
