//! A search split into shards (issue 14), driven through the binary: shards running at once
//! over one folder, then `laser merge`, give the single-process result; a shard killed mid-way
//! and rerun resumes its own log; each array-job engine's environment picks the right shard, and
//! a half-specified one exits 2.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use common::*;
use serde_json::Value;

const ENGINE_VARS: [&str; 8] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "JOB_COMPLETION_INDEX",
    "AWS_BATCH_JOB_ARRAY_INDEX",
    "AWS_BATCH_JOB_ARRAY_SIZE",
    "LASER_NUM_SHARDS",
    "LASER_SHARD_UNUSED",
];

/// `laser` with no engine variable inherited, and `vars` set.
fn command(args: &[String], vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_laser"));
    c.args(args);
    for v in ENGINE_VARS {
        c.env_remove(v);
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

fn run(args: &[String], vars: &[(&str, &str)]) -> Output {
    command(args, vars).output().expect("the binary runs")
}

fn spawn(args: &[String]) -> Child {
    command(args, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
}

fn with(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

/// The parts of a report that a merge must reproduce (not timings or resume counts).
fn essence(r: &Value) -> Value {
    let candidates: Vec<Value> = r["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::json!({"edits": c["edits"], "select": c["select"]}))
        .collect();
    serde_json::json!({
        "base": r["base"], "best": r["best"], "selection": r["selection"], "delta": r["delta"],
        "candidates": candidates, "candidates_evaluated": r["candidates_evaluated"],
        "ranking": r["ranking"], "gradient_loss": r["gradient_loss"],
    })
}

/// What a raced merge must reproduce of one raced process's report. Each shard races against its
/// own candidates, so which candidates are stopped, and their metrics over the items they were
/// scored on, may differ; the recommendation and every candidate both scored on every item may
/// not.
fn assert_same_raced_result(a: &Value, b: &Value, what: &str) {
    for key in ["base", "best", "delta", "ranking", "gradient_loss", "candidates_evaluated"] {
        assert_eq!(a[key], b[key], "{what}: {key}");
    }
    assert_eq!(a["selection"]["rule"], b["selection"]["rule"], "{what}");
    let (ca, cb) = (a["candidates"].as_array().unwrap(), b["candidates"].as_array().unwrap());
    assert_eq!(ca.len(), cb.len(), "{what}");
    for (x, y) in ca.iter().zip(cb) {
        assert_eq!(x["edits"], y["edits"], "{what}: the same candidates in the same order");
        if x.get("stopped_after").is_none() && y.get("stopped_after").is_none() {
            assert_eq!(x["select"], y["select"], "{what}: {}", x["edits"]);
        }
    }
}

fn gradient_args(m: &Path, task: &Path, out: &Path) -> Vec<String> {
    [
        "search",
        "--model",
        s(m),
        "--task",
        s(task),
        "--strategy",
        "gradient",
        "--n",
        "20",
        "--top-k",
        "3",
        "--rhos-per-matrix",
        "all",
        "--out",
        s(out),
        "--json",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

#[test]
fn three_concurrent_shards_merge_to_the_single_process_result() {
    let m = tiny_model("shards");
    let task = tiny_task("shards");
    for (strategy, args_of, race) in [
        ("exhaustive", exhaustive_search_args as fn(&Path, &Path, &Path) -> Vec<String>, "off"),
        ("gradient", gradient_args, "off"),
        ("exhaustive", exhaustive_search_args, "exact"),
        ("gradient", gradient_args, "exact"),
    ] {
        let args_of = |out: &Path| with(args_of(&m, &task, out), &["--race", race]);
        let single = tmp(&format!("shards-single-{strategy}-{race}"));
        let o = run(&args_of(&single), &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let sharded = tmp(&format!("shards-three-{strategy}-{race}"));
        let children: Vec<Child> = (1..=3)
            .map(|i| spawn(&with(args_of(&sharded), &["--shard", &format!("{i}/3")])))
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{strategy}: {}", String::from_utf8_lossy(&o.stderr));
        }
        // Every candidate evaluated once over all shards, plus one base evaluation per shard:
        // each log holds its header, the base and its share.
        let logged: usize =
            (1..=3).map(|i| lines(&sharded.join(format!("candidates.shard-{i}-of-3.jsonl")))).sum();
        let o = run(&["merge".into(), s(&sharded).into(), "--json".into()], &[]);
        let merged = json_of(&o);
        if race == "off" {
            assert_eq!(essence(&merged), essence(&report_json(&single)), "{strategy}");
        } else {
            assert_same_raced_result(&merged, &report_json(&single), strategy);
        }
        let candidates = merged["candidates_evaluated"].as_u64().unwrap() as usize;
        assert_eq!(logged, 3 * 2 + candidates, "{strategy}");
        assert_eq!(essence(&report_json(&sharded)), essence(&merged), "report.json is the output");
        let _ = std::fs::remove_dir_all(&single);
        let _ = std::fs::remove_dir_all(&sharded);
    }
}

/// Whole lines in `path` (0 when absent).
fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.matches('\n').count()).unwrap_or(0)
}

#[test]
fn a_shard_killed_mid_way_and_rerun_merges_to_the_same_result() {
    let m = tiny_model("shard-kill");
    let task = tiny_task("shard-kill");
    let single = tmp("shard-kill-single");
    let o = run(&exhaustive_search_args(&m, &task, &single), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = tmp("shard-kill");
    let shard =
        |i: usize| with(exhaustive_search_args(&m, &task, &dir), &["--shard", &format!("{i}/2")]);
    assert!(run(&shard(1), &[]).status.success());
    // Shard 2 is killed once its log holds the header, the base and three candidates.
    let log = dir.join("candidates.shard-2-of-2.jsonl");
    let mut child = spawn(&shard(2));
    while lines(&log) < 5 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("shard 2 ended ({status}) before it could be killed");
        }
        std::thread::yield_now();
    }
    // Paused (SIGSTOP), shard 2 still holds its lock: a merge now says to wait for it.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let o = run(&["merge".into(), s(&dir).into()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("shard 2 (PID {pid}) is still running")), "{err}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let logged = lines(&log);
    // The merge of an unfinished search names what is missing, says to rerun it, and exits 2.
    let o = run(&["merge".into(), s(&dir).into()], &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("incomplete") && err.contains("(shard 2)"), "{err}");
    assert!(err.contains("run the missing shards") && !err.contains("still running"), "{err}");
    // --partial merges what is there and lists the rest.
    let partial =
        json_of(&run(&["merge".into(), s(&dir).into(), "--json".into(), "--partial".into()], &[]));
    let left_out = partial["incomplete"].as_array().unwrap().len();
    assert!(left_out > 0);
    // Rerun with the same index: it resumes its log, evaluating only what it lacked.
    let rerun = json_of(&run(&shard(2), &[]));
    let total = rerun["candidates"].as_u64().unwrap() as usize;
    assert_eq!(rerun["evaluated"].as_u64().unwrap() as usize, total - (logged - 2));
    let merged = json_of(&run(&["merge".into(), s(&dir).into(), "--json".into()], &[]));
    assert_same_raced_result(&merged, &report_json(&single), "killed and rerun shard");
    let _ = std::fs::remove_dir_all(&single);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_engine_environment_picks_its_shard_and_half_specified_ones_exit_2() {
    let m = tiny_model("shard-env");
    let task = tiny_task("shard-env");
    let dir = tmp("shard-env");
    let args = exhaustive_search_args(&m, &task, &dir);
    let shard_of = |vars: &[(&str, &str)], extra: &[&str]| -> String {
        let out = json_of(&run(&with(args.clone(), extra), vars));
        out["shard"].as_str().unwrap().to_owned()
    };
    // Slurm --array=4-6: index 5 is the second of three.
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "4"),
    ];
    assert_eq!(shard_of(&slurm, &[]), "2/3");
    assert_eq!(shard_of(&[("JOB_COMPLETION_INDEX", "0")], &["--num-shards", "3"]), "1/3");
    assert_eq!(shard_of(&[("JOB_COMPLETION_INDEX", "2"), ("LASER_NUM_SHARDS", "3")], &[]), "3/3");
    assert_eq!(
        shard_of(&[("AWS_BATCH_JOB_ARRAY_INDEX", "2"), ("AWS_BATCH_JOB_ARRAY_SIZE", "3")], &[]),
        "3/3"
    );
    // The explicit flag wins.
    assert_eq!(shard_of(&slurm, &["--shard", "1/3"]), "1/3");
    for vars in [
        vec![("SLURM_ARRAY_TASK_ID", "5")],
        vec![("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_COUNT", "3")],
        vec![("JOB_COMPLETION_INDEX", "0")],
        vec![("AWS_BATCH_JOB_ARRAY_INDEX", "0")],
        vec![("LASER_NUM_SHARDS", "3")],
    ] {
        let o = run(&args, &vars);
        assert_eq!(o.status.code(), Some(2), "{vars:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    // A shard of other options in the same folder refuses to run.
    let o = run(&with(args.clone(), &["--shard", "2/3", "--rho", "0.5"]), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("shards.json") && err.contains("another sharded search"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
