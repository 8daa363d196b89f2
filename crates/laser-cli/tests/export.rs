//! `--export hf|gguf|both` and `--gguf-type` (issue 30): a GGUF export of an HF model, or an
//! unknown type, is refused with exit 2 before anything is written; on the default model (a
//! Q4_1 GGUF), `apply` writes a GGUF whose predictions match the HF export of the same edits.

mod common;

use std::path::PathBuf;

use common::*;

#[test]
fn refused_exports_write_nothing() {
    let m = tiny_model("export-refused");
    let task = tiny_task("export-refused");
    let dir = tmp("export-refused");
    std::fs::create_dir_all(&dir).unwrap();
    let edits = dir.join("edits.json");
    std::fs::write(
        &edits,
        r#"{"edits": [{"name": "model.layers.1.mlp.down_proj.weight", "rho": 0.1}]}"#,
    )
    .unwrap();
    let gguf = dir.join("out.gguf");
    let refused = |args: &[&str], needle: &str| {
        let out = laser(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
    };
    let apply = ["apply", "--model", s(&m), "--edits", s(&edits), "--out", s(&gguf)];
    refused(&[&apply[..], &["--export", "gguf"]].concat(), "HF folder");
    refused(&[&apply[..], &["--export", "gguf", "--gguf-type", "fp8"]].concat(), "--gguf-type");
    refused(&[&apply[..], &["--export", "onnx"]].concat(), "--export");
    assert!(!gguf.exists());
    let out = dir.join("adapt");
    refused(
        &[
            "adapt",
            "--model",
            s(&m),
            "--task",
            s(&task),
            "--n",
            "10",
            "--out",
            s(&out),
            "--export",
            "both",
        ],
        "HF folder",
    );
    assert!(!out.exists(), "the search did not start: no log, no folder");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The default model, one edit applied twice — as an HF folder (f32) and as GGUF (the edited
/// matrix F16, the rest the source's bytes): both predict the same next tokens.
#[test]
fn apply_writes_a_gguf_that_predicts_like_the_hf_export() {
    let run = laser_with_default_model;
    let probe = run(&["inspect", "--json"]);
    if !probe.status.success() {
        skip_note(format!(
            "skipped apply_writes_a_gguf_that_predicts_like_the_hf_export: the default model is not cached and could not be fetched: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
        return;
    }
    let dir = tmp("export-gguf");
    std::fs::create_dir_all(&dir).unwrap();
    let edits = dir.join("edits.json");
    std::fs::write(
        &edits,
        r#"{"edits": [{"name": "model.layers.25.mlp.down_proj.weight", "rho": 0.05}]}"#,
    )
    .unwrap();
    let (gguf, hf, both) = (dir.join("m.gguf"), dir.join("hf"), dir.join("both"));
    let apply = |out: &PathBuf, export: &str| {
        json_of(&run(&[
            "apply",
            "--edits",
            s(&edits),
            "--out",
            s(out),
            "--export",
            export,
            "--json",
        ]))
    };
    let v = apply(&gguf, "gguf");
    assert_eq!(v["output"], s(&gguf));
    let t = &v["gguf"]["edited"][0];
    assert_eq!(t["gguf_name"], "blk.25.ffn_down.weight");
    assert_eq!(
        (t["source_type"].as_str(), t["written_type"].as_str()),
        (Some("Q4_1"), Some("F16"))
    );
    assert!(
        v["gguf"]["bytes"].as_u64().unwrap()
            < v["gguf"]["source_bytes"].as_u64().unwrap() + (4 << 20)
    );
    apply(&hf, "hf");
    let b = apply(&both, "both");
    assert!(both.join("config.json").is_file() && both.join("model.gguf").is_file());
    assert_eq!(b["gguf"]["path"], s(&both.join("model.gguf")));
    let predict = |model: &PathBuf| {
        json_of(&run(&[
            "predict",
            "--model",
            s(model),
            "--text",
            "The capital of France is",
            "--json",
        ]))
    };
    let (a, h) = (predict(&gguf), predict(&hf));
    let ids = |v: &serde_json::Value| {
        v["top"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&h));
    let gap = (a["mean_nll"].as_f64().unwrap() - h["mean_nll"].as_f64().unwrap()).abs();
    assert!(gap < 1e-2, "mean NLL {} vs {}", a["mean_nll"], h["mean_nll"]);
    // An existing file is not overwritten.
    let again = run(&["apply", "--edits", s(&edits), "--out", s(&gguf), "--export", "gguf"]);
    assert_eq!(again.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
