//! Gemma 3 text models (Gemma3ForCausalLM, `model_type: gemma3_text`; and the language model of a
//! Gemma3ForConditionalGeneration folder, `model_type: gemma3`, read from its `text_config`).
//!
//! Gemma 2's block — embeddings scaled by √d, RMSNorm as `x̂ · (1 + w)` before and after attention
//! and the MLP, a GELU-tanh gated MLP, a tied head — with three changes: a per-head `(1 + w)`
//! RMSNorm on q and k before RoPE; layers of two kinds (`layer_types`: sliding-window and full
//! attention, by default every 6th layer full), each kind with its own RoPE base (`rope_local_base_freq`
//! = 10,000 on sliding layers, plain; `rope_theta` = 1,000,000 on full layers, with any linear
//! `rope_scaling`); no attention soft-cap by default. Sliding layers are computed within their
//! window, so prompts longer than it are attended as HF and llama.cpp attend them.
//! Gemma Team 2025, *Gemma 3 Technical Report*, arXiv:2503.19786.

use std::path::Path;

use burn::tensor::Tensor;
use serde_json::{Value, json};

use super::gemma2::{
    GemmaBlock, GemmaOptions, gemma_head, gemma_norm, gemma_restore, gemma_tensor_name,
};
use super::llama::Outer;
use crate::arch::{
    Architecture, BatchInput, Context, FamilyEntry, GgufConfig, GgufForm, ScoreScales,
};
use crate::config::{ConfigReader, Family, LocalAttention, ModelConfig};
use crate::error::{ModelError, Result};
use crate::gguf::GgufValue;
use crate::gguf::arch_keys::ArchMetadata;
use crate::layers::{Params, RotaryLayout, merge_heads, rms_norm_heads, split_heads};
use crate::weight_path::WeightSchema;
use crate::weights::WeightMap;

pub(crate) const GEMMA3: FamilyEntry = FamilyEntry {
    family: Family::new("gemma3", true),
    model_types: &["gemma3_text", "gemma3"],
    gguf: Some(GgufForm {
        architectures: &["gemma3"],
        config: gguf_config,
        tensor_name: gemma_tensor_name,
        restore: gemma_restore,
    }),
    parse_config,
    build: |cfg| Ok(Box::new(Gemma3::new(cfg)?)),
};

/// HF's `Gemma3TextConfig` defaults, used where a config leaves a field out (hub configs of the
/// multimodal models give only what differs from them).
const DEFAULT_GLOBAL_THETA: f64 = 1_000_000.0;
const DEFAULT_LOCAL_THETA: f64 = 10_000.0;
const DEFAULT_PATTERN: usize = 6;
const DEFAULT_QUERY_SCALAR: f64 = 256.0;

/// The config of `model_type` gemma3_text, or of gemma3 (multimodal: its `text_config`).
fn parse_config(outer: &ConfigReader<'_>, model_type: &str) -> Result<ModelConfig> {
    if model_type == "gemma3_text" {
        return parse_text(outer, outer.raw.clone());
    }
    let text = match outer.raw.get("text_config") {
        Some(t) if t.is_object() => t.clone(),
        _ => {
            return Err(ModelError::config(
                outer.path,
                "model_type `gemma3` needs a `text_config` object (the language model's config)",
            ));
        }
    };
    // The text model alone, as transformers saves a Gemma3ForCausalLM: what `export` writes.
    let mut raw = text.clone();
    raw["model_type"] = "gemma3_text".into();
    raw["architectures"] = serde_json::json!(["Gemma3ForCausalLM"]);
    if raw.get("tie_word_embeddings").is_none() {
        raw["tie_word_embeddings"] =
            outer.raw.get("tie_word_embeddings").cloned().unwrap_or(Value::Bool(true));
    }
    let r = ConfigReader::new(&text, outer.path)?;
    parse_text(&r, raw)
}

