//! What each evaluation-engine optimisation saves, on SmolLM2-135M and the bundled
//! epistemic-reasoning task (the first 20 selection items; two choices each, prompts of ~80
//! tokens):
//!
//! - `naive`: one row per (prompt, choice) and logits at every position (what a plain HF forward
//!   returns), as LASER's scripts score choices;
//! - `one_row_per_choice`: the same rows, LM head only at the scored positions;
//! - `shared_prompts`: one packed row per prompt with both choices after it (the default);
//! - `candidate_at_layer_N_*`: one candidate edit (`fc_out`, ρ = 0.1) scored with and without
//!   the cached inputs of its layer.
//!
//! `cargo bench --bench eval_engine` (results: `docs/BENCHMARKS.md`).

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use common::load;
use criterion::{Criterion, criterion_group, criterion_main};
use laser::model::Model;
use laser::search::{
    Edit, EditEngine, EvalLayout, Evaluator, Factor, Item, Split, Target, load_task,
};

const ITEMS: usize = 20;
const BATCH_TOKENS: usize = 4096;

fn items() -> Vec<Item> {
    let task = load_task(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/epistemic_reasoning_300.json"
    )))
    .unwrap();
    let split = Split::new(task.items.len(), 100, 0).unwrap();
    Split::items(&task, &split.select[..ITEMS])
}

/// Logits at every position of one row per (prompt, choice): the naive scorer.
fn naive(model: &Model, items: &[Item]) -> f64 {
    let tok = model.tokenizer().unwrap();
    let mut seqs = Vec::new();
    for item in items {
        let Target::Choice { choices, .. } = &item.target else { unreachable!("choice task") };
        let p = tok.encode(&item.prompt).unwrap();
        for c in choices {
            seqs.push(p.iter().copied().chain(tok.encode(c).unwrap()).collect::<Vec<u32>>());
        }
    }
    let mut sum = 0.0;
    for chunk in seqs.chunks(BATCH_TOKENS / 100) {
        sum += model.all_logits(chunk).unwrap().iter().take(8).map(|&x| f64::from(x)).sum::<f64>();
    }
    sum
}

fn engine(c: &mut Criterion) {
    let mut model = load();
    let items = items();
    let mut group = c.benchmark_group("eval_20_epistemic_items");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("naive", |b| b.iter(|| black_box(naive(&model, &items))));
    let unshared = EvalLayout { share_prompts: false };
    let rows = Evaluator::with_layout(&model, &items, BATCH_TOKENS, unshared).unwrap();
    group.bench_function("one_row_per_choice", |b| {
        b.iter(|| black_box(rows.evaluate(&model).unwrap()))
    });
    let packed = Evaluator::new(&model, &items, BATCH_TOKENS).unwrap();
    group.bench_function("shared_prompts", |b| {
        b.iter(|| black_box(packed.evaluate(&model).unwrap()))
    });
    for layer in [5, 25] {
        let edit = Edit {
            name: format!("model.layers.{layer}.mlp.down_proj.weight"),
            rho: 0.1,
            factor: Factor::Svd,
        };
        let mut cached = Evaluator::new(&model, &items, BATCH_TOKENS).unwrap();
        cached.cache_layer(&model, layer).unwrap();
        EditEngine::new(0).apply(&mut model, std::slice::from_ref(&edit)).unwrap();
        group.bench_function(format!("candidate_at_layer_{layer}_full_pass"), |b| {
            b.iter(|| black_box(packed.evaluate(&model).unwrap()))
        });
        group.bench_function(format!("candidate_at_layer_{layer}_layer_cache"), |b| {
            b.iter(|| black_box(cached.evaluate(&model).unwrap()))
        });
        model.restore_all();
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
