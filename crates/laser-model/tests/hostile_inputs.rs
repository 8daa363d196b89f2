//! Bad model folders are errors naming the file, tensor or value — never panics — and f16 / bf16
//! checkpoints load.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use laser_model::{Backend, HostTensor, Model, load_safetensors_file, save_safetensors};

/// A fresh copy of a tiny fixture folder.
fn copy_tiny(family: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("laser-hostile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny_dir(family).join(f), dst.join(f)).unwrap();
    }
    dst
}

fn load_err(dir: &Path) -> String {
    let err = Model::load(dir, Backend::Flex.device().unwrap()).expect_err("must fail").to_string();
    let _ = std::fs::remove_dir_all(dir);
    err
}

fn edit_config(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(p, v.to_string()).unwrap();
}

fn edit_weights(dir: &Path, f: impl FnOnce(&mut std::collections::BTreeMap<String, HostTensor>)) {
    let p = dir.join("model.safetensors");
    let mut w = load_safetensors_file(&p).unwrap();
    f(&mut w);
    save_safetensors(&p, &w, None).unwrap();
}

#[test]
fn config_problems_name_the_file_and_field() {
    let d = copy_tiny("llama", "notjson");
    std::fs::write(d.join("config.json"), "{ nope").unwrap();
    let err = load_err(&d);
    assert!(err.contains("config.json") && err.contains("not JSON"), "{err}");

    let d = copy_tiny("llama", "nofield");
    edit_config(&d, |v| {
        v.as_object_mut().unwrap().remove("hidden_size");
    });
    assert!(load_err(&d).contains("missing field `hidden_size`"));

    let d = copy_tiny("gpt2", "heads");
    edit_config(&d, |v| v["n_head"] = 3.into());
    let err = load_err(&d);
    assert!(err.contains("hidden_size 64") && err.contains("3"), "{err}");

    let d = copy_tiny("llama", "kvheads");
    edit_config(&d, |v| v["num_key_value_heads"] = 3.into());
    assert!(load_err(&d).contains("num_key_value_heads 3"));

    let d = copy_tiny("llama", "type");
    edit_config(&d, |v| v["model_type"] = "mamba".into());
    assert!(load_err(&d).contains("mamba"));

    let d = copy_tiny("llama", "wrongtype");
    edit_config(&d, |v| v["hidden_size"] = "wide".into());
    assert!(load_err(&d).contains("field `hidden_size`"));

    let d = copy_tiny("llama", "zero");
    edit_config(&d, |v| v["num_hidden_layers"] = 0.into());
    assert!(load_err(&d).contains("`num_hidden_layers` is 0"));

    let d = copy_tiny("llama", "noconfig");
    std::fs::remove_file(d.join("config.json")).unwrap();
    assert!(load_err(&d).contains("config.json"));
}

