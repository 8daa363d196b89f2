//! The Slurm recipe on a real Slurm (issue 31): `scripts/slurm-local.sh` starts a one-node
//! cluster on localhost (Debian's `slurm-wlm` with `munge`; `.ci/run` installs them), and
//! `deploy/slurm/laser-array.sbatch` runs as its usage says — a job array of shards and the
//! dependent merge — on the tiny model. The merged report must equal one process's:
//! with the recipe's own sizing on this small node; after a running array task is requeued
//! (`scontrol requeue`: killed, then run again, resuming its log); and after a shard is paused
//! (SIGSTOP) while a merge is submitted — the merge refuses and says the shard is still running —
//! then SIGKILLed as if its node were lost, its first merge left waiting forever by Slurm, and the
//! shard rerun through the recipe (`submit N --array=K`). Skipped, with the reason printed, where
//! Slurm cannot run (not root, not installed, daemons that do not start).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SEARCH: &str = "--strategy exhaustive --n 50 --factor svd,kmeans:2,kmeans:3 --json";
/// A generous bound on any one wait: a wedged cluster fails the test instead of hanging CI.
const PATIENCE: Duration = Duration::from_secs(300);
/// Small enough that both shards run at once on a 2-CPU node.
const SMALL_JOBS: [&str; 2] = ["--cpus-per-task=1", "--mem=1G"];

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// The local cluster, stopped at the end if this test started it.
struct Cluster {
    conf: PathBuf,
    started_here: bool,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let script = repo("scripts/slurm-local.sh");
        let running = Command::new("bash").arg(&script).arg("status").status();
        let Ok(running) = running else {
            skip_note("skipped the real-Slurm test: needs bash".into());
            return None;
        };
        let o = Command::new("bash").arg(&script).arg("start").output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        match o.status.code() {
            Some(0) => {}
            Some(3) => {
                skip_note(format!("skipped the real-Slurm test: {}", err.trim()));
                return None;
            }
            _ => panic!("slurm-local.sh start: {err}"),
        }
        let out = String::from_utf8_lossy(&o.stdout);
        let conf = out
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .unwrap_or_else(|| panic!("slurm-local.sh start printed no SLURM_CONF: {out}"));
        Some(Cluster { conf: conf.into(), started_here: !running.success() })
    }

    /// Runs a Slurm client command; it must succeed.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let o = Command::new(program).args(args).env("SLURM_CONF", &self.conf).output().unwrap();
        assert!(o.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `Field=value` of `job` (`scontrol show job -o`; an array task as `A_K`).
    fn field(&self, job: &str, field: &str) -> String {
        let line = self.run("scontrol", &["show", "job", "-o", job]);
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
            .unwrap_or_else(|| panic!("no {field} in: {line}"))
            .to_owned()
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > PATIENCE {
                let queue = self.run("squeue", &["-o", "%i %j %T %r"]);
                panic!("waited {PATIENCE:?} for {what}; queue:\n{queue}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until `job` has ended, and returns its final state.
    fn final_state(&self, job: &str) -> String {
        const ENDED: [&str; 8] = [
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "NODE_FAIL",
            "OUT_OF_MEMORY",
            "PREEMPTED",
            "DEADLINE",
        ];
        let mut state = String::new();
        self.wait_for(&format!("job {job} to end"), || {
            state = self.field(job, "JobState");
            ENDED.contains(&state.as_str())
        });
        state
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new("bash").arg(repo("scripts/slurm-local.sh")).arg("stop").status();
        }
    }
}

/// A task long enough that a shard runs for seconds on the tiny model in a debug build.
fn long_task(tag: &str) -> PathBuf {
    let p = tmp(&format!("{tag}.jsonl"));
    let lines: String = (0..80)
        .map(|i| {
            format!(
                "{{\"prompt\": \"item number {i} of the long list of items says that\", \
                 \"choices\": [\"yes\", \"no\"], \"answer\": {}}}\n",
                i % 2
            )
        })
        .collect();
    std::fs::write(&p, lines).unwrap();
    p
}

struct Recipe<'a> {
    cluster: &'a Cluster,
    model: PathBuf,
    task: PathBuf,
    out: PathBuf,
    /// Where jobs are submitted from, so where their logs go.
    cwd: PathBuf,
    /// Every job submitted, cancelled when the recipe is dropped (a no-op for ended jobs), so a
    /// failing run leaves nothing queued.
    jobs: std::cell::RefCell<Vec<String>>,
}

impl Drop for Recipe<'_> {
    fn drop(&mut self) {
        let jobs = self.jobs.borrow();
        if !jobs.is_empty() {
            let _ = Command::new("scancel")
                .args(jobs.iter())
                .env("SLURM_CONF", &self.cluster.conf)
                .output();
        }
    }
}

