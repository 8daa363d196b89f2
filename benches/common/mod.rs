//! What the SmolLM2 benchmarks share: the default model (fetched by `scripts/fetch-smollm2.sh`)
//! on the backend named by `LASER_BACKEND` (flex by default; ndarray needs `--features ndarray`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use laser::model::{Backend, Model};

pub fn smollm2() -> PathBuf {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fetch-smollm2.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The default model; first asks the allocator to keep freed buffers, as the `laser` command
/// does, so that the benches measure what the command runs.
pub fn load() -> Model {
    laser::model::allocator::retain_freed_memory();
    let backend = std::env::var("LASER_BACKEND")
        .ok()
        .and_then(|b| Backend::from_name(&b))
        .unwrap_or_default();
    Model::load(smollm2(), backend.device().unwrap()).unwrap()
}
