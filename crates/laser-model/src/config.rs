//! Model configs, deserialised from HF `config.json` with HF key names (older aliases accepted),
//! and validated for consistency before any weight is read.

use std::path::Path;

use serde::Deserialize;

use crate::error::{ModelError, Result};

/// The supported architecture families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// LlamaForCausalLM (SmolLM2, TinyLlama, Llama-2, Llama 3.x with `llama3` rope scaling).
    Llama,
    /// MistralForCausalLM: the llama layout with a sliding attention window.
    Mistral,
    /// Qwen2ForCausalLM (Qwen2, Qwen2.5): the llama layout with biases on q, k and v.
    Qwen2,
    /// Qwen3ForCausalLM: the llama layout with a per-head RMSNorm on q and k.
    Qwen3,
    /// Phi3ForCausalLM: fused `qkv_proj` and `gate_up_proj`.
    Phi3,
    /// Gemma2ForCausalLM: scaled embeddings, `(1 + w)` RMSNorms around attention and MLP,
    /// logit soft-capping.
    Gemma2,
    /// GPT2LMHeadModel.
    Gpt2,
    /// GPTJForCausalLM.
    Gptj,
    /// GPTNeoXForCausalLM (Pythia).
    GptNeox,
    /// RobertaForMaskedLM.
    Roberta,
}

impl Family {
    /// The name used in reports and `laser inspect` (`llama`, `mistral`, `qwen2`, `qwen3`, `phi3`,
    /// `gemma2`, `gpt2`, `gptj`, `gpt_neox`, `roberta`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Phi3 => "phi3",
            Self::Gemma2 => "gemma2",
            Self::Gpt2 => "gpt2",
            Self::Gptj => "gptj",
            Self::GptNeox => "gpt_neox",
            Self::Roberta => "roberta",
        }
    }

    /// Whether the model predicts the next token (as opposed to masked tokens).
    pub fn is_causal(self) -> bool {
        !matches!(self, Self::Roberta)
    }
}

/// Activation functions by their HF names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `silu` / `swish`.
    Silu,
    /// Exact (erf) GELU: `gelu`.
    Gelu,
    /// tanh-approximate GELU: `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`.
    GeluTanh,
    /// `relu`.
    Relu,
}

impl Activation {
    fn parse(name: &str, path: &Path) -> Result<Self> {
        Ok(match name {
            "silu" | "swish" => Self::Silu,
            "gelu" => Self::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Self::GeluTanh,
            "relu" => Self::Relu,
            other => {
                return Err(ModelError::config(path, format!("unsupported activation `{other}`")));
            }
        })
    }
}

/// HF's `rope_parameters` (transformers 5) or `rope_scaling` (hub checkpoints; older ones say
/// `type` instead of `rope_type`).
#[derive(Debug, Clone, Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    partial_rotary_factor: Option<f64>,
    #[serde(alias = "type")]
    rope_type: Option<String>,
    factor: Option<f64>,
    low_freq_factor: Option<f64>,
    high_freq_factor: Option<f64>,
    original_max_position_embeddings: Option<f64>,
}

/// Llama 3.x RoPE frequency scaling (`rope_type: llama3`): wavelengths longer than
/// `original_max_position_embeddings / low_freq_factor` are stretched by `factor`, those shorter
/// than `… / high_freq_factor` kept, and the band between interpolated smoothly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3RopeScaling {
    /// Stretch of the low frequencies.
    pub factor: f64,
    /// Wavelength threshold (as a divisor of the original context) above which frequencies are
    /// fully stretched.
    pub low_freq_factor: f64,
    /// Threshold below which frequencies are kept.
    pub high_freq_factor: f64,
    /// The pre-training context length.
    pub original_max_position_embeddings: f64,
}

