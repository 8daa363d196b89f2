//! The factorized export: each edited matrix stored as its factors (one SVD, or per row cluster
//! with its rows) loads back as the dense edited model; its parameter count is the report's
//! `k (m + n)` / `Σ_c k_c (m_c + n)`; a damaged layout is an error naming the file.

mod common;

use common::*;
use laser_model::{Backend, FACTORIZED_FILE, HfDtype, Model};
use laser_search::{Edit, EditEngine, Factor, export_factorized};

fn load(dir: &std::path::Path) -> Model {
    Model::load(dir, Backend::Flex.device().unwrap()).unwrap()
}

#[test]
fn factors_load_back_as_the_dense_edited_model() {
    let mut model = tiny("llama");
    let edits = vec![
        Edit::svd("model.layers.1.mlp.down_proj.weight", 0.1),
        Edit::new("model.layers.0.self_attn.q_proj.weight", 0.5, Factor::KMeans(3), 7),
        Edit::new("model.layers.1.mlp.up_proj.weight", 0.2, Factor::Blocks(4), 0),
    ];
    let mut engine = EditEngine::new(0);
    engine.apply(&mut model, &edits).unwrap();
    let dir = tmpdir("factorized");
    let f = export_factorized(&model, &mut engine, &edits, &dir, HfDtype::F32).unwrap();
    let sizes: usize =
        edits.iter().map(|e| engine.size(&model, e).unwrap().factorized).sum::<usize>();
    assert_eq!(f.factorized_params, sizes);
    assert_eq!(f.dense_params, 64 * 176 + 64 * 64 + 176 * 64);
    assert!(f.factorized_params < f.dense_params);

    let st = std::fs::read(dir.join("model.safetensors")).unwrap();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&st)
        .unwrap()
        .names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    for e in &edits {
        assert!(!names.contains(&e.name), "{} is stored dense", e.name);
    }
    assert_eq!(names.iter().filter(|n| n.contains(".laser_factor.")).count(), 2 * (1 + 3 + 4));
    let layout: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(FACTORIZED_FILE)).unwrap()).unwrap();
    let q = &layout["matrices"]["model.layers.0.self_attn.q_proj.weight"]["clusters"];
    let mut rows: Vec<u64> = q
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["rows"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()))
        .collect();
    rows.sort_unstable();
    assert_eq!(rows, (0..64).collect::<Vec<_>>(), "the clusters partition the rows");
    assert!(
        layout["matrices"]["model.layers.1.mlp.down_proj.weight"]["clusters"][0]["rows"].is_null()
    );

    let back = load(&dir);
    for e in &edits {
        let (a, b) = (model.matrix(&e.name).unwrap(), back.matrix(&e.name).unwrap());
        let scale = a.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5 * scale.max(1.0), "{}: {worst}", e.name);
    }
    let ids = vec![vec![3u32, 17, 250, 9, 100, 42]];
    let (x, y) = (model.all_logits(&ids).unwrap(), back.all_logits(&ids).unwrap());
    let gap = x.iter().zip(&y).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    assert!(gap < 1e-4, "max |Δlogit| {gap}");

    // A row claimed twice is refused, naming the layout file.
    let text = std::fs::read_to_string(dir.join(FACTORIZED_FILE)).unwrap();
    let mut bad: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first =
        bad["matrices"]["model.layers.0.self_attn.q_proj.weight"]["clusters"][0]["rows"][0].clone();
    bad["matrices"]["model.layers.0.self_attn.q_proj.weight"]["clusters"][1]["rows"][0] = first;
    std::fs::write(dir.join(FACTORIZED_FILE), bad.to_string()).unwrap();
    let err = Model::load(&dir, Backend::Flex.device().unwrap()).unwrap_err().to_string();
    assert!(err.contains(FACTORIZED_FILE), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
