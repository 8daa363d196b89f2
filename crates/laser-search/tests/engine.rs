//! The evaluation engine's shortcuts change nothing but speed: one packed row per prompt gives the
//! metrics of one row per (prompt, choice), and a candidate scored from the cached inputs of its
//! layer gives the metrics of a full forward pass.

mod common;

use common::*;
use laser_search::{Edit, EditEngine, EvalLayout, Evaluator, Factor, Metrics, load_task};

fn close(a: &Metrics, b: &Metrics) {
    assert_eq!((a.n, a.accuracy), (b.n, b.accuracy));
    assert!((a.logloss - b.logloss).abs() < 1e-4 * a.logloss.abs().max(1.0), "{a:?} vs {b:?}");
}

#[test]
fn shared_prompts_and_the_layer_cache_give_full_pass_metrics() {
    let mut model = tiny("llama");
    let lines: Vec<serde_json::Value> = (0..24)
        .map(|i| {
            serde_json::json!({"prompt": words(300 + i, 4), "choices": ["a b", "c", "de f"], "answer": (i % 3)})
        })
        .collect();
    let task = load_task(&write_jsonl("engine", &lines)).unwrap();
    let packed = Evaluator::new(&model, &task.items, 512).unwrap();
    let unpacked =
        Evaluator::with_layout(&model, &task.items, 512, EvalLayout { share_prompts: false })
            .unwrap();
    let base = packed.evaluate(&model).unwrap();
    close(&base, &unpacked.evaluate(&model).unwrap());

    let edit =
        Edit { name: "model.layers.1.mlp.down_proj.weight".into(), rho: 0.1, factor: Factor::Svd };
    let mut cached = Evaluator::new(&model, &task.items, 512).unwrap();
    cached.cache_layer(&model, 1).unwrap();
    EditEngine::new(0).apply(&mut model, std::slice::from_ref(&edit)).unwrap();
    let full = packed.evaluate(&model).unwrap();
    assert_ne!(full.logloss, base.logloss, "the edit changes the model");
    close(&full, &cached.evaluate(&model).unwrap());
    close(&full, &unpacked.evaluate(&model).unwrap());
}
