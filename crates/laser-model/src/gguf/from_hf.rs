//! A GGUF written from a model loaded from an HF folder (`--export gguf` of an HF source): the
//! reverse of the loader's map for the llama-layout families (`llama`, `mistral`, `qwen2`,
//! `qwen3`), `phi3` (its fused projections as llama.cpp's `attn_qkv` and `ffn_up`) and the Gemmas
//! (`gemma2`, `gemma3`) — llama.cpp's metadata keys, tensor names and
//! dimension order, what its converter changed undone by running the family's own `restore` on
//! probes (the llama layout's permuted Q/K rows on a row-index probe, as for a GGUF source; the
//! Gemmas' norms stored as 1 + w, on constant probes), Llama 3.x RoPE scaling as
//! `rope_freqs.weight`, Gemma 3's layer pattern and local base as the keys newer converters write,
//! and the tokenizer as `tokenizer.ggml.*` (`tokenizer_out.rs`: byte-level BPE with llama.cpp's
//! pre-tokenizer preset, or SentencePiece with scores). Untouched matrices keep the
//! source's dtype (F32, BF16 or F16), 1-D tensors are F32 (as llama.cpp's converter writes
//! them), edited matrices are written as asked. What this writer cannot express faithfully — a
//! family without a GGUF form (gpt2, gptj, gpt_neox, roberta), a tokenizer of another kind,
//! biases llama.cpp's `llama` has no slot for, Gemma 2 off llama.cpp's hard-coded rules — is
//! refused before anything is written.

use std::io::Write;
use std::path::Path;

use super::quantize::encode;
use super::tokenizer_out::{TokenizerMeta, TokenizerModel, tokenizer_meta};
use super::write::{GgufExport, GgufTensorType, WrittenTensor, relative_error, through_temporary};
use super::{GgmlType, dequantize};
use crate::arch::GgufForm;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::export::HfDtype;
use crate::families::gguf::{form_of, hf_name};
use crate::model::Model;
use crate::weights::HostTensor;

/// llama.cpp's default data alignment.
const ALIGNMENT: usize = 32;

/// One metadata value, as it is written.
enum Meta {
    U32(u32),
    F32(f32),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    I32s(Vec<i32>),
    F32s(Vec<f32>),
    Bools(Vec<bool>),
}

