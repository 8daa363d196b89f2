//! Standard output or error that cannot be written never makes `laser` panic. A reader that has
//! gone (`laser grad … | head -1`: a broken pipe) only silences the rest of the output — the
//! command still writes its files and exits 0 — and a full output file (`> /dev/full`) is an
//! error naming standard output, exit 1, after the files are written. A full standard error
//! drops the log lines and messages; the exit status stays the command's. Before, each was a
//! panic and exit 101.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

/// `laser grad` on the tiny model, writing its ranking into `out`, with `stdout` as its standard
/// output (text, so that it prints several lines).
fn grad_into(m: &Path, task: &Path, out: &Path, stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_laser"))
        .args(["grad", "--model", s(m), "--task", s(task), "--n", "10", "--out", s(out)])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs")
}

/// `/dev/full` (every write fails with ENOSPC) to stand in for `stream`, or `None`, said on
/// stderr, where the system has none.
fn dev_full(stream: &str) -> Option<std::fs::File> {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full");
    if full.is_err() {
        skip_note(format!("skipped: no /dev/full on this system to write {stream} into"));
    }
    full.ok()
}

fn ranking(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ranking.json")).expect("the ranking was written")
}

#[test]
fn a_reader_that_has_gone_silences_the_output_and_the_command_still_finishes() {
    let m = tiny_model("closed-pipe");
    let task = tiny_task("closed-pipe");
    let (reference, out) = (tmp("closed-pipe-reference"), tmp("closed-pipe"));
    let printed = grad_into(&m, &task, &reference, Stdio::piped());
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    assert!(printed.stdout.len() > 100, "the text output is several lines long");

    // A pipe whose read end is closed before the command starts: its first write fails with
    // EPIPE, whatever the timing.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let gone = grad_into(&m, &task, &out, Stdio::from(writer));
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(gone.status.code(), Some(0), "{err}");
    assert_eq!(ranking(&out), ranking(&reference), "the work is the same without a reader");
    for d in [&out, &reference, &m] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(task);
}

#[test]
fn a_full_standard_output_is_an_error_that_names_it() {
    let Some(full) = dev_full("standard output") else { return };
    let (m, task, out) = (tiny_model("full-stdout"), tiny_task("full-stdout"), tmp("full-stdout"));
    let failed = grad_into(&m, &task, &out, Stdio::from(full));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(failed.status.code(), Some(1), "a machine-side write failure exits 1: {err}");
    assert!(err.contains("writing to standard output"), "{err}");
    assert!(err.contains("No space left on device"), "the OS error: {err}");
    assert!(out.join("ranking.json").is_file(), "the files come before the printing");
    for d in [&out, &m] {
        let _ = std::fs::remove_dir_all(d);
    }
    let _ = std::fs::remove_file(task);
}

#[test]
fn a_full_standard_error_drops_log_lines_and_messages_but_keeps_the_exit_status() {
    let Some(full) = dev_full("standard error") else { return };
    let (m, task) = (tiny_model("full-stderr"), tiny_task("full-stderr"));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_laser"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(full.try_clone().expect("a second handle")))
            .output()
            .expect("the binary runs")
    };
    // `-vv` logs every phase and micro-batch to standard error.
    let logged = run(&["-vv", "grad", "--model", s(&m), "--task", s(&task), "--n", "10", "--json"]);
    assert_eq!(logged.status.code(), Some(0), "the log's failed writes are dropped");
    let ranking: serde_json::Value = serde_json::from_slice(&logged.stdout).expect("JSON");
    assert!(ranking["matrices"].as_array().is_some_and(|m| !m.is_empty()), "{ranking}");
    // An error's message cannot be shown; its exit status still is the command's.
    let missing = run(&["grad", "--model", s(&m), "--task", "/nonexistent/task.jsonl"]);
    assert_eq!(missing.status.code(), Some(2), "bad input: 2, not a panic's 101");
    let _ = std::fs::remove_dir_all(&m);
    let _ = std::fs::remove_file(task);
}
