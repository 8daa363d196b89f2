//! What each evaluation-engine optimisation saves, on SmolLM2-135M and the bundled
//! epistemic-reasoning task (two choices per item, prompts of ~80 tokens):
//!
//! - `eval_20_items/naive`: one row per (prompt, choice) and logits at every position (what a
//!   plain HF forward returns), as LASER's scripts score choices;
//! - `eval_20_items/one_row_per_choice`: the same rows, LM head only at the scored positions;
//! - `eval_20_items/shared_prompts`: one packed row per prompt with both choices after it;
//! - `eval_20_items/shared_prompts_and_prefix`: and the task prefix every prompt starts with run
//!   once per batch (the default engine);
//! - `eval_20_items/candidate_at_layer_N_{full_pass,layer_cache}`: one candidate edit (`fc_out`,
//!   ρ = 0.1) scored from the embeddings or from the cached inputs of its layer;
//! - `candidate_100_items/layer_N`: the yardstick — one candidate in layers 20–29 scored on
//!   the 100 selection items from the layer cache (the default engine).
//!
//! `cargo bench --bench eval_engine` (results: `docs/BENCHMARKS.md`).

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use common::load;
use criterion::{Criterion, criterion_group, criterion_main};
use laser::model::Model;
use laser::search::{Edit, EditEngine, EvalLayout, Evaluator, Item, Split, Target, load_task};

const BATCH_TOKENS: usize = 4096;

/// The first `n` selection items (seed 0, N = 100) of the bundled task.
fn selection_items(n: usize) -> Vec<Item> {
    let task = load_task(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/epistemic_reasoning_300.json"
    )))
    .unwrap();
    let split = Split::new(task.items.len(), 100, 0).unwrap();
    Split::items(&task, &split.select[..n])
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

fn down_proj(layer: usize) -> Edit {
    Edit::svd(format!("model.layers.{layer}.mlp.down_proj.weight"), 0.1)
}

fn engine(c: &mut Criterion) {
    let mut model = load();
    let items = selection_items(20);
    let mut group = c.benchmark_group("eval_20_items");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("naive", |b| b.iter(|| black_box(naive(&model, &items))));
    let unshared = EvalLayout { share_prompts: false, share_prefix: false };
    let rows = Evaluator::with_layout(&model, &items, BATCH_TOKENS, unshared).unwrap();
    group.bench_function("one_row_per_choice", |b| {
        b.iter(|| black_box(rows.evaluate(&model).unwrap()))
    });
    let no_prefix = EvalLayout { share_prompts: true, share_prefix: false };
    let packed = Evaluator::with_layout(&model, &items, BATCH_TOKENS, no_prefix).unwrap();
    group.bench_function("shared_prompts", |b| {
        b.iter(|| black_box(packed.evaluate(&model).unwrap()))
    });
    let packed = Evaluator::new(&model, &items, BATCH_TOKENS).unwrap();
    group.bench_function("shared_prompts_and_prefix", |b| {
        b.iter(|| black_box(packed.evaluate(&model).unwrap()))
    });
    for layer in [5, 25] {
        let edit = down_proj(layer);
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

    let items = selection_items(100);
    let mut group = c.benchmark_group("candidate_100_items");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    let mut evaluator = Evaluator::new(&model, &items, BATCH_TOKENS).unwrap();
    for layer in [20, 25, 29] {
        evaluator.cache_layer(&model, layer).unwrap(); // moves up from the previous layer
        EditEngine::new(0).apply(&mut model, &[down_proj(layer)]).unwrap();
        group.bench_function(format!("layer_{layer}"), |b| {
            b.iter(|| black_box(evaluator.evaluate(&model).unwrap()))
        });
        model.restore_all();
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
