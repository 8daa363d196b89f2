//! Gemma 2 (Gemma2ForCausalLM): token embeddings scaled by √d; RMSNorm as `x̂ · (1 + w)`, four per
//! block (before and after attention, before and after the MLP); grouped-query attention with
//! `rotate_half` RoPE, scores scaled by `query_pre_attn_scalar^-½` and soft-capped
//! (`c · tanh(s / c)`); a GELU-tanh gated MLP; a tied head whose logits are soft-capped too.
//! Alternate layers use a sliding window: sequences longer than it are refused (the model's
//! position limit), so every accepted sequence is attended exactly.
//! Gemma Team 2024, *Gemma 2: Improving Open Language Models at a Practical Size*, arXiv:2408.00118.

use std::path::Path;

use burn::tensor::Tensor;
use serde::Deserialize;
use serde_json::json;

use super::llama::{GatedMlp, Outer, Projections};
use crate::arch::{
    Architecture, BatchInput, Context, FamilyEntry, GgufConfig, GgufForm, ScoreScales,
};
use crate::config::{ConfigReader, Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::gguf::arch_keys::ArchMetadata;
use crate::layers::{Params, RotaryLayout, merge_heads, rms_norm, soft_cap, split_heads};
use crate::weight_path::{WeightPath, WeightSchema};
use crate::weights::HostTensor;

pub(crate) const GEMMA2: FamilyEntry = FamilyEntry {
    family: Family::new("gemma2", true),
    model_types: &["gemma2"],
    gguf: Some(GgufForm {
        architectures: &["gemma2"],
        config: gguf_config,
        tensor_name: gemma_tensor_name,
        restore: gemma_restore,
    }),
    parse_config: |r, _| parse_config(r),
    build: |cfg| Ok(Box::new(Gemma2::new(cfg)?)),
};

/// Gemma 2 27B (46 layers) scales queries by `1/√(d/H)` instead of `1/√head_dim`; llama.cpp
/// recognises it by its depth, as the GGUF has no key for `query_pre_attn_scalar`.
const GEMMA2_27B_LAYERS: u64 = 46;

/// A `gemma2` GGUF's keys: soft-caps, and llama.cpp's rules for what the file does not store
/// (every other layer slides; the 27B's query scale).
fn gguf_config(m: &ArchMetadata<'_>) -> Result<GgufConfig> {
    let scalar = if m.layers == GEMMA2_27B_LAYERS { m.hidden / m.heads.max(1) } else { m.head_dim };
    let layer_types: Vec<&str> = (0..m.layers)
        .map(|l| if l % 2 == 0 { "sliding_attention" } else { "full_attention" })
        .collect();
    let extra = json!({
        "architectures": ["Gemma2ForCausalLM"],
        "model_type": "gemma2",
        "head_dim": m.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "query_pre_attn_scalar": scalar,
        "attn_logit_softcapping": m.f64("attn_logit_softcapping"),
        "final_logit_softcapping": m.f64("final_logit_softcapping"),
        "sliding_window": m.window,
        "layer_types": layer_types,
    });
    Ok((extra, Vec::new()))
}

/// The Gemmas' four block norms under llama.cpp's names (`ffn_norm` is the pre-feed-forward one).
pub(crate) fn gemma_tensor_name(part: &str) -> Option<&'static str> {
    match part {
        "post_attention_norm.weight" => Some("post_attention_layernorm.weight"),
        "ffn_norm.weight" => Some("pre_feedforward_layernorm.weight"),
        "post_ffw_norm.weight" => Some("post_feedforward_layernorm.weight"),
        _ => None,
    }
}

/// Gemma's RMSNorm multiplies by 1 + w; llama.cpp's converter stored 1 + w (Gemma 3's q/k norms
/// included): the offset comes off.
pub(crate) fn gemma_restore(
    name: &str,
    mut t: HostTensor,
    _cfg: &ModelConfig,
    _path: &Path,
) -> Result<HostTensor> {
    if name.ends_with("norm.weight") {
        t.data.iter_mut().for_each(|w| *w -= 1.0);
    }
    Ok(t)
}

