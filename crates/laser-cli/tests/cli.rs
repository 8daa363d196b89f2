//! The real `laser` binary: every subcommand's `--json` keys, exit codes on bad input, and
//! `apply` → `eval` of the saved model equals `eval --edits` on the original. Most tests use a
//! tiny llama with a byte-level tokenizer (fast); one runs the default model end to end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

#[test]
fn inspect_and_predict_print_the_contract_keys() {
    let m = tiny_model("inspect");
    let v = json_of(&laser(&["inspect", "--model", s(&m), "--json"]));
    assert_eq!(v["family"], "llama");
    assert_eq!(v["layers"], 2);
    let first = &v["matrices"][0];
    assert!(
        first["name"].is_string()
            && first["layer"].is_u64()
            && first["kind"].is_string()
            && first["shape"].is_array()
    );
    assert_eq!(v["matrices"].as_array().unwrap().len(), 14);
    let v =
        json_of(&laser(&["predict", "--model", s(&m), "--text", "hello", "--top", "3", "--json"]));
    assert_eq!(v["ids"].as_array().unwrap().len(), 5);
    assert_eq!(v["top"].as_array().unwrap().len(), 3);
    assert!(
        v["top"][0]["id"].is_u64()
            && v["top"][0]["token"].is_string()
            && v["top"][0]["logprob"].is_f64()
    );
    assert!(v["mean_nll"].is_f64());
}

#[test]
fn eval_grad_search_adapt_and_apply_round_trip() {
    let m = tiny_model("flow");
    let task = tiny_task("flow");
    let v = json_of(&laser(&["eval", "--model", s(&m), "--task", s(&task), "--n", "10", "--json"]));
    assert_eq!(v["n"], 10);
    assert!(v["accuracy"].is_f64() && v["logloss"].is_f64());
    let all = json_of(&laser(&[
        "eval",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--split",
        "all",
        "--json",
    ]));
    assert_eq!(all["n"], 30);

    let v = json_of(&laser(&["grad", "--model", s(&m), "--task", s(&task), "--n", "10", "--json"]));
    assert_eq!(v["n"], 10);
    let ms = v["matrices"].as_array().unwrap();
    assert_eq!(ms.len(), 14);
    for k in ["name", "layer", "kind", "shape", "grad_norm", "score"] {
        assert!(!ms[0][k].is_null(), "grad matrices lack {k}");
    }
    assert!(ms.windows(2).all(|w| w[0]["score"].as_f64() >= w[1]["score"].as_f64()), "best first");
    assert!(v["loss"].is_f64() && v["seconds"].is_f64());

    let out = tmp("search");
    let v = json_of(&laser(&[
        "search",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--strategy",
        "exhaustive",
        "--n",
        "10",
        "--rho",
        "0.5,0.1",
        "--layers",
        "1",
        "--kinds",
        "fc_out,o",
        "--out",
        s(&out),
        "--json",
    ]));
    assert_eq!(v["strategy"], "exhaustive");
    // 2 matrices × 2 ρ × the default factorizations, svd and blocks:4.
    assert_eq!(v["candidates_evaluated"], 8);
    for k in ["grad", "svd", "scan", "test", "total"] {
        assert!(v["seconds"][k].is_f64(), "seconds.{k}");
    }
    for part in ["base", "best"] {
        for split in ["select", "test"] {
            assert!(
                v[part][split]["accuracy"].is_f64() && v[part][split]["n"].is_u64(),
                "{part}.{split}"
            );
        }
    }
    assert!(v["best"]["edits"].is_array());
    assert!(out.join("candidates.jsonl").is_file() && out.join("report.json").is_file());

    let out = tmp("adapt");
    let v = json_of(&laser(&[
        "adapt",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--n",
        "10",
        "--rho",
        "0.5,0.1",
        "--top-k",
        "3",
        "--out",
        s(&out),
        "--json",
    ]));
    assert_eq!(v["strategy"], "gradient");
    let model_dir = PathBuf::from(v["output"].as_str().unwrap());
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(model_dir.join(f).is_file(), "{f}");
    }
    // An edit is exported to OUT/model; "no edit" names the base model itself.
    let no_edit = v["best"]["edits"].as_array().unwrap().is_empty();
    assert_eq!(v["unchanged"].as_bool().unwrap_or(false), no_edit, "{v}");
    assert_eq!(model_dir == out.join("model"), !no_edit, "{v}");
    for f in ["report.json", "report.md", "edits.json", "accuracy_vs_rho.svg", "scores_heatmap.svg"]
    {
        assert!(out.join(f).is_file(), "{f}");
    }
    // Force an edit so that apply has something to do, then compare apply+eval with eval --edits.
    let edits = out.join("forced.json");
    std::fs::write(&edits, r#"{"edits": [{"name": "model.layers.1.mlp.down_proj.weight", "rho": 0.1, "factor": "svd"}, {"name": "model.layers.0.self_attn.q_proj.weight", "rho": 0.5, "factor": "kmeans:2"}]}"#).unwrap();
    let direct = json_of(&laser(&[
        "eval",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--split",
        "all",
        "--edits",
        s(&edits),
        "--json",
    ]));
    let saved = tmp("applied");
    json_of(&laser(&[
        "apply",
        "--model",
        s(&m),
        "--edits",
        s(&edits),
        "--out",
        s(&saved),
        "--json",
    ]));
    let reloaded = json_of(&laser(&[
        "eval",
        "--model",
        s(&saved),
        "--task",
        s(&task),
        "--split",
        "all",
        "--json",
    ]));
    assert_eq!(direct["accuracy"], reloaded["accuracy"]);
    assert_eq!(direct["logloss"], reloaded["logloss"]);
    assert_ne!(direct["logloss"], all["logloss"], "the edits changed the model");
}

