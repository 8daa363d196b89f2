//! A write that fails mid-way (here: past `ulimit -f`, the file-size limit, which is how a full
//! disk looks to the writer) ends the command with exit 1 naming the file and the OS error; the
//! folder's previous reports and model are intact, and the candidate log loses at most the
//! candidate being written, so the same command without the limit resumes to the same result.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// `laser ARGS` under a file-size limit of `kib` KiB.
fn laser_with_file_limit(kib: u64, args: &[String]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -f {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_laser"))
        .args(args)
        .output()
        .expect("bash runs")
}

/// Every file under `dir` (relative path → bytes), hidden ones (the lock) left out.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(root, &path, out);
            } else if !path.file_name().unwrap().to_string_lossy().starts_with(".laser.lock") {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn assert_failed_write(out: &Output, file: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a failed write exits 1: {err}");
    assert!(err.contains(file), "the error names the file ({file}): {err}");
    assert!(err.contains("File too large"), "the error gives the OS error: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_log_write_past_the_file_size_limit_loses_at_most_one_candidate() {
    let m = tiny_model("full-disk-log");
    let task = tiny_task("full-disk-log");
    let reference = tmp("full-disk-log-reference");
    let args = exhaustive_search_args(&m, &task, &reference);
    let expect = json_of(&laser(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let log_bytes = std::fs::metadata(reference.join("candidates.jsonl")).unwrap().len();
    let limit_kib = log_bytes / 2 / 1024;
    assert!(limit_kib >= 2, "the reference log ({log_bytes} bytes) is long enough to cut");

    let out = tmp("full-disk-log");
    let args = exhaustive_search_args(&m, &task, &out);
    let failed = laser_with_file_limit(limit_kib, &args);
    assert_failed_write(&failed, "candidates.jsonl");
    let text = std::fs::read(out.join("candidates.jsonl")).unwrap();
    assert!(text.len() as u64 <= limit_kib * 1024);
    let whole = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count()
        - usize::from(!text.ends_with(b"\n"));
    assert!(whole >= 2, "the log holds candidates before the limit");
    assert!(!out.join("report.json").exists(), "no report from a failed run");

    let resumed = json_of(&laser(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let logged_edits = whole as u64 - 2; // the header and the base model's line
    assert_eq!(resumed["candidates_resumed"].as_u64(), Some(logged_edits));
    assert_eq!(resumed["best"], expect["best"]);
    assert_eq!(resumed["candidates"], expect["candidates"]);
    for d in [&out, &reference] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_failed_model_export_leaves_the_previous_outputs_intact() {
    let m = tiny_model("full-disk-adapt");
    let task = tiny_task("full-disk-adapt");
    let out = tmp("full-disk-adapt");
    let args: Vec<String> = [
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
        // The rule may recommend no edit here; the base model's copy is written all the same.
        "--export-base",
        "--out",
        s(&out),
        "--json",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let first = json_of(&laser(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let before = snapshot(&out);
    assert!(before.contains_key("report.json") && before.contains_key("model/model.safetensors"));
    let weights = before["model/model.safetensors"].len() as u64;

    // The rerun resumes every candidate and fails writing the model (a quarter of its size).
    let failed = laser_with_file_limit(weights / 4 / 1024, &args);
    assert_failed_write(&failed, "model.safetensors");
    assert_eq!(snapshot(&out), before, "the previous reports and model are untouched");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && !n.starts_with(".laser.lock"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files are left behind: {leftovers:?}");

    let again = json_of(&laser(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    assert_eq!(again["best"], first["best"]);
    assert_eq!(again["test"], first["test"]);
    let _ = std::fs::remove_dir_all(&out);
}

/// Issue 31: a merge (of a sharded search, and of a sharded suite) that runs out of space while
/// writing its reports exits 1 naming the file, leaves the previous merge's reports as they were
/// and no temporary file, and the same merge then succeeds with the same reports.
#[test]
fn a_merge_that_runs_out_of_space_leaves_the_previous_reports_intact() {
    let m = tiny_model("full-disk-merge");
    let task = tiny_task("full-disk-merge");
    let search = tmp("full-disk-merge-search");
    let tasks = tmp("full-disk-merge-tasks");
    std::fs::create_dir_all(&tasks).unwrap();
    for name in ["a", "b"] {
        std::fs::copy(&task, tasks.join(format!("{name}.jsonl"))).unwrap();
    }
    let suite = tmp("full-disk-merge-suite");
    for shard in ["1/2", "2/2"] {
        let mut args = exhaustive_search_args(&m, &task, &search);
        args.extend(["--shard".into(), shard.into()]);
        assert!(laser(&args.iter().map(String::as_str).collect::<Vec<_>>()).status.success());
        let o = laser(&[
            "suite",
            "--model",
            s(&m),
            "--tasks",
            s(&tasks),
            "--n",
            "10",
            "--top-k",
            "2",
            "--out",
            s(&suite),
            "--shard",
            shard,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for (dir, file) in [(&search, "report.json"), (&suite, "suite.json")] {
        let merge: Vec<String> = vec!["merge".into(), s(dir).into()];
        let o = laser(&["merge", s(dir)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let before = snapshot(dir);
        let bytes = before[file].len() as u64;
        assert!(bytes >= 2048, "{file} ({bytes} bytes) is long enough to cut");
        let failed = laser_with_file_limit(1, &merge);
        assert_failed_write(&failed, file);
        assert_eq!(snapshot(dir), before, "{file}: the previous reports are untouched");
        let o = laser(&["merge", s(dir)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let after = snapshot(dir);
        let mut a = serde_json::from_slice::<serde_json::Value>(&after[file]).unwrap();
        let mut b = serde_json::from_slice::<serde_json::Value>(&before[file]).unwrap();
        for v in [&mut a, &mut b] {
            // Wall times differ between runs; everything else is the same merge.
            strip_seconds(v);
        }
        assert_eq!(a, b, "{file}");
    }
    for d in [&search, &suite, &tasks] {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn strip_seconds(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !k.contains("seconds") && k != "time");
            map.values_mut().for_each(strip_seconds);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_seconds),
        _ => {}
    }
}
