//! What the real-model benchmarks share: the default model (fetched by `scripts/fetch-smollm2.sh`;
//! Gemma 3 270M by `scripts/fetch-gemma3-270m.sh`)
//! on the backend named by `LASER_BACKEND` (flex by default; ndarray needs `--features ndarray`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use laser::model::{Backend, Model};

pub fn smollm2() -> PathBuf {
    fetched("fetch-smollm2.sh")
}

/// The second real model, Gemma 3 270M (`scripts/fetch-gemma3-270m.sh`).
pub fn gemma3_270m() -> PathBuf {
    fetched("fetch-gemma3-270m.sh")
}

fn fetched(script: &str) -> PathBuf {
    let out = Command::new("bash")
        .arg(format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The default model; first asks the allocator to keep freed buffers, as the `laser` command
/// does, so that the benches measure what the command runs.
pub fn load() -> Model {
    load_from(smollm2())
}

/// The model at `path`, set up as [`load`] sets up the default one.
pub fn load_from(path: PathBuf) -> Model {
    laser::model::allocator::retain_freed_memory();
    let backend = std::env::var("LASER_BACKEND")
        .ok()
        .and_then(|b| Backend::from_name(&b))
        .unwrap_or_default();
    Model::load(path, backend.device().unwrap()).unwrap()
}