/// RoBERTa (LASER's mask protocol): adapt exports a model whose reloaded evaluation reproduces
/// the search's numbers, `<mask>` included in the saved tokenizer.
#[test]
fn a_masked_model_adapts_and_its_export_reproduces_the_search() {
    let tok = laser_model::Tokenizer::bytes_only()
        .unwrap()
        .with_special_tokens(&["<s>", "<pad>", "</s>", "<mask>"])
        .unwrap();
    let m = tiny_family_model("roberta", tok, "roberta");
    let task = tiny_task("roberta");
    let out = tmp("adapt-roberta");
    let v = json_of(&laser(&[
        "adapt",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--n",
        "10",
        "--rho",
        "0.1,0.02",
        "--top-k",
        "4",
        "--out",
        s(&out),
        "--json",
    ]));
    let saved = v["output"].as_str().unwrap();
    for split in ["select", "test"] {
        let again = json_of(&laser(&[
            "eval",
            "--model",
            saved,
            "--task",
            s(&task),
            "--n",
            "10",
            "--split",
            split,
            "--json",
        ]));
        let best = &v["best"][split];
        assert_eq!(again["accuracy"], best["accuracy"], "{split}");
        let (a, b) = (again["logloss"].as_f64().unwrap(), best["logloss"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-5, "{split}: {a} vs {b}");
    }
}

#[test]
fn verbose_logs_every_candidate_on_stderr_and_keeps_stdout_json() {
    let m = tiny_model("verbose");
    let task = tiny_task("verbose");
    let args = [
        "search",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--strategy",
        "gradient",
        "--n",
        "10",
        "--top-k",
        "2",
        "--rho",
        "0.5,0.1",
        "--rhos-per-matrix",
        "all",
        "--json",
    ];
    let quiet = laser(&args);
    let mut loud_args = vec!["-v"];
    loud_args.extend(args);
    let loud = laser(&loud_args);
    let (a, b) = (json_of(&quiet), json_of(&loud));
    assert_eq!(a["best"], b["best"], "logging changes no result");
    assert!(quiet.stderr.is_empty(), "no logs without -v");
    let log = String::from_utf8(loud.stderr).unwrap();
    assert!(log.contains("evaluated candidate=base"), "the base model's line:\n{log}");
    // 2 matrices × 2 ρ × {svd, blocks:4}.
    assert_eq!(log.matches("evaluated candidate=model.").count(), 8, "one per candidate:\n{log}");
    assert!(log.contains("gradient pass") && log.contains("top matrix") && log.contains("loaded"));
    for c in b["candidates"].as_array().unwrap() {
        let name = c["edits"][0]["name"].as_str().unwrap();
        assert!(log.contains(name), "{name} missing from the log");
    }
}

#[test]
fn bad_input_exits_2_with_one_readable_line() {
    let m = tiny_model("bad");
    let task = tiny_task("bad");
    let bad_edits =
        std::env::temp_dir().join(format!("laser-cli-bad-edits-{}.json", std::process::id()));
    std::fs::write(&bad_edits, r#"{"edits": [{"name": "nope.weight", "rho": 0.1}]}"#).unwrap();
    let bad_rho =
        std::env::temp_dir().join(format!("laser-cli-bad-rho-{}.json", std::process::id()));
    std::fs::write(
        &bad_rho,
        r#"{"edits": [{"name": "model.layers.0.mlp.up_proj.weight", "rho": 1.5}]}"#,
    )
    .unwrap();
    let not_json =
        std::env::temp_dir().join(format!("laser-cli-bad-task-{}.json", std::process::id()));
    std::fs::write(&not_json, "[{\"prompt\": ").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["inspect", "--model", "/nonexistent/model"], "/nonexistent/model"),
        (
            vec!["eval", "--model", s(&m), "--task", "/nonexistent/task.json"],
            "/nonexistent/task.json",
        ),
        (vec!["eval", "--model", s(&m), "--task", s(&not_json)], "line 1"),
        (vec!["eval", "--model", s(&m), "--task", s(&task), "--split", "train"], "--split"),
        (vec!["eval", "--model", s(&m), "--task", s(&task), "--n", "31"], "--n 31 exceeds"),
        (
            vec!["grad", "--model", s(&m), "--task", s(&task), "--n", "10", "--grad-groups", "0"],
            "--grad-groups 0 is not between 1 and",
        ),
        (
            vec![
                "search",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--strategy",
                "gradient",
                "--n",
                "10",
                "--grad-groups",
                "99",
            ],
            "--grad-groups 99 is not between 1 and",
        ),
        // The library names the config field; the CLI names the flag.
        (
            vec![
                "search",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--strategy",
                "exhaustive",
                "--layers",
                "50-60",
            ],
            "--layers 50-60 is outside",
        ),
        (
            vec![
                "eval",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--split",
                "all",
                "--edits",
                s(&bad_edits),
            ],
            "nope.weight",
        ),
        (
            vec![
                "eval",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--split",
                "all",
                "--edits",
                s(&bad_rho),
            ],
            "1.5",
        ),
        (vec!["search", "--model", s(&m), "--task", s(&task), "--strategy", "magic"], "--strategy"),
        (
            vec![
                "search",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--strategy",
                "gradient",
                "--rho",
                "0",
            ],
            "--rho",
        ),
        (
            vec![
                "search",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--strategy",
                "gradient",
                "--factor",
                "kmeans:0",
            ],
            "--factor",
        ),
        (
            vec![
                "search",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--strategy",
                "gradient",
                "--layers",
                "5-2",
            ],
            "--layers",
        ),
        (
            vec![
                "search",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--strategy",
                "gradient",
                "--kinds",
                "mlp",
            ],
            "--kinds",
        ),
        (vec!["predict", "--model", s(&m), "--text", "x", "--backend", "cuda"], "--backend"),
        (
            vec!["search", "--model", s(&m), "--task", s(&task), "--rhos-per-matrix", "0"],
            "--rhos-per-matrix",
        ),
        (
            vec!["search", "--model", s(&m), "--task", s(&task), "--rhos-per-matrix", "most"],
            "--rhos-per-matrix",
        ),
    ];
    for (args, needle) in cases {
        let out = laser(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    }
}

/// The default model end to end: predict reproduces the oracle's first row, and a small gradient
/// search runs. The model is fetched by the repo's script into `LASER_CACHE` (the repo's `.cache`).
#[test]
fn default_model_predicts_like_the_oracle() {
    let run = laser_with_default_model;
    let out = run(&["predict", "--text", "The capital of France is", "--json"]);
    if !out.status.success() {
        skip_note(format!(
            "skipped default_model_predicts_like_the_oracle: the default model is not cached and could not be fetched: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return;
    }
    let v = json_of(&out);
    assert_eq!(v["ids"], serde_json::json!([504, 3575, 282, 4649, 314]));
    assert_eq!(v["top"][0]["id"], 7042);
    assert!((v["top"][0]["logprob"].as_f64().unwrap() - -0.258081).abs() < 1e-3);
    assert!((v["mean_nll"].as_f64().unwrap() - 3.691631218243598).abs() < 1e-3);
    let v = json_of(&run(&["inspect", "--json"]));
    assert_eq!(v["layers"], 30);
    assert_eq!(v["matrices"].as_array().unwrap().len(), 210);
}

/// A search killed with SIGKILL mid-scan resumes to exactly the uninterrupted result.
#[test]
fn a_search_killed_mid_scan_resumes_to_the_same_result() {
    let m = tiny_model("kill");
    let task = tiny_task("kill");
    let args = |out: &Path| -> Vec<String> {
        [
            "search",
            "--model",
            s(&m),
            "--task",
            s(&task),
            "--strategy",
            "exhaustive",
            "--n",
            "20",
            "--factor",
            "svd,kmeans:2,ksub:2",
            "--out",
            s(out),
            "--json",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let reference = tmp("kill-reference");
    let expect = json_of(&laser(&args(&reference).iter().map(String::as_str).collect::<Vec<_>>()));
    let out = tmp("kill-resumed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_laser"))
        .args(args(&out))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = out.join("candidates.jsonl");
    let start = std::time::Instant::now();
    loop {
        let lines = std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0);
        if lines >= 40 || start.elapsed().as_secs() > 120 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(
        done_before < 1 + expect["candidates_evaluated"].as_u64().unwrap() as usize,
        "killed before the end"
    );
    let resumed = json_of(&laser(&args(&out).iter().map(String::as_str).collect::<Vec<_>>()));
    assert!(
        resumed["candidates_resumed"].as_u64().unwrap() >= 30,
        "{}",
        resumed["candidates_resumed"]
    );
    assert_eq!(resumed["best"], expect["best"]);
    assert_eq!(resumed["candidates"], expect["candidates"]);
}

/// "No edit" writes no copy of the unchanged base model (issue 30): the report names the base
/// model's own path and says it is unchanged; `--export-base` writes the copy, and a later run
/// without it removes that copy rather than leave a model the report does not describe.
#[test]
fn no_edit_writes_no_copy_of_the_base_model_unless_asked() {
    let m = tiny_model("no-copy");
    // Coin-flip answers: nothing passes the default rule (choose-confirm).
    let task = std::env::temp_dir().join(format!("laser-cli-noise-{}.jsonl", std::process::id()));
    let mut rng = laser_linalg::rng::SplitMix64::new(5);
    let lines: String = (0..40)
        .map(|i| {
            format!(
                "{{\"prompt\": \"case {i} is\", \"choices\": [\"yes\", \"no\"], \"answer\": {}}}\n",
                rng.below(2)
            )
        })
        .collect();
    std::fs::write(&task, lines).unwrap();
    let out = tmp("no-copy");
    let adapt = |more: &[&str]| {
        let mut args =
            vec!["adapt", "--model", s(&m), "--task", s(&task), "--n", "20", "--top-k", "2"];
        args.extend(["--rho", "0.5,0.1", "--out", s(&out), "--json"]);
        args.extend(more);
        json_of(&laser(&args))
    };
    let v = adapt(&[]);
    assert!(v["best"]["edits"].as_array().unwrap().is_empty(), "{}", v["selection"]);
    assert_eq!(v["unchanged"], true);
    assert_eq!(PathBuf::from(v["output"].as_str().unwrap()), m, "the base model's own path");
    assert!(!out.join("model").exists(), "no copy of the base model");
    let written = report_json(&out);
    assert_eq!((&written["output"], &written["unchanged"]), (&v["output"], &v["unchanged"]));
    let edits: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("edits.json")).unwrap()).unwrap();
    assert_eq!(edits["edits"], serde_json::json!([]));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("the base model is unchanged"), "{md}");

    let copied = adapt(&["--export-base"]);
    assert_eq!(PathBuf::from(copied["output"].as_str().unwrap()), out.join("model"));
    assert!(copied.get("unchanged").is_none(), "{copied}");
    // The copy carries a model card: HF front matter, what was done, and how to reproduce it.
    let card = std::fs::read_to_string(out.join("model/README.md")).unwrap();
    assert!(card.starts_with("---\ntags:\n- laser-rs\n"), "{card}");
    assert!(card.contains("None: this is the base model, unchanged."), "{card}");
    assert!(card.contains("Chosen by the rule `choose-confirm`"), "{card}");
    assert!(card.contains("## Reproduce\n\n```\nlaser adapt --model "), "{card}");
    assert!(card.contains(" --export-base"), "{card}");
    assert_eq!(copied["model_dtype"], "f32", "the tiny source is float32");
    // The copy is the base model: it scores every item as the base model does.
    let eval = |model: &Path| {
        let e = json_of(&laser(&[
            "eval",
            "--model",
            s(model),
            "--task",
            s(&task),
            "--split",
            "all",
            "--json",
        ]));
        (e["accuracy"].clone(), e["logloss"].clone())
    };
    assert_eq!(eval(&out.join("model")), eval(&m));

    adapt(&[]);
    assert!(!out.join("model").exists(), "the copy of an earlier run is removed");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&task);
}
