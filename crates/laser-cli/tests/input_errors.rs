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

/// Every file under `dir` (hidden ones and locks included) with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                out.push((rel + "/", Vec::new()));
                walk(root, &path, out);
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Issue 31: a sharded search or a suite with a setting it refuses (layers the model lacks, more
/// selection items than the task has) exits 2 before it writes anything: no shard record, no
/// lock, no folder — into a fresh folder and into one that already holds files.
#[test]
fn refused_settings_leave_the_output_folder_as_it_was() {
    let m = tiny_model("refused-settings");
    let task = tiny_task("refused-settings");
    let existing = tmp("refused-existing");
    std::fs::create_dir_all(existing.join("notes")).unwrap();
    std::fs::write(existing.join("notes/keep.txt"), "mine").unwrap();
    let before = tree(&existing);
    let cases: [(&[&str], &str); 2] =
        [(&["--layers", "0-5", "--n", "10"], "layers"), (&["--n", "999"], "exceeds")];
    for (bad, needle) in cases {
        for out in [tmp("refused-fresh"), existing.clone()] {
            let o = s(&out);
            let shard = [
                "search",
                "--model",
                s(&m),
                "--task",
                s(&task),
                "--out",
                o,
                "--shard",
                "1/2",
                "--strategy",
                "exhaustive",
            ];
            let suite =
                ["suite", "--model", s(&m), "--tasks", s(&task), "--out", o, "--top-k", "2"];
            for command in [&shard[..], &suite[..]] {
                let args: Vec<&str> = command.iter().chain(bad).copied().collect();
                let run = laser(&args);
                let err = String::from_utf8_lossy(&run.stderr);
                assert_eq!(run.status.code(), Some(2), "{args:?}: {err}");
                assert!(err.contains(needle), "{args:?}: {err}");
                if out == existing {
                    assert_eq!(tree(&out), before, "{args:?} changed the existing folder");
                } else {
                    assert!(!out.exists(), "{args:?} created {}", out.display());
                }
            }
        }
    }
    std::fs::remove_dir_all(&existing).unwrap();
}
