//! GGUF out (issue 30): an edited model loaded from GGUF, written back as GGUF, loads to the
//! in-memory edited model's logits (exactly for F32, within the type's error otherwise); every
//! untouched tensor's bytes and every metadata value are the source's; the llama architecture's
//! permuted Q/K rows go back permuted. On the real models: the size target, and a k-quant source
//! written in its own types. (An HF source: `gguf_from_hf.rs`.)

mod common;

use std::path::{Path, PathBuf};

use common::gguf_writer::{micro_llama_gguf, tiny_llama_gguf, write_tmp};
use common::*;
use laser_model::gguf::{GgmlType, GgufFile};
use laser_model::{Backend, GgufTensorType, Model, export_gguf};

fn load(path: &Path) -> Model {
    Model::load(path, Backend::Flex.device().unwrap()).unwrap()
}

fn out_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("laser-gguf-out-{tag}-{}.gguf", std::process::id()))
}

/// Replaces `name` by a visibly different matrix: every row scaled by its own factor, so a row
/// written back in the wrong order changes the logits.
fn edit(model: &mut Model, name: &str) {
    let [rows, cols] = model.matrix_info(name).unwrap().shape;
    let w = model.matrix(name).unwrap();
    let edited: Vec<f32> =
        (0..rows * cols).map(|i| w[i] * (0.25 + (i / cols) as f32 / rows as f32)).collect();
    model.replace_matrix(name, edited).unwrap();
}

/// Each tensor's bytes, by name.
fn tensor_bytes(bytes: &[u8]) -> Vec<(String, GgmlType, Vec<u8>)> {
    let (_, tensors) = GgufFile::parse(bytes, Path::new("x.gguf")).unwrap();
    tensors.into_iter().map(|t| (t.name, t.ty, bytes[t.range].to_vec())).collect()
}

/// Untouched tensors and metadata are the source's; edited ones have type `ty`.
/// `ty`: the edited tensors' type in `out`, or `None` where each keeps its source type.
fn assert_only_edited_tensors_changed(
    source: &[u8],
    out: &[u8],
    edited: &[&str],
    ty: Option<GgmlType>,
) {
    let path = Path::new("x.gguf");
    let (meta_in, _) = GgufFile::parse(source, path).unwrap();
    let (meta_out, _) = GgufFile::parse(out, path).unwrap();
    assert_eq!(meta_in, meta_out, "metadata");
    let (a, b) = (tensor_bytes(source), tensor_bytes(out));
    assert_eq!(
        a.iter().map(|t| &t.0).collect::<Vec<_>>(),
        b.iter().map(|t| &t.0).collect::<Vec<_>>(),
        "same tensors in the same order"
    );
    for ((name, ty_in, bytes_in), (_, ty_out, bytes_out)) in a.iter().zip(&b) {
        if edited.contains(&name.as_str()) {
            assert_eq!(*ty_out, ty.unwrap_or(*ty_in), "{name}");
            assert_ne!(bytes_in, bytes_out, "{name} is edited");
        } else {
            assert_eq!((ty_in, bytes_in), (ty_out, bytes_out), "{name} is untouched");
        }
    }
}

fn worst_logit_gap(a: &Model, b: &Model) -> f32 {
    let ids = reference("llama").ids;
    let (x, y) = (a.all_logits(&ids).unwrap(), b.all_logits(&ids).unwrap());
    x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max)
}

#[test]
fn an_edited_llama_written_as_f32_loads_to_the_same_model() {
    let source = tiny_llama_gguf();
    let path = write_tmp("export-src", &source);
    let mut model = load(&path);
    // q_proj's rows are permuted in llama.cpp's layout; down_proj's are not.
    let edited = ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"];
    for name in edited {
        edit(&mut model, name);
    }
    let out = out_path("f32");
    let report = export_gguf(&model, &out, GgufTensorType::F32).unwrap();
    assert_eq!(report.edited.len(), 2);
    assert!(report.edited.iter().all(|t| t.relative_error == 0.0 && t.written_type == "F32"));
    assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());
    let back = load(&out);
    for m in model.matrices() {
        assert_eq!(back.matrix(&m.name).unwrap(), model.matrix(&m.name).unwrap(), "{}", m.name);
    }
    assert_eq!(worst_logit_gap(&model, &back), 0.0);
    let written = std::fs::read(&out).unwrap();
    assert_only_edited_tensors_changed(
        &source,
        &written,
        &["blk.0.attn_q.weight", "blk.1.ffn_down.weight"],
        Some(GgmlType::F32),
    );
    // The unedited source exports to itself.
    let plain = load(&path);
    let same = out_path("same-as-source");
    export_gguf(&plain, &same, GgufTensorType::F16).unwrap();
    assert_eq!(std::fs::read(&same).unwrap(), source, "no edit: the source's bytes");
    for p in [path, out, same] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn f16_adds_only_half_precision_error() {
    let path = write_tmp("export-f16", &tiny_llama_gguf());
    let mut model = load(&path);
    edit(&mut model, "model.layers.0.self_attn.k_proj.weight");
    let out = out_path("f16");
    let report = export_gguf(&model, &out, GgufTensorType::F16).unwrap();
    let e = &report.edited[0];
    assert_eq!(
        (e.gguf_name.as_str(), e.source_type, e.written_type),
        ("blk.0.attn_k.weight", "F32", "F16")
    );
    assert!(e.relative_error > 0.0 && e.relative_error < 1e-3, "{}", e.relative_error);
    let back = load(&out);
    let gap = worst_logit_gap(&model, &back);
    assert!(gap > 0.0 && gap < 1e-2, "max |Δlogit| {gap}");
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(out).unwrap();
}

