//! Llama (LlamaForCausalLM) and the families that keep its layout: SmolLM2, TinyLlama, Llama-2,
//! Llama 3.x (`llama3` RoPE frequency scaling, in `layers::Rotary`), Mistral (a sliding window,
//! enforced by the model's position limit), Qwen2 / Qwen2.5 (biases on q, k, v) and Qwen3
//! (per-head RMSNorm on q and k before RoPE, explicit `head_dim`).
//!
//! Pre-norm blocks with RMSNorm, grouped-query attention with HF `rotate_half` RoPE, a SwiGLU MLP
//! `down(silu(gate(x)) · up(x))`, and an LM head that may be tied to the token embedding.
//! Touvron et al. 2023, *LLaMA: Open and Efficient Foundation Language Models*, arXiv:2302.13971.

use std::path::Path;

use burn::tensor::Tensor;
use serde::Deserialize;
use serde_json::json;

use crate::arch::{Architecture, BatchInput, Context, FamilyEntry, GgufConfig, GgufForm};
use crate::config::{Activation, ConfigReader, Family, ModelConfig};
use crate::error::{ModelError, Result};
use crate::gguf::arch_keys::ArchMetadata;
use crate::gguf::rope_factors::llama3_from_factors;
use crate::layers::{
    Params, RotaryLayout, embed, gated, merge_heads, rms_norm, rms_norm_heads, split_heads,
};
use crate::matrix::MatrixKind;
use crate::weight_path::{Linear, WeightPath, WeightSchema};
use crate::weights::HostTensor;

/// A GGUF of architecture `llama` is a Llama, or a Mistral when it states a window.
pub(crate) const LLAMA: FamilyEntry =
    entry("llama", &["llama"], Some(gguf(&["llama"], unpermute_qk)));
pub(crate) const MISTRAL: FamilyEntry = entry("mistral", &["mistral"], None);
pub(crate) const QWEN2: FamilyEntry =
    entry("qwen2", &["qwen2"], Some(gguf(&["qwen2"], GgufForm::stored_as_is)));
pub(crate) const QWEN3: FamilyEntry =
    entry("qwen3", &["qwen3"], Some(gguf(&["qwen3"], GgufForm::stored_as_is)));

const fn entry(
    name: &'static str,
    model_types: &'static [&'static str],
    gguf: Option<GgufForm>,
) -> FamilyEntry {
    FamilyEntry {
        family: Family::new(name, true),
        model_types,
        gguf,
        parse_config,
        build: |cfg| Ok(Box::new(Llama::new(cfg)?)),
    }
}

type Restore = fn(&str, HostTensor, &ModelConfig, &Path) -> Result<HostTensor>;

const fn gguf(architectures: &'static [&'static str], restore: Restore) -> GgufForm {
    GgufForm {
        architectures,
        config: gguf_config,
        tensor_name: GgufForm::llama_layout_names,
        restore,
    }
}

/// The keys of a llama-layout GGUF (`llama`, `qwen2`, `qwen3`): the class by architecture and
/// window, and Llama 3.x RoPE scaling fitted to llama.cpp's per-frequency `rope_freqs.weight`.
fn gguf_config(m: &ArchMetadata<'_>) -> Result<GgufConfig> {
    let (class, model_type) = match m.arch {
        "qwen2" => ("Qwen2ForCausalLM", "qwen2"),
        "qwen3" => ("Qwen3ForCausalLM", "qwen3"),
        _ if m.window.is_some() => ("MistralForCausalLM", "mistral"),
        _ => ("LlamaForCausalLM", "llama"),
    };
    let mut extra = json!({
        "architectures": [class],
        "model_type": model_type,
        "head_dim": m.head_dim,
        "hidden_act": "silu",
        "attention_bias": false,
        "mlp_bias": false,
        "sliding_window": m.window,
    });
    if let Some(info) = m.file.tensors.iter().find(|t| t.name == "rope_freqs.weight") {
        let factors = m.file.tensor(info).data;
        let fitted = llama3_from_factors(&factors, m.rope_theta, m.rotary_dim as usize)
            .map_err(|e| ModelError::format(m.path, format!("`rope_freqs.weight`: {e}")))?;
        if let Some(s) = fitted {
            extra["rope_scaling"] = json!({
                "rope_type": "llama3",
                "factor": s.factor,
                "low_freq_factor": s.low_freq_factor,
                "high_freq_factor": s.high_freq_factor,
                "original_max_position_embeddings": s.original_max_position_embeddings,
            });
        }
    }
    Ok((extra, Vec::new()))
}

