//! `--export hf|gguf|both` and `--gguf-type` (issue 30): a GGUF export of an HF model, or an
//! unknown type, is refused with exit 2 before anything is written; on the default model (a
//! Q4_1 GGUF), `apply` writes a GGUF whose predictions match the HF export of the same edits;
//! model cards beside an `adapt` GGUF and in `apply`'s folders.

mod common;

use std::path::PathBuf;

use common::*;

#[test]
fn refused_exports_write_nothing() {
    // GPT-2 has no GGUF form here: its GGUF export from an HF folder is refused.
    let tokenizer = laser_model::Tokenizer::bytes_only().unwrap();
    let m = tiny_family_model("gpt2", tokenizer, "export-refused");
    let task = tiny_task("export-refused");
    let dir = tmp("export-refused");
    std::fs::create_dir_all(&dir).unwrap();
    let edits = dir.join("edits.json");
    std::fs::write(
        &edits,
        r#"{"edits": [{"name": "transformer.h.1.mlp.c_proj.weight", "rho": 0.1}]}"#,
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
    refused(&[&apply[..], &["--export", "gguf"]].concat(), "llama-layout");
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
        "llama-layout",
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
    // The HF folder's card says what was done, and that no evidence came with an edit list.
    let card = std::fs::read_to_string(hf.join("README.md")).unwrap();
    assert!(card.starts_with("---\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n"), "{card}");
    assert!(card.contains(", edited with laser-rs"), "{card}");
    assert!(card.contains("| `model.layers.25.mlp.down_proj.weight` | 0.05 | svd |"), "{card}");
    assert!(card.contains("None recorded: the edits came from a list"), "{card}");
    assert!(card.contains("## Reproduce\n\n```\nlaser apply --edits "), "{card}");
    let b = apply(&both, "both");
    assert!(both.join("config.json").is_file() && both.join("model.gguf").is_file());
    assert!(both.join("README.md").is_file());
    // A GGUF alone is the user's one file: nothing is written beside it.
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["both", "edits.json", "hf", "m.gguf"]);
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

/// `adapt --export gguf` writes `model.gguf` and, beside it, a model card tagged `gguf` that
/// lists each edited tensor's written type and error; a later run that writes no GGUF removes
/// both. Runs on the micro Llama GGUF of the fuzz seeds (8 tokens), so it needs no download.
#[test]
fn adapt_writes_a_model_card_beside_its_gguf() {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fuzz/gguf/micro_llama.gguf");
    let dir = tmp("gguf-card");
    std::fs::create_dir_all(&dir).unwrap();
    let task = dir.join("task.jsonl");
    let items: String = (0..24)
        .map(|i| {
            let prompt = ["a b", "b a", "a a b", "b b"][i % 4];
            format!(
                "{{\"prompt\": \"{prompt}\", \"choices\": [\"1\", \"2\"], \"answer\": {}}}\n",
                i % 2
            )
        })
        .collect();
    std::fs::write(&task, items).unwrap();
    let out = dir.join("out");
    let adapt = |export: &str| {
        json_of(&laser(&[
            "adapt",
            "--model",
            s(&model),
            "--task",
            s(&task),
            "--n",
            "12",
            "--top-k",
            "2",
            "--rho",
            "0.25",
            "--select",
            "laser",
            "--export",
            export,
            "--out",
            s(&out),
            "--json",
        ]))
    };
    let v = adapt("gguf");
    let edited = v["gguf"]["edited"].as_array().unwrap();
    assert!(!edited.is_empty(), "the laser rule always edits: {v}");
    assert_eq!(v["output"], s(&out.join("model.gguf")));
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.contains("\n- gguf\n"), "{card}");
    assert!(card.contains(", adapted with laser-rs"), "{card}");
    assert!(card.contains("Chosen by the rule `laser`"), "{card}");
    assert!(card.contains("| tensor | source type | written type | relative error |"), "{card}");
    for t in edited {
        let row = format!(
            "| `{}` | {} | F16 |",
            t["gguf_name"].as_str().unwrap(),
            t["source_type"].as_str().unwrap()
        );
        assert!(card.contains(&row), "{row} in {card}");
    }
    assert!(card.contains("--export gguf"), "{card}");
    adapt("hf");
    assert!(out.join("model/README.md").is_file());
    assert!(
        !out.join("model.gguf").exists() && !out.join("README.md").exists(),
        "stale GGUF and card removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HF source (the tiny Llama with a byte-level tokenizer) written as GGUF by `apply`: the
/// edited matrix F16, the rest the source's F32; it predicts as the HF export of the same edit.
#[test]
fn apply_writes_a_gguf_from_an_hf_folder() {
    let m = tiny_model("export-from-hf");
    let dir = tmp("export-from-hf");
    std::fs::create_dir_all(&dir).unwrap();
    let edits = dir.join("edits.json");
    std::fs::write(
        &edits,
        r#"{"edits": [{"name": "model.layers.0.self_attn.q_proj.weight", "rho": 0.25}]}"#,
    )
    .unwrap();
    let (gguf, hf) = (dir.join("m.gguf"), dir.join("hf"));
    let apply = |out: &PathBuf, export: &str| {
        let args = ["apply", "--model", s(&m), "--edits", s(&edits), "--out", s(out)];
        json_of(&laser(&[&args[..], &["--export", export, "--json"]].concat()))
    };
    let v = apply(&gguf, "gguf");
    let t = &v["gguf"]["edited"][0];
    assert_eq!(t["gguf_name"], "blk.0.attn_q.weight");
    assert_eq!((t["source_type"].as_str(), t["written_type"].as_str()), (Some("F32"), Some("F16")));
    apply(&hf, "hf");
    let predict = |model: &PathBuf| {
        json_of(&laser(&["predict", "--model", s(model), "--text", "abc ab", "--json"]))
    };
    let (a, h) = (predict(&gguf), predict(&hf));
    let ids = |v: &serde_json::Value| {
        v["top"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&h));
    let gap = (a["mean_nll"].as_f64().unwrap() - h["mean_nll"].as_f64().unwrap()).abs();
    assert!(gap < 1e-3, "mean NLL {} vs {}", a["mean_nll"], h["mean_nll"]);
    let _ = std::fs::remove_dir_all(&dir);
}