#[test]
fn same_re_quantizes_q8_0_q4_0_and_q4_1_tensors() {
    let source = micro_llama_gguf();
    let path = write_tmp("export-micro", &source);
    let mut model = load(&path);
    let edited = [
        ("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", "Q8_0"),
        ("model.layers.0.mlp.up_proj.weight", "blk.0.ffn_up.weight", "Q4_0"),
        ("model.layers.0.mlp.gate_proj.weight", "blk.0.ffn_gate.weight", "Q4_1"),
    ];
    for (name, _, _) in edited {
        edit(&mut model, name);
    }
    let out = out_path("micro-same");
    let report = export_gguf(&model, &out, GgufTensorType::Same).unwrap();
    let back = load(&out);
    for (name, gguf, ty) in edited {
        let t = report.edited.iter().find(|t| t.name == name).unwrap();
        assert_eq!((t.gguf_name.as_str(), t.source_type, t.written_type), (gguf, ty, ty));
        // One quantization step of 4 bits is a sixteenth of a block's range.
        let bound = if ty == "Q8_0" { 0.02 } else { 0.2 };
        assert!(t.relative_error > 0.0 && t.relative_error < bound, "{name}: {}", t.relative_error);
        // The reported error is the one the file holds.
        let (a, b) = (model.matrix(name).unwrap(), back.matrix(name).unwrap());
        let num: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        let den: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
        assert!(((num / den).sqrt() - t.relative_error).abs() < 1e-9, "{name}");
    }
    let written = std::fs::read(&out).unwrap();
    let (_, tensors) = GgufFile::parse(&written, Path::new("x")).unwrap();
    let (_, before) = GgufFile::parse(&source, Path::new("x")).unwrap();
    for (a, b) in before.iter().zip(&tensors) {
        assert_eq!(a.ty, b.ty, "{}: `same` keeps every type", a.name);
    }
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(out).unwrap();
}

/// The default model (SmolLM2-135M-Instruct, Q4_1), one matrix edited, written with F16: the
/// file is at most the input plus that matrix's F16 bytes plus 1 MB, and every other tensor is
/// byte-identical. Skipped (saying why) where the model is neither cached nor fetchable.
#[test]
fn smollm2_with_one_f16_matrix_stays_within_the_size_target() {
    let Some(path) = real_model("fetch-smollm2.sh") else { return };
    let mut model = load(&path);
    let name = "model.layers.20.mlp.down_proj.weight";
    edit(&mut model, name);
    let [rows, cols] = model.matrix_info(name).unwrap().shape;
    let out = out_path("smollm2");
    let report = export_gguf(&model, &out, GgufTensorType::F16).unwrap();
    let limit = report.source_bytes + (2 * rows * cols) as u64 + (1 << 20);
    assert!(report.bytes <= limit, "{} bytes > {limit}", report.bytes);
    let source = std::fs::read(&path).unwrap();
    let written = std::fs::read(&out).unwrap();
    assert_only_edited_tensors_changed(
        &source,
        &written,
        &["blk.20.ffn_down.weight"],
        Some(GgmlType::F16),
    );
    let back = load(&out);
    let (a, b) = (model.matrix(name).unwrap(), back.matrix(name).unwrap());
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(worst <= scale / 1024.0, "F16 rounding: {worst} of {scale}");
    std::fs::remove_file(out).unwrap();
}