/// llama.cpp stores the `llama` architecture's Q/K rows permuted for its interleaved RoPE; HF
/// uses `rotate_half`. Row `h·(o/nh) + 2r + s` moves back to `h·(o/nh) + s·(o/nh/2) + r`.
fn unpermute_qk(name: &str, t: HostTensor, c: &ModelConfig, path: &Path) -> Result<HostTensor> {
    let heads = if name.ends_with("attn_q.weight") {
        c.num_heads
    } else if name.ends_with("attn_k.weight") {
        c.num_kv_heads
    } else {
        return Ok(t);
    };
    if t.shape.len() != 2 || heads == 0 || !t.shape[0].is_multiple_of(2 * heads) {
        return Err(ModelError::format(
            path,
            format!("tensor `{name}` of shape {:?} cannot hold {heads} rotary heads", t.shape),
        ));
    }
    let (o, i) = (t.shape[0], t.shape[1]);
    let per_head = o / heads;
    let half = per_head / 2;
    let mut data = vec![0.0; o * i];
    for h in 0..heads {
        for r in 0..half {
            for s in 0..2 {
                let src = h * per_head + 2 * r + s;
                let dst = h * per_head + s * half + r;
                data[dst * i..(dst + 1) * i].copy_from_slice(&t.data[src * i..(src + 1) * i]);
            }
        }
    }
    Ok(HostTensor { shape: t.shape, data })
}

/// The llama layout's own options (HF keys): biases, which Llama-2-style checkpoints and a few
/// fine-tunes carry. Qwen2's q/k/v biases and Qwen3's q/k norms come with the family instead.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
struct LlamaOptions {
    /// Biases on q, k, v and o.
    attention_bias: bool,
    /// Biases on the MLP's three projections.
    mlp_bias: bool,
}

/// The config of `model_type` llama, mistral, qwen2 or qwen3.
fn parse_config(r: &ConfigReader<'_>, model_type: &str) -> Result<ModelConfig> {
    r.options::<LlamaOptions>()?;
    let hidden: usize = r.required(&["hidden_size"])?;
    let heads: usize = r.required(&["num_attention_heads"])?;
    let head_dim = r.stated_head_dim(&["head_dim"], hidden, heads)?;
    let family = match model_type {
        "mistral" => MISTRAL.family,
        "qwen2" => QWEN2.family,
        "qwen3" => QWEN3.family,
        _ => LLAMA.family,
    };
    let qwen = family == QWEN2.family || family == QWEN3.family;
    // Qwen2 and Qwen3 use a window only when `use_sliding_window` says so; Mistral
    // whenever `sliding_window` is set.
    let window_on = if qwen { r.field(&["use_sliding_window"])?.unwrap_or(false) } else { true };
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
        pad_token_id: r.field(&["pad_token_id"])?,
        rope_scaling: r.rope_scaling,
        sliding_window,
        raw: r.raw.clone(),
        ..ModelConfig::defaults_for(family)
    })
}

/// The llama layout's tensors outside the blocks (Phi-3 and the Gemmas share it): the token
/// embedding, the final norm, and the LM head — the embedding itself when tied.
#[derive(Debug, Clone)]
pub(crate) struct Outer {
    pub(crate) embed: String,
    pub(crate) norm: String,
    pub(crate) head: String,
}

impl Outer {
    /// Names them under `root`, and returns the path of the blocks (`model.layers`).
    pub(crate) fn new<'s>(root: &WeightPath<'s>, c: &ModelConfig) -> (Self, WeightPath<'s>) {
        let (d, v) = (c.hidden_size, c.vocab_size);
        let model = root.pp("model");
        let embed = model.pp("embed_tokens").tensor("weight", &[v, d]);
        let norm = model.pp("norm").tensor("weight", &[d]);
        let head = if c.tie_word_embeddings {
            embed.clone()
        } else {
            root.pp("lm_head").tensor("weight", &[v, d])
        };
        (Self { embed, norm, head }, model.pp("layers"))
    }

    /// Names a llama-layout model's tensors: these, then `block(path, cfg)` for every layer.
    pub(crate) fn model<B>(
        cfg: &ModelConfig,
        block: impl Fn(&WeightPath<'_>, &ModelConfig) -> B,
    ) -> (WeightSchema, Self, Vec<B>) {
        let (weights, (outer, blocks)) = WeightSchema::build(|root| {
            let (outer, layers) = Self::new(root, cfg);
            (outer, (0..cfg.num_layers).map(|l| block(&layers.layer(l), cfg)).collect())
        });
        (weights, outer, blocks)
    }

    /// # Shapes
    /// → `[B, T, d]`.
    pub(crate) fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        embed(p.get(&self.embed), batch.ids.clone(), batch.batch, batch.seq)
    }

    /// # Shapes
    /// `h: [N, d]` → `[N, V]`.
    pub(crate) fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        p.matmul_t(h, &self.head)
    }
}

/// The llama layout's attention projections, editable as q, k, v and o.
#[derive(Debug, Clone)]
pub(crate) struct Projections {
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) o: Linear,
}

