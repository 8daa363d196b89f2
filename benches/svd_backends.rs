//! SVD backends side by side on the shapes LASER decomposes: SmolLM2-135M's matrices (576×576,
//! 192×576, 1536×576, 576×1536), GPT-2's 768×3072 and, with `LASER_BENCH_LARGE=1`, GPT-J's
//! 4096×4096. Also the batched SVD of all 210 SmolLM2 matrices (rayon across matrices).
//!
//! `cargo bench --bench svd_backends` (results: `docs/BENCHMARKS.md`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use laser::linalg::faer::{Mat, Par};
use laser::linalg::rng::SplitMix64;
use laser::linalg::*;

fn gaussian(m: usize, n: usize, seed: u64) -> Mat<f32> {
    let mut rng = SplitMix64::new(seed);
    Mat::from_fn(m, n, |_, _| rng.normal() as f32)
}

/// The seven matrix shapes of one SmolLM2-135M layer (q, k, v, o, gate, up, down), HF orientation.
const SMOLLM2_LAYER: [(usize, usize); 7] =
    [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)];

fn single_matrix(c: &mut Criterion) {
    let mut shapes = vec![(576, 576), (192, 576), (1536, 576), (576, 1536), (768, 3072)];
    if std::env::var_os("LASER_BENCH_LARGE").is_some() {
        shapes.push((4096, 4096));
    }
    let mut group = c.benchmark_group("svd");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for (m, n) in shapes {
        let w = gaussian(m, n, 1);
        let id = format!("{m}x{n}");
        group.bench_with_input(BenchmarkId::new("thin_seq", &id), &w, |b, w| {
            b.iter(|| thin_svd_with(black_box(w.as_ref()), Par::Seq).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("thin_rayon", &id), &w, |b, w| {
            b.iter(|| thin_svd_with(black_box(w.as_ref()), Par::rayon(0)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("values_only", &id), &w, |b, w| {
            b.iter(|| singular_values(black_box(w.as_ref())).unwrap())
        });
        // LASER's small ranks: ρ = 0.01 of min(m, n), at least the 8 leading triplets.
        let k = kept_rank(0.01, m, n).unwrap().max(8);
        group.bench_with_input(BenchmarkId::new(format!("partial_k{k}"), &id), &w, |b, w| {
            b.iter(|| top_k_svd(black_box(w.as_ref()), k, SvdBackend::Partial).unwrap())
        });
        group.bench_with_input(BenchmarkId::new(format!("randomized_k{k}"), &id), &w, |b, w| {
            b.iter(|| top_k_svd(black_box(w.as_ref()), k, SvdBackend::randomized(3)).unwrap())
        });
    }
    group.finish();
}

fn batched_smollm2(c: &mut Criterion) {
    let ws: Vec<Mat<f32>> = (0..30)
        .flat_map(|layer| {
            SMOLLM2_LAYER.iter().enumerate().map(move |(i, &(m, n))| (layer * 7 + i, m, n))
        })
        .map(|(seed, m, n)| gaussian(m, n, seed as u64))
        .collect();
    let refs: Vec<_> = ws.iter().map(|w| w.as_ref()).collect();
    assert_eq!(refs.len(), 210);
    let mut group = c.benchmark_group("batched_smollm2_210");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("thin_rayon_across", |b| {
        b.iter(|| {
            let out = batched_thin_svd(black_box(&refs));
            assert!(out.iter().all(Result::is_ok));
        })
    });
    group.bench_function("thin_one_at_a_time_rayon_inside", |b| {
        b.iter(|| {
            for w in &refs {
                thin_svd_with(black_box(*w), Par::rayon(0)).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, single_matrix, batched_smollm2);
criterion_main!(benches);
