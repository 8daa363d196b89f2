//! Parity with HF transformers (float64 oracle) on the tiny model of every family: logits at all
//! positions, the loss, and ∂L/∂W of every matrix the oracle differentiates.

mod common;

use common::*;

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[test]
fn logits_match_the_oracle_for_every_family() {
    for family in FAMILIES {
        let model = load_tiny(family);
        let r = reference(family);
        let logits = model.all_logits(&r.ids).unwrap();
        let expect = &r.tensors["logits"].data;
        assert_eq!(logits.len(), expect.len(), "{family}");
        let scale = max_abs(expect);
        let worst = logits.iter().zip(expect).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{family}: max |Δlogit| = {worst:e} (scale {scale})");
    }
}

#[test]
fn loss_and_every_gradient_match_the_oracle() {
    for family in FAMILIES {
        let model = load_tiny(family);
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
            let expect = &r.tensors[&format!("grad.{o}")].data;
            let got = &pass.grads[n];
            let scale = max_abs(expect);
            let worst = got.iter().zip(expect).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 1e-4 * scale, "{family} {n}: max |ΔG| = {worst:e} (scale {scale:e})");
        }
    }
}
