//! The real `laser suite`: its contract keys and rows, resume after SIGKILL, a broken task file
//! named before any work, and a suite split into shards merging to the single process's rows.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// A folder of three tiny tasks as a suite.
fn suite_folder(tag: &str) -> PathBuf {
    let dir = tmp(&format!("suite-tasks-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (t, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
        let lines: String = (0..24)
            .map(|i| format!("{{\"prompt\": \"{name} {i} is\", \"choices\": [\"yes\", \"no\"], \"answer\": {}}}\n", (i + t) % 2))
            .collect();
        std::fs::write(dir.join(format!("{name}.jsonl")), lines).unwrap();
    }
    dir
}

fn suite_args<'a>(m: &'a Path, tasks: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "suite",
        "--model",
        s(m),
        "--tasks",
        s(tasks),
        "--n",
        "12",
        "--top-k",
        "2",
        "--out",
        s(out),
        "--json",
    ]
}

/// Rows without their wall times, for comparing two runs.
fn rows_without_time(v: &Value) -> Vec<Value> {
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t["seconds"] = Value::Null;
            t
        })
        .collect()
}

/// `laser suite`: the contract keys, one row per task with its interval, suite.json / suite.md
/// written; a suite killed with SIGKILL after its first task resumes to the same rows.
#[test]
fn a_suite_reports_every_task_and_resumes_after_sigkill() {
    let m = tiny_model("suite");
    let tasks = suite_folder("main");
    let reference = tmp("suite-reference");
    let v = json_of(&laser(&suite_args(&m, &tasks, &reference)));
    for k in ["tasks", "mean_delta", "harmed", "helped", "helped_balanced", "select_rule"] {
        assert!(!v[k].is_null(), "suite JSON lacks {k}");
    }
    assert!(v["helped_balanced"].as_u64() <= v["helped"].as_u64());
    assert_eq!(v["select_rule"], "choose-confirm");
    let rows = v["tasks"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        for k in ["task", "n_select", "n_test", "edits", "seconds"] {
            assert!(!r[k].is_null(), "row lacks {k}: {r}");
        }
        assert_eq!((r["n_select"].as_u64(), r["n_test"].as_u64()), (Some(12), Some(12)));
        assert!(r["base"]["test"]["accuracy"].is_f64() && r["adapted"]["test"]["logloss"].is_f64());
        // A change with its interval around it: (change, low, high).
        let interval = |d: &Value| {
            let at = |k: &str| d[k].as_f64().unwrap_or_else(|| panic!("{k} in {d}"));
            let (acc, lo, hi) = (at("accuracy"), at("ci_low"), at("ci_high"));
            assert!(lo <= acc && acc <= hi, "{d}");
            acc
        };
        let acc = interval(&r["delta"]);
        let base = r["base"]["test"]["accuracy"].as_f64().unwrap();
        let adapted = r["adapted"]["test"]["accuracy"].as_f64().unwrap();
        assert!((adapted - base - acc).abs() < 1e-9, "Δ is adapted − base");
        // Every item offers yes and no: a balanced-accuracy change with its interval.
        interval(&r["balanced_delta"]);
    }
    assert!(reference.join("suite.json").exists() && reference.join("suite.md").exists());
    let md = std::fs::read_to_string(reference.join("suite.md")).unwrap();
    assert!(md.contains("| alpha |") && md.contains("95% CI"), "{md}");
    assert!(
        md.contains("Δ balanced accuracy") && md.contains("balanced accuracy significantly up")
    );

    let out = tmp("suite-killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_laser"))
        .args(suite_args(&m, &tasks, &out))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = out.join("alpha/result.json");
    let start = std::time::Instant::now();
    while !first.exists() && start.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(first.exists(), "the first task finished before the kill");
    assert!(!out.join("suite.json").exists(), "killed before the end");
    let resumed = json_of(&laser(&suite_args(&m, &tasks, &out)));
    assert!(resumed["resumed"].as_u64().unwrap() >= 1, "{}", resumed["resumed"]);
    assert_eq!(rows_without_time(&resumed), rows_without_time(&v));
    assert_eq!(resumed["mean_delta"], v["mean_delta"]);
}

