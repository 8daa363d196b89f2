//! A GGUF model in the HF layout, the same way for every family: the registry finds the family
//! that declares the file's `general.architecture`, its GGUF form (`GgufForm`, in its own file)
//! turns llama.cpp's metadata into the `config.json` keys its parser reads and undoes what the
//! converter changed, and llama.cpp's tensor names become HF names.
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

use super::FAMILIES;
use crate::arch::GgufForm;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::gguf::arch_keys::ArchMetadata;
use crate::gguf::tokenizer::tokenizer;
use crate::gguf::{GgufFile, GgufValue};
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

/// GGUF architectures this loader reads (llama.cpp's names): those the registered families
/// declare.
pub fn gguf_architectures() -> Vec<&'static str> {
    FAMILIES.iter().filter_map(|e| e.gguf).flat_map(|g| g.architectures.iter().copied()).collect()
}

/// The GGUF form of llama.cpp architecture `arch`, from the family that declares it.
pub(crate) fn form_of(arch: &str) -> Option<GgufForm> {
    FAMILIES.iter().filter_map(|e| e.gguf).find(|g| g.architectures.contains(&arch))
}

/// Tensors llama.cpp writes for RoPE variants the families here do not implement.
const UNSUPPORTED_TENSORS: [(&str, &str); 2] = [
    ("rope_factors_long.weight", "Phi-3 LongRoPE (128k-context) scaling"),
    ("rope_factors_short.weight", "Phi-3 LongRoPE (128k-context) scaling"),
];

impl GgufModel {
    /// Loads a GGUF file of one of [`gguf_architectures`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let f = GgufFile::open(path)?;
        let arch = f.meta("general.architecture")?.as_str().unwrap_or_default().to_owned();
        let form = form_of(&arch).ok_or_else(|| {
            ModelError::Unsupported(format!(
                "{}: GGUF architecture `{arch}` (supported: {})",
                path.display(),
                gguf_architectures().join(", ")
            ))
        })?;
        if let Some((name, what)) =
            UNSUPPORTED_TENSORS.iter().find(|(n, _)| f.tensors.iter().any(|t| t.name == *n))
        {
            return Err(ModelError::Unsupported(format!(
                "{}: tensor `{name}` ({what}) is not supported",
                path.display()
            )));
        }
        let tokenizer = tokenizer(&f, path)?;
        let meta = ArchMetadata::read(&f, &arch, path)?;
        let (raw, notes) = hf_config(&meta, &form, tokenizer_len(&f)?)?;
        let config = ModelConfig::from_json(raw, path)?;

        // Tensors dequantize in parallel (on one thread, 0.6 s of every SmolLM2 command's
        // start) into buffers allocated here: a buffer allocated on a worker thread comes from
        // that thread's malloc arena, and once freed there (a bf16 model drops its f32 copies)
        // it stays with that arena instead of serving this thread's activations (+0.35 GB peak
        // measured on the bf16 adapt).
        let named: Vec<_> = f
            .tensors
            .iter()
            .filter_map(|info| hf_name(&form, &info.name).map(|hf| (info, hf)))
            .collect();
        let mut buffers: Vec<Vec<f32>> =
            named.iter().map(|(info, _)| Vec::with_capacity(info.dims.iter().product())).collect();
        buffers
            .par_iter_mut()
            .zip(named.par_iter())
            .for_each(|(out, (info, _))| f.dequantize_into(info, out));
        let mut weights = WeightMap::new();
        for ((info, hf), data) in named.into_iter().zip(buffers) {
            let t = HostTensor { shape: info.hf_shape(), data };
            weights.insert(hf, (form.restore)(&info.name, t, &config, path)?);
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

/// The HF `config.json` of a GGUF's metadata: the keys every family shares, then the family's
/// own (its [`GgufForm::config`]); and the family's notes.
fn hf_config(
    m: &ArchMetadata<'_>,
    form: &GgufForm,
    vocab_size: usize,
) -> Result<(Value, Vec<String>)> {
    let f = m.file;
    let has_output = f.tensors.iter().any(|t| t.name == "output.weight");
    // GGUF stores ε as f32; round-trip it through its shortest decimal (1e-5, not 9.9999997e-6).
    let eps =
        m.f64("attention.layer_norm_rms_epsilon").map(|e| laser_linalg::shortest_decimal(e as f32));
    let mut raw = json!({
        "vocab_size": vocab_size,
        "hidden_size": m.hidden,
        "intermediate_size": f.meta_u64(&m.key("feed_forward_length"))?,
        "num_hidden_layers": m.layers,
        "num_attention_heads": m.heads,
        "num_key_value_heads": m.u64("attention.head_count_kv").unwrap_or(m.heads),
        "max_position_embeddings": m.u64("context_length").unwrap_or(2048),
        "rope_theta": m.rope_theta,
        "tie_word_embeddings": !has_output,
        "torch_dtype": "float32",
    });
    if let Some(eps) = eps {
        raw["rms_norm_eps"] = eps.into();
    }
    let (extra, notes) = (form.config)(m)?;
    for (k, v) in extra.as_object().expect("a family's GGUF config is an object") {
        // A null removes a shared key the family states otherwise (Gemma 3's per-layer-type bases).
        if v.is_null() {
            raw.as_object_mut().expect("an object literal").remove(k);
        } else {
            raw[k] = v.clone();
        }
    }
    for (key, meta) in [
        ("bos_token_id", "tokenizer.ggml.bos_token_id"),
        ("eos_token_id", "tokenizer.ggml.eos_token_id"),
    ] {
        if let Some(v) = f.metadata.get(meta).and_then(GgufValue::as_u64) {
            raw[key] = v.into();
        }
    }
    Ok((raw, notes))
}

/// llama.cpp → HF tensor names: the family's own meaning of a block tensor first (the same GGUF
/// name can mean different HF tensors: `ffn_norm` is the post-attention norm of a llama block but
/// Gemma's pre-feed-forward norm), then the llama layout's.
pub(crate) fn hf_name(form: &GgufForm, gguf: &str) -> Option<String> {
    Some(match gguf {
        "token_embd.weight" => "model.embed_tokens.weight".into(),
        "output_norm.weight" => "model.norm.weight".into(),
        "output.weight" => "lm_head.weight".into(),
        _ => {
            let rest = gguf.strip_prefix("blk.")?;
            let (layer, part) = rest.split_once('.')?;
            let layer: usize = layer.parse().ok()?;
            let hf = match (form.tensor_name)(part) {
                Some(hf) => hf,
                None => match part {
                    "attn_norm.weight" => "input_layernorm.weight",
                    "ffn_norm.weight" => "post_attention_layernorm.weight",
                    "attn_q.weight" => "self_attn.q_proj.weight",
                    "attn_k.weight" => "self_attn.k_proj.weight",
                    "attn_v.weight" => "self_attn.v_proj.weight",
                    "attn_q.bias" => "self_attn.q_proj.bias",
                    "attn_k.bias" => "self_attn.k_proj.bias",
                    "attn_v.bias" => "self_attn.v_proj.bias",
                    "attn_q_norm.weight" => "self_attn.q_norm.weight",
                    "attn_k_norm.weight" => "self_attn.k_norm.weight",
                    "attn_output.weight" => "self_attn.o_proj.weight",
                    "ffn_gate.weight" => "mlp.gate_proj.weight",
                    "ffn_up.weight" => "mlp.up_proj.weight",
                    "ffn_down.weight" => "mlp.down_proj.weight",
                    _ => return None,
                },
            };
            format!("model.layers.{layer}.{hf}")
        }
    })
}
