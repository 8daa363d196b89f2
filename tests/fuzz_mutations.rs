//! Seeded mutation fuzzing on stable Rust, part of the default test run. Every seed in
//! `tests/fixtures/fuzz/<target>/` goes through thousands of byte- and token-level mutations into
//! the entry points that the cargo-fuzz targets in `fuzz/` drive (`laser::fuzzing`). A panic, or a
//! rejection whose message does not name the file, fails the test with the seed and round, and the
//! input is kept under `target/fuzz-failures/` to become a regression file. Inputs that crashed
//! once live in `tests/fixtures/fuzz/regressions/<target>/` and are replayed first.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use laser::fuzzing;
use laser::linalg::rng::SplitMix64;

type Target = fn(&[u8]) -> Result<(), String>;

fn fixtures(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz").join(sub)
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Values that sit on the edges parsers get wrong: zero, sign bits, all-ones, JSON syntax.
const BYTES: [u8; 16] =
    [0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'-', b'"', b'{', b'}', b'[', b']', b',', b':', b'\\'];
const WORDS: [u64; 8] =
    [0, 1, 0xffff_ffff, 0x8000_0000, u64::MAX, 1 << 63, 0x7fff_ffff_ffff_ffff, 1 << 40];
const NUMBERS: [&str; 8] =
    ["-1", "0", "1e400", "99999999999999999999", "0.5", "-0", "4294967297", "null"];

/// One to four stacked mutations; positions favour the first 512 bytes, where headers live.
fn mutate(rng: &mut SplitMix64, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        let pos = |rng: &mut SplitMix64| {
            if len == 0 {
                0
            } else if rng.below(2) == 0 {
                rng.below(len.min(512))
            } else {
                rng.below(len)
            }
        };
        match rng.below(8) {
            0 if len > 0 => {
                let p = pos(rng);
                b[p] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let p = pos(rng);
                b[p] = BYTES[rng.below(BYTES.len())];
            }
            2 if len >= 8 => {
                let p = pos(rng).min(len - 8);
                let w = WORDS[rng.below(WORDS.len())].to_le_bytes();
                let n = if rng.below(2) == 0 { 4 } else { 8 };
                b[p..p + n].copy_from_slice(&w[..n]);
            }
            3 => b.truncate(pos(rng)),
            4 if len > 0 => {
                let p = pos(rng);
                let end = (p + 1 + rng.below(16)).min(len);
                b.drain(p..end);
            }
            5 if len > 0 => {
                let p = pos(rng);
                let end = (p + 1 + rng.below(64)).min(len);
                let copy = b[p..end].to_vec();
                let at = pos(rng);
                b.splice(at..at, copy);
            }
            6 => {
                let at = pos(rng);
                let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next_u64() as u8).collect();
                b.splice(at..at, junk);
            }
            _ => {
                // Replace the digits at or after a position with another number (JSON fields).
                let start = pos(rng);
                if let Some(i) = b.iter().skip(start).position(u8::is_ascii_digit) {
                    let i = start + i;
                    let end = i + b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
                    let n = NUMBERS[rng.below(NUMBERS.len())].as_bytes().to_vec();
                    b.splice(i..end, n);
                }
            }
        }
    }
    b
}

/// Whether `input` was accepted; panics (with the input kept) when the target panicked.
fn run_one(target: &str, f: Target, input: &[u8], what: &str) -> bool {
    let outcome = catch_unwind(AssertUnwindSafe(|| f(input)));
    if let Err(panic) = outcome {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let kept = dir.join(format!("{target}-{}", what.replace(['/', ' '], "_")));
        std::fs::write(&kept, input).unwrap();
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{target}: {what} panicked: {msg}; input kept at {}", kept.display());
    }
    matches!(outcome, Ok(Ok(())))
}

/// Every seed must be accepted as it is (so that mutations start from meaningful input), every
/// kept regression input must not panic, then `rounds` mutations per seed, of which some must be
/// accepted and some rejected (the mutations reach past the first check, and the checks bite).
fn fuzz(target: &str, f: Target, rounds: usize) {
    let seeds = files(&fixtures(target));
    assert!(!seeds.is_empty(), "no seeds in tests/fixtures/fuzz/{target}");
    for (name, bytes) in &seeds {
        assert_eq!(f(bytes), Ok(()), "{target}: seed {name} is rejected");
    }
    for (name, bytes) in files(&fixtures(&format!("regressions/{target}"))) {
        let _ = run_one(target, f, &bytes, &format!("regression {name}"));
    }
    // Longer or different runs: LASER_FUZZ_SCALE multiplies the rounds, LASER_FUZZ_SEED reseeds.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let rounds = rounds * env("LASER_FUZZ_SCALE").unwrap_or(1) as usize;
    let mut rng = SplitMix64::new(env("LASER_FUZZ_SEED").unwrap_or(0x1a5e_7f22));
    let mut accepted = 0;
    for (name, bytes) in &seeds {
        for round in 0..rounds {
            let input = mutate(&mut rng, bytes);
            accepted += usize::from(run_one(target, f, &input, &format!("{name} round {round}")));
        }
    }
    let total = rounds * seeds.len();
    eprintln!("{target}: {total} mutated inputs, {accepted} accepted");
    assert!(accepted > 0 && accepted < total, "{target}: {accepted} of {total} accepted");
}

#[test]
fn gguf_headers_survive_mutation() {
    fuzz("gguf", fuzzing::gguf_header, 20_000);
}

#[test]
fn gguf_models_survive_mutation() {
    fuzz("gguf", fuzzing::gguf_model, 3_000);
}

#[test]
fn safetensors_files_survive_mutation() {
    fuzz("safetensors", fuzzing::safetensors, 20_000);
}

#[test]
fn model_configs_survive_mutation() {
    fuzz("config", fuzzing::model_config, 4_000);
}

#[test]
fn task_files_survive_mutation() {
    fuzz("task", fuzzing::task, 10_000);
}

#[test]
fn edit_lists_survive_mutation() {
    fuzz("edits", fuzzing::edit_list, 10_000);
}

#[test]
fn candidate_logs_survive_mutation() {
    fuzz("log", fuzzing::candidate_log, 2_000);
}

#[test]
fn ranking_files_survive_mutation() {
    fuzz("ranking", fuzzing::ranking_file, 5_000);
}

#[test]
fn shard_specs_survive_mutation() {
    fuzz("shards", fuzzing::shard_spec, 5_000);
}

#[test]
fn factorized_layouts_survive_mutation() {
    fuzz("factorized", fuzzing::factorized_layout, 10_000);
}

/// Regression (cargo-fuzz, `gguf_model`, session 15): a 10 KB GGUF whose `llama.block_count` a
/// bit flip made 4,194,305 took 13 GB and 41 s before failing on a tensor shape; the config is
/// now refused first, naming the value.
#[test]
fn a_gguf_declaring_millions_of_blocks_is_refused_before_allocating() {
    let bytes =
        std::fs::read(fixtures("regressions/gguf").join("four_million_blocks_took_13gb.gguf"))
            .unwrap();
    let err = fuzzing::gguf_model(&bytes).expect_err("refused");
    assert!(err.contains("num_hidden_layers") && err.contains("4194305"), "{err}");
}
