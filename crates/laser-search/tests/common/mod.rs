//! Shared helpers: the shared data folder, tiny models with a byte tokenizer, synthetic tasks.
#![allow(dead_code)]

use std::path::PathBuf;

use laser_model::{Backend, Model, Tokenizer};

/// `../shared/data` beside the repository (override with `LASER_SHARED`).
pub fn shared_data() -> PathBuf {
    match std::env::var_os("LASER_SHARED") {
        Some(p) => PathBuf::from(p).join("data"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
    }
}

/// [`shared_data`] when it is there; otherwise prints why the calling test is skipped (a fresh
/// clone without the evaluation data beside it still passes its tests).
pub fn shared_data_or_skip(test: &str) -> Option<PathBuf> {
    let dir = shared_data();
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_note(format!(
            "skipped {test}: needs the evaluation data at {} (or LASER_SHARED)",
            dir.display()
        ));
        None
    }
}

/// A tiny fixture model with a one-token-per-byte tokenizer.
pub fn tiny(family: &str) -> Model {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny").join(family);
    let mut m = Model::load(&dir, Backend::Flex.device().unwrap()).unwrap();
    m.set_tokenizer(Tokenizer::bytes_only().unwrap()).unwrap();
    m
}

/// Writes `lines` as a JSONL task file and returns its path.
pub fn write_jsonl(tag: &str, lines: &[serde_json::Value]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("laser-search-{tag}-{}.jsonl", std::process::id()));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, text).unwrap();
    p
}

pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("laser-search-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Deterministic pseudo-random lowercase words.
pub fn words(seed: u64, n: usize) -> String {
    let mut rng = laser_linalg::rng::SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            (0..3 + rng.below(4)).map(|_| (b'a' + rng.below(26) as u8) as char).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The tiny RoBERTa with a byte tokenizer plus RoBERTa's special tokens (`<s>` 256, `<pad>` 257,
/// `</s>` 258, `<mask>` 259), as a real RoBERTa tokenizer would provide them.
pub fn tiny_roberta() -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny/roberta");
    let mut m = Model::load(&dir, Backend::Flex.device().unwrap()).unwrap();
    let tok = Tokenizer::bytes_only()
        .unwrap()
        .with_special_tokens(&["<s>", "<pad>", "</s>", "<mask>"])
        .unwrap();
    m.set_tokenizer(tok).unwrap();
    m
}

/// Tells why a test is skipped, on the real stderr: the test harness captures `eprintln!` of
/// passing tests, and a skip must be seen.
fn skip_note(msg: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The matrix whose edit a planted task rewards.
pub const PLANTED: &str = "model.layers.1.mlp.down_proj.weight";

/// Which of " a" / " b" the model prefers after `prompt`.
pub fn prefers_a(model: &Model, prompt: &str) -> bool {
    let tok = model.tokenizer().unwrap();
    let state = model.prefill(&tok.encode(prompt).unwrap()).unwrap();
    let conts = vec![tok.encode(" a").unwrap(), tok.encode(" b").unwrap()];
    let lp = model.continuation_log_probs(&state, &conts).unwrap();
    let sum = |v: &Vec<f32>| v.iter().sum::<f32>();
    sum(&lp[0]) > sum(&lp[1])
}

/// A two-choice task whose gold answers are what the model answers after the planted edit;
/// prompts are chosen so that about half of them disagree with the unedited model.
pub fn planted_task(model: &mut Model, items: usize) -> (std::path::PathBuf, laser_search::Edit) {
    let planted = laser_search::Edit::svd(PLANTED, 0.02);
    let prompts: Vec<String> = (0..400).map(|i| words(1000 + i, 3)).collect();
    let base: Vec<bool> = prompts.iter().map(|p| prefers_a(model, p)).collect();
    laser_search::EditEngine::new(0).apply(model, std::slice::from_ref(&planted)).unwrap();
    let edited: Vec<bool> = prompts.iter().map(|p| prefers_a(model, p)).collect();
    model.restore_all();
    let (mut differ, mut same): (Vec<usize>, Vec<usize>) =
        (0..prompts.len()).partition(|&i| base[i] != edited[i]);
    differ.truncate(items / 2);
    same.truncate(items - differ.len());
    assert!(
        differ.len() >= items / 4,
        "the planted edit must change some answers ({} do)",
        differ.len()
    );
    let lines: Vec<serde_json::Value> = differ
        .iter()
        .chain(&same)
        .map(|&i| serde_json::json!({"prompt": prompts[i], "choices": ["a", "b"], "answer": if edited[i] { 0 } else { 1 }}))
        .collect();
    (write_jsonl(&format!("planted{items}"), &lines), planted)
}
