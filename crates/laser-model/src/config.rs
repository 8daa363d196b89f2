//! Model configs, deserialised from HF `config.json` with HF key names (older aliases accepted),
//! and validated for consistency before any weight is read.

use std::path::Path;

use serde::Deserialize;

use crate::error::{ModelError, Result};

/// The most layers a config may declare (the deepest open models have about 130).
pub const MAX_LAYERS: usize = 4096;
/// An architecture family: its name in reports and whether it predicts the next token. Each
/// family's file declares its own (`families/`), and the registry lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Family {
    name: &'static str,
    causal: bool,
}

impl Family {
    /// A family called `name`; `causal`: it predicts the next token (not masked ones).
    pub(crate) const fn new(name: &'static str, causal: bool) -> Self {
        Self { name, causal }
    }

    /// The name used in reports and `laser inspect` (`llama`, `mistral`, `qwen2`, `qwen3`, `phi3`,
    /// `gemma2`, `gemma3`, `gpt2`, `gptj`, `gpt_neox`, `roberta`).
    pub fn name(self) -> &'static str {
        self.name
    }

    /// Whether the model predicts the next token (as opposed to masked tokens).
    pub fn is_causal(self) -> bool {
        self.causal
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

/// Layers that attend within a sliding window, computed (not refused): Gemma 3 mixes them with
/// full-attention layers, each kind with its own RoPE base.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAttention {
    /// A query at position p sees keys at positions p − window + 1 ..= p on a sliding layer (HF's
    /// `kv_idx > q_idx − sliding_window`, llama.cpp's `p1 − p0 < n_swa`).
    pub window: usize,
    /// Per layer, whether it slides.
    pub sliding: Vec<bool>,
    /// RoPE base of the sliding layers (`rope_local_base_freq`); never scaled.
    pub rope_theta: f64,
}

/// The architecture hyper-parameters the engine reads, normalised: dimensions, positions, RoPE,
/// attention windows and soft-cap, the head's tying. What only one family's blocks read (biases,
/// q/k norms, a parallel residual, a query scale, a logit soft-cap) is that family's own options
/// struct, serde-derived in its file and parsed by [`ConfigReader::options`].
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
    /// Padding id (roberta positions are offset by it).
    pub pad_token_id: Option<u32>,
    /// Llama 3.x RoPE frequency scaling.
    pub rope_scaling: Option<Llama3RopeScaling>,
    /// Attention window: a sequence longer than it is refused (its attention would need the
    /// window's mask, which this implementation does not build).
    pub sliding_window: Option<usize>,
    /// Attention scores pass through `c · tanh(s / c)` before the mask (Gemma 2).
    pub attn_logit_softcap: Option<f64>,
    /// Linear RoPE scaling (`rope_type: linear`): inverse frequencies divided by this factor.
    pub rope_linear_factor: Option<f64>,
    /// Sliding-window layers computed within their window (Gemma 3); `sliding_window` above is
    /// the limit of families that refuse longer sequences instead.
    pub local_attention: Option<LocalAttention>,
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

/// [`ConfigReader::options`] over a config object (`raw`), every `null` key dropped first.
pub(crate) fn options_from<T: serde::de::DeserializeOwned>(
    raw: &serde_json::Value,
    path: &Path,
) -> Result<T> {
    let present: serde_json::Map<String, serde_json::Value> = raw
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    serde_path_to_error::deserialize(serde_json::Value::Object(present)).map_err(|e| {
        let key = e.path().to_string();
        ModelError::config(path, format!("field `{key}`: {}", e.into_inner()))
    })
}

pub(crate) fn required<T: serde::de::DeserializeOwned>(
    raw: &serde_json::Value,
    keys: &[&str],
    path: &Path,
) -> Result<T> {
    field(raw, keys, path)?
        .ok_or_else(|| ModelError::config(path, format!("missing field `{}`", keys[0])))
}

/// One `config.json` being read: its fields by HF key (older aliases after), every error naming
/// the file. Each family's file parses its own hyper-parameters through it (`parse_config`).
pub(crate) struct ConfigReader<'a> {
    pub(crate) raw: &'a serde_json::Value,
    pub(crate) path: &'a Path,
    rope: Option<RopeParameters>,
    /// Llama 3.x RoPE scaling, parsed for every family that rotates.
    pub(crate) rope_scaling: Option<Llama3RopeScaling>,
    /// Linear RoPE scaling's factor, parsed for every family that rotates.
    pub(crate) rope_linear_factor: Option<f64>,
}

impl<'a> ConfigReader<'a> {
    /// A reader over one config object (`config.json`, or a nested `text_config`), its RoPE
    /// scaling parsed and checked.
    pub(crate) fn new(raw: &'a serde_json::Value, path: &'a Path) -> Result<Self> {
        let rope: Option<RopeParameters> = field(raw, &["rope_parameters", "rope_scaling"], path)?;
        let mut rope_linear_factor = None;
        let rope_scaling = match rope.as_ref().and_then(|r| r.rope_type.as_deref()) {
            None | Some("default") => None,
            Some("linear") => {
                let factor = rope.as_ref().and_then(|r| r.factor);
                match factor {
                    Some(f) if f.is_finite() && f > 0.0 => rope_linear_factor = Some(f),
                    _ => {
                        return Err(ModelError::config(
                            path,
                            "rope_type `linear` needs a positive `factor`",
                        ));
                    }
                }
                None
            }
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
                    format!("unsupported rope_type `{kind}` (supported: default, linear, llama3)"),
                ));
            }
        };
        Ok(ConfigReader { raw, path, rope, rope_scaling, rope_linear_factor })
    }
}

