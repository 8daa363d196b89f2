//! SIGINT and SIGTERM stop a search at the next candidate boundary: exit 130 / 143 with a line
//! saying how to resume, every finished candidate in the log, and the same command then ends
//! with the result of an uninterrupted run. The signal is sent once the log holds candidates,
//! not after a sleep.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn sigint_and_sigterm_stop_at_a_candidate_boundary_and_the_search_resumes() {
    let m = tiny_model("signals");
    let task = tiny_task("signals");
    let reference = tmp("signals-reference");
    let args = exhaustive_search_args(&m, &task, &reference);
    let expect = json_of(&laser(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let total = expect["candidates_evaluated"].as_u64().unwrap() as usize;
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let out = tmp(&format!("signals-{signal}"));
        let args = exhaustive_search_args(&m, &task, &out);
        let child = Command::new(env!("CARGO_BIN_EXE_laser"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = out.join("candidates.jsonl");
        let lines = || std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0);
        while lines() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let sent =
            Command::new("kill").args(["-s", signal, &child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let done = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(code), "SIG{signal}: {err}");
        assert!(err.contains("resume"), "SIG{signal}: {err}");
        let logged = lines();
        assert!(logged < total, "SIG{signal}: stopped before the end ({logged} of {total})");
        // Every logged line is whole (the log was synced at a boundary).
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
        let resumed = json_of(&laser(&args.iter().map(String::as_str).collect::<Vec<_>>()));
        // Every logged candidate is resumed (all lines but the header and the base model's);
        // "at least 19" held only if a candidate finished after the signal.
        assert_eq!(resumed["candidates_resumed"].as_u64(), Some(logged as u64 - 2), "SIG{signal}");
        assert_eq!(resumed["best"], expect["best"], "SIG{signal}");
        assert_eq!(resumed["candidates"], expect["candidates"], "SIG{signal}");
        let _ = std::fs::remove_dir_all(&out);
    }
    let _ = std::fs::remove_dir_all(&reference);
}
