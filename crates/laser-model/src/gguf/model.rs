//! A GGUF model in the HF layout: llama.cpp's metadata keys become the `config.json` the family's
//! own parser reads, its tensor names become HF names, and what llama.cpp's converter changed is
//! undone — Q/K rows permuted for interleaved RoPE (the `llama` architecture only), Gemma 2's norm
//! weights stored as `1 + w`, Llama 3.x RoPE scaling stored as per-frequency divisors.
//!
//! | GGUF architecture | HF class | notes |
//! |---|---|---|
//! | `llama` | LlamaForCausalLM (MistralForCausalLM with `attention.sliding_window`) | Q/K un-permuted; `rope_freqs.weight` → `rope_type: llama3` |
//! | `qwen2` | Qwen2ForCausalLM | q/k/v biases |
//! | `qwen3` | Qwen3ForCausalLM | q/k norms, `attention.key_length` |
//! | `phi3` | Phi3ForCausalLM | `attn_qkv` = `qkv_proj`, `ffn_up` = the fused `gate_up_proj` |
//! | `gemma2` | Gemma2ForCausalLM | four norms, soft-capping, alternating sliding window |
//! | `gemma3` | Gemma3ForCausalLM | as gemma2 plus q/k norms; every 6th layer full, local RoPE base 10,000 (llama.cpp's rules: not in the file) |

use std::path::Path;

use rayon::prelude::*;
use serde_json::{Value, json};

use super::rope_factors::llama3_from_factors;
use super::tokenizer::tokenizer;
use super::{GgufFile, GgufValue};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::tokenizer::Tokenizer;
use crate::weights::{HostTensor, WeightMap};

/// A GGUF model converted to HF layout.
#[derive(Debug)]
pub struct GgufModel {
    /// HF-style config built from the metadata.
    pub config: ModelConfig,
    /// Dequantized weights under HF names.
    pub weights: WeightMap,
    /// Tokenizer rebuilt from the metadata.
    pub tokenizer: Tokenizer,
    /// How settings the file does not hold were filled in (llama.cpp's hard-coded rules).
    pub notes: Vec<String>,
}

/// llama.cpp stores Q/K rows permuted for its interleaved RoPE; HF uses `rotate_half`.
/// Row `h·(o/nh) + 2r + s` moves to `h·(o/nh) + s·(o/nh/2) + r`.
pub fn unpermute_rows(t: &HostTensor, heads: usize) -> HostTensor {
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
    HostTensor { shape: t.shape.clone(), data }
}

/// GGUF architectures this loader reads (llama.cpp's names): those the registered families
/// declare.
pub fn gguf_architectures() -> Vec<&'static str> {
    crate::families::gguf_architectures().collect()
}

/// Tensors llama.cpp writes for RoPE variants the families here do not implement.
const UNSUPPORTED_TENSORS: [(&str, &str); 2] = [
    ("rope_factors_long.weight", "Phi-3 LongRoPE (128k-context) scaling"),
    ("rope_factors_short.weight", "Phi-3 LongRoPE (128k-context) scaling"),
];

/// Gemma 2 27B (46 layers) scales queries by `1/√(d/H)` instead of `1/√head_dim`; llama.cpp
/// recognises it by its depth, as the GGUF has no key for `query_pre_attn_scalar`.
const GEMMA2_27B_LAYERS: u64 = 46;

/// Gemma 3 27B (62 layers) likewise: llama.cpp scales its queries by `1/√(d/H)`.
const GEMMA3_27B_LAYERS: u64 = 62;

/// What a Gemma 3 GGUF does not store and llama.cpp hard-codes: every 6th layer attends fully,
/// the others slide with RoPE base 10,000 (unscaled).
const GEMMA3_PATTERN: u64 = 6;
const GEMMA3_LOCAL_THETA: f64 = 10_000.0;

impl GgufModel {
    /// Loads a GGUF file of one of [`gguf_architectures`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let f = GgufFile::open(path)?;
        let arch = f.meta("general.architecture")?.as_str().unwrap_or_default().to_owned();
        let supported = gguf_architectures();
        if !supported.contains(&arch.as_str()) {
            return Err(ModelError::Unsupported(format!(
                "{}: GGUF architecture `{arch}` (supported: {})",
                path.display(),
                supported.join(", ")
            )));
        }
        if let Some((name, what)) =
            UNSUPPORTED_TENSORS.iter().find(|(n, _)| f.tensors.iter().any(|t| t.name == *n))
        {
            return Err(ModelError::Unsupported(format!(
                "{}: tensor `{name}` ({what}) is not supported",
                path.display()
            )));
        }
        let tokenizer = tokenizer(&f, path)?;
        let raw = hf_config(&f, &arch, tokenizer_len(&f)?, path)?;
        let config = ModelConfig::from_json(raw, path)?;