/// A broken task file in a suite folder: exit 2 naming the file before any work; with
/// `--keep-going` an error row, and the other tasks still run.
#[test]
fn a_suite_with_a_broken_task_file_names_it() {
    let m = tiny_model("suite-broken");
    let tasks = suite_folder("broken");
    let broken = tasks.join("beta.jsonl");
    std::fs::write(
        &broken,
        "{\"prompt\": \"x\", \"choices\": [\"a\", \"b\"], \"answer\": 1}\n{not json\n",
    )
    .unwrap();
    let out = tmp("suite-broken-out");
    let o = laser(&suite_args(&m, &tasks, &out));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("beta.jsonl") && err.contains(":2"), "{err}");
    assert!(!out.join("alpha").exists(), "no work before the error");
    let mut args = suite_args(&m, &tasks, &out);
    args.push("--keep-going");
    let v = json_of(&laser(&args));
    let rows = v["tasks"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[1]["error"].as_str().unwrap().contains("beta.jsonl"), "{}", rows[1]);
    assert!(rows[0]["error"].is_null() && rows[2]["error"].is_null());
    assert_eq!(v["failed"], 1);
}

/// A suite split into two shards by task (issue 14): each shard runs every other task into the
/// shared folder; the merge refuses while a task is missing, naming it and its shard, and then
/// writes the rows a single process writes.
#[test]
fn a_suite_run_as_two_shards_merges_to_the_single_process_rows() {
    let m = tiny_model("suite-shards");
    let tasks = suite_folder("shards");
    let single_out = tmp("suite-shards-single");
    let single = json_of(&laser(&suite_args(&m, &tasks, &single_out)));
    let out = tmp("suite-shards");
    let shard = |i: &str| {
        let mut args = suite_args(&m, &tasks, &out);
        args.extend(["--shard", i]);
        json_of(&laser(&args))
    };
    let first = shard("1/2");
    let names: Vec<&str> =
        first["tasks"].as_array().unwrap().iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "gamma"], "round-robin over the suite's task order");
    assert!(!out.join("suite.json").exists(), "a shard does not write the suite's report");
    let o = laser(&["merge", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("beta (shard 2)"), "{err}");
    shard("2/2");
    let merged = json_of(&laser(&["merge", s(&out), "--json"]));
    assert_eq!(rows_without_time(&merged), rows_without_time(&single));
    for key in ["mean_delta", "harmed", "helped", "failed", "select_rule"] {
        assert_eq!(merged[key], single[key], "{key}");
    }
    assert!(out.join("suite.json").is_file() && out.join("suite.md").is_file());
    let _ = std::fs::remove_dir_all(&single_out);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&tasks);
}

