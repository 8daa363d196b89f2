//! Input errors are input errors: a folder where a file belongs, bytes that are not UTF-8 and
//! empty files exit 2 with the path (and, for bad bytes, the line and byte offset) on every
//! file-taking flag, never 1 or a panic.

mod common;

use std::path::Path;

use common::*;

fn assert_input_error(args: &[&str], needles: &[&str]) {
    let out = laser(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line, not a trace: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected {n:?} in {err}");
    }
}

/// Regression: a `--task` that is a folder, or a task file that is not UTF-8, exited 1.
#[test]
fn folders_bad_bytes_and_empty_files_exit_2_naming_the_path() {
    let m = tiny_model("inputs");
    let task = tiny_task("inputs");
    let dir = tmp("inputs-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let latin1 = dir.join("latin1.jsonl");
    let mut bytes = b"{\"prompt\": \"ok\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n".to_vec();
    bytes.extend(b"{\"prompt\": \"caf\xe9\", \"choices\": [\"a\", \"b\"], \"answer\": 1}\n");
    std::fs::write(&latin1, &bytes).unwrap();
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let edits_latin1 = dir.join("edits.json");
    std::fs::write(&edits_latin1, b"{\"edits\": [{\"name\": \"\xff\", \"rho\": 0.1}]}").unwrap();

    let model = s(&m).to_owned();
    let eval = |task: &str| -> Vec<String> {
        ["eval", "--model", &model, "--task", task, "--split", "all"].map(String::from).to_vec()
    };
    let run = |args: Vec<String>, needles: &[&str]| {
        assert_input_error(&args.iter().map(String::as_str).collect::<Vec<_>>(), needles)
    };
    run(eval(s(&dir)), &[s(&dir)]);
    run(eval(s(&latin1)), &[s(&latin1), ":2", "offset 68"]);
    run(eval(s(&empty)), &[s(&empty)]);
    let with_edits = |edits: &Path| {
        let mut args = eval(s(&task));
        args.extend(["--edits".to_owned(), s(edits).to_owned()]);
        args
    };
    run(with_edits(&dir), &[s(&dir)]);
    run(with_edits(&edits_latin1), &[s(&edits_latin1), "offset 21"]);
    assert_input_error(
        &["apply", "--model", s(&m), "--edits", s(&empty), "--out", s(&dir.join("o"))],
        &[s(&empty)],
    );
    assert_input_error(&["inspect", "--model", s(&latin1)], &[s(&latin1)]);
    assert_input_error(&["grad", "--model", s(&m), "--task", s(&dir)], &[s(&dir)]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 31: every command that writes (search whole and sharded, adapt, suite, grad, apply,
/// merge) given a setting it refuses — layers the model lacks, more selection items than the
/// task has, a cluster count larger than a matrix's rows, an option its strategy would ignore, a
/// ranking file that is missing or another search's, too many gradient groups, an export flag
/// for a format not written, an edit naming no matrix — exits 2 before it writes anything: no
/// shard record, no lock, no log, no folder — into a fresh folder and into one already holding
/// files, whose tree stays byte for byte the same.
#[test]
fn refused_settings_leave_the_output_folder_as_it_was() {
    let m = tiny_model("refused-settings");
    let task = tiny_task("refused-settings");
    let existing = tmp("refused-existing");
    std::fs::create_dir_all(existing.join("notes")).unwrap();
    std::fs::write(existing.join("notes/keep.txt"), "mine").unwrap();
    let before = tree(&existing);
    let other_ranking = tmp("refused-ranking.json");
    std::fs::write(&other_ranking, "{\"identity\": {}, \"ranking\": []}").unwrap();
    let unknown_edit = tmp("refused-edit.json");
    std::fs::write(
        &unknown_edit,
        r#"{"edits": [{"name": "model.layers.9.mlp.up_proj.weight", "rho": 0.5}]}"#,
    )
    .unwrap();
    let (m, task, ranking, edit) = (s(&m), s(&task), s(&other_ranking), s(&unknown_edit));
    const OUT: &str = "{out}";
    let search = |strategy: &'static str| {
        vec!["search", "--model", m, "--task", task, "--out", OUT, "--strategy", strategy]
    };
    let shard = || [search("exhaustive"), vec!["--shard", "1/2"]].concat();
    let adapt = || vec!["adapt", "--model", m, "--task", task, "--out", OUT, "--n", "10"];
    let suite = || vec!["suite", "--model", m, "--tasks", task, "--out", OUT, "--top-k", "2"];
    let grad = || vec!["grad", "--model", m, "--task", task, "--out", OUT];
    let apply = |edits| vec!["apply", "--model", m, "--edits", edits, "--out", OUT];
    let ok_edit = tmp("refused-ok-edit.json");
    std::fs::write(
        &ok_edit,
        r#"{"edits": [{"name": "model.layers.0.mlp.up_proj.weight", "rho": 0.5}]}"#,
    )
    .unwrap();
    let ok_edit = s(&ok_edit);
    let cases: Vec<(Vec<&str>, Vec<&str>, &str)> = vec![
        (search("exhaustive"), vec!["--layers", "0-5", "--n", "10"], "layers 0-1"),
        (search("exhaustive"), vec!["--n", "999"], "exceeds"),
        (search("exhaustive"), vec!["--n", "10", "--factor", "kmeans:99"], "has 32 rows"),
        (search("exhaustive"), vec!["--n", "10", "--ranking", ranking], "does nothing"),
        (search("mp"), vec!["--n", "10", "--factor", "blocks:2"], "does nothing"),
        (search("gradient"), vec!["--n", "10", "--ranking", "/nonexistent/r.json"], "/nonexistent"),
        (search("gradient"), vec!["--n", "10", "--ranking", ranking], ranking),
        (search("compose"), vec!["--n", "10", "--grad-groups", "9"], "--grad-groups 9"),
        (shard(), vec!["--layers", "0-5", "--n", "10"], "layers 0-1"),
        (shard(), vec!["--n", "999"], "exceeds"),
        (shard(), vec!["--n", "10", "--factor", "ksub:99"], "has 32 rows"),
        (adapt(), vec!["--factor", "blocks:99"], "has 32 rows"),
        (adapt(), vec!["--ranking", ranking], ranking),
        (adapt(), vec!["--grad-groups", "3"], "--grad-groups 3"),
        (adapt(), vec!["--gguf-type", "f32"], "--gguf-type"),
        (adapt(), vec!["--export", "gguf", "--export-dtype", "bf16"], "--export-dtype"),
        (suite(), vec!["--layers", "0-5", "--n", "10"], "layers 0-1"),
        (suite(), vec!["--n", "999"], "exceeds"),
        (suite(), vec!["--n", "10", "--factor", "kmeans:99"], "has 32 rows"),
        (suite(), vec!["--n", "10", "--ranking", ranking], ranking),
        (grad(), vec!["--n", "999"], "exceeds"),
        (grad(), vec!["--n", "10", "--grad-groups", "9"], "--grad-groups 9"),
        (apply(edit), vec![], "model.layers.9"),
        (apply(ok_edit), vec!["--gguf-type", "f16"], "--gguf-type"),
        (apply(ok_edit), vec!["--export", "gguf", "--export-dtype", "bf16"], "--export-dtype"),
    ];
    for (command, bad, needle) in &cases {
        for out in [tmp("refused-fresh"), existing.clone()] {
            let args: Vec<&str> = command
                .iter()
                .chain(bad.iter())
                .map(|&a| if a == OUT { s(&out) } else { a })
                .collect();
            let run = laser(&args);
            let err = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
            if out == existing {
                assert_eq!(tree(&out), before, "{args:?} changed the existing folder");
            } else {
                assert!(!out.exists(), "{args:?} created {}", out.display());
            }
        }
    }
    // A merge of a folder that holds no sharded search leaves it as it was.
    let run = laser(&["merge", s(&existing)]);
    assert_eq!(run.status.code(), Some(2), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(tree(&existing), before, "merge changed the folder");
    std::fs::remove_dir_all(&existing).unwrap();
}

/// Issue 31: a BIG-bench task with items BIG-bench cannot grade exits 2 naming the file and the
/// example (and the flag); with `--drop-ill-posed` eval and search run on the rest and report
/// how many were dropped.
#[test]
fn ill_posed_items_are_refused_or_dropped_and_reported() {
    let m = tiny_model("ill-posed");
    let task = tmp("ill-posed-task.json");
    let example = |i: usize, yes: i32, no: i32| serde_json::json!({"input": format!("item {i}?"), "target_scores": {"yes": yes, "no": no}});
    let mut examples: Vec<_> =
        (0..30).map(|i| example(i, (i % 2) as i32, 1 - (i % 2) as i32)).collect();
    examples.insert(7, example(99, 0, 0));
    examples.insert(12, example(98, 1, 1));
    std::fs::write(&task, serde_json::json!({"examples": examples}).to_string()).unwrap();
    let (m, t) = (s(&m), s(&task));
    let o = laser(&["eval", "--model", m, "--task", t, "--n", "10", "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(t) && err.contains("example 7") && err.contains("--drop-ill-posed"),
        "{err}"
    );
    let v = json_of(&laser(&[
        "eval",
        "--model",
        m,
        "--task",
        t,
        "--n",
        "10",
        "--split",
        "all",
        "--json",
        "--drop-ill-posed",
    ]));
    assert_eq!((v["n"].as_u64(), v["ill_posed"].as_u64()), (Some(30), Some(2)));
    let out = tmp("ill-posed-search");
    let v = json_of(&laser(&[
        "search",
        "--model",
        m,
        "--task",
        t,
        "--n",
        "10",
        "--strategy",
        "exhaustive",
        "--rho",
        "0.5",
        "--kinds",
        "o",
        "--drop-ill-posed",
        "--out",
        s(&out),
        "--json",
    ]));
    assert_eq!(v["ill_posed"].as_u64(), Some(2), "{v}");
    assert_eq!(report_json(&out)["ill_posed"].as_u64(), Some(2));
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_file(&task);
}