impl Projections {
    /// Under `attn` (`self_attn`); `bias(name)`: whether projection `name` has a bias.
    pub(crate) fn new(attn: &WeightPath<'_>, c: &ModelConfig, bias: impl Fn(&str) -> bool) -> Self {
        let d = c.hidden_size;
        let (qd, kvd) = (c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let proj = |name: &str, kind, shape| attn.pp(name).linear(shape, Some(kind), bias(name));
        Self {
            q: proj("q_proj", MatrixKind::Q, [qd, d]),
            k: proj("k_proj", MatrixKind::K, [kvd, d]),
            v: proj("v_proj", MatrixKind::V, [kvd, d]),
            o: proj("o_proj", MatrixKind::O, [d, qd]),
        }
    }
}

/// The llama layout's gated MLP `down(act(gate(x)) · up(x))`, editable as fc_in, fc_up, fc_out.
#[derive(Debug, Clone)]
pub(crate) struct GatedMlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl GatedMlp {
    /// Under `mlp`; `bias`: every projection has one.
    pub(crate) fn new(mlp: &WeightPath<'_>, c: &ModelConfig, bias: bool) -> Self {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        Self {
            gate: mlp.pp("gate_proj").linear([f, d], Some(MatrixKind::FcIn), bias),
            up: mlp.pp("up_proj").linear([f, d], Some(MatrixKind::FcUp), bias),
            down: mlp.pp("down_proj").linear([d, f], Some(MatrixKind::FcOut), bias),
        }
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    pub(crate) fn forward(&self, p: &Params, x: Tensor<3>, act: Activation) -> Tensor<3> {
        let gate = self.gate.forward(p, x.clone());
        let up = self.up.forward(p, x);
        self.down.forward(p, gated(gate, up, act))
    }
}

/// One llama block's tensors.
#[derive(Debug, Clone)]
struct Block {
    input_norm: String,
    attn: Projections,
    /// Qwen3's per-head norms on q and k.
    qk_norm: Option<(String, String)>,
    post_attention_norm: String,
    mlp: GatedMlp,
}

impl Block {
    fn new(b: &WeightPath<'_>, c: &ModelConfig, opts: LlamaOptions) -> Self {
        let d = c.hidden_size;
        let attn = b.pp("self_attn");
        // Llama's `attention_bias` puts one on all four; Qwen2 on q, k and v only.
        let qkv_bias = c.family == QWEN2.family;
        let bias = |name: &str| opts.attention_bias || (qkv_bias && name != "o_proj");
        Self {
            input_norm: b.pp("input_layernorm").tensor("weight", &[d]),
            attn: Projections::new(&attn, c, bias),
            qk_norm: (c.family == QWEN3.family).then(|| {
                let norm = |name: &str| attn.pp(name).tensor("weight", &[c.head_dim]);
                (norm("q_norm"), norm("k_norm"))
            }),
            post_attention_norm: b.pp("post_attention_layernorm").tensor("weight", &[d]),
            mlp: GatedMlp::new(&b.pp("mlp"), c, opts.mlp_bias),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Llama {
    cfg: ModelConfig,
    weights: WeightSchema,
    outer: Outer,
    blocks: Vec<Block>,
}

impl Llama {
    fn new(cfg: ModelConfig) -> Result<Self> {
        let opts: LlamaOptions = cfg.options()?;
        let (weights, outer, blocks) = Outer::model(&cfg, |b, c| Block::new(b, c, opts));
        Ok(Self { cfg, weights, outer, blocks })
    }
}

impl Architecture for Llama {
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
        self.outer.embed(p, batch)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let h = rms_norm(x.clone(), p.vec3(&b.input_norm), c.norm_eps);
        let heads = |proj: &Linear, n: usize, norm: Option<&String>| {
            let t = split_heads(proj.forward(p, h.clone()), n);
            match norm {
                Some(w) => rms_norm_heads(t, p.vec4(w), c.norm_eps),
                None => t,
            }
        };
        let norms = b.qk_norm.as_ref();
        let q = ctx.rotate(heads(&b.attn.q, c.num_heads, norms.map(|n| &n.0)));
        let k = ctx.rotate(heads(&b.attn.k, c.num_kv_heads, norms.map(|n| &n.1)));
        let v = heads(&b.attn.v, c.num_kv_heads, None);
        let a = merge_heads(ctx.attend(l, q, k, v, 1.0 / (c.head_dim as f64).sqrt()));
        let x = x + b.attn.o.forward(p, a);
        let h = rms_norm(x.clone(), p.vec3(&b.post_attention_norm), c.norm_eps);
        x + b.mlp.forward(p, h, c.activation)
    }

    fn final_norm(&self, p: &Params, x: Tensor<3>) -> Tensor<3> {
        rms_norm(x, p.vec3(&self.outer.norm), self.cfg.norm_eps)
    }

    fn head(&self, p: &Params, h: Tensor<2>) -> Tensor<2> {
        self.outer.head(p, h)
    }
}