impl Llama3RopeScaling {
    /// The scaled inverse frequency (HF `_compute_llama3_parameters`).
    pub fn scale(&self, inv_freq: f64) -> f64 {
        let low_wavelen = self.original_max_position_embeddings / self.low_freq_factor;
        let high_wavelen = self.original_max_position_embeddings / self.high_freq_factor;
        let wavelen = std::f64::consts::TAU / inv_freq;
        if wavelen < high_wavelen {
            inv_freq
        } else if wavelen > low_wavelen {
            inv_freq / self.factor
        } else {
            let smooth = (self.original_max_position_embeddings / wavelen - self.low_freq_factor)
                / (self.high_freq_factor - self.low_freq_factor);
            (1.0 - smooth) * inv_freq / self.factor + smooth * inv_freq
        }
    }
}

/// The architecture hyper-parameters every family shares, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The family.
    pub family: Family,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// Transformer blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (GQA); equals `num_heads` without GQA.
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm / LayerNorm epsilon.
    pub norm_eps: f64,
    /// RoPE base (rotary families).
    pub rope_theta: f64,
    /// Dimensions of each head that are rotated (rotary families); 0 for learned positions.
    pub rotary_dim: usize,
    /// Learned position table size (gpt2, roberta) or context length.
    pub max_positions: usize,
    /// FFN activation.
    pub activation: Activation,
    /// Whether the LM head shares the token embedding.
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v/o (llama `attention_bias`).
    pub attention_bias: bool,
    /// Biases on the MLP (llama `mlp_bias`).
    pub mlp_bias: bool,
    /// GPT-NeoX parallel residual.
    pub parallel_residual: bool,
    /// Padding id (roberta positions are offset by it).
    pub pad_token_id: Option<u32>,
    /// Llama 3.x RoPE frequency scaling.
    pub rope_scaling: Option<Llama3RopeScaling>,
    /// Biases on q, k and v only (Qwen2).
    pub qkv_bias: bool,
    /// Per-head RMSNorm on q and k before the rotary embedding (Qwen3).
    pub qk_norm: bool,
    /// Attention window: a sequence longer than it is refused (its attention would need the
    /// window's mask, which this implementation does not build).
    pub sliding_window: Option<usize>,
    /// Attention scores pass through `c · tanh(s / c)` before the mask (Gemma 2).
    pub attn_logit_softcap: Option<f64>,
    /// Output logits pass through `c · tanh(z / c)` (Gemma 2).
    pub final_logit_softcap: Option<f64>,
    /// Scores are scaled by `attention_scalar^-½` instead of `head_dim^-½` (Gemma 2's
    /// `query_pre_attn_scalar`).
    pub attention_scalar: Option<f64>,
    /// The raw `config.json` (kept for export).
    pub raw: serde_json::Value,
}

fn field<T: serde::de::DeserializeOwned>(
    raw: &serde_json::Value,
    keys: &[&str],
    path: &Path,
) -> Result<Option<T>> {
    for key in keys {
        if let Some(v) = raw.get(*key) {
            if v.is_null() {
                continue;
            }
            return serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| ModelError::config(path, format!("field `{key}`: {e}")));
        }
    }
    Ok(None)
}

fn required<T: serde::de::DeserializeOwned>(
    raw: &serde_json::Value,
    keys: &[&str],
    path: &Path,
) -> Result<T> {
    field(raw, keys, path)?
        .ok_or_else(|| ModelError::config(path, format!("missing field `{}`", keys[0])))
}