#[test]
fn weight_problems_name_the_tensor() {
    let d = copy_tiny("llama", "missing");
    edit_weights(&d, |w| {
        w.remove("model.layers.1.mlp.up_proj.weight");
    });
    let err = load_err(&d);
    assert!(err.contains("missing tensor `model.layers.1.mlp.up_proj.weight`"), "{err}");

    let d = copy_tiny("llama", "shape");
    edit_weights(&d, |w| {
        w.insert("model.norm.weight".into(), HostTensor::new(vec![63], vec![1.0; 63]).unwrap());
    });
    let err = load_err(&d);
    assert!(err.contains("model.norm.weight") && err.contains("[63]"), "{err}");

    let d = copy_tiny("gpt2", "nan");
    edit_weights(&d, |w| {
        w.get_mut("transformer.h.1.mlp.c_fc.weight").unwrap().data_mut()[17] = f32::INFINITY;
    });
    let err = load_err(&d);
    assert!(
        err.contains("transformer.h.1.mlp.c_fc.weight")
            && err.contains("non-finite")
            && err.contains("17"),
        "{err}"
    );

    let d = copy_tiny("llama", "noweights");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    assert!(load_err(&d).contains("no model.safetensors"));

    let err = Model::load(Path::new("/nonexistent/model"), Backend::Flex.device().unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn lying_safetensors_headers_are_errors() {
    let good = std::fs::read(tiny_dir("llama").join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("huge-header", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            b
        }),
        ("truncated-data", good[..good.len() - 100].to_vec()),
        ("truncated-header", good[..8 + header_len / 2].to_vec()),
        ("garbage-header", {
            let mut b = good.clone();
            b[8..8 + 16].copy_from_slice(b"not a json head!");
            b
        }),
    ];
    for (tag, bytes) in cases {
        let d = copy_tiny("llama", tag);
        std::fs::write(d.join("model.safetensors"), bytes).unwrap();
        let err = load_err(&d);
        assert!(err.contains("model.safetensors"), "{tag}: {err}");
    }
}

#[test]
fn invalid_tokenizer_json_is_a_tokenizer_error() {
    let d = copy_tiny("gpt2", "tok");
    std::fs::write(d.join("tokenizer.json"), "{\"model\": 5}").unwrap();
    let err = load_err(&d);
    assert!(err.contains("tokenizer") && err.contains("tokenizer.json"), "{err}");
}

#[test]
fn half_precision_checkpoints_load_and_compute_in_f32() {
    let reference_logits = load_tiny("gpt_neox").all_logits(&reference("gpt_neox").ids).unwrap();
    for (tag, dtype) in [("f16", safetensors::Dtype::F16), ("bf16", safetensors::Dtype::BF16)] {
        let d = copy_tiny("gpt_neox", tag);
        let w = load_safetensors_file(&d.join("model.safetensors")).unwrap();
        let encoded: Vec<(String, Vec<u8>, Vec<usize>)> = w
            .iter()
            .map(|(n, t)| {
                let bytes = t
                    .data()
                    .iter()
                    .flat_map(|&x| match dtype {
                        safetensors::Dtype::F16 => half::f16::from_f32(x).to_le_bytes(),
                        _ => half::bf16::from_f32(x).to_le_bytes(),
                    })
                    .collect();
                (n.clone(), bytes, t.shape().to_vec())
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = encoded
            .iter()
            .map(|(n, b, s)| {
                (n.clone(), safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap())
            })
            .collect();
        safetensors::serialize_to_file(views, None, &d.join("model.safetensors")).unwrap();
        let model = Model::load(&d, Backend::Flex.device().unwrap()).unwrap();
        let logits = model.all_logits(&reference("gpt_neox").ids).unwrap();
        let worst =
            logits.iter().zip(&reference_logits).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let tol = if tag == "f16" { 0.05 } else { 0.3 };
        assert!(worst < tol, "{tag}: {worst}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// The logits of `dir`'s model on a short sequence, the folder then removed.
fn logits_of(dir: &Path) -> Vec<f32> {
    let model = Model::load(dir, Backend::Flex.device().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    model.all_logits(&[vec![3, 1, 4, 1, 5, 9, 2, 6]]).unwrap()
}

#[test]
fn a_familys_own_options_are_typed_and_their_errors_name_the_key() {
    let d = copy_tiny("llama", "optbool");
    edit_config(&d, |v| v["attention_bias"] = "yes".into());
    let err = load_err(&d);
    assert!(err.contains("config.json") && err.contains("field `attention_bias`"), "{err}");

    let d = copy_tiny("gpt_neox", "optresidual");
    edit_config(&d, |v| v["use_parallel_residual"] = 3.into());
    let err = load_err(&d);
    assert!(err.contains("field `use_parallel_residual`"), "{err}");

    let d = copy_tiny("gemma2", "optcap");
    edit_config(&d, |v| v["final_logit_softcapping"] = (-30.0).into());
    let err = load_err(&d);
    assert!(err.contains("`final_logit_softcapping` = -30 must be positive"), "{err}");

    let d = copy_tiny("gemma3", "optscalar");
    edit_config(&d, |v| v["query_pre_attn_scalar"] = 0.into());
    let err = load_err(&d);
    assert!(err.contains("`query_pre_attn_scalar` = 0 must be positive"), "{err}");
}

#[test]
fn a_familys_own_options_change_what_it_reads_and_computes() {
    // An option turned on asks for the tensors it implies: Llama's attention biases.
    let d = copy_tiny("llama", "optbias");
    edit_config(&d, |v| v["attention_bias"] = true.into());
    let err = load_err(&d);
    assert!(err.contains("model.layers.0.self_attn.q_proj.bias"), "{err}");

    // `null` is absent (HF writes it so): GPT-NeoX's defaults (biases, parallel residual) hold
    // and the model computes what the fixture computes; each option turned off changes it.
    let base = logits_of(&copy_tiny("gpt_neox", "optbase"));
    let d = copy_tiny("gpt_neox", "optnull");
    edit_config(&d, |v| {
        v["attention_bias"] = serde_json::Value::Null;
        v["use_parallel_residual"] = serde_json::Value::Null;
    });
    assert_eq!(logits_of(&d), base);
    let d = copy_tiny("gpt_neox", "optserial");
    edit_config(&d, |v| v["use_parallel_residual"] = false.into());
    let serial = logits_of(&d);
    let moved = serial.iter().zip(&base).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(moved > 1e-3, "a serial residual moved the logits by only {moved}");
    // Without attention biases the model reads none: a checkpoint lacking them loads (the
    // fixture's are zero, as HF initialises them, so the logits stay), and is refused with them on.
    let drop_attention_biases = |w: &mut std::collections::BTreeMap<String, HostTensor>| {
        w.retain(|name, _| !(name.contains(".attention.") && name.ends_with(".bias")));
    };
    let d = copy_tiny("gpt_neox", "optnobias");
    edit_weights(&d, drop_attention_biases);
    edit_config(&d, |v| v["attention_bias"] = false.into());
    assert_eq!(logits_of(&d), base);
    let d = copy_tiny("gpt_neox", "optneedsbias");
    edit_weights(&d, drop_attention_biases);
    let err = load_err(&d);
    assert!(err.contains("attention.query_key_value.bias"), "{err}");

    // Gemma's soft-cap and query scale are the model's own, not the shared config's.
    let d = copy_tiny("gemma2", "optscales");
    let model = Model::load(&d, Backend::Flex.device().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    let scales = model.score_scales();
    assert_eq!((scales.query_scalar, scales.final_logit_softcap), (Some(16.0), Some(30.0)));
    let d = copy_tiny("gemma2", "optnocap");
    edit_config(&d, |v| v["final_logit_softcapping"] = serde_json::Value::Null);
    let model = Model::load(&d, Backend::Flex.device().unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&d);
    assert_eq!(model.score_scales().final_logit_softcap, None);
}