        let (heads, kv_heads) = (config.num_heads, config.num_kv_heads);
        // Tensors dequantize in parallel (on one thread, 0.6 s of every SmolLM2 command's
        // start) into buffers allocated here: a buffer allocated on a worker thread comes from
        // that thread's malloc arena, and once freed there (a bf16 model drops its f32 copies)
        // it stays with that arena instead of serving this thread's activations (+0.35 GB peak
        // measured on the bf16 adapt).
        let named: Vec<_> = f
            .tensors
            .iter()
            .filter_map(|info| hf_name(&arch, &info.name).map(|hf| (info, hf)))
            .collect();
        let mut buffers: Vec<Vec<f32>> =
            named.iter().map(|(info, _)| Vec::with_capacity(info.dims.iter().product())).collect();
        buffers
            .par_iter_mut()
            .zip(named.par_iter())
            .for_each(|(out, (info, _))| f.dequantize_into(info, out));
        let mut weights = WeightMap::new();
        for ((info, hf), data) in named.into_iter().zip(buffers) {
            let mut t = HostTensor { shape: info.hf_shape(), data };
            if arch == "llama" && info.name.ends_with("attn_q.weight") {
                t = checked_unpermute(t, heads, &info.name, path)?;
            } else if arch == "llama" && info.name.ends_with("attn_k.weight") {
                t = checked_unpermute(t, kv_heads, &info.name, path)?;
            } else if (arch == "gemma2" || arch == "gemma3") && info.name.ends_with("norm.weight") {
                // Gemma's RMSNorm multiplies by 1 + w; llama.cpp's converter stored 1 + w (Gemma 3's
                // q/k norms included).
                t.data.iter_mut().for_each(|w| *w -= 1.0);
            }
            weights.insert(hf, t);
        }
        let mut notes = Vec::new();
        let stated = f.metadata.contains_key("gemma3.attention.sliding_window_pattern")
            && f.metadata.contains_key("gemma3.rope.freq_base_swa");
        if arch == "gemma3" && !stated {
            notes.push(format!(
                "note: {}: the GGUF does not store Gemma 3's layer pattern or local RoPE base; as llama.cpp: every {GEMMA3_PATTERN}th layer full attention, the others a sliding window with base {GEMMA3_LOCAL_THETA}",
                path.display()
            ));
        }
        Ok(Self { config, weights, tokenizer, notes })
    }
}

fn tokenizer_len(f: &GgufFile) -> Result<usize> {
    match f.meta("tokenizer.ggml.tokens")? {
        GgufValue::Array(tokens) => Ok(tokens.len()),
        _ => Ok(0),
    }
}