fn parse_text(r: &ConfigReader<'_>, raw: Value) -> Result<ModelConfig> {
    if r.field::<bool>(&["use_bidirectional_attention"])?.unwrap_or(false) {
        return Err(ModelError::Unsupported(format!(
            "{}: `use_bidirectional_attention` (EmbeddingGemma) is not a causal language model",
            r.path.display()
        )));
    }
    let hidden: usize = r.field(&["hidden_size"])?.unwrap_or(2304);
    let heads: usize = r.field(&["num_attention_heads"])?.unwrap_or(8);
    let head_dim: usize = r.field(&["head_dim"])?.unwrap_or(256);
    let layers: usize = r.field(&["num_hidden_layers"])?.unwrap_or(26);
    GemmaOptions::read(r.raw, r.path, DEFAULT_QUERY_SCALAR)?;
    let positive = |key: &str| -> Result<Option<f64>> {
        match r.field::<f64>(&[key])? {
            Some(v) if !(v.is_finite() && v > 0.0) => {
                Err(ModelError::config(r.path, format!("`{key}` = {v} must be positive")))
            }
            v => Ok(v),
        }
    };
    let sliding = layer_kinds(r, layers)?;
    let (global_theta, linear, local_theta) = rope_bases(r)?;
    let window: usize = r.field(&["sliding_window"])?.unwrap_or(4096);
    let local_attention = sliding.iter().any(|&s| s).then(|| LocalAttention {
        window,
        sliding: sliding.clone(),
        rope_theta: local_theta,
    });
    Ok(ModelConfig {
        vocab_size: r.field(&["vocab_size"])?.unwrap_or(262_208),
        hidden_size: hidden,
        intermediate_size: r.field(&["intermediate_size"])?.unwrap_or(9216),
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: r.field(&["num_key_value_heads"])?.unwrap_or(4),
        head_dim,
        norm_eps: r.field(&["rms_norm_eps"])?.unwrap_or(1e-6),
        rope_theta: global_theta,
        rotary_dim: head_dim,
        max_positions: r.field(&["max_position_embeddings"])?.unwrap_or(131_072),
        activation: r.activation(&["hidden_activation", "hidden_act"], "gelu_pytorch_tanh")?,
        tie_word_embeddings: r.field(&["tie_word_embeddings"])?.unwrap_or(true),
        pad_token_id: r.field(&["pad_token_id"])?,
        rope_scaling: r.rope_scaling,
        rope_linear_factor: linear,
        local_attention,
        attn_logit_softcap: positive("attn_logit_softcapping")?,
        raw,
        ..ModelConfig::defaults_for(GEMMA3.family)
    })
}

/// Per layer, whether it slides: `layer_types`, else every `sliding_window_pattern`-th layer
/// (default 6th) full, as HF's `Gemma3TextConfig` and llama.cpp derive it.
fn layer_kinds(r: &ConfigReader<'_>, layers: usize) -> Result<Vec<bool>> {
    if let Some(types) = r.field::<Vec<String>>(&["layer_types"])? {
        if types.len() != layers {
            return Err(ModelError::config(
                r.path,
                format!("`layer_types` has {} entries for {layers} layers", types.len()),
            ));
        }
        return types
            .iter()
            .enumerate()
            .map(|(i, t)| match t.as_str() {
                "sliding_attention" => Ok(true),
                "full_attention" => Ok(false),
                other => Err(ModelError::config(
                    r.path,
                    format!("`layer_types[{i}]` = `{other}` (expected sliding_attention or full_attention)"),
                )),
            })
            .collect();
    }
    let pattern: usize =
        r.field(&["sliding_window_pattern", "_sliding_window_pattern"])?.unwrap_or(DEFAULT_PATTERN);
    if pattern == 0 {
        return Err(ModelError::config(r.path, "`sliding_window_pattern` is 0"));
    }
    Ok((0..layers).map(|i| (i + 1) % pattern != 0).collect())
}

/// (full layers' RoPE base, their linear scaling factor, sliding layers' base): transformers 5
/// writes `rope_parameters: {full_attention: {…}, sliding_attention: {…}}`; older configs
/// `rope_theta`, `rope_local_base_freq` and `rope_scaling` (full layers only).
fn rope_bases(r: &ConfigReader<'_>) -> Result<(f64, Option<f64>, f64)> {
    let per_kind = r.raw.get("rope_parameters").filter(|p| p.get("full_attention").is_some());
    let Some(params) = per_kind else {
        let global = r.rope_theta(DEFAULT_GLOBAL_THETA, &["rope_theta"])?;
        let local = r.field(&["rope_local_base_freq"])?.unwrap_or(DEFAULT_LOCAL_THETA);
        return Ok((global, r.rope_linear_factor, local));
    };
    let kind = |name: &str, default_theta: f64| -> Result<(f64, Option<f64>)> {
        let Some(p) = params.get(name).filter(|p| !p.is_null()) else {
            return Ok((default_theta, None));
        };
        let key = format!("rope_parameters.{name}");
        let number = |field: &str| -> Result<Option<f64>> {
            match p.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    v.as_f64().filter(|x| x.is_finite() && *x > 0.0).map(Some).ok_or_else(|| {
                        ModelError::config(r.path, format!("`{key}.{field}` must be positive"))
                    })
                }
            }
        };
        let theta = number("rope_theta")?.unwrap_or(default_theta);
        match p.get("rope_type").and_then(Value::as_str).unwrap_or("default") {
            "default" => Ok((theta, None)),
            "linear" => match number("factor")? {
                Some(f) => Ok((theta, Some(f))),
                None => Err(ModelError::config(
                    r.path,
                    format!("`{key}`: rope_type `linear` needs a positive `factor`"),
                )),
            },
            other => Err(ModelError::config(
                r.path,
                format!("`{key}`: unsupported rope_type `{other}` (supported: default, linear)"),
            )),
        }
    };
    let (global, linear) = kind("full_attention", DEFAULT_GLOBAL_THETA)?;
    let (local, local_linear) = kind("sliding_attention", DEFAULT_LOCAL_THETA)?;
    if local_linear.is_some() {
        return Err(ModelError::config(
            r.path,
            "`rope_parameters.sliding_attention`: scaled RoPE on sliding layers is not supported",
        ));
    }
    Ok((global, linear, local))
}