/// The Gemmas' own config keys, as HF names them.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GemmaKeys {
    attention_bias: bool,
    final_logit_softcapping: Option<f64>,
    query_pre_attn_scalar: Option<f64>,
}

/// The Gemmas' own options, checked: biases on the attention projections, the logits' soft-cap,
/// and the query scale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GemmaOptions {
    /// Biases on q, k, v and o.
    attention_bias: bool,
    /// Output logits pass through `c · tanh(z / c)`.
    final_logit_softcap: Option<f64>,
    /// Scores are scaled by `query_scalar^-½`.
    query_scalar: f64,
}

impl GemmaOptions {
    /// Reads and checks them (soft-cap and scale positive); `default_scalar`: the family's query
    /// scale where the config states none.
    pub(crate) fn read(raw: &serde_json::Value, path: &Path, default_scalar: f64) -> Result<Self> {
        let keys: GemmaKeys = crate::config::options_from(raw, path)?;
        for (key, v) in [
            ("final_logit_softcapping", keys.final_logit_softcapping),
            ("query_pre_attn_scalar", keys.query_pre_attn_scalar),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(ModelError::config(path, format!("`{key}` = {v} must be positive")));
            }
        }
        Ok(Self {
            attention_bias: keys.attention_bias,
            final_logit_softcap: keys.final_logit_softcapping,
            query_scalar: keys.query_pre_attn_scalar.unwrap_or(default_scalar),
        })
    }

    /// The scaling of scores and logits these options set.
    pub(crate) fn score_scales(&self) -> ScoreScales {
        ScoreScales {
            query_scalar: Some(self.query_scalar),
            final_logit_softcap: self.final_logit_softcap,
        }
    }

    /// `1 / √query_pre_attn_scalar`.
    pub(crate) fn query_scale(&self) -> f64 {
        1.0 / self.query_scalar.sqrt()
    }
}

/// The config of `model_type` gemma2.
fn parse_config(r: &ConfigReader<'_>) -> Result<ModelConfig> {
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = r.stated_head_dim(&["head_dim"], hidden, heads)?;
    GemmaOptions::read(r.raw, r.path, head_dim as f64)?;
    let layer_types: Option<Vec<String>> = r.field(&["layer_types"])?;
    // Gemma 2 alternates sliding and global layers; without `layer_types` every other
    // layer slides, as in HF's default.
    let any_sliding =
        layer_types.as_ref().is_none_or(|t| t.iter().any(|x| x == "sliding_attention"));
    let positive = |key: &str| -> Result<Option<f64>> {
        match r.field::<f64>(&[key])? {
            Some(v) if !(v.is_finite() && v > 0.0) => {
                Err(ModelError::config(r.path, format!("`{key}` = {v} must be positive")))
            }
            v => Ok(v),
        }
    };
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
        max_positions: r.field(&["max_position_embeddings"])?.unwrap_or(8192),
        activation: r.activation(&["hidden_activation", "hidden_act"], "gelu_pytorch_tanh")?,
        tie_word_embeddings: r.field(&["tie_word_embeddings"])?.unwrap_or(true),
        pad_token_id: r.field(&["pad_token_id"])?,
        rope_scaling: r.rope_scaling,
        sliding_window: if any_sliding { r.field(&["sliding_window"])? } else { None },
        attn_logit_softcap: positive("attn_logit_softcapping")?,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(GEMMA2.family)
    })
}

/// Gemma's RMSNorm: the weight `name` is stored as an offset from 1.
pub(crate) fn gemma_norm(p: &Params, x: Tensor<3>, name: &str, eps: f64) -> Tensor<3> {
    rms_norm(x, p.vec3(name).add_scalar(1.0), eps)
}

