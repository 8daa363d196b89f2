//! Forward and forward + backward throughput of the default model, SmolLM2-135M (fetched by
//! `scripts/fetch-smollm2.sh`), on batches of 100-token sequences; plus the batched σ-gradient
//! computation (SVD + `u_iᵀ G v_i`) for all 210 matrices. The throughput groups run on Gemma 3
//! 270M too (`cargo bench --bench forward -- gemma3_270m`).
//!
//! `cargo bench --bench forward` (results: `docs/BENCHMARKS.md`). `LASER_BACKEND=ndarray` (with
//! `--features ndarray`) runs the same on burn's ndarray backend.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::load;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use laser::linalg::faer::MatRef;
use laser::linalg::rng::SplitMix64;
use laser::linalg::{sigma_gradient, thin_svd_with};
use laser::model::TokenTarget;
use rayon::prelude::*;

fn random_batch(b: usize, t: usize, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let mut rng = SplitMix64::new(seed);
    (0..b).map(|_| (0..t).map(|_| rng.below(vocab) as u32).collect()).collect()
}

fn forward(c: &mut Criterion) {
    throughput(c, &load(), "smollm2");
}

/// The same workloads on Gemma 3 270M (`-- gemma3_270m`): its 262,144-row head and 256-wide
/// heads at a 512-token sliding window.
fn forward_gemma3(c: &mut Criterion) {
    throughput(c, &common::load_from(common::gemma3_270m()), "gemma3_270m");
}

fn throughput(c: &mut Criterion, model: &laser::model::Model, tag: &str) {
    let vocab = model.config().vocab_size;
    let mut group = c.benchmark_group(format!("{tag}_forward"));
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for b in [1usize, 8] {
        let seqs = random_batch(b, 100, vocab, 1);
        group.throughput(Throughput::Elements((b * 100) as u64));
        // LASER's scoring needs the LM head at one position per sequence only.
        let last: Vec<(usize, usize)> = (0..b).map(|i| (i, 99)).collect();
        group.bench_function(format!("b{b}_t100_last_position"), |bench| {
            bench.iter(|| {
                let prep = model.prepare(black_box(&seqs)).unwrap();
                model.log_probs_at(&prep, None, &last).unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group(format!("{tag}_forward_backward"));
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    let seqs = random_batch(4, 100, vocab, 2);
    let targets: Vec<TokenTarget> = (0..4)
        .flat_map(|s| (90..99).map(move |p| (s, p)))
        .map(|(s, p)| TokenTarget { seq: s, position: p, token: seqs[s][p + 1] })
        .collect();
    let names: Vec<String> = model.matrices().iter().map(|m| m.name.clone()).collect();
    group.throughput(Throughput::Elements(400));
    group.bench_function(format!("b4_t100_all_{}_grads", names.len()), |bench| {
        bench.iter(|| model.loss_and_gradients(black_box(&seqs), &targets, &names, 4).unwrap())
    });
    group.finish();
}

fn sigma_gradients(c: &mut Criterion) {
    let model = load();
    let mats: Vec<(Vec<f32>, [usize; 2])> =
        model.matrices().iter().map(|m| (model.matrix(&m.name).unwrap(), m.shape)).collect();
    // A stand-in gradient of the right shape (the cost does not depend on its values).
    let grads: Vec<Vec<f32>> = mats
        .iter()
        .enumerate()
        .map(|(i, (w, _))| {
            let mut rng = SplitMix64::new(i as u64);
            w.iter().map(|_| rng.normal() as f32).collect()
        })
        .collect();
    let mut group = c.benchmark_group("smollm2_sigma_gradients_210");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("svd_plus_sigma_grad_rayon_across", |bench| {
        bench.iter(|| {
            mats.par_iter()
                .zip(&grads)
                .map(|((w, [m, n]), g)| {
                    let svd = thin_svd_with(
                        MatRef::from_row_major_slice(w, *m, *n),
                        laser::linalg::faer::Par::Seq,
                    )
                    .unwrap();
                    sigma_gradient(&svd, MatRef::from_row_major_slice(g, *m, *n)).unwrap()
                })
                .collect::<Vec<_>>()
        })
    });
    group.finish();
}

/// Why inference matmuls go through faer: the same product on burn-flex and on faer.
fn matmul(c: &mut Criterion) {
    use burn::tensor::{Device, Tensor};
    let (m, k, n) = (4096usize, 576usize, 1536usize);
    let mut group = c.benchmark_group("matmul_4096x576x1536");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements((2 * m * k * n) as u64)); // flops
    let dev = Device::flex();
    let (a, b) = (Tensor::<2>::ones([m, k], &dev), Tensor::<2>::ones([k, n], &dev));
    group.bench_function("burn_flex", |bench| {
        bench.iter(|| a.clone().matmul(b.clone()).into_data())
    });
    let fa = laser::linalg::faer::Mat::<f32>::ones(m, k);
    let fb = laser::linalg::faer::Mat::<f32>::ones(k, n);
    let mut out = laser::linalg::faer::Mat::<f32>::zeros(m, n);
    group.bench_function("faer_2_threads", |bench| {
        bench.iter(|| {
            laser::linalg::faer::linalg::matmul::matmul(
                out.as_mut(),
                laser::linalg::faer::Accum::Replace,
                fa.as_ref(),
                fb.as_ref(),
                1.0f32,
                laser::linalg::faer::Par::rayon(0),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, forward, forward_gemma3, sigma_gradients, matmul);
criterion_main!(benches);