/// Issue 31: a suite resumed after one of its task files changed is refused before any task
/// runs, naming the file (its items are part of the identity), and leaves the folder as it was;
/// a search resumed on an edited task refuses its old log; and a second suite started on a
/// folder a suite is writing exits 2 naming the holder.
#[test]
fn a_changed_task_file_is_refused_on_resume_and_two_suites_do_not_share_a_folder() {
    let m = tiny_model("suite-changed");
    let tasks = suite_folder("changed");
    let out = tmp("suite-changed-out");
    assert!(laser(&suite_args(&m, &tasks, &out)).status.success());
    let before = tree(&out);
    let beta = tasks.join("beta.jsonl");
    // Same item count, one prompt edited: only the contents tell.
    let text = std::fs::read_to_string(&beta).unwrap().replace("beta 3 is", "beta three is");
    std::fs::write(&beta, text).unwrap();
    let o = laser(&suite_args(&m, &tasks, &out));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("beta.jsonl") && err.contains("items changed"), "{err}");
    assert_eq!(tree(&out), before, "a refused resume changed the folder");
    // The search's own log refuses the edited task as well.
    let log_dir = tmp("suite-changed-search");
    let search = |task: &Path| {
        laser(&[
            "search",
            "--model",
            s(&m),
            "--task",
            s(task),
            "--n",
            "12",
            "--strategy",
            "exhaustive",
            "--rho",
            "0.5",
            "--out",
            s(&log_dir),
        ])
    };
    let alpha = tasks.join("alpha.jsonl");
    assert!(search(&alpha).status.success());
    let text = std::fs::read_to_string(&alpha).unwrap().replace("alpha 5 is", "alpha five is");
    std::fs::write(&alpha, text).unwrap();
    let o = search(&alpha);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("holds a different search"), "{err}");

    // Two suites into one fresh folder: the second is refused while the first runs.
    let shared = tmp("suite-two");
    let mut first = Command::new(env!("CARGO_BIN_EXE_laser"))
        .args(suite_args(&m, &tasks, &shared))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = shared.join(".laser.lock");
    while std::fs::read_to_string(&lock).map_or(true, |t| t.trim().is_empty()) {
        if first.try_wait().unwrap().is_some() {
            break; // finished before the second could start: nothing to race
        }
        std::thread::yield_now();
    }
    let pid = first.id().to_string();
    let stop = Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    let running = first.try_wait().unwrap().is_none() && stop.success();
    if running {
        let o = laser(&suite_args(&m, &tasks, &shared));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("PID {pid}")), "{err}");
        Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    } else {
        skip_note(
            "the first suite ended before a second could race it; that part was skipped".into(),
        );
    }
    assert!(first.wait().unwrap().success());
    for d in [&out, &log_dir, &shared, &tasks] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Issue 28: `--collateral` scores each recommended edit on every other task's selection items;
