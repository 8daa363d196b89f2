//! Entry points for the fuzz targets (`fuzz/`, cargo-fuzz) and the seeded-mutation tests
//! (`tests/fuzz_mutations.rs`): each takes untrusted bytes through one input path of the library.
//!
//! Each returns `Ok` when the input was accepted and `Err(message)` when it was rejected cleanly.
//! Anything else is a bug the fuzzers look for: a panic, an abort (an allocation sized by the
//! input), a hang, or a rejection whose message does not name the file it came from.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use laser_model::gguf::GgufFile;
use laser_model::{
    Backend, FactorizedLayout, HostTensor, Model, ModelConfig, WeightMap, densify_factors,
    parse_safetensors,
};
use laser_search::{CandidateLog, EditList, RankingFile, SPEC_FILE, ShardSpec, parse_task};

/// The name every input is given; a rejection must mention it.
pub const INPUT_NAME: &str = "fuzz-input";

fn named(ext: &str) -> PathBuf {
    PathBuf::from(format!("{INPUT_NAME}.{ext}"))
}

/// Turns a library error into the `Err` of a clean rejection, panicking when the message does not
/// name the input (users need to know which of their files is wrong).
fn rejected(msg: String) -> Result<(), String> {
    assert!(msg.contains(INPUT_NAME), "an error that does not name the file: {msg}");
    Err(msg)
}

/// The GGUF header: metadata and tensor table, every size checked against the input length.
pub fn gguf_header(bytes: &[u8]) -> Result<(), String> {
    match GgufFile::parse(bytes, &named("gguf")) {
        Ok(_) => Ok(()),
        Err(e) => rejected(e.to_string()),
    }
}

/// A whole GGUF model: header, dequantization, config and tokenizer from metadata, weight checks;
/// when it loads, a forward pass over three tokens.
pub fn gguf_model(bytes: &[u8]) -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "laser-fuzz-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(named("gguf"));
    let result =
        std::fs::write(&path, bytes).map_err(|e| e.to_string()).and_then(|()| load_and_run(&path));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn load_and_run(path: &Path) -> Result<(), String> {
    let device = Backend::Flex.device().map_err(|e| e.to_string())?;
    let model = match Model::load(path, device) {
        Ok(m) => m,
        Err(e) => return rejected(e.to_string()),
    };
    let vocab = model.config().vocab_size as u32;
    let ids: Vec<u32> = (0..3).map(|i| i % vocab.max(1)).collect();
    model.all_logits(&[ids]).map(|_| ()).map_err(|e| e.to_string())
}

/// A safetensors file: header JSON, offsets, dtypes, conversion to f32.
pub fn safetensors(bytes: &[u8]) -> Result<(), String> {
    match parse_safetensors(bytes, &named("safetensors")) {
        Ok(_) => Ok(()),
        Err(e) => rejected(e.to_string()),
    }
}

/// An HF `config.json`: JSON, fields, family, dimension consistency.
pub fn model_config(bytes: &[u8]) -> Result<(), String> {
    match ModelConfig::from_bytes(bytes, &named("json")) {
        Ok(_) => Ok(()),
        Err(e) => rejected(e.to_string()),
    }
}

/// A task file in any supported format (detected from the content, as `laser` does).
pub fn task(bytes: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(format!("{INPUT_NAME}: not UTF-8")); // load_task reports this as an I/O error
    };
    match parse_task(&named("json"), text) {
        Ok(_) => Ok(()),
        Err(e) => rejected(e.to_string()),
    }
}

/// An edit list (`--edits`): JSON, names, ρ, factors, clustering seeds and iteration caps.
pub fn edit_list(bytes: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(format!("{INPUT_NAME}: not UTF-8")); // EditList::load reports this with the path
    };
    match EditList::parse(text, &named("json")) {
        Ok(_) => Ok(()),
        Err(e) => rejected(e.to_string()),
    }
}

/// A factorized folder's layout (`laser_factorized.json`) over fixed factor tensors: `w`, a 4×3
/// matrix as two rank-1 clusters (rows 0, 2 and 1, 3), and `v`, a 2×2 matrix as one rank-1 SVD.
pub fn factorized_layout(bytes: &[u8]) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(format!("{INPUT_NAME}: not UTF-8")); // read_to_string reports this with the path
    };
    let tensor = |shape: Vec<usize>, data: Vec<f32>| HostTensor::new(shape, data).expect("sizes");
    let mut weights = WeightMap::new();
    for c in 0..2 {
        let (left, right) = FactorizedLayout::tensor_names("w", c);
        weights.insert(left, tensor(vec![2, 1], vec![1.0, -2.0]));
        weights.insert(right, tensor(vec![1, 3], vec![0.5, 0.25, -1.0]));
    }
    let (left, right) = FactorizedLayout::tensor_names("v", 0);
    weights.insert(left, tensor(vec![2, 1], vec![3.0, 1.0]));
    weights.insert(right, tensor(vec![1, 2], vec![1.0, 2.0]));
    match densify_factors(text, &named("json"), &mut weights) {
        Ok(()) => Ok(()),
        Err(e) => rejected(e.to_string()),
    }
}

/// The search identity that the candidate-log seeds were written under.
pub const LOG_IDENTITY: &str = r#"{"model":"tiny","task":"fuzz","n":20}"#;

/// A search log being resumed (`candidates.jsonl` in an `--out` folder): header, candidate lines,
/// their keys and metrics, a torn last line. The folder's name carries [`INPUT_NAME`].
pub fn candidate_log(bytes: &[u8]) -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{INPUT_NAME}-log-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let identity: serde_json::Value = serde_json::from_str(LOG_IDENTITY).expect("valid JSON");
    let result = std::fs::write(dir.join("candidates.jsonl"), bytes)
        .map_err(|e| e.to_string())
        .and_then(|()| match CandidateLog::open(&dir, &identity) {
            Ok(_) => Ok(()),
            Err(e) => rejected(e.to_string()),
        });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The identity the ranking-file seeds were written under.
pub const RANKING_IDENTITY: &str = r#"{"model":"tiny","task":"fuzz","n":20}"#;

/// A gradient ranking read with `--ranking` or from a sharded search's folder (`ranking.json`).
pub fn ranking_file(bytes: &[u8]) -> Result<(), String> {
    in_temp_dir("ranking", |dir| {
        let path = dir.join(format!("{INPUT_NAME}.json"));
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        let identity: serde_json::Value = serde_json::from_str(RANKING_IDENTITY).expect("JSON");
        match RankingFile::read(&path, &identity) {
            Ok(_) => Ok(()),
            Err(e) => rejected(e.to_string()),
        }
    })
}

/// A sharded search's record (`shards.json`), read by every shard and by `laser merge`; the
/// folder's name carries [`INPUT_NAME`].
pub fn shard_spec(bytes: &[u8]) -> Result<(), String> {
    in_temp_dir("shards", |dir| {
        std::fs::write(dir.join(SPEC_FILE), bytes).map_err(|e| e.to_string())?;
        match ShardSpec::read(dir) {
            Ok(_) => Ok(()),
            Err(e) => rejected(e.to_string()),
        }
    })
}

/// Runs `f` in a fresh folder named after [`INPUT_NAME`], removed afterwards.
fn in_temp_dir(tag: &str, f: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{INPUT_NAME}-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = f(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}
