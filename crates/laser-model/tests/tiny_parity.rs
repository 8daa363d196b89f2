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
        let expect = r.tensors["logits"].data();
        assert_eq!(logits.len(), expect.len(), "{family}");
        let scale = max_abs(expect);
        let worst = logits.iter().zip(expect).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{family}: max |Δlogit| = {worst:e} (scale {scale})");
    }
}

#[test]
fn loss_and_every_gradient_match_the_oracle() {
    for family in FAMILIES {
        assert_loss_and_gradients_match_the_oracle(&load_tiny(family), family);
    }
}