/// Gemma's LM head: the tied head's logits, soft-capped when the options say so.
pub(crate) fn gemma_head(
    outer: &Outer,
    p: &Params,
    h: Tensor<2>,
    opts: &GemmaOptions,
) -> Tensor<2> {
    let logits = outer.head(p, h);
    match opts.final_logit_softcap {
        Some(cap) => soft_cap(logits, cap),
        None => logits,
    }
}

/// One Gemma block's tensors (Gemma 2's; Gemma 3 adds per-head norms on q and k).
#[derive(Debug, Clone)]
pub(crate) struct GemmaBlock {
    pub(crate) input_norm: String,
    pub(crate) post_attention_norm: String,
    pub(crate) pre_feedforward_norm: String,
    pub(crate) post_feedforward_norm: String,
    pub(crate) qk_norm: Option<(String, String)>,
    pub(crate) attn: Projections,
    pub(crate) mlp: GatedMlp,
}

impl GemmaBlock {
    /// Under block path `b`; `qk_norm`: with Gemma 3's q and k norms.
    pub(crate) fn new(
        b: &WeightPath<'_>,
        c: &ModelConfig,
        opts: &GemmaOptions,
        qk_norm: bool,
    ) -> Self {
        let d = c.hidden_size;
        let norm = |name: &str| b.pp(name).tensor("weight", &[d]);
        let attn = b.pp("self_attn");
        Self {
            input_norm: norm("input_layernorm"),
            post_attention_norm: norm("post_attention_layernorm"),
            pre_feedforward_norm: norm("pre_feedforward_layernorm"),
            post_feedforward_norm: norm("post_feedforward_layernorm"),
            qk_norm: qk_norm.then(|| {
                let norm = |name: &str| attn.pp(name).tensor("weight", &[c.head_dim]);
                (norm("q_norm"), norm("k_norm"))
            }),
            attn: Projections::new(&attn, c, |_| opts.attention_bias),
            mlp: GatedMlp::new(&b.pp("mlp"), c, false),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Gemma2 {
    cfg: ModelConfig,
    opts: GemmaOptions,
    weights: WeightSchema,
    outer: Outer,
    blocks: Vec<GemmaBlock>,
}

impl Gemma2 {
    fn new(cfg: ModelConfig) -> Result<Self> {
        let opts = GemmaOptions::read(&cfg.raw, Path::new("config.json"), cfg.head_dim as f64)?;
        let (weights, outer, blocks) =
            Outer::model(&cfg, |b, c| GemmaBlock::new(b, c, &opts, false));
        Ok(Self { cfg, opts, weights, outer, blocks })
    }
}

impl Architecture for Gemma2 {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn weights(&self) -> &WeightSchema {
        &self.weights
    }

    fn rotary_layout(&self) -> Option<RotaryLayout> {
        Some(RotaryLayout::Half)
    }

    fn score_scales(&self) -> ScoreScales {
        self.opts.score_scales()
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        self.outer.embed(p, batch).mul_scalar((self.cfg.hidden_size as f64).sqrt())
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let norm = |x: Tensor<3>, name: &str| gemma_norm(p, x, name, c.norm_eps);
        let h = norm(x.clone(), &b.input_norm);
        let q = ctx.rotate(split_heads(b.attn.q.forward(p, h.clone()), c.num_heads));
        let k = ctx.rotate(split_heads(b.attn.k.forward(p, h.clone()), c.num_kv_heads));
        let v = split_heads(b.attn.v.forward(p, h), c.num_kv_heads);
        let a = merge_heads(ctx.attend(l, q, k, v, self.opts.query_scale()));
        let x = x + norm(b.attn.o.forward(p, a), &b.post_attention_norm);
        let h = norm(x.clone(), &b.pre_feedforward_norm);
        x + norm(b.mlp.forward(p, h, c.activation), &b.post_feedforward_norm)
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        gemma_norm(p, x, &self.outer.norm, self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        gemma_head(&self.outer, p, h, &self.opts)
    }
}