impl ModelConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Parses and validates the bytes of a `config.json`; `path` only names the file in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let raw: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ModelError::config(path, format!("not JSON: {e}")))?;
        Self::from_json(raw, path)
    }

    /// Builds a config from parsed JSON; `path` is only used in error messages.
    pub fn from_json(raw: serde_json::Value, path: &Path) -> Result<Self> {
        if !raw.is_object() {
            return Err(ModelError::config(path, "expected a JSON object"));
        }
        let model_type: String = required(&raw, &["model_type"], path)?;
        let rope: Option<RopeParameters> = field(&raw, &["rope_parameters", "rope_scaling"], path)?;
        let rope_scaling = match rope.as_ref().and_then(|r| r.rope_type.as_deref()) {
            None | Some("default") => None,
            Some("llama3") => {
                let r = rope.as_ref().expect("has a rope_type");
                let need = |v: Option<f64>, key: &str| {
                    v.filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| {
                        ModelError::config(
                            path,
                            format!("rope_type `llama3` needs a positive `{key}`"),
                        )
                    })
                };
                let s = Llama3RopeScaling {
                    factor: need(r.factor, "factor")?,
                    low_freq_factor: need(r.low_freq_factor, "low_freq_factor")?,
                    high_freq_factor: need(r.high_freq_factor, "high_freq_factor")?,
                    original_max_position_embeddings: need(
                        r.original_max_position_embeddings,
                        "original_max_position_embeddings",
                    )?,
                };
                if s.high_freq_factor <= s.low_freq_factor {
                    return Err(ModelError::config(
                        path,
                        "rope_type `llama3` needs high_freq_factor > low_freq_factor",
                    ));
                }
                Some(s)
            }
            Some(kind) => {
                return Err(ModelError::config(
                    path,
                    format!("unsupported rope_type `{kind}` (supported: default, llama3)"),
                ));
            }
        };
        let rope_theta = |default: f64, keys: &[&str]| -> Result<f64> {
            Ok(field::<f64>(&raw, keys, path)?
                .or(rope.as_ref().and_then(|r| r.rope_theta))
                .unwrap_or(default))
        };
        let act = |keys: &[&str], default: &str| -> Result<Activation> {
            let name: String = field(&raw, keys, path)?.unwrap_or_else(|| default.to_owned());
            Activation::parse(&name, path)
        };
        let cfg = match model_type.as_str() {
            "llama" | "mistral" | "qwen2" | "qwen3" => {
                let hidden: usize = required(&raw, &["hidden_size"], path)?;
                let heads: usize = required(&raw, &["num_attention_heads"], path)?;
                let head_dim = field(&raw, &["head_dim"], path)?.unwrap_or(hidden / heads.max(1));
                let family = match model_type.as_str() {
                    "mistral" => Family::Mistral,
                    "qwen2" => Family::Qwen2,
                    "qwen3" => Family::Qwen3,
                    _ => Family::Llama,
                };
                // Qwen2 and Qwen3 use a window only when `use_sliding_window` says so; Mistral
                // whenever `sliding_window` is set.
                let window_on = match family {
                    Family::Qwen2 | Family::Qwen3 => {
                        field(&raw, &["use_sliding_window"], path)?.unwrap_or(false)
                    }
                    _ => true,
                };
                let sliding_window: Option<usize> =
                    if window_on { field(&raw, &["sliding_window"], path)? } else { None };
                ModelConfig {
                    family,
                    vocab_size: required(&raw, &["vocab_size"], path)?,
                    hidden_size: hidden,
                    intermediate_size: required(&raw, &["intermediate_size"], path)?,
                    num_layers: required(&raw, &["num_hidden_layers"], path)?,
                    num_heads: heads,
                    num_kv_heads: field(&raw, &["num_key_value_heads"], path)?.unwrap_or(heads),
                    head_dim,
                    norm_eps: field(&raw, &["rms_norm_eps"], path)?.unwrap_or(1e-6),
                    rope_theta: rope_theta(10000.0, &["rope_theta"])?,
                    rotary_dim: head_dim,
                    max_positions: field(&raw, &["max_position_embeddings"], path)?.unwrap_or(2048),
                    activation: act(&["hidden_act"], "silu")?,
                    tie_word_embeddings: field(&raw, &["tie_word_embeddings"], path)?
                        .unwrap_or(false),
                    attention_bias: field(&raw, &["attention_bias"], path)?.unwrap_or(false),
                    mlp_bias: field(&raw, &["mlp_bias"], path)?.unwrap_or(false),
                    parallel_residual: false,
                    pad_token_id: field(&raw, &["pad_token_id"], path)?,
                    rope_scaling,
                    qkv_bias: family == Family::Qwen2,
                    qk_norm: family == Family::Qwen3,
                    sliding_window,
                    attn_logit_softcap: None,
                    final_logit_softcap: None,
                    attention_scalar: None,
                    raw: raw.clone(),
                }
            }
            "phi3" => {
                let hidden: usize = required(&raw, &["hidden_size"], path)?;
                let heads: usize = required(&raw, &["num_attention_heads"], path)?;
                let head_dim = hidden / heads.max(1);
                let pct = field::<f64>(&raw, &["partial_rotary_factor"], path)?
                    .or(rope.as_ref().and_then(|r| r.partial_rotary_factor))
                    .unwrap_or(1.0);
                if !(pct > 0.0 && pct <= 1.0) {
                    return Err(ModelError::config(
                        path,
                        format!("partial_rotary_factor {pct} is outside (0, 1]"),
                    ));
                }
                ModelConfig {
                    family: Family::Phi3,
                    vocab_size: required(&raw, &["vocab_size"], path)?,
                    hidden_size: hidden,
                    intermediate_size: required(&raw, &["intermediate_size"], path)?,
                    num_layers: required(&raw, &["num_hidden_layers"], path)?,
                    num_heads: heads,
                    num_kv_heads: field(&raw, &["num_key_value_heads"], path)?.unwrap_or(heads),
                    head_dim,
                    norm_eps: field(&raw, &["rms_norm_eps"], path)?.unwrap_or(1e-5),
                    rope_theta: rope_theta(10000.0, &["rope_theta"])?,
                    rotary_dim: (head_dim as f64 * pct) as usize,
                    max_positions: field(&raw, &["max_position_embeddings"], path)?.unwrap_or(4096),
                    activation: act(&["hidden_act"], "silu")?,
                    tie_word_embeddings: field(&raw, &["tie_word_embeddings"], path)?
                        .unwrap_or(false),
                    attention_bias: false,
                    mlp_bias: false,
                    parallel_residual: false,
                    pad_token_id: field(&raw, &["pad_token_id"], path)?,
                    rope_scaling,
                    qkv_bias: false,
                    qk_norm: false,
                    sliding_window: field(&raw, &["sliding_window"], path)?,
                    attn_logit_softcap: None,
                    final_logit_softcap: None,
                    attention_scalar: None,
                    raw: raw.clone(),
                }
            }
            "gemma2" => {
                let hidden: usize = required(&raw, &["hidden_size"], path)?;
                let heads: usize = required(&raw, &["num_attention_heads"], path)?;
                let head_dim = field(&raw, &["head_dim"], path)?.unwrap_or(hidden / heads.max(1));
                let layer_types: Option<Vec<String>> = field(&raw, &["layer_types"], path)?;
                // Gemma 2 alternates sliding and global layers; without `layer_types` every other
                // layer slides, as in HF's default.
                let any_sliding =
                    layer_types.as_ref().is_none_or(|t| t.iter().any(|x| x == "sliding_attention"));
                let positive = |key: &str| -> Result<Option<f64>> {
                    match field::<f64>(&raw, &[key], path)? {
                        Some(v) if !(v.is_finite() && v > 0.0) => {
                            Err(ModelError::config(path, format!("`{key}` = {v} must be positive")))
                        }
                        v => Ok(v),
                    }
                };
                ModelConfig {
                    family: Family::Gemma2,
                    vocab_size: required(&raw, &["vocab_size"], path)?,
                    hidden_size: hidden,
                    intermediate_size: required(&raw, &["intermediate_size"], path)?,
                    num_layers: required(&raw, &["num_hidden_layers"], path)?,
                    num_heads: heads,
                    num_kv_heads: field(&raw, &["num_key_value_heads"], path)?.unwrap_or(heads),
                    head_dim,
                    norm_eps: field(&raw, &["rms_norm_eps"], path)?.unwrap_or(1e-6),
                    rope_theta: rope_theta(10000.0, &["rope_theta"])?,
                    rotary_dim: head_dim,
                    max_positions: field(&raw, &["max_position_embeddings"], path)?.unwrap_or(8192),
                    activation: act(&["hidden_activation", "hidden_act"], "gelu_pytorch_tanh")?,
                    tie_word_embeddings: field(&raw, &["tie_word_embeddings"], path)?
                        .unwrap_or(true),
                    attention_bias: field(&raw, &["attention_bias"], path)?.unwrap_or(false),
                    mlp_bias: false,
                    parallel_residual: false,
                    pad_token_id: field(&raw, &["pad_token_id"], path)?,
                    rope_scaling,
                    qkv_bias: false,
                    qk_norm: false,
                    sliding_window: if any_sliding {
                        field(&raw, &["sliding_window"], path)?
                    } else {
                        None
                    },
                    attn_logit_softcap: positive("attn_logit_softcapping")?,
                    final_logit_softcap: positive("final_logit_softcapping")?,
                    attention_scalar: Some(
                        positive("query_pre_attn_scalar")?.unwrap_or(head_dim as f64),
                    ),
                    raw: raw.clone(),
                }
            }
            "gpt2" | "gptj" => {
                let hidden: usize = required(&raw, &["n_embd", "hidden_size"], path)?;
                let heads: usize = required(&raw, &["n_head", "num_attention_heads"], path)?;
                let gptj = model_type == "gptj";
                let head_dim = hidden / heads.max(1);
                ModelConfig {
                    family: if gptj { Family::Gptj } else { Family::Gpt2 },
                    vocab_size: required(&raw, &["vocab_size"], path)?,
                    hidden_size: hidden,
                    intermediate_size: field(&raw, &["n_inner"], path)?
                        .unwrap_or(hidden.saturating_mul(4)),
                    num_layers: required(&raw, &["n_layer", "num_hidden_layers"], path)?,
                    num_heads: heads,
                    num_kv_heads: heads,
                    head_dim,
                    norm_eps: field(&raw, &["layer_norm_epsilon"], path)?.unwrap_or(1e-5),
                    rope_theta: 10000.0,
                    rotary_dim: if gptj {
                        field(&raw, &["rotary_dim"], path)?.unwrap_or(head_dim)
                    } else {
                        0
                    },
                    max_positions: field(&raw, &["n_positions", "max_position_embeddings"], path)?
                        .unwrap_or(1024),
                    activation: act(&["activation_function"], "gelu_new")?,
                    tie_word_embeddings: field(&raw, &["tie_word_embeddings"], path)?
                        .unwrap_or(!gptj),
                    attention_bias: !gptj,
                    mlp_bias: true,
                    parallel_residual: gptj,
                    pad_token_id: field(&raw, &["pad_token_id"], path)?,
                    rope_scaling: None,
                    qkv_bias: false,
                    qk_norm: false,
                    sliding_window: None,
                    attn_logit_softcap: None,
                    final_logit_softcap: None,
                    attention_scalar: None,
                    raw: raw.clone(),
                }
            }
            "gpt_neox" => {
                let hidden: usize = required(&raw, &["hidden_size"], path)?;
                let heads: usize = required(&raw, &["num_attention_heads"], path)?;
                let head_dim = hidden / heads.max(1);
                let pct = field::<f64>(&raw, &["rotary_pct"], path)?
                    .or(rope.as_ref().and_then(|r| r.partial_rotary_factor))
                    .unwrap_or(0.25);
                ModelConfig {
                    family: Family::GptNeox,
                    vocab_size: required(&raw, &["vocab_size"], path)?,
                    hidden_size: hidden,
                    intermediate_size: required(&raw, &["intermediate_size"], path)?,
                    num_layers: required(&raw, &["num_hidden_layers"], path)?,
                    num_heads: heads,
                    num_kv_heads: heads,
                    head_dim,
                    norm_eps: field(&raw, &["layer_norm_eps"], path)?.unwrap_or(1e-5),
                    rope_theta: rope_theta(10000.0, &["rotary_emb_base", "rope_theta"])?,
                    rotary_dim: (head_dim as f64 * pct) as usize,
                    max_positions: field(&raw, &["max_position_embeddings"], path)?.unwrap_or(2048),
                    activation: act(&["hidden_act"], "gelu")?,
                    tie_word_embeddings: field(&raw, &["tie_word_embeddings"], path)?
                        .unwrap_or(false),
                    attention_bias: field(&raw, &["attention_bias"], path)?.unwrap_or(true),
                    mlp_bias: true,
                    parallel_residual: field(&raw, &["use_parallel_residual"], path)?
                        .unwrap_or(true),
                    pad_token_id: field(&raw, &["pad_token_id"], path)?,
                    rope_scaling: None,
                    qkv_bias: false,
                    qk_norm: false,
                    sliding_window: None,
                    attn_logit_softcap: None,
                    final_logit_softcap: None,
                    attention_scalar: None,
                    raw: raw.clone(),
                }
            }
            "roberta" => {
                let hidden: usize = required(&raw, &["hidden_size"], path)?;
                let heads: usize = required(&raw, &["num_attention_heads"], path)?;
                ModelConfig {
                    family: Family::Roberta,
                    vocab_size: required(&raw, &["vocab_size"], path)?,
                    hidden_size: hidden,
                    intermediate_size: required(&raw, &["intermediate_size"], path)?,
                    num_layers: required(&raw, &["num_hidden_layers"], path)?,
                    num_heads: heads,
                    num_kv_heads: heads,
                    head_dim: hidden / heads.max(1),
                    norm_eps: field(&raw, &["layer_norm_eps"], path)?.unwrap_or(1e-12),
                    rope_theta: 0.0,
                    rotary_dim: 0,
                    max_positions: required(&raw, &["max_position_embeddings"], path)?,
                    activation: act(&["hidden_act"], "gelu")?,
                    tie_word_embeddings: true,
                    attention_bias: true,
                    mlp_bias: true,
                    parallel_residual: false,
                    pad_token_id: Some(field(&raw, &["pad_token_id"], path)?.unwrap_or(1)),
                    rope_scaling: None,
                    qkv_bias: false,
                    qk_norm: false,
                    sliding_window: None,
                    attn_logit_softcap: None,
                    final_logit_softcap: None,
                    attention_scalar: None,
                    raw: raw.clone(),
                }
            }
            other => {
                return Err(ModelError::Unsupported(format!(
                    "{}: model_type `{other}` (supported: llama, mistral, qwen2, qwen3, phi3, gemma2, gpt2, gptj, gpt_neox, roberta)",
                    path.display()
                )));
            }
        };
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Rejects zero or inconsistent dimensions before any allocation depends on them.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |m: String| Err(ModelError::config(path, m));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
        ] {
            if v == 0 {
                return bad(format!("`{name}` is 0"));
            }
            if v > 1 << 24 {
                return bad(format!("`{name}` = {v} is implausibly large"));
            }
        }
        let explicit_head_dim = matches!(
            self.family,
            Family::Llama | Family::Mistral | Family::Qwen2 | Family::Qwen3 | Family::Gemma2
        );
        if !explicit_head_dim && self.num_heads * self.head_dim != self.hidden_size {
            return bad(format!(
                "hidden_size {} is not num_attention_heads {} × head width",
                self.hidden_size, self.num_heads
            ));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_heads, self.num_kv_heads
            ));
        }
        if !self.rotary_dim.is_multiple_of(2) || self.rotary_dim > self.head_dim {
            return bad(format!(
                "rotary dimension {} must be even and ≤ head_dim {}",
                self.rotary_dim, self.head_dim
            ));
        }
        if self.sliding_window == Some(0) {
            return bad("`sliding_window` is 0".into());
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return bad(format!("norm epsilon {} must be positive", self.norm_eps));
        }
        Ok(())
    }
}
