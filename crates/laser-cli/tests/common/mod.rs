//! The `laser` binary and the tiny fixtures the CLI tests run it on.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn laser(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_laser")).args(args).output().expect("the binary runs")
}

/// `laser` with the repository's `.cache` as `LASER_CACHE`, where the default model is fetched on
/// first use (as the Rust tests of the other crates keep it).
pub fn laser_with_default_model(args: &[&str]) -> Output {
    let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache");
    Command::new(env!("CARGO_BIN_EXE_laser"))
        .args(args)
        .env("LASER_CACHE", cache)
        .output()
        .expect("the binary runs")
}

pub fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON object ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

pub fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("laser-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The tiny llama fixture plus a one-token-per-byte `tokenizer.json`.
pub fn tiny_model(tag: &str) -> PathBuf {
    tiny_family_model("llama", laser_model::Tokenizer::bytes_only().unwrap(), tag)
}

/// A tiny fixture of `family` with `tokenizer` written as its `tokenizer.json`.
pub fn tiny_family_model(family: &str, tokenizer: laser_model::Tokenizer, tag: &str) -> PathBuf {
    let dir = tmp(&format!("model-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let src =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny").join(family);
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_json().unwrap()).unwrap();
    dir
}

pub fn tiny_task(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("laser-cli-task-{tag}-{}.jsonl", std::process::id()));
    let lines: String = (0..30)
        .map(|i| format!("{{\"prompt\": \"item {i} says\", \"choices\": [\"yes\", \"no\"], \"answer\": {}}}\n", i % 2))
        .collect();
    std::fs::write(&p, lines).unwrap();
    p
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Tells why a test is skipped, on the real stderr: the test harness captures `eprintln!` of
/// passing tests, and a skip must be seen.
pub fn skip_note(msg: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// `laser search` of the exhaustive grid (svd and kmeans:2) on `task`, logging into `out`: long
/// enough on the tiny model to be interrupted mid-scan.
pub fn exhaustive_search_args(m: &Path, task: &Path, out: &Path) -> Vec<String> {
    let args = [
        "search",
        "--model",
        s(m),
        "--task",
        s(task),
        "--strategy",
        "exhaustive",
        "--n",
        "20",
        "--factor",
        "svd,kmeans:2",
        "--out",
        s(out),
        "--json",
    ];
    args.iter().map(|a| a.to_string()).collect()
}

/// The `report.json` a search, adapt or merge wrote into `dir`.
pub fn report_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap()
}

/// Every file under `dir` (hidden ones and locks included) with its bytes.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
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