/// The HF `config.json` of a GGUF's metadata (`{arch}.*` keys, as llama.cpp's converter names
/// them).
fn hf_config(f: &GgufFile, arch: &str, vocab_size: usize, path: &Path) -> Result<Value> {
    let key = |k: &str| format!("{arch}.{k}");
    let get_u = |k: &str| f.metadata.get(&key(k)).and_then(GgufValue::as_u64);
    let get_f = |k: &str| f.metadata.get(&key(k)).and_then(GgufValue::as_f64);
    let heads = f.meta_u64(&key("attention.head_count"))?;
    let kv_heads = get_u("attention.head_count_kv").unwrap_or(heads);
    let hidden = f.meta_u64(&key("embedding_length"))?;
    let layers = f.meta_u64(&key("block_count"))?;
    let has_output = f.tensors.iter().any(|t| t.name == "output.weight");
    // Qwen3 and Gemma 2 state the head width (`key_length`); elsewhere it is d / H.
    let head_dim = get_u("attention.key_length").unwrap_or(hidden / heads.max(1));
    let rotary_dim = get_u("rope.dimension_count").unwrap_or(head_dim);
    let theta = get_f("rope.freq_base").unwrap_or(10000.0);
    // GGUF stores ε as f32; round-trip it through its shortest decimal (1e-5, not 9.9999997e-6).
    let eps =
        get_f("attention.layer_norm_rms_epsilon").map(|e| laser_linalg::shortest_decimal(e as f32));
    let window = get_u("attention.sliding_window").filter(|&w| w > 0);
    let mut raw = json!({
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": f.meta_u64(&key("feed_forward_length"))?,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": get_u("context_length").unwrap_or(2048),
        "rope_theta": theta,
        "tie_word_embeddings": !has_output,
        "torch_dtype": "float32",
    });
    if let Some(eps) = eps {
        raw["rms_norm_eps"] = eps.into();
    }
    let extra = match arch {
        "phi3" => {
            if rotary_dim > head_dim || head_dim == 0 {
                return Err(ModelError::config(
                    path,
                    format!("GGUF rotary width {rotary_dim} exceeds the head width {head_dim}"),
                ));
            }
            json!({
                "architectures": ["Phi3ForCausalLM"],
                "model_type": "phi3",
                "hidden_act": "silu",
                "partial_rotary_factor": rotary_dim as f64 / head_dim as f64,
                "original_max_position_embeddings":
                    get_u("rope.scaling.original_context_length").or(get_u("context_length")),
                "sliding_window": window,
            })
        }
        "gemma2" => {
            let scalar = if layers == GEMMA2_27B_LAYERS { hidden / heads.max(1) } else { head_dim };
            let layer_types: Vec<&str> = (0..layers)
                .map(|l| if l % 2 == 0 { "sliding_attention" } else { "full_attention" })
                .collect();
            json!({
                "architectures": ["Gemma2ForCausalLM"],
                "model_type": "gemma2",
                "head_dim": head_dim,
                "hidden_activation": "gelu_pytorch_tanh",
                "query_pre_attn_scalar": scalar,
                "attn_logit_softcapping": get_f("attn_logit_softcapping"),
                "final_logit_softcapping": get_f("final_logit_softcapping"),
                "sliding_window": window,
                "layer_types": layer_types,
            })
        }
        "gemma3" => {
            // `attention.scale` (llama.cpp's generic key) overrides its depth rule when present.
            let scalar = match get_f("attention.scale") {
                // The scale is stored as an f32 (1/√24 reads back as 1/23.999998); Gemma's
                // `query_pre_attn_scalar` is a whole number, so one within f32 rounding of a
                // whole number is that number.
                Some(scale) if scale.is_finite() && scale > 0.0 => {
                    let scalar = 1.0 / (scale * scale);
                    if (scalar - scalar.round()).abs() <= 1e-5 * scalar {
                        scalar.round()
                    } else {
                        scalar
                    }
                }
                _ if layers == GEMMA3_27B_LAYERS => (hidden / heads.max(1)) as f64,
                _ => head_dim as f64,
            };
            let layer_types =
                gemma3_layer_types(f, &key("attention.sliding_window_pattern"), layers, path)?;
            let local_theta = get_f("rope.freq_base_swa").unwrap_or(GEMMA3_LOCAL_THETA);
            let mut full = json!({"rope_type": "default", "rope_theta": theta});
            let scaling = f.metadata.get(&key("rope.scaling.type")).and_then(GgufValue::as_str);
            match (scaling, get_f("rope.scaling.factor")) {
                (None | Some("none"), _) => {}
                (Some("linear"), Some(factor)) if factor.is_finite() && factor > 0.0 => {
                    full = json!({"rope_type": "linear", "rope_theta": theta, "factor": factor});
                }
                (Some(kind), factor) => {
                    return Err(ModelError::Unsupported(format!(
                        "{}: Gemma 3 RoPE scaling `{kind}` with factor {factor:?} (supported: linear)",
                        path.display()
                    )));
                }
            }
            json!({
                "architectures": ["Gemma3ForCausalLM"],
                "model_type": "gemma3_text",
                "head_dim": head_dim,
                "hidden_activation": "gelu_pytorch_tanh",
                // transformers' strict config wants an int here (a float fails its validation).
                "query_pre_attn_scalar": if scalar.fract() == 0.0 && scalar < 1e15 {
                    json!(scalar as u64)
                } else {
                    json!(scalar)
                },
                "final_logit_softcapping": get_f("final_logit_softcapping"),
                "sliding_window": window,
                "layer_types": layer_types,
                "rope_parameters": {
                    "full_attention": full,
                    "sliding_attention": {"rope_type": "default", "rope_theta": local_theta},
                },
            })
        }
        _ => {
            let (class, model_type) = match arch {
                "qwen2" => ("Qwen2ForCausalLM", "qwen2"),
                "qwen3" => ("Qwen3ForCausalLM", "qwen3"),
                _ if window.is_some() => ("MistralForCausalLM", "mistral"),
                _ => ("LlamaForCausalLM", "llama"),
            };
            let mut extra = json!({
                "architectures": [class],
                "model_type": model_type,
                "head_dim": head_dim,
                "hidden_act": "silu",
                "attention_bias": false,
                "mlp_bias": false,
                "sliding_window": window,
            });
            if let Some(info) = f.tensors.iter().find(|t| t.name == "rope_freqs.weight") {
                let factors = f.tensor(info).data;
                let fitted = llama3_from_factors(&factors, theta, rotary_dim as usize)
                    .map_err(|m| ModelError::format(path, format!("`rope_freqs.weight`: {m}")))?;
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
            extra
        }
    };
    for (k, v) in extra.as_object().expect("an object literal") {
        if !v.is_null() {
            raw[k] = v.clone();
        }
    }
    if arch == "gemma3" {
        // Its bases are per layer type, in `rope_parameters`.
        raw.as_object_mut().expect("an object literal").remove("rope_theta");
    }
    for (key, meta) in [
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
    ] {
        if let Some(v) = f.metadata.get(meta).and_then(GgufValue::as_u64) {
            raw[key] = v.into();
        }
    }
    Ok(raw)
}

/// Gemma 3's layer kinds: llama.cpp's hard-coded rule (every 6th layer full), unless the file
/// states `attention.sliding_window_pattern` — a period (layer l slides unless (l + 1) is a
/// multiple of it) or one bool per layer (true: sliding), as newer converters write.
fn gemma3_layer_types(
    f: &GgufFile,
    key: &str,
    layers: u64,
    path: &Path,
) -> Result<Vec<&'static str>> {
    let kind = |sliding: bool| if sliding { "sliding_attention" } else { "full_attention" };
    match f.metadata.get(key) {
        None => Ok((0..layers).map(|l| kind((l + 1) % GEMMA3_PATTERN != 0)).collect()),
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

fn checked_unpermute(t: HostTensor, heads: usize, name: &str, path: &Path) -> Result<HostTensor> {
    if t.shape.len() != 2 || heads == 0 || !t.shape[0].is_multiple_of(2 * heads) {
        return Err(ModelError::format(
            path,
            format!("tensor `{name}` of shape {:?} cannot hold {heads} rotary heads", t.shape),
        ));
    }
    Ok(unpermute_rows(&t, heads))
}

/// llama.cpp → HF tensor names. The same GGUF name can mean different HF tensors: `ffn_norm` is
/// the post-attention norm of a llama block but Gemma 2's pre-feed-forward norm, and Phi-3's
/// `ffn_up` holds its fused gate and up rows.
fn hf_name(arch: &str, gguf: &str) -> Option<String> {
    Some(match gguf {
        "token_embd.weight" => "model.embed_tokens.weight".into(),
        "output_norm.weight" => "model.norm.weight".into(),
        "output.weight" => "lm_head.weight".into(),
        _ => {
            let rest = gguf.strip_prefix("blk.")?;
            let (layer, part) = rest.split_once('.')?;
            let layer: usize = layer.parse().ok()?;
            let hf = match (arch, part) {
                (_, "attn_norm.weight") => "input_layernorm.weight",
                ("gemma2" | "gemma3", "post_attention_norm.weight") => {
                    "post_attention_layernorm.weight"
                }
                ("gemma2" | "gemma3", "ffn_norm.weight") => "pre_feedforward_layernorm.weight",
                ("gemma2" | "gemma3", "post_ffw_norm.weight") => {
                    "post_feedforward_layernorm.weight"
                }
                (_, "ffn_norm.weight") => "post_attention_layernorm.weight",
                ("phi3", "attn_qkv.weight") => "self_attn.qkv_proj.weight",
                ("phi3", "ffn_up.weight") => "mlp.gate_up_proj.weight",
                (_, "attn_q.weight") => "self_attn.q_proj.weight",
                (_, "attn_k.weight") => "self_attn.k_proj.weight",
                (_, "attn_v.weight") => "self_attn.v_proj.weight",
                (_, "attn_q.bias") => "self_attn.q_proj.bias",
                (_, "attn_k.bias") => "self_attn.k_proj.bias",
                (_, "attn_v.bias") => "self_attn.v_proj.bias",
                (_, "attn_q_norm.weight") => "self_attn.q_norm.weight",
                (_, "attn_k_norm.weight") => "self_attn.k_norm.weight",
                (_, "attn_output.weight") => "self_attn.o_proj.weight",
                (_, "ffn_gate.weight") => "mlp.gate_proj.weight",
                (_, "ffn_up.weight") => "mlp.up_proj.weight",
                (_, "ffn_down.weight") => "mlp.down_proj.weight",
                _ => return None,
            };
            format!("model.layers.{layer}.{hf}")
        }
    })
}
