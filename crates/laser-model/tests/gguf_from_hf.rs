//! GGUF out from an HF folder (issue 30): the llama-layout families and the Gemmas go GGUF → HF
//! folder → GGUF and load back to the same model — config (Llama 3 RoPE scaling through
//! `rope_freqs.weight`, Mistral's window, Qwen2's biases, Qwen3's q/k norms, Gemma 3's layer
//! pattern and local base), logits, tokenizer (byte-level BPE, or SentencePiece with scores) —
//! with Q/K rows permuted back into llama.cpp's order, Gemma's norms stored as 1 + w again and
//! Phi-3's fused projections under llama.cpp's names; an edited matrix is written in the asked type with its
//! error reported; what cannot be written faithfully is refused before anything is written.

mod common;

use std::path::{Path, PathBuf};

use common::gguf_writer::{tiny_gguf, write_tmp};
use common::*;
use laser_model::gguf::{GgmlType, GgufFile, GgufValue};
use laser_model::{Backend, GgufTensorType, Model, check_gguf_export, export_gguf, export_hf};

fn load(path: &Path) -> Model {
    Model::load(path, Backend::Flex.device().unwrap()).unwrap()
}

fn tmp(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("laser-from-hf-{tag}-{}", std::process::id()))
}

/// `family`'s tiny GGUF, exported to an HF folder and loaded from there (`tag` keeps the files
/// of tests running at once apart).
fn hf_model(family: &str, tag: &str) -> (Model, PathBuf, PathBuf) {
    let gguf = write_tmp(&format!("from-hf-{family}-{tag}"), &tiny_gguf(family));
    let dir = tmp(&format!("{family}-{tag}-hf"));
    let _ = std::fs::remove_dir_all(&dir);
    export_hf(&load(&gguf), &dir).unwrap();
    (load(&dir), gguf, dir)
}

fn tensor_types(path: &Path) -> Vec<(String, GgmlType)> {
    let bytes = std::fs::read(path).unwrap();
    let (_, tensors) = GgufFile::parse(&bytes, path).unwrap();
    tensors.into_iter().map(|t| (t.name, t.ty)).collect()
}

fn worst_gap(a: &Model, b: &Model, ids: &[Vec<u32>]) -> f32 {
    let (x, y) = (a.all_logits(ids).unwrap(), b.all_logits(ids).unwrap());
    x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max)
}

/// A GGUF's metadata, as `GgufFile::parse` returns it.
type Metadata = std::collections::BTreeMap<String, GgufValue>;

/// What both round-trip tests check of `out`, written from `hf` (loaded from the HF export of
/// `source`): the config (past its raw JSON) and the logits are the source's exactly, every source
/// tensor is there under its llama.cpp name with its dims, F32 ones byte for byte (so in the
/// source's row order: a permutation or norm offset undone on load is redone). Returns the source's
/// and the output's tensor types and metadata, and the model loaded back from `out`.
fn assert_round_trip(
    family: &str,
    hf: &Model,
    source: &Path,
    out: &Path,
) -> (Vec<GgmlType>, usize, Metadata, Metadata, Model) {
    let (first, back) = (load(source), load(out));
    let mut a = first.config().clone();
    let mut b = back.config().clone();
    (a.raw, b.raw) = (serde_json::Value::Null, serde_json::Value::Null);
    assert_eq!(a, b, "{family}: the config survives");
    assert_eq!(worst_gap(hf, &back, &reference(family).ids), 0.0, "{family}: F32 is exact");
    let bytes = |p: &Path| std::fs::read(p).unwrap();
    let (src_bytes, out_bytes) = (bytes(source), bytes(out));
    let (meta_src, src_tensors) = GgufFile::parse(&src_bytes, source).unwrap();
    let (meta_out, out_tensors) = GgufFile::parse(&out_bytes, out).unwrap();
    for t in &src_tensors {
        let o = out_tensors.iter().find(|o| o.name == t.name);
        let o = o.unwrap_or_else(|| panic!("{family}: `{}` missing", t.name));
        assert_eq!(o.dims, t.dims, "{family}: {}", t.name);
        if t.ty == GgmlType::F32 {
            assert_eq!(out_bytes[o.range.clone()], src_bytes[t.range.clone()], "{}", t.name);
        }
    }
    let types = src_tensors.iter().map(|t| t.ty).collect();
    (types, out_tensors.len(), meta_src, meta_out, back)
}