impl Meta {
    fn write(&self, out: &mut Vec<u8>) {
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s.as_bytes());
        };
        // An array: its type (9), its elements' type, its length, then the elements.
        let array = |out: &mut Vec<u8>, element: u32, len: usize| {
            out.extend(9u32.to_le_bytes());
            out.extend(element.to_le_bytes());
            out.extend((len as u64).to_le_bytes());
        };
        match self {
            Meta::U32(v) => {
                out.extend(4u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Meta::F32(v) => {
                out.extend(6u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Meta::Bool(v) => {
                out.extend(7u32.to_le_bytes());
                out.push(u8::from(*v));
            }
            Meta::Str(s) => {
                out.extend(8u32.to_le_bytes());
                string(out, s);
            }
            Meta::Strs(list) => {
                array(out, 8, list.len());
                list.iter().for_each(|s| string(out, s));
            }
            Meta::I32s(list) => {
                array(out, 5, list.len());
                out.extend(list.iter().flat_map(|v| v.to_le_bytes()));
            }
            Meta::F32s(list) => {
                array(out, 6, list.len());
                out.extend(list.iter().flat_map(|v| v.to_le_bytes()));
            }
            Meta::Bools(list) => {
                array(out, 7, list.len());
                out.extend(list.iter().map(|&b| u8::from(b)));
            }
        }
    }
}

/// Gemma 2 27B's depth: llama.cpp scales its queries by `1/√(d/H)` (others: `1/√head_dim`).
const GEMMA2_27B_LAYERS: usize = 46;

/// A model's GGUF architecture name, or why it has none here.
fn architecture(model: &Model) -> Result<&'static str> {
    let (cfg, source) = (model.config(), model.source());
    let refuse = |why: String| {
        ModelError::Unsupported(format!(
            "{}: GGUF export of an HF {} model: {why}; export it as hf",
            source.display(),
            cfg.family.name()
        ))
    };
    let arch = match cfg.family.name() {
        "llama" | "mistral" => "llama",
        "qwen2" => "qwen2",
        "qwen3" => "qwen3",
        "gemma2" => "gemma2",
        "gemma3" => "gemma3",
        "phi3" => "phi3",
        _ => {
            return Err(refuse(
                "written only for the llama-layout families (llama, mistral, qwen2, qwen3), phi3 and the Gemmas (gemma2, gemma3)"
                    .into(),
            ));
        }
    };
    // Qwen2's q/k/v biases have llama.cpp slots; one on the attention output or the MLP has none.
    let unwritable_bias = model.arch().weights().tensors().iter().any(|(name, _)| {
        name.ends_with(".bias") && (name.contains(".mlp.") || name.contains("o_proj"))
    });
    if unwritable_bias {
        return Err(refuse("llama.cpp's layout has no attention or MLP biases".into()));
    }
    if cfg.sliding_window.is_some() && matches!(arch, "qwen2" | "qwen3") {
        return Err(refuse("a sliding window on qwen2/qwen3 has no GGUF key".into()));
    }
    // Phi-3 states its rotary width (`rope.dimension_count`); the others rotate whole heads.
    if cfg.rotary_dim != cfg.head_dim && arch != "phi3" {
        return Err(refuse(format!(
            "a rotary width {} below the head width {}",
            cfg.rotary_dim, cfg.head_dim
        )));
    }
    let gemma3 = arch == "gemma3";
    if !gemma3 && (cfg.rope_linear_factor.is_some() || cfg.local_attention.is_some()) {
        return Err(refuse("its RoPE variant has no llama.cpp key here".into()));
    }
    if gemma3 && cfg.attn_logit_softcap.is_some() {
        return Err(refuse("llama.cpp's gemma3 has no attention soft-cap".into()));
    }
    if arch == "gemma2" {
        // llama.cpp's gemma2 reads neither the query scale nor the layer pattern: both must be
        // its rules (every even layer slides).
        let rule = if cfg.num_layers == GEMMA2_27B_LAYERS {
            cfg.hidden_size / cfg.num_heads.max(1)
        } else {
            cfg.head_dim
        };
        if let Some(s) = model.score_scales().query_scalar.filter(|&s| s != rule as f64) {
            return Err(refuse(format!(
                "query_pre_attn_scalar {s} is not llama.cpp's {rule} for this shape"
            )));
        }
        let alternating = cfg.raw["layer_types"].as_array().is_none_or(|types| {
            types
                .iter()
                .enumerate()
                .all(|(l, t)| t == if l % 2 == 0 { "sliding_attention" } else { "full_attention" })
        });
        if !alternating {
            return Err(refuse("layer_types other than llama.cpp's (even layers slide)".into()));
        }
    }
    Ok(arch)
}

/// Checks that `model` (from an HF folder) can be written as GGUF: what [`export_from_hf`]
/// would refuse, refused before a search or a write.
pub(crate) fn check_hf_source(model: &Model) -> Result<()> {
    let cfg = model.config();
    architecture(model)?;
    tokenizer_meta(model, cfg.vocab_size).map(|_| ())
}

/// The metadata of `model`'s GGUF.
fn metadata(model: &Model, arch: &str, tok: TokenizerMeta) -> Vec<(String, Meta)> {
    let c = model.config();
    let key = |k: &str| format!("{arch}.{k}");
    let name = c.raw["_name_or_path"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| model.source().file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    let mut m = vec![
        ("general.architecture".to_owned(), Meta::Str(arch.to_owned())),
        ("general.name".to_owned(), Meta::Str(name)),
        (key("context_length"), Meta::U32(c.max_positions as u32)),
        (key("embedding_length"), Meta::U32(c.hidden_size as u32)),
        (key("block_count"), Meta::U32(c.num_layers as u32)),
        (key("feed_forward_length"), Meta::U32(c.intermediate_size as u32)),
        (key("attention.head_count"), Meta::U32(c.num_heads as u32)),
        (key("attention.head_count_kv"), Meta::U32(c.num_kv_heads as u32)),
        (key("attention.key_length"), Meta::U32(c.head_dim as u32)),
        (key("attention.value_length"), Meta::U32(c.head_dim as u32)),
        (key("rope.dimension_count"), Meta::U32(c.rotary_dim as u32)),
        (key("rope.freq_base"), Meta::F32(c.rope_theta as f32)),
        (key("attention.layer_norm_rms_epsilon"), Meta::F32(c.norm_eps as f32)),
        (key("vocab_size"), Meta::U32(c.vocab_size as u32)),
    ];
    if let Some(w) = c.sliding_window {
        m.push((key("attention.sliding_window"), Meta::U32(w as u32)));
    }
    if let Some(cap) = c.attn_logit_softcap {
        m.push((key("attn_logit_softcapping"), Meta::F32(cap as f32)));
    }
    if let Some(cap) = model.score_scales().final_logit_softcap {
        m.push((key("final_logit_softcapping"), Meta::F32(cap as f32)));
    }
    if arch == "gemma3" {
        m.extend(gemma3_metadata(model, &key));
    }
    if arch == "phi3" {
        let original = c.raw["original_max_position_embeddings"].as_u64();
        let original = original.unwrap_or(c.max_positions as u64) as u32;
        m.push((key("rope.scaling.original_context_length"), Meta::U32(original)));
    }
    let (model_name, model_meta) = match tok.model {
        TokenizerModel::Gpt2 { pre, merges } => (
            "gpt2",
            vec![
                ("tokenizer.ggml.pre", Meta::Str(pre.into())),
                ("tokenizer.ggml.merges", Meta::Strs(merges)),
            ],
        ),
        TokenizerModel::Llama { scores, add_space_prefix } => (
            "llama",
            vec![
                ("tokenizer.ggml.scores", Meta::F32s(scores)),
                ("tokenizer.ggml.add_space_prefix", Meta::Bool(add_space_prefix)),
            ],
        ),
    };
    m.push(("tokenizer.ggml.model".into(), Meta::Str(model_name.into())));
    m.push(("tokenizer.ggml.tokens".into(), Meta::Strs(tok.tokens)));
    m.push(("tokenizer.ggml.token_type".into(), Meta::I32s(tok.types)));
    m.extend(model_meta.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let config_id = |k: &str| c.raw[k].as_u64().map(|v| v as u32);
    if let Some(bos) = config_id("bos_token_id").or(tok.bos) {
        m.push(("tokenizer.ggml.bos_token_id".into(), Meta::U32(bos)));
    }
    if let Some(eos) = config_id("eos_token_id") {
        m.push(("tokenizer.ggml.eos_token_id".into(), Meta::U32(eos)));
    }
    if let Some(unk) = tok.unknown {
        m.push(("tokenizer.ggml.unknown_token_id".into(), Meta::U32(unk)));
    }
    if let Some(pad) = c.pad_token_id {
        m.push(("tokenizer.ggml.padding_token_id".into(), Meta::U32(pad)));
    }
    m.push(("tokenizer.ggml.add_bos_token".into(), Meta::Bool(tok.bos.is_some())));
    m
}

/// Gemma 3's own keys. llama.cpp hard-codes its layer pattern (every 6th layer full) and the
/// sliding layers' RoPE base (10,000) and reads neither from the file; the file states the
/// model's own under the keys newer converters write (`attention.sliding_window_pattern`: a
/// period where the pattern is periodic, else one bool per layer; `rope.freq_base_swa`), which
/// laser reads — a model off llama.cpp's rules runs right from the file in laser only. The query scale is `attention.scale`, linear RoPE scaling `rope.scaling.*`.
fn gemma3_metadata(model: &Model, key: &dyn Fn(&str) -> String) -> Vec<(String, Meta)> {
    let c = model.config();
    let mut m = Vec::new();
    let scalar = model.score_scales().query_scalar.unwrap_or(c.head_dim as f64);
    m.push((key("attention.scale"), Meta::F32((1.0 / scalar.sqrt()) as f32)));
    if let Some(factor) = c.rope_linear_factor {
        m.push((key("rope.scaling.type"), Meta::Str("linear".into())));
        m.push((key("rope.scaling.factor"), Meta::F32(factor as f32)));
    }
    let (sliding, local_theta, window) = match &c.local_attention {
        Some(local) => (local.sliding.clone(), local.rope_theta, Some(local.window)),
        None => (vec![false; c.num_layers], c.rope_theta, None),
    };
    if let Some(w) = window.filter(|_| c.sliding_window.is_none()) {
        m.push((key("attention.sliding_window"), Meta::U32(w as u32)));
    }
    let period = sliding
        .iter()
        .position(|s| !s)
        .map(|p| p + 1)
        .filter(|&p| sliding.iter().enumerate().all(|(l, &s)| s != (l + 1).is_multiple_of(p)));
    m.push((
        key("attention.sliding_window_pattern"),
        match period {
            Some(p) => Meta::U32(p as u32),
            None => Meta::Bools(sliding),
        },
    ));
    m.push((key("rope.freq_base_swa"), Meta::F32(local_theta as f32)));
    m
}

/// llama.cpp's name for HF tensor `hf` (the inverse of the loader's map).
fn gguf_name(form: &GgufForm, hf: &str, layers: usize) -> Option<String> {
    const PARTS: [&str; 17] = [
        "attn_qkv.weight",
        "attn_norm.weight",
        "ffn_norm.weight",
        "post_attention_norm.weight",
        "post_ffw_norm.weight",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_q.bias",
        "attn_k.bias",
        "attn_v.bias",
        "attn_q_norm.weight",
        "attn_k_norm.weight",
        "attn_output.weight",
        "ffn_gate.weight",
        "ffn_up.weight",
        "ffn_down.weight",
    ];
    let globals = ["token_embd.weight", "output_norm.weight", "output.weight"];
    let layer = hf
        .strip_prefix("model.layers.")
        .and_then(|r| r.split_once('.'))
        .and_then(|(l, _)| l.parse::<usize>().ok())
        .filter(|&l| l < layers);
    let candidates: Vec<String> = match layer {
        Some(l) => PARTS.iter().map(|p| format!("blk.{l}.{p}")).collect(),
        None => globals.iter().map(|g| (*g).to_owned()).collect(),
    };
    candidates.into_iter().find(|g| hf_name(form, g).as_deref() == Some(hf))
}

/// A tensor to write: its name, GGUF dims, type and bytes.
struct Planned {
    name: String,
    dims: Vec<usize>,
    ty: GgmlType,
    bytes: Vec<u8>,
}

/// Writes `model` (loaded from an HF folder) to `dest` as GGUF, through a temporary sibling
/// renamed into place.
pub(crate) fn export_from_hf(model: &Model, dest: &Path, ty: GgufTensorType) -> Result<GgufExport> {
    let cfg = model.config();
    let source = model.source();
    let arch = architecture(model)?;
    let tok = tokenizer_meta(model, cfg.vocab_size)?;
    let form = form_of(arch).expect("a registered GGUF architecture");
    let source_ty = match HfDtype::Source.resolve(model) {
        HfDtype::Bf16 => GgmlType::BF16,
        HfDtype::F16 => GgmlType::F16,
        _ => GgmlType::F32,
    };
    let edited = model.edited();
    let mut tensors = Vec::new();
    let mut report = Vec::new();
    for hf in model.parameter_names() {
        let t = model.parameter(&hf).expect("a listed parameter");
        let name = gguf_name(&form, &hf, cfg.num_layers).ok_or_else(|| {
            ModelError::Unsupported(format!(
                "{}: tensor `{hf}` has no llama.cpp name in the {arch} layout",
                source.display()
            ))
        })?;
        let is_edited = edited.contains(&hf);
        let target = match (t.shape.len(), is_edited, ty) {
            (1, ..) => GgmlType::F32,
            (_, true, GgufTensorType::F16) => GgmlType::F16,
            (_, true, GgufTensorType::F32) => GgmlType::F32,
            _ => source_ty,
        };
        let dims = t.shape.iter().rev().copied().collect();
        let values = if t.shape.len() == 2 {
            to_llama_cpp_rows(&form, &name, t, cfg, source)?
        } else {
            to_llama_cpp_values(&form, &name, t, cfg, source)?
        };
        let bytes = encode(target, &values).expect("float types encode");
        if is_edited {
            let back = dequantize(target, &bytes, values.len());
            report.push(WrittenTensor {
                gguf_name: name.clone(),
                name: hf.clone(),
                source_type: source_ty.name(),
                written_type: target.name(),
                relative_error: relative_error(&values, &back),
            });
        }
        tensors.push(Planned { name, dims, ty: target, bytes });
    }
    if let Some(scaling) = &cfg.rope_scaling {
        // llama.cpp stores Llama 3.x scaling as one divisor per rotary frequency.
        let half = cfg.rotary_dim / 2;
        let factors: Vec<f32> = (0..half)
            .map(|i| {
                let inv_freq = cfg.rope_theta.powf(-((2 * i) as f64) / cfg.rotary_dim as f64);
                (inv_freq / scaling.scale(inv_freq)) as f32
            })
            .collect();
        let bytes = factors.iter().flat_map(|f| f.to_le_bytes()).collect();
        tensors.push(Planned {
            name: "rope_freqs.weight".into(),
            dims: vec![half],
            ty: GgmlType::F32,
            bytes,
        });
    }
    // llama.cpp's converter order: the embedding, the blocks in order, then the output tensors.
    let rank = |n: &str| -> (usize, usize) {
        match n {
            "rope_freqs.weight" => (0, 0),
            "token_embd.weight" => (1, 0),
            "output_norm.weight" => (3, 0),
            "output.weight" => (4, 0),
            _ => (
                2,
                n.strip_prefix("blk.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0),
            ),
        }
    };
    tensors.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then_with(|| a.name.cmp(&b.name)));
    let meta = metadata(model, arch, tok);
    let written = through_temporary(dest, |tmp| write_file(&meta, &tensors, tmp))?;
    Ok(GgufExport {
        path: dest.to_owned(),
        bytes: written,
        source_bytes: source_bytes(source),
        edited: report,
    })
}

/// The bytes of the source folder's safetensors files.
fn source_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// HF matrix `t` in llama.cpp's row order for tensor `name`: the family's `restore` run on a
/// row-index probe says where each row came from.
fn to_llama_cpp_rows(
    form: &GgufForm,
    name: &str,
    t: HostTensor,
    cfg: &ModelConfig,
    path: &Path,
) -> Result<Vec<f32>> {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    let probe = HostTensor { shape: vec![rows, 1], data: (0..rows).map(|r| r as f32).collect() };
    let restored = (form.restore)(name, probe, cfg, path)?;
    let mut out = vec![0.0f32; rows * cols];
    let mut seen = vec![false; rows];
    for (j, &src) in restored.data.iter().enumerate() {
        let src = src as usize;
        if restored.data.len() != rows || src >= rows || std::mem::replace(&mut seen[src], true) {
            return Err(ModelError::Unsupported(format!(
                "{}: the loader's change to tensor `{name}` is not a row permutation",
                path.display()
            )));
        }
        out[src * cols..(src + 1) * cols].copy_from_slice(&t.data[j * cols..(j + 1) * cols]);
    }
    Ok(out)
}

/// HF vector `t` as llama.cpp stores tensor `name`: the family's `restore` run on zeros and on
/// ones says what the loader subtracts (Gemma's norms: 1, which llama.cpp's converter added), and
/// that it is a constant shift; anything else is refused.
fn to_llama_cpp_values(
    form: &GgufForm,
    name: &str,
    t: HostTensor,
    cfg: &ModelConfig,
    path: &Path,
) -> Result<Vec<f32>> {
    let probe = |v: f32| HostTensor { shape: t.shape.clone(), data: vec![v; t.data.len()] };
    let at_zero = (form.restore)(name, probe(0.0), cfg, path)?;
    let at_one = (form.restore)(name, probe(1.0), cfg, path)?;
    let shift = at_zero.data.first().copied().unwrap_or(0.0);
    let constant = at_zero.data.len() == t.data.len()
        && at_one.data.len() == t.data.len()
        && at_zero.data.iter().all(|&z| z == shift)
        && at_one.data.iter().all(|&o| o == 1.0 + shift);
    if !constant {
        return Err(ModelError::Unsupported(format!(
            "{}: the loader's change to tensor `{name}` is not a constant shift",
            path.display()
        )));
    }
    // The loader computes stored + shift: the stored value is the weight − shift.
    Ok(if shift == 0.0 { t.data } else { t.data.iter().map(|&w| w - shift).collect() })
}

/// Writes a GGUF v3 file: header, metadata, tensor table, aligned data. Returns its size.
fn write_file(meta: &[(String, Meta)], tensors: &[Planned], tmp: &Path) -> Result<u64> {
    let io = |e| ModelError::io(tmp, e);
    let pad = |n: usize| n.div_ceil(ALIGNMENT) * ALIGNMENT - n;
    let mut head = Vec::new();
    head.extend(b"GGUF");
    head.extend(3u32.to_le_bytes());
    head.extend((tensors.len() as u64).to_le_bytes());
    head.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in meta {
        head.extend((key.len() as u64).to_le_bytes());
        head.extend(key.as_bytes());
        value.write(&mut head);
    }
    let mut offset = 0usize;
    for t in tensors {
        head.extend((t.name.len() as u64).to_le_bytes());
        head.extend(t.name.as_bytes());
        head.extend((t.dims.len() as u32).to_le_bytes());
        for &d in &t.dims {
            head.extend((d as u64).to_le_bytes());
        }
        head.extend(t.ty.id().to_le_bytes());
        head.extend((offset as u64).to_le_bytes());
        offset += t.bytes.len() + pad(t.bytes.len());
    }
    head.resize(head.len() + pad(head.len()), 0);
    let mut w = std::io::BufWriter::new(std::fs::File::create(tmp).map_err(io)?);
    w.write_all(&head).map_err(io)?;
    let zeros = [0u8; ALIGNMENT];
    for t in tensors {
        w.write_all(&t.bytes).map_err(io)?;
        w.write_all(&zeros[..pad(t.bytes.len())]).map_err(io)?;
    }
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    Ok((head.len() + offset) as u64)
}