/// Gemma 3 27B (62 layers): llama.cpp scales its queries by `1/√(d/H)`, as for Gemma 2 27B.
const GEMMA3_27B_LAYERS: u64 = 62;

/// What a Gemma 3 GGUF does not store and llama.cpp hard-codes: every 6th layer attends fully,
/// the others slide with RoPE base 10,000 (unscaled).
const GGUF_PATTERN: u64 = 6;
const GGUF_LOCAL_THETA: f64 = 10_000.0;

/// A `gemma3` GGUF's keys: per-layer-type RoPE bases and layer kinds — from the file where a newer
/// converter stated them, else llama.cpp's rules (said in a note) — and the query scale.
fn gguf_config(m: &ArchMetadata<'_>) -> Result<GgufConfig> {
    // `attention.scale` (llama.cpp's generic key) overrides its depth rule when present.
    let scalar = match m.f64("attention.scale") {
        // The scale is stored as an f32 (1/√24 reads back as 1/23.999998); Gemma's
        // `query_pre_attn_scalar` is a whole number, so one within f32 rounding of a whole
        // number is that number.
        Some(scale) if scale.is_finite() && scale > 0.0 => {
            let scalar = 1.0 / (scale * scale);
            if (scalar - scalar.round()).abs() <= 1e-5 * scalar { scalar.round() } else { scalar }
        }
        _ if m.layers == GEMMA3_27B_LAYERS => (m.hidden / m.heads.max(1)) as f64,
        _ => m.head_dim as f64,
    };
    let layer_types =
        gguf_layer_types(m.file, &m.key("attention.sliding_window_pattern"), m.layers, m.path)?;
    let local_theta = m.f64("rope.freq_base_swa").unwrap_or(GGUF_LOCAL_THETA);
    let theta = m.rope_theta;
    let mut full = json!({"rope_type": "default", "rope_theta": theta});
    match (m.str("rope.scaling.type"), m.f64("rope.scaling.factor")) {
        (None | Some("none"), _) => {}
        (Some("linear"), Some(factor)) if factor.is_finite() && factor > 0.0 => {
            full = json!({"rope_type": "linear", "rope_theta": theta, "factor": factor});
        }
        (Some(kind), factor) => {
            return Err(ModelError::Unsupported(format!(
                "{}: Gemma 3 RoPE scaling `{kind}` with factor {factor:?} (supported: linear)",
                m.path.display()
            )));
        }
    }
    let extra = json!({
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "head_dim": m.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        // transformers' strict config wants an int here (a float fails its validation).
        "query_pre_attn_scalar": if scalar.fract() == 0.0 && scalar < 1e15 {
            json!(scalar as u64)
        } else {
            json!(scalar)
        },
        "final_logit_softcapping": m.f64("final_logit_softcapping"),
        "sliding_window": m.window,
        "layer_types": layer_types,
        // Its bases are per layer type, in `rope_parameters` (null: not the shared key).
        "rope_theta": null,
        "rope_parameters": {
            "full_attention": full,
            "sliding_attention": {"rope_type": "default", "rope_theta": local_theta},
        },
    });
    let stated = m.get("attention.sliding_window_pattern").is_some()
        && m.get("rope.freq_base_swa").is_some();
    let notes = if stated {
        Vec::new()
    } else {
        vec![format!(
            "note: {}: the GGUF does not store Gemma 3's layer pattern or local RoPE base; as llama.cpp: every {GGUF_PATTERN}th layer full attention, the others a sliding window with base {GGUF_LOCAL_THETA}",
            m.path.display()
        )]
    };
    Ok((extra, notes))
}