impl Recipe<'_> {
    fn bash(&self, args: &[&str]) -> Output {
        let mut c = Command::new("bash");
        c.arg(repo("deploy/slurm/laser-array.sbatch")).args(args).current_dir(&self.cwd);
        for v in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"] {
            c.env_remove(v);
        }
        c.env("SLURM_CONF", &self.cluster.conf)
            .env("LASER_BIN", env!("CARGO_BIN_EXE_laser"))
            .env("LASER_MODEL", &self.model)
            .env("LASER_TASK", &self.task)
            .env("LASER_OUT", &self.out)
            .env("LASER_ARGS", SEARCH)
            .output()
            .unwrap()
    }

    /// `submit shards options…`: the array job's and the merge job's ids.
    fn submit(&self, shards: usize, options: &[&str]) -> (String, String) {
        let shards = shards.to_string();
        let o = self.bash(&[&["submit", shards.as_str()][..], options].concat());
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "submit: {}", String::from_utf8_lossy(&o.stderr));
        // "shards: job A (N shards); merge: job M; results in OUT"
        let id = |after: &str| {
            let rest = &text[text.find(after).unwrap_or_else(|| panic!("{text}")) + after.len()..];
            rest.chars().take_while(char::is_ascii_digit).collect::<String>()
        };
        let ids = (id("shards: job "), id("merge: job "));
        self.jobs.borrow_mut().extend([ids.0.clone(), ids.1.clone()]);
        ids
    }

    fn merge_alone(&self, options: &[&str]) -> String {
        let o = self.bash(&[&["merge"][..], options].concat());
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "merge: {}", String::from_utf8_lossy(&o.stderr));
        let id: String =
            text["merge: job ".len()..].chars().take_while(char::is_ascii_digit).collect();
        self.jobs.borrow_mut().push(id.clone());
        id
    }

    fn shard_log_lines(&self, shard: usize, of: usize) -> usize {
        std::fs::read_to_string(self.out.join(format!("candidates.shard-{shard}-of-{of}.jsonl")))
            .map(|t| t.matches('\n').count())
            .unwrap_or(0)
    }

    fn job_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.cwd.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", self.cwd.join(name).display()))
    }
}

fn assert_same_result(merged: &Path, single: &Value, what: &str) {
    let merged = report_json(merged);
    for key in ["base", "best", "selection", "delta", "candidates_evaluated"] {
        assert_eq!(merged[key], single[key], "{what}: {key}");
    }
}

fn recipe<'a>(cluster: &'a Cluster, model: &Path, task: &Path, tag: &str) -> Recipe<'a> {
    let cwd = tmp(&format!("slurm-{tag}-jobs"));
    std::fs::create_dir_all(&cwd).unwrap();
    Recipe {
        cluster,
        model: model.to_owned(),
        task: task.to_owned(),
        out: tmp(&format!("slurm-{tag}-out")),
        cwd,
        jobs: Default::default(),
    }
}

