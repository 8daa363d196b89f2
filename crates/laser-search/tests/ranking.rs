//! The streaming ranking (σ and g kept, each SVD dropped after use) ranks exactly as computing
//! and keeping every matrix's full SVD did: same order, bit-identical scores; and the scan's edits
//! from SVDs recomputed for the matrices it edits are the edits from the kept SVDs, bit for bit.

mod common;

use common::*;
use laser_linalg::faer::MatRef;
use laser_linalg::{TruncationScore, kept_rank, sigma_gradient, truncation_scores};
use laser_search::{EditEngine, gradient_pass, load_task, matrix_svd, rank_matrices};

#[test]
fn streaming_ranking_equals_the_kept_svd_ranking() {
    let model = tiny("llama");
    let lines: Vec<serde_json::Value> = (0..16)
        .map(|i| serde_json::json!({"prompt": words(70 + i, 3), "choices": ["a", "b"], "answer": (i % 2)}))
        .collect();
    let task = load_task(write_jsonl("ranking", &lines)).unwrap();
    let rhos = [0.9f32, 0.5, 0.1, 0.02];
    let streamed = rank_matrices(
        &model,
        &task.items,
        model.matrices(),
        &rhos,
        TruncationScore::FirstOrder,
        4,
        1,
    )
    .unwrap();

    // The same computation with every SVD kept, as the ranking did before it streamed.
    let names: Vec<String> = model.matrices().iter().map(|m| m.name.clone()).collect();
    let mut pass = gradient_pass(&model, &task.items, &names, 4).unwrap();
    let mut kept: Vec<(String, f64, f32)> = Vec::new();
    let mut svds = Vec::new();
    for m in model.matrices() {
        let svd = matrix_svd(&model, m).unwrap();
        let grad = pass.grads.remove(&m.name).unwrap();
        let [r, c] = m.shape;
        let g = sigma_gradient(&svd, MatRef::from_row_major_slice(&grad, r, c)).unwrap();
        let curve = truncation_scores(svd.s(), &g, TruncationScore::FirstOrder).unwrap();
        let (score, rho) = rhos
            .iter()
            .map(|&rho| (curve[kept_rank(rho, r, c).unwrap()], rho))
            .fold((f64::NEG_INFINITY, 0.0), |best, p| if p.0 > best.0 { p } else { best });
        kept.push((m.name.clone(), score, rho));
        svds.push((m.name.clone(), svd));
    }
    kept.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(String, f64, f32)> =
        streamed.ranking.iter().map(|s| (s.name.clone(), s.score, s.best_rho)).collect();
    assert_eq!(got, kept, "same order, same scores, same best ρ");
    assert_eq!(streamed.loss, pass.loss);

    // The scan's edits from recomputed SVDs are the edits from the kept ones, bit for bit.
    let mut from_kept = EditEngine::new(0);
    for (name, svd) in svds {
        from_kept.insert_svd(&name, svd);
    }
    let mut recomputed = EditEngine::new(0);
    for s in streamed.ranking.iter().take(3) {
        let m = model.matrix_info(&s.name).unwrap();
        recomputed.insert_svd(&s.name, matrix_svd(&model, m).unwrap());
        let edit = laser_search::Edit::svd(&s.name, s.best_rho);
        assert_eq!(
            recomputed.reconstruct(&model, &edit).unwrap(),
            from_kept.reconstruct(&model, &edit).unwrap()
        );
    }
}

#[test]
fn grouped_gradient_passes_give_the_gradients_and_ranking_of_one_pass() {
    let model = tiny("llama");
    let lines: Vec<serde_json::Value> = (0..12)
        .map(|i| serde_json::json!({"prompt": words(170 + i, 4), "choices": ["p", "q"], "answer": (i % 2)}))
        .collect();
    let task = load_task(write_jsonl("ranking-groups", &lines)).unwrap();
    let names: Vec<String> = model.matrices().iter().map(|m| m.name.clone()).collect();
    let whole = gradient_pass(&model, &task.items, &names, 4).unwrap();
    // Layer 0's matrices in one pass, the others in another.
    let in_layer0 = |want: bool| -> Vec<String> {
        model.matrices().iter().filter(|m| (m.layer == 0) == want).map(|m| m.name.clone()).collect()
    };
    let (first, rest) = (in_layer0(true), in_layer0(false));
    assert!(!first.is_empty() && !rest.is_empty());
    for part in [first, rest] {
        let pass = gradient_pass(&model, &task.items, &part, 4).unwrap();
        assert_eq!(pass.loss, whole.loss);
        assert_eq!(pass.grads.len(), part.len(), "only the group's accumulators");
        for name in &part {
            assert_eq!(pass.grads[name], whole.grads[name], "{name}");
        }
    }
    let rank = |groups| {
        rank_matrices(
            &model,
            &task.items,
            model.matrices(),
            &[0.5, 0.1],
            TruncationScore::Cosine,
            4,
            groups,
        )
        .unwrap()
    };
    let one = rank(1);
    let layers = model.config().num_layers;
    for groups in [2, layers] {
        let grouped = rank(groups);
        assert_eq!(grouped.ranking, one.ranking, "{groups} groups");
        assert_eq!(grouped.loss, one.loss);
    }
    assert!(
        rank_matrices(&model, &task.items, model.matrices(), &[0.5], TruncationScore::Cosine, 4, 0)
            .is_err()
    );
}