/// each number equals what `laser eval --split select` gives with and without the edit on that
/// task, and `mean_collateral` is the mean of the edited tasks' means.
#[test]
fn collateral_scores_each_edit_on_the_other_tasks_like_eval_does() {
    let m = tiny_model("suite-collateral");
    let tasks = suite_folder("collateral");
    let out = tmp("suite-collateral-out");
    let mut args = suite_args(&m, &tasks, &out);
    // LASER's rule edits whenever a candidate beats the base model: edits to measure.
    args.extend(["--select", "laser", "--collateral"]);
    let v = json_of(&laser(&args));
    let rows = v["tasks"].as_array().unwrap();
    let edited: Vec<&Value> =
        rows.iter().filter(|r| !r["edits"].as_array().unwrap().is_empty()).collect();
    assert!(!edited.is_empty(), "some task was edited: {v}");
    let eval = |task: &str, edits: Option<&Path>| {
        let path = tasks.join(format!("{task}.jsonl"));
        let mut a = vec![
            "eval",
            "--model",
            s(&m),
            "--task",
            s(&path),
            "--n",
            "12",
            "--split",
            "select",
            "--json",
        ];
        if let Some(e) = edits {
            a.extend(["--edits", s(e)]);
        }
        json_of(&laser(&a))["accuracy"].as_f64().unwrap()
    };
    let mut means = Vec::new();
    for row in &edited {
        let edits = out.join(format!("{}-edits.json", row["task"].as_str().unwrap()));
        std::fs::write(&edits, serde_json::json!({"edits": row["edits"]}).to_string()).unwrap();
        let c = &row["collateral"];
        let others = c["tasks"].as_array().unwrap();
        assert_eq!(others.len(), rows.len() - 1, "{c}");
        for o in others {
            let name = o["task"].as_str().unwrap();
            assert_ne!(name, row["task"].as_str().unwrap());
            assert_eq!(o["base"].as_f64().unwrap(), eval(name, None), "{o}");
            assert_eq!(o["adapted"].as_f64().unwrap(), eval(name, Some(&edits)), "{o}");
        }
        means.push(c["mean_delta"].as_f64().unwrap());
    }
    let mean = means.iter().sum::<f64>() / means.len() as f64;
    assert!((v["mean_collateral"].as_f64().unwrap() - mean).abs() < 1e-9, "{v}");
    let md = std::fs::read_to_string(out.join("suite.md")).unwrap();
    assert!(md.contains("## Collateral"), "{md}");
    // Rows without an edit carry none; a search merge refuses the flag.
    assert!(
        rows.iter()
            .filter(|r| r["edits"].as_array().unwrap().is_empty())
            .all(|r| r["collateral"].is_null())
    );
    let o = laser(&["merge", s(&out), "--collateral"]);
    assert_eq!(o.status.code(), Some(2));
    for d in [&out, &tasks] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// `--compare-rules` on a suite: each task row carries its ceiling, the best test accuracy among
/// every scanned candidate — never below the test accuracy of any rule's edit (they choose among
/// the same candidates) — and its sound ceiling (within the log-loss bound), and the suite counts
/// the tasks whose ceilings are significantly helped.
#[test]
fn a_suite_compared_across_rules_reports_each_tasks_ceiling() {
    let m = tiny_model("suite-ceiling");
    let tasks = suite_folder("ceiling");
    let out = tmp("suite-ceiling-out");
    let mut args = suite_args(&m, &tasks, &out);
    args.push("--compare-rules");
    let v = json_of(&laser(&args));
    let (mut helped, mut sound_helped) = (0, 0);
    for r in v["tasks"].as_array().unwrap() {
        let c = &r["ceiling"];
        let best = c["test"]["accuracy"].as_f64().unwrap_or_else(|| panic!("no ceiling: {r}"));
        assert_eq!(c["candidates"].as_u64(), Some(8), "2 matrices × 2 ρ × {{svd, blocks:4}}: {c}");
        let base = r["base"]["test"]["accuracy"].as_f64().unwrap();
        assert!((c["delta"]["accuracy"].as_f64().unwrap() - (best - base)).abs() < 1e-9);
        helped += usize::from(c["delta"]["ci_low"].as_f64().unwrap() > 0.0);
        // The sound ceiling: within 1.25× the base test log-loss, never above the ceiling; the
        // ceiling itself where that is within the bound.
        let bound = 1.25 * r["base"]["test"]["logloss"].as_f64().unwrap();
        let sc = &r["sound_ceiling"];
        if c["test"]["logloss"].as_f64().unwrap() <= bound {
            assert_eq!(sc, c, "{r}");
        }
        if let Some(sound) = sc["test"]["accuracy"].as_f64() {
            assert!(sound <= best && sc["test"]["logloss"].as_f64().unwrap() <= bound, "{sc}");
            sound_helped += usize::from(sc["delta"]["ci_low"].as_f64().unwrap() > 0.0);
        }
        let rules = r["rules"].as_array().unwrap();
        assert!(!rules.is_empty());
        for o in rules.iter().filter(|o| !o["edits"].as_array().unwrap().is_empty()) {
            assert!(o["test"]["accuracy"].as_f64().unwrap() <= best, "{o} above the ceiling");
        }
    }
    assert_eq!(v["ceiling_helped"].as_u64(), Some(helped as u64));
    assert_eq!(v["sound_ceiling_helped"].as_u64(), Some(sound_helped as u64));
    let md = std::fs::read_to_string(out.join("suite.md")).unwrap();
    assert!(md.contains("## Ceiling (diagnostic") && md.contains("| alpha |"), "{md}");
    assert!(md.contains("sound ceiling Δ test"), "{md}");
    // Without a comparison there is no ceiling.
    let plain = json_of(&laser(&suite_args(&m, &tasks, &tmp("suite-no-ceiling"))));
    assert!(plain["ceiling_helped"].is_null() && plain["tasks"][0]["ceiling"].is_null());
    assert!(
        plain["sound_ceiling_helped"].is_null() && plain["tasks"][0]["sound_ceiling"].is_null()
    );
}