#[test]
fn the_slurm_recipe_on_a_real_slurm_merges_to_one_process_result_also_after_faults() {
    let Some(cluster) = Cluster::start() else { return };
    let model = tiny_model("real-slurm");
    let task = long_task("real-slurm-task");
    let single_dir = tmp("real-slurm-single");
    let mut args =
        vec!["search", "--model", s(&model), "--task", s(&task), "--out", s(&single_dir)];
    args.extend(SEARCH.split(' '));
    let o = laser(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let single = report_json(&single_dir);

    // 1. As the usage says, unchanged: the recipe sizes its jobs from `sinfo` to fit this node.
    let plain = recipe(&cluster, &model, &task, "plain");
    let (array, merge) = plain.submit(2, &[]);
    assert_eq!(
        cluster.final_state(&merge),
        "COMPLETED",
        "{}",
        plain.job_log(&format!("laser-merge-{merge}.out"))
    );
    assert_same_result(&plain.out, &single, "plain");
    for task in ["1", "2"] {
        let log = plain.job_log(&format!("laser-shard-{array}_{task}.out"));
        assert!(log.contains(&format!("\"shard\": \"{task}/2\"")), "{log}");
    }

    // 2. A running array task requeued: killed, pending again, resumed from its own log; the
    // dependent merge keeps waiting for it.
    let requeued = recipe(&cluster, &model, &task, "requeue");
    let (array, merge) = requeued.submit(2, &SMALL_JOBS);
    cluster.wait_for("shard 1 to log candidates", || requeued.shard_log_lines(1, 2) >= 5);
    cluster.run("scontrol", &["requeue", &format!("{array}_1")]);
    assert_eq!(cluster.field(&format!("{array}_1"), "Restarts"), "1");
    // Slurm holds a requeued job back (about 2 min) before it may start again. That wait is
    // kept: starting it at once (`scontrol update StartTime=now`) lands, when the killed task
    // has already ended, on a node that still holds the old run's revoked credential, and Slurm
    // kills the new run at launch ("Job credential revoked"), failing the merge's dependency.
    assert_eq!(cluster.final_state(&merge), "COMPLETED");
    assert_same_result(&requeued.out, &single, "requeued");
    let rerun: Value =
        serde_json::from_str(&requeued.job_log(&format!("laser-shard-{array}_1.out"))).unwrap();
    assert!(
        rerun["evaluated"].as_u64().unwrap() < rerun["candidates"].as_u64().unwrap(),
        "the requeued shard resumed its log: {rerun}"
    );

    // 3. A shard paused mid-run while a merge is submitted, then killed as if its node were lost.
    let lost = recipe(&cluster, &model, &task, "lost");
    let (array, first_merge) = lost.submit(2, &SMALL_JOBS);
    cluster.wait_for("shard 1 to log candidates", || lost.shard_log_lines(1, 2) >= 5);
    cluster.run("scancel", &["--batch", "--signal=STOP", &format!("{array}_1")]);
    let early = lost.merge_alone(&SMALL_JOBS);
    assert_eq!(cluster.final_state(&early), "FAILED");
    let said = lost.job_log(&format!("laser-merge-{early}.out"));
    assert!(said.contains("incomplete") && said.contains("shard 1 (PID"), "{said}");
    assert!(said.contains("still running"), "{said}");
    assert!(!lost.out.join("report.json").exists(), "a refused merge writes no report");
    cluster.run("scancel", &["--batch", "--signal=KILL", &format!("{array}_1")]);
    assert_ne!(cluster.final_state(&format!("{array}_1")), "COMPLETED");
    // Slurm gives up on the first merge (its dependency failed); the user cancels it, and reruns
    // the lost shard with the recipe, which queues a fresh merge after it.
    cluster.wait_for("the first merge to be marked never runnable", || {
        cluster.field(&first_merge, "Reason") == "DependencyNeverSatisfied"
    });
    cluster.run("scancel", &[&first_merge]);
    let killed_at = lost.shard_log_lines(1, 2);
    let (rerun_array, merge) = lost.submit(2, &[&["--array=1"][..], &SMALL_JOBS].concat());
    assert_eq!(cluster.final_state(&merge), "COMPLETED");
    assert_same_result(&lost.out, &single, "lost shard rerun");
    let rerun: Value =
        serde_json::from_str(&lost.job_log(&format!("laser-shard-{rerun_array}_1.out"))).unwrap();
    assert_eq!(rerun["shard"], "1/2");
    let (evaluated, candidates) =
        (rerun["evaluated"].as_u64().unwrap(), rerun["candidates"].as_u64().unwrap());
    assert!(
        evaluated < candidates && killed_at >= 5,
        "the rerun resumed the killed shard's {killed_at}-line log: {rerun}"
    );

    for r in [&plain, &requeued, &lost] {
        let _ = std::fs::remove_dir_all(&r.out);
        let _ = std::fs::remove_dir_all(&r.cwd);
    }
    let _ = std::fs::remove_dir_all(&single_dir);
    let _ = std::fs::remove_file(&task);
}
