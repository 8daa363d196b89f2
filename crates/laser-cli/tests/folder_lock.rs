//! One writer per output folder: a second `laser search` on a folder another one is writing to
//! exits 2 naming the folder and the holder's PID; once the holder is gone (here SIGKILLed, so
//! it never cleaned up) the same command resumes in that folder.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn a_second_run_on_a_busy_folder_exits_2_and_a_dead_holder_does_not_block() {
    let m = tiny_model("lock");
    let task = tiny_task("lock");
    let out = tmp("lock-out");
    let args = exhaustive_search_args(&m, &task, &out);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_laser"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = out.join("candidates.jsonl");
    while std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0) < 3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = laser(&args);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains(s(&out)) && err.contains(&format!("PID {}", holder.id())), "{err}");
    holder.kill().unwrap(); // SIGKILL: the lock file stays behind
    holder.wait().unwrap();
    assert!(out.join(".laser.lock").exists());
    // Regression: this asserted "at least 2 resumed", which held only when the holder had logged
    // a second candidate before the kill (it failed under load). Every whole line is resumed:
    // all but the header and the base model's.
    let whole_lines = std::fs::read_to_string(&log).unwrap().matches('\n').count();
    let resumed = json_of(&laser(&args));
    assert_eq!(resumed["candidates_resumed"].as_u64(), Some(whole_lines as u64 - 2), "{resumed}");
    let _ = std::fs::remove_dir_all(&out);
}
