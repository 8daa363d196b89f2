//! The cluster recipes (issue 14) are checked as far as this machine can without a cluster: the
//! Slurm script's syntax, its `submit` mode against a stand-in `sbatch` that records its calls,
//! and its shard and merge modes running the real binary on the tiny model under the variables a
//! Slurm array sets; the Kubernetes manifest parsed, with the shard count, the shared folder and
//! the merge's folder agreeing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn recipe(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(path)
}

fn bash_or_skip(test: &str) -> bool {
    let ok = Command::new("bash").arg("-c").arg("true").status().is_ok_and(|s| s.success());
    if !ok {
        skip_note(format!("skipped {test}: needs bash"));
    }
    ok
}

#[test]
fn the_slurm_script_submits_a_sized_array_and_a_dependent_merge_passing_options_through() {
    if !bash_or_skip(
        "the_slurm_script_submits_a_sized_array_and_a_dependent_merge_passing_options_through",
    ) {
        return;
    }
    let script = recipe("slurm/laser-array.sbatch");
    let o = Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(o.status.success(), "bash -n: {}", String::from_utf8_lossy(&o.stderr));
    // A stand-in sbatch on PATH records its arguments and answers job ids 100, 101, …; a
    // stand-in sinfo reports a default partition of 4-CPU, 8000 MB nodes and a partition `big`.
    let bin = tmp("fake-sbatch");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = bin.join("calls");
    std::fs::write(
        bin.join("sbatch"),
        format!(
            "#!/bin/bash\necho \"$*\" >> {calls}\necho $((100 + $(wc -l < {calls}) - 1))\n",
            calls = calls.display()
        ),
    )
    .unwrap();
    std::fs::write(
        bin.join("sinfo"),
        "#!/bin/bash\nif [[ \" $* \" == *\" -p big \"* ]]; then echo '16 64000'; echo '32+ 128000';\n\
         else echo 'debug* 4 8000'; echo 'big 16 64000'; fi\n",
    )
    .unwrap();
    for tool in ["sbatch", "sinfo"] {
        Command::new("chmod").arg("+x").arg(bin.join(tool)).status().unwrap();
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let run_script = |args: &[&str]| {
        let _ = std::fs::remove_file(&calls);
        Command::new("bash")
            .arg(&script)
            .args(args)
            .env("PATH", &path)
            .env("LASER_MODEL", "/m")
            .env("LASER_TASK", "/t")
            .env("LASER_OUT", "/o")
            .output()
            .unwrap()
    };
    let submit = |args: &[&str]| {
        let o = run_script(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(&calls).unwrap()
    };
    // Unchanged, on a small node: sized from sinfo (min(8, CPUs), min(16 GiB, 90% of memory)).
    let recorded = submit(&["submit", "3"]);
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.len(), 2, "{recorded}");
    assert!(lines[0].contains("--array=1-3") && lines[0].contains("LASER_SHARDS=3"), "{recorded}");
    assert!(lines[1].contains("--dependency=afterok:100"), "{recorded}");
    assert!(lines[1].contains("LASER_MERGE=1") && lines[1].contains("--job-name=laser-merge"));
    for line in &lines {
        assert!(line.contains("--cpus-per-task=4 --mem=7200M"), "{recorded}");
    }
    // Options after N pass through to both jobs, after the script's own (so they win); the
    // partition they name is the one sized, and what they set is not sized.
    let recorded = submit(&["submit", "2", "-p", "big", "--mem=2G", "--account=lab"]);
    for line in recorded.lines() {
        assert!(line.contains("--cpus-per-task=8 -p big --mem=2G --account=lab"), "{recorded}");
        assert!(!line.contains("--mem=1"), "{recorded}");
    }
    // The merge alone.
    let recorded = submit(&["merge", "--dependency=afterok:7", "-c", "2", "--mem", "1G"]);
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
    assert!(recorded.contains("LASER_MERGE=1") && recorded.contains("--dependency=afterok:7"));
    assert!(!recorded.contains("--cpus-per-task") && !recorded.contains("--mem="));
    // A shard count that is not a number exits 2 and submits nothing.
    let o = run_script(&["submit", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!calls.exists());
    let _ = std::fs::remove_dir_all(&bin);
}

/// Runs the Slurm script as Slurm would run array task `id` of `--array=min-(min+count-1)`, or
/// the merge job, with the real binary.
fn slurm_run(script: &Path, vars: &[(&str, String)]) -> std::process::Output {
    let mut c = Command::new("bash");
    c.arg(script);
    for v in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"] {
        c.env_remove(v);
    }
    c.env("LASER_BIN", env!("CARGO_BIN_EXE_laser"));
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn the_slurm_script_runs_shards_and_the_merge_like_one_search() {
    if !bash_or_skip("the_slurm_script_runs_shards_and_the_merge_like_one_search") {
        return;
    }
    let m = tiny_model("slurm");
    let task = tiny_task("slurm");
    let out = tmp("slurm-out");
    let single = tmp("slurm-single");
    let search = "--strategy exhaustive --n 20 --rho 0.5,0.1 --json";
    let o = laser(
        &[
            &["search", "--model", s(&m), "--task", s(&task), "--out", s(&single)][..],
            &search.split(' ').collect::<Vec<_>>(),
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = recipe("slurm/laser-array.sbatch");
    let common = |extra: Vec<(&'static str, String)>| {
        let mut v = vec![
            ("LASER_MODEL", s(&m).to_owned()),
            ("LASER_TASK", s(&task).to_owned()),
            ("LASER_OUT", s(&out).to_owned()),
            ("LASER_ARGS", search.to_owned()),
        ];
        v.extend(extra);
        v
    };
    // --array=7-8: indices 7 and 8 are shards 1 and 2.
    for id in ["7", "8"] {
        let o = slurm_run(
            &script,
            &common(vec![
                ("SLURM_ARRAY_TASK_ID", id.into()),
                ("SLURM_ARRAY_TASK_COUNT", "2".into()),
                ("SLURM_ARRAY_TASK_MIN", "7".into()),
            ]),
        );
        assert!(o.status.success(), "shard {id}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let o = slurm_run(&script, &common(vec![("LASER_MERGE", "1".into())]));
    assert!(o.status.success(), "merge: {}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (report_json(&single), report_json(&out));
    for key in ["base", "best", "selection", "delta", "candidates_evaluated"] {
        assert_eq!(a[key], b[key], "{key}");
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&single);
}

#[test]
fn the_kubernetes_manifest_parses_and_its_parts_agree() {
    let text = std::fs::read_to_string(recipe("k8s/laser-indexed-job.yaml")).unwrap();
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("each document parses"))
        .collect();
    assert_eq!(docs.len(), 2);
    let by_component = |c: &str| {
        docs.iter()
            .find(|d| d["metadata"]["labels"]["app.kubernetes.io/component"].as_str() == Some(c))
            .unwrap_or_else(|| panic!("no {c} document"))
            .clone()
    };
    let (shards, merge) = (by_component("shards"), by_component("merge"));
    for d in [&shards, &merge] {
        assert_eq!((d["apiVersion"].as_str(), d["kind"].as_str()), (Some("batch/v1"), Some("Job")));
    }
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let container = &spec["template"]["spec"]["containers"][0];
    let env_count = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("LASER_NUM_SHARDS"))
        .and_then(|e| e["value"].as_str())
        .expect("LASER_NUM_SHARDS is set");
    assert_eq!(spec["completions"].as_u64().map(|n| n.to_string()).as_deref(), Some(env_count));
    let args: Vec<&str> =
        container["args"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
    assert_eq!(args[0], "search");
    let out = args[args.iter().position(|&a| a == "--out").unwrap() + 1];
    let merge_args: Vec<&str> = merge["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(merge_args, ["merge", out], "the merge reads the shards' folder");
    let mount = |d: &serde_yaml::Value| {
        let pod = &d["spec"]["template"]["spec"];
        (
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"].clone(),
            pod["containers"][0]["volumeMounts"][0]["mountPath"].clone(),
        )
    };
    assert_eq!(mount(&shards), mount(&merge), "one shared volume at one path");
    assert!(out.starts_with(mount(&shards).1.as_str().unwrap()), "--out is on the shared volume");
}

#[test]
fn every_shell_script_parses() {
    if !bash_or_skip("every_shell_script_parses") {
        return;
    }
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts");
    let mut checked = 0;
    for entry in std::fs::read_dir(&scripts).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "sh") {
            let o = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                o.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} scripts found in {}", scripts.display());
}