#[test]
fn llama_layout_families_round_trip_through_an_hf_folder() {
    for family in ["llama", "llama3", "mistral", "qwen2", "qwen3"] {
        let (hf, source, dir) = hf_model(family, "round-trip");
        let out = tmp(&format!("{family}.gguf"));
        check_gguf_export(&hf, GgufTensorType::F32).unwrap();
        let report = export_gguf(&hf, &out, GgufTensorType::F32).unwrap();
        assert!(report.edited.is_empty(), "{family}");
        // The Q/K permutation is undone on load and redone here.
        let (_, _, meta_src, meta_out, back) = assert_round_trip(family, &hf, &source, &out);
        // The tokenizer travels as metadata: the same vocabulary, the same ids.
        assert_eq!(meta_out["tokenizer.ggml.tokens"], meta_src["tokenizer.ggml.tokens"]);
        assert_eq!(meta_out["tokenizer.ggml.pre"], GgufValue::String("smollm".into()));
        let text = "ab 12 ba, a";
        assert_eq!(
            back.tokenizer().unwrap().encode_prompt(text).unwrap(),
            hf.tokenizer().unwrap().encode_prompt(text).unwrap(),
            "{family}"
        );
        for p in [source, out] {
            std::fs::remove_file(p).unwrap();
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// The SentencePiece families: Gemma's norms go back to llama.cpp's 1 + w bit for bit (the
/// loader's subtraction is exact there), Phi-3's fused projections under their llama.cpp names;
/// the vocabulary keeps its pieces and types, and its scores, rewritten as merge ranks, replay
/// the same merges (with Phi-3's space prefix, without Gemma's).
#[test]
fn sentencepiece_families_round_trip_with_gemma_norms_and_phi3_fused_projections() {
    for family in ["gemma2", "gemma3", "phi3"] {
        let (hf, source, dir) = hf_model(family, "round-trip");
        let out = tmp(&format!("{family}.gguf"));
        check_gguf_export(&hf, GgufTensorType::F32).unwrap();
        export_gguf(&hf, &out, GgufTensorType::F32).unwrap();
        let (types, written, meta_src, meta_out, back) =
            assert_round_trip(family, &hf, &source, &out);
        // Every tensor is F32, so every one is byte for byte the source's, and none is added.
        assert!(types.iter().all(|&t| t == GgmlType::F32), "{family}: {types:?}");
        assert_eq!(written, types.len(), "{family}");
        for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.model"] {
            assert_eq!(meta_out[key], meta_src[key], "{family}: {key}");
        }
        // The same token types (written as i32, as llama.cpp's converter does; the fixture u32).
        let types = |v: &GgufValue| match v {
            GgufValue::Array(a) => a
                .iter()
                .map(|t| match *t {
                    GgufValue::Int(i) => i,
                    GgufValue::Uint(u) => u as i64,
                    ref other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        let key = "tokenizer.ggml.token_type";
        assert_eq!(types(&meta_out[key]), types(&meta_src[key]), "{family}: token types");
        let prefix = GgufValue::Bool(family == "phi3");
        assert_eq!(meta_out["tokenizer.ggml.add_space_prefix"], prefix, "{family}");
        for text in ["ab ba, abc", " a  b\tc", "é ☃ ab"] {
            assert_eq!(
                back.tokenizer().unwrap().encode_prompt(text).unwrap(),
                hf.tokenizer().unwrap().encode_prompt(text).unwrap(),
                "{family}: {text:?}"
            );
        }
        for p in [source, out] {
            std::fs::remove_file(p).unwrap();
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A Gemma 3 layer pattern that is not "every N-th layer full" is written as one bool per layer
/// (as newer converters do) and read back as it was.
#[test]
fn a_gemma3_pattern_without_a_period_is_written_per_layer() {
    let (_, source, dir) = hf_model("gemma3", "pattern");
    let config = dir.join("config.json");
    let mut raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    raw["layer_types"] = serde_json::json!(["full_attention", "sliding_attention"]);
    std::fs::write(&config, raw.to_string()).unwrap();
    let hf = load(&dir);
    let sliding = |m: &Model| m.config().local_attention.as_ref().unwrap().sliding.clone();
    assert_eq!(sliding(&hf), [false, true]);
    let out = tmp("gemma3-pattern.gguf");
    export_gguf(&hf, &out, GgufTensorType::F32).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let (meta, _) = GgufFile::parse(&bytes, &out).unwrap();
    assert_eq!(
        meta["gemma3.attention.sliding_window_pattern"],
        GgufValue::Array(vec![GgufValue::Bool(false), GgufValue::Bool(true)])
    );
    let back = load(&out);
    assert_eq!(sliding(&back), [false, true]);
    assert_eq!(worst_gap(&hf, &back, &reference("gemma3").ids), 0.0);
    std::fs::remove_file(source).unwrap();
    std::fs::remove_file(out).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_edited_hf_model_writes_its_edit_in_the_asked_type() {
    let (mut hf, source, dir) = hf_model("llama", "edited");
    let name = "model.layers.0.self_attn.q_proj.weight";
    let [rows, cols] = hf.matrix_info(name).unwrap().shape;
    let w = hf.matrix(name).unwrap();
    // Each row scaled by its own factor: a row written back out of order changes the logits.
    let edited: Vec<f32> =
        (0..rows * cols).map(|i| w[i] * (0.25 + (i / cols) as f32 / rows as f32)).collect();
    hf.replace_matrix(name, edited).unwrap();
    for (ty, written, bound) in
        [(GgufTensorType::F16, GgmlType::F16, 1e-3), (GgufTensorType::F32, GgmlType::F32, 0.0)]
    {
        let out = tmp(&format!("edited-{written:?}.gguf"));
        let report = export_gguf(&hf, &out, ty).unwrap();
        let [t] = &report.edited[..] else { panic!("{:?}", report.edited) };
        assert_eq!((t.gguf_name.as_str(), t.source_type), ("blk.0.attn_q.weight", "F32"));
        assert_eq!(t.written_type, written.name());
        for (n, ty) in tensor_types(&out) {
            let expected = if n == "blk.0.attn_q.weight" { written } else { GgmlType::F32 };
            assert_eq!(ty, expected, "{n}");
        }
        let back = load(&out);
        let (a, b) = (hf.matrix(name).unwrap(), back.matrix(name).unwrap());
        let num: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        let den: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
        let error = (num / den).sqrt();
        assert!((error - t.relative_error).abs() < 1e-9 && error <= bound, "{error}");
        let gap = worst_gap(&hf, &back, &reference("llama").ids);
        assert!(gap <= if bound > 0.0 { 1e-2 } else { 0.0 }, "{written:?}: {gap}");
        std::fs::remove_file(out).unwrap();
    }
    std::fs::remove_file(source).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn what_cannot_be_written_faithfully_is_refused_before_anything_is_written() {
    let out = tmp("refused.gguf");
    // The oracle fixtures carry no tokenizer.json; a GGUF must carry its tokenizer.
    let bare = load_tiny("llama");
    let err = check_gguf_export(&bare, GgufTensorType::F16).unwrap_err().to_string();
    assert!(err.contains("no tokenizer.json"), "{err}");
    assert!(export_gguf(&bare, &out, GgufTensorType::F16).is_err());
    // A family without a GGUF form (GPT-2), refused for that before its tokenizer is looked at.
    let gpt2 = load_tiny("gpt2");
    let err = check_gguf_export(&gpt2, GgufTensorType::F16).unwrap_err().to_string();
    assert!(err.contains("gpt2") && err.contains("llama-layout"), "{err}");
    assert!(export_gguf(&gpt2, &out, GgufTensorType::F16).is_err());
    assert!(!out.exists());
}