impl ConfigReader<'_> {
    /// The first of `keys` present and not null.
    pub(crate) fn field<T: serde::de::DeserializeOwned>(&self, keys: &[&str]) -> Result<Option<T>> {
        field(self.raw, keys, self.path)
    }

    /// The first of `keys`, which must be present.
    pub(crate) fn required<T: serde::de::DeserializeOwned>(&self, keys: &[&str]) -> Result<T> {
        required(self.raw, keys, self.path)
    }

    /// The RoPE base from `keys`, else `rope_parameters`, else `default`.
    pub(crate) fn rope_theta(&self, default: f64, keys: &[&str]) -> Result<f64> {
        Ok(self
            .field::<f64>(keys)?
            .or(self.rope.as_ref().and_then(|r| r.rope_theta))
            .unwrap_or(default))
    }

    /// The width of one head where a family may state it (`keys`), else `hidden / heads` rounded
    /// down, as HF computes it.
    pub(crate) fn stated_head_dim(
        &self,
        keys: &[&str],
        hidden: usize,
        heads: usize,
    ) -> Result<usize> {
        Ok(self.field(keys)?.unwrap_or(hidden / heads.max(1)))
    }

    /// The width of one head where it is `hidden / heads`, which must divide. Zero heads give 0,
    /// for [`ModelConfig::validate`] to name.
    pub(crate) fn head_dim(&self, hidden: usize, heads: usize) -> Result<usize> {
        if heads != 0 && !hidden.is_multiple_of(heads) {
            return Err(ModelError::config(
                self.path,
                format!("hidden_size {hidden} is not num_attention_heads {heads} × head width"),
            ));
        }
        Ok(hidden / heads.max(1))
    }

    /// The activation named by `keys`, else `default`.
    pub(crate) fn activation(&self, keys: &[&str], default: &str) -> Result<Activation> {
        let name: String = self.field(keys)?.unwrap_or_else(|| default.to_owned());
        Activation::parse(&name, self.path)
    }

    /// A family's own options, deserialised from the config's keys (a key set to `null` counts
    /// as absent, as HF writes it, so the struct's serde defaults apply); an error names the file
    /// and the key.
    pub(crate) fn options<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        options_from(self.raw, self.path)
    }

    /// `rope_parameters.partial_rotary_factor` (transformers 5), if given.
    pub(crate) fn partial_rotary_factor(&self) -> Option<f64> {
        self.rope.as_ref().and_then(|r| r.partial_rotary_factor)
    }
}

impl ModelConfig {
    /// A config of `family` whose dimensions are 0 (each family's `parse_config` sets them, and
    /// [`ModelConfig::validate`] rejects any left at 0) and whose options are off: no biases,
    /// no RoPE scaling, no window, no soft-caps. Families state only what they read.
    pub(crate) fn defaults_for(family: Family) -> Self {
        Self {
            family,
            vocab_size: 0,
            hidden_size: 0,
            intermediate_size: 0,
            num_layers: 0,
            num_heads: 0,
            num_kv_heads: 0,
            head_dim: 0,
            norm_eps: 0.0,
            rope_theta: 0.0,
            rotary_dim: 0,
            max_positions: 0,
            activation: Activation::Gelu,
            tie_word_embeddings: false,
            pad_token_id: None,
            rope_scaling: None,
            sliding_window: None,
            attn_logit_softcap: None,
            rope_linear_factor: None,
            local_attention: None,
            raw: serde_json::Value::Null,
        }
    }

    /// The family's own options (its serde-derived struct) from the config's keys, already
    /// checked when the config was parsed.
    pub(crate) fn options<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        options_from(&self.raw, Path::new("config.json"))
    }

    /// Rejects zero or inconsistent dimensions before any allocation depends on them.
    ///
    /// Layers are bounded by [`MAX_LAYERS`].
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
        // Per-layer tables are built before the weights are read: a 10 KB GGUF declaring four
        // million blocks made the loader take 13 GB (found by fuzzing). The deepest open models
        // have about 130 layers.
        if self.num_layers > MAX_LAYERS {
            return bad(format!(
                "`num_hidden_layers` = {} is implausibly large (more than {MAX_LAYERS})",
                self.num_layers
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
        if let Some(local) = &self.local_attention {
            if local.window == 0 {
                return bad("`sliding_window` is 0".into());
            }
            if local.sliding.len() != self.num_layers {
                return bad(format!(
                    "`layer_types` has {} entries for {} layers",
                    local.sliding.len(),
                    self.num_layers
                ));
            }
            if !(local.rope_theta.is_finite() && local.rope_theta > 0.0) {
                return bad(format!("local RoPE base {} must be positive", local.rope_theta));
            }
        }
        if !(self.rope_theta.is_finite() && self.rope_theta >= 0.0) {
            return bad(format!("RoPE base {} must be finite and not negative", self.rope_theta));
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return bad(format!("norm epsilon {} must be positive", self.norm_eps));
        }
        Ok(())
    }
}