/// A k-quant source: Gemma 3 270M's Q4_K_M GGUF (Q4_K, Q6_K, Q5_0, Q8_0 tensors). One matrix
/// edited and written F16 keeps every other tensor's bytes and loads back as the edit. Four
/// matrices, one of each of those types, written `same`: each keeps its type (the file keeps its
/// size to the byte), every other tensor its bytes, and the error each reports is the file's.
/// Skipped (saying why) where the model is neither cached nor fetchable.
#[test]
fn a_k_quant_gemma3_keeps_its_tensors_in_f16_and_in_its_own_types() {
    let Some(path) = real_model("fetch-gemma3-270m.sh") else { return };
    let source = std::fs::read(&path).unwrap();
    let mut model = load(&path);
    let name = "model.layers.3.mlp.down_proj.weight";
    edit(&mut model, name);
    let out = out_path("gemma");
    let report = export_gguf(&model, &out, GgufTensorType::F16).unwrap();
    let [t] = &report.edited[..] else { panic!("{:?}", report.edited) };
    assert_eq!(t.gguf_name, "blk.3.ffn_down.weight");
    assert_eq!((t.source_type, t.written_type), ("Q4_K", "F16"));
    let written = std::fs::read(&out).unwrap();
    assert_only_edited_tensors_changed(
        &source,
        &written,
        &["blk.3.ffn_down.weight"],
        Some(GgmlType::F16),
    );
    let back = load(&out);
    let (a, b) = (model.matrix(name).unwrap(), back.matrix(name).unwrap());
    let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(worst <= scale / 1024.0, "F16 rounding: {worst} of {scale}");
    std::fs::remove_file(&out).unwrap();

    // (HF name, GGUF name, type, the most relative error that type's bits allow)
    let edited = [
        ("model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight", "Q4_K", 0.1),
        ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight", "Q6_K", 0.03),
        ("model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight", "Q5_0", 0.06),
        ("model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight", "Q8_0", 0.01),
    ];
    for (name, ..) in &edited[1..] {
        edit(&mut model, name);
    }
    let report = export_gguf(&model, &out, GgufTensorType::Same).unwrap();
    assert_eq!(report.bytes, report.source_bytes, "same types, same size");
    let written = std::fs::read(&out).unwrap();
    let gguf_names: Vec<&str> = edited.iter().map(|e| e.1).collect();
    assert_only_edited_tensors_changed(&source, &written, &gguf_names, None);
    let back = load(&out);
    for (name, gguf, ty, bound) in edited {
        let t = report.edited.iter().find(|t| t.name == name).unwrap();
        assert_eq!((t.gguf_name.as_str(), t.source_type, t.written_type), (gguf, ty, ty));
        assert!(t.relative_error > 0.0 && t.relative_error < bound, "{name}: {}", t.relative_error);
        let (a, b) = (model.matrix(name).unwrap(), back.matrix(name).unwrap());
        let num: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
        let den: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
        assert!(((num / den).sqrt() - t.relative_error).abs() < 1e-9, "{name}");
    }
    std::fs::remove_file(out).unwrap();
}

/// The path of a real model fetched by `scripts/<script>` (cached after the first time), or
/// `None` with a note where it cannot be fetched.
fn real_model(script: &str) -> Option<PathBuf> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fetched = std::process::Command::new("bash")
        .arg(repo.join("scripts").join(script))
        .output()
        .expect("bash runs");
    if !fetched.status.success() {
        skip_note(format!(
            "skipped: the model of {script} is not cached and could not be fetched: {}",
            String::from_utf8_lossy(&fetched.stderr).trim()
        ));
        return None;
    }
    Some(PathBuf::from(String::from_utf8(fetched.stdout).unwrap().trim()))
}

/// Says why a test is skipped on the real stderr (the harness captures `eprintln!`).
fn skip_note(msg: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The HF export's dtype: an f32 GGUF stays f32 (bit-exact), a quantized one becomes bf16 by
/// default (half the bytes, the weights rounded to bf16), and f32 on request; `torch_dtype` says
/// which.
#[test]
fn hf_export_keeps_the_sources_dtype() {
    use laser_model::{HfDtype, export_hf_as};
    let dtype_of = |dir: &Path| -> (String, safetensors::Dtype) {
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        let st = std::fs::read(dir.join("model.safetensors")).unwrap();
        let t = safetensors::SafeTensors::deserialize(&st).unwrap();
        let (_, view) = t.tensors().into_iter().next().unwrap();
        (cfg["torch_dtype"].as_str().unwrap().to_owned(), view.dtype())
    };
    let dir = |tag: &str| {
        let d = std::env::temp_dir().join(format!("laser-hf-dtype-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    };
    let f32_source = write_tmp("dtype-f32", &tiny_llama_gguf());
    let model = load(&f32_source);
    let out = dir("f32");
    assert_eq!(export_hf_as(&model, &out, HfDtype::Source).unwrap(), HfDtype::F32);
    assert_eq!(dtype_of(&out), ("float32".to_owned(), safetensors::Dtype::F32));
    assert_eq!(worst_logit_gap(&model, &load(&out)), 0.0);

    let quantized = write_tmp("dtype-q", &micro_llama_gguf());
    let model = load(&quantized);
    let (bf16, f32) = (dir("bf16"), dir("q-f32"));
    assert_eq!(export_hf_as(&model, &bf16, HfDtype::Source).unwrap(), HfDtype::Bf16);
    assert_eq!(dtype_of(&bf16), ("bfloat16".to_owned(), safetensors::Dtype::BF16));
    assert_eq!(export_hf_as(&model, &f32, HfDtype::F32).unwrap(), HfDtype::F32);
    let size = |d: &Path| std::fs::metadata(d.join("model.safetensors")).unwrap().len();
    assert!(size(&bf16) * 2 < size(&f32) + 4096, "{} vs {}", size(&bf16), size(&f32));
    let back = load(&bf16);
    for m in model.matrices() {
        let want: Vec<f32> = model
            .matrix(&m.name)
            .unwrap()
            .iter()
            .map(|&x| half::bf16::from_f32(x).to_f32())
            .collect();
        assert_eq!(back.matrix(&m.name).unwrap(), want, "{} rounded to bf16", m.name);
    }
    for p in [f32_source, quantized] {
        std::fs::remove_file(p).unwrap();
    }
    for d in [out, bf16, f32] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
