//! Fixture access shared by the model tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod gguf_writer;

use laser_model::{Backend, HostTensor, Model, TokenTarget};

/// Every tiny fixture (`tests/fixtures/tiny/<name>/`), by folder name: a family's fixture joins
/// every test that iterates them by being there (`families.rs` checks that each registered
/// family has one).
pub fn fixtures() -> impl Iterator<Item = &'static str> {
    static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let root = tiny_dir("");
        let mut names: Vec<String> = std::fs::read_dir(&root)
            .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
            .map(|e| e.unwrap())
            .filter(|e| e.path().join("config.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(names.len() >= 12, "only {} fixtures under {}", names.len(), root.display());
        names
    });
    NAMES.iter().map(String::as_str)
}

/// The fixtures of families that predict the next token.
pub fn causal_fixtures() -> impl Iterator<Item = &'static str> {
    fixtures().filter(|f| load_tiny(f).family().is_causal())
}

pub fn tiny_dir(family: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny").join(family)
}

/// The backend under test: `LASER_TEST_BACKEND=flex|ndarray|wgpu` (default flex). The tests run
/// unchanged on each backend compiled in (`--features ndarray` / `--features wgpu`).
pub fn backend() -> Backend {
    match std::env::var("LASER_TEST_BACKEND") {
        Ok(name) => Backend::from_name(&name).unwrap_or_else(|| {
            panic!("LASER_TEST_BACKEND={name:?}: expected flex, ndarray or wgpu")
        }),
        Err(_) => Backend::Flex,
    }
}

pub fn load_tiny(family: &str) -> Model {
    Model::load(tiny_dir(family), backend().device().unwrap())
        .unwrap_or_else(|e| panic!("{family}: {e}"))
}

/// The oracle: its f32 tensors, the batch of token ids, and the loss.
#[derive(Debug)]
pub struct Reference {
    pub tensors: std::collections::BTreeMap<String, HostTensor>,
    pub ids: Vec<Vec<u32>>,
    pub loss: f64,
}

pub fn reference(family: &str) -> Reference {
    let dir = tiny_dir(family);
    let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ids_view = st.tensor("input_ids").unwrap();
    let flat: Vec<u32> = ids_view
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
        .collect();
    let t = ids_view.shape()[1];
    let ids = flat.chunks(t).map(<[u32]>::to_vec).collect();
    // Everything but input_ids is f32.
    let mut tensors = std::collections::BTreeMap::new();
    for (name, view) in st.tensors() {
        if name != "input_ids" {
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            tensors.insert(name, HostTensor::new(view.shape().to_vec(), data).unwrap());
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    Reference { tensors, ids, loss: json["loss"].as_f64().unwrap() }
}

/// The oracle's loss targets: causal families score the last 2 tokens of each sequence given
/// their prefix; roberta scores the original tokens at masked positions 5 and 6, which the
/// causal fixtures' `input_ids` still hold (every family used the same random ids).
pub fn reference_targets(family: &str, ids: &[Vec<u32>]) -> Vec<TokenTarget> {
    let mut out = Vec::new();
    if family == "roberta" {
        let originals = reference("llama").ids;
        for (s, row) in originals.iter().enumerate() {
            for p in [5, 6] {
                out.push(TokenTarget { seq: s, position: p, token: row[p] });
            }
        }
    } else {
        for (s, row) in ids.iter().enumerate() {
            let t = row.len();
            for p in [t - 2, t - 1] {
                out.push(TokenTarget { seq: s, position: p - 1, token: row[p] });
            }
        }
    }
    out
}

/// The model's name for an oracle gradient name (transformers 5 calls GPT-NeoX's head `lm_head`
/// in memory but saves it as `embed_out`).
pub fn model_name(family: &str, oracle: &str) -> String {
    match (family, oracle) {
        ("gpt_neox", "lm_head.weight") => "embed_out.weight".into(),
        _ => oracle.to_owned(),
    }
}

/// The model's loss and ∂L/∂W of every matrix the oracle has are within 1e-4 (relative) of the
/// oracle's.
pub fn assert_loss_and_gradients_match_the_oracle(model: &Model, family: &str) {
    let r = reference(family);
    let targets = reference_targets(family, &r.ids);
    let oracle: Vec<String> =
        r.tensors.keys().filter_map(|k| k.strip_prefix("grad.").map(str::to_owned)).collect();
    let names: Vec<String> = oracle.iter().map(|n| model_name(family, n)).collect();
    let pass = model.loss_and_gradients(&r.ids, &targets, &names, 2).unwrap();
    assert!(
        (pass.loss - r.loss).abs() <= 1e-4 * r.loss.abs(),
        "{family}: loss {} vs {}",
        pass.loss,
        r.loss
    );
    for (o, n) in oracle.iter().zip(&names) {
        let expect = r.tensors[&format!("grad.{o}")].data();
        let got = &pass.grads[n];
        let scale = expect.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let worst = got.iter().zip(expect).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{family} {n}: max |ΔG| = {worst:e} (scale {scale:e})");
    }
}