/// Gemma 3's layer kinds: llama.cpp's hard-coded rule (every 6th layer full), unless the file
/// states `attention.sliding_window_pattern` — a period (layer l slides unless (l + 1) is a
/// multiple of it) or one bool per layer (true: sliding), as newer converters write.
fn gguf_layer_types(
    f: &crate::gguf::GgufFile,
    key: &str,
    layers: u64,
    path: &Path,
) -> Result<Vec<&'static str>> {
    let kind = |sliding: bool| if sliding { "sliding_attention" } else { "full_attention" };
    match f.metadata.get(key) {
        None => Ok((0..layers).map(|l| kind((l + 1) % GGUF_PATTERN != 0)).collect()),
        Some(GgufValue::Array(flags)) => {
            if flags.len() as u64 != layers {
                return Err(ModelError::format(
                    path,
                    format!("`{key}` has {} entries for {layers} layers", flags.len()),
                ));
            }
            flags
                .iter()
                .map(|v| match v {
                    GgufValue::Bool(b) => Ok(kind(*b)),
                    other => {
                        Err(ModelError::format(path, format!("`{key}`: {other:?} is not a bool")))
                    }
                })
                .collect()
        }
        Some(v) => match v.as_u64() {
            Some(period) if period > 0 => {
                Ok((0..layers).map(|l| kind((l + 1) % period != 0)).collect())
            }
            _ => Err(ModelError::format(path, format!("`{key}` = {v:?} is not a positive period"))),
        },
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Gemma3 {
    cfg: ModelConfig,
    opts: GemmaOptions,
    weights: WeightSchema,
    outer: Outer,
    blocks: Vec<GemmaBlock>,
}

impl Gemma3 {
    fn new(cfg: ModelConfig) -> Result<Self> {
        let opts = GemmaOptions::read(&cfg.raw, Path::new("config.json"), DEFAULT_QUERY_SCALAR)?;
        let (weights, outer, blocks) =
            Outer::model(&cfg, |b, c| GemmaBlock::new(b, c, &opts, true));
        Ok(Self { cfg, opts, weights, outer, blocks })
    }

    /// The per-head `(1 + w)` RMSNorm on q or k.
    fn head_norm(&self, p: &Params, x: Tensor<4>, name: &str) -> Tensor<4> {
        rms_norm_heads(x, p.vec4(name).add_scalar(1.0), self.cfg.norm_eps)
    }
}

impl Architecture for Gemma3 {
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

    /// A Gemma3ForConditionalGeneration folder stores its language model under
    /// `language_model.model.` (transformers 4) or `model.language_model.` (transformers 5),
    /// beside a vision tower that is not read.
    fn normalise_names(&self, weights: WeightMap) -> (WeightMap, Vec<String>) {
        if weights.contains_key(&self.outer.embed) {
            return (weights, Vec::new());
        }
        let mut skipped = 0usize;
        let weights = weights
            .into_iter()
            .filter_map(|(k, v)| {
                let text = k
                    .strip_prefix("language_model.model.")
                    .or_else(|| k.strip_prefix("model.language_model."))
                    .map(|rest| format!("model.{rest}"))
                    .or_else(|| k.strip_prefix("language_model.").map(str::to_owned))
                    .or_else(|| (k == "lm_head.weight").then(|| k.clone()));
                if text.is_none() {
                    skipped += 1;
                }
                text.map(|name| (name, v))
            })
            .collect();
        let notes = (skipped > 0).then(|| format!(
            "note: a Gemma 3 multimodal checkpoint: its language model is read; {skipped} tensors of the vision tower and projector are not used"
        ));
        (weights, notes.into_iter().collect())
    }

    fn embed(&self, p: &Params, batch: &BatchInput) -> Tensor<3> {
        // HF multiplies by √d in the weights' dtype; these weights are f32.
        let scale = f64::from((self.cfg.hidden_size as f32).sqrt());
        self.outer.embed(p, batch).mul_scalar(scale)
    }

    /// # Shapes
    /// `x: [B, T, d]` → `[B, T, d]`.
    fn block(&self, p: &Params, l: usize, x: Tensor<3>, ctx: &Context) -> Tensor<3> {
        let (c, b) = (&self.cfg, &self.blocks[l]);
        let norm = |x: Tensor<3>, name: &str| gemma_norm(p, x, name, c.norm_eps);
        let (q_norm, k_norm) = b.qk_norm.as_ref().expect("Gemma 3 blocks have q and k norms");
        let h = norm(x.clone(), &b.input_norm);
        let q = split_heads(b.attn.q.forward(p, h.clone()), c.num_heads);
        let k = split_heads(b.attn.k.forward(p, h.clone()), c.num_kv_heads);
        let q = ctx.rotate_layer(l, self.head_norm(p, q, q_norm));
        let k = ctx.rotate_layer(l, self.head_norm(p, k, k_norm));
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
