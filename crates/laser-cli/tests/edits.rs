//! An edit rebuilds the same matrix wherever it is applied: a k-means edit chosen by `adapt` with
//! a non-zero `--seed` records its clustering's seed and iteration cap, and `apply` and
//! `eval --edits` rebuild exactly the model `adapt` exported.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// `(accuracy, logloss)` of `model` (with `edits` applied, if any) on every item of `task`.
fn eval_all(model: &Path, task: &Path, edits: Option<&Path>) -> (Value, Value) {
    let mut args = vec!["eval", "--model", s(model), "--task", s(task), "--split", "all"];
    if let Some(e) = edits {
        args.extend(["--edits", s(e)]);
    }
    args.push("--json");
    let v = json_of(&laser(&args));
    (v["accuracy"].clone(), v["logloss"].clone())
}

/// Regression: `apply` clustered with seed 0 and `eval --edits` with the split's seed, so
/// `adapt --seed 3 --factor kmeans:C` exported one model and its `edits.json` rebuilt another.
#[test]
fn a_seeded_kmeans_edit_from_adapt_rebuilds_the_same_model_in_apply_and_eval() {
    let m = tiny_model("seeded");
    let task = tiny_task("seeded");
    let out = tmp("seeded-adapt");
    let v = json_of(&laser(&[
        "adapt",
        "--model",
        s(&m),
        "--task",
        s(&task),
        "--n",
        "10",
        "--seed",
        "3",
        "--factor",
        "kmeans:4",
        "--rho",
        "0.5,0.1,0.02",
        "--top-k",
        "4",
        "--select",
        "logloss",
        "--out",
        s(&out),
        "--json",
    ]));
    let edits_path = out.join("edits.json");
    let edits: Value =
        serde_json::from_str(&std::fs::read_to_string(&edits_path).unwrap()).unwrap();
    let list = edits["edits"].as_array().unwrap();
    assert!(!list.is_empty(), "the log-loss rule recommends an edit on this task: {v}");
    assert!(list.iter().all(|e| e["seed"] == 3 && e["max_iter"] == 100), "{edits}");

    let adapted = eval_all(Path::new(v["output"].as_str().unwrap()), &task, None);
    let applied = tmp("seeded-apply");
    json_of(&laser(&[
        "apply",
        "--model",
        s(&m),
        "--edits",
        s(&edits_path),
        "--out",
        s(&applied),
        "--json",
    ]));
    assert_eq!(eval_all(&applied, &task, None), adapted, "apply rebuilt another model");
    assert_eq!(eval_all(&m, &task, Some(&edits_path)), adapted, "eval --edits differs");

    // The recorded seed is what made them agree: the same edits clustered with seed 0 differ.
    let unseeded = out.join("unseeded.json");
    let stripped: Vec<Value> = list
        .iter()
        .map(|e| serde_json::json!({"name": e["name"], "rho": e["rho"], "factor": e["factor"]}))
        .collect();
    std::fs::write(&unseeded, serde_json::json!({ "edits": stripped }).to_string()).unwrap();
    assert_ne!(eval_all(&m, &task, Some(&unseeded)).1, adapted.1, "seed 0 gives another model");
    for d in [out, applied, m, PathBuf::from(&task)] {
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_file(&d);
    }
}
