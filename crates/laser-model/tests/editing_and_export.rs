//! Matrix editing, layer-input caching, padding and micro-batching invariances, finite-difference
//! gradients, and export round trips, on the tiny models of every family.

mod common;

use common::*;
use laser_model::{Model, TokenTarget, export_hf};

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("laser-model-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn edit_then_restore_is_bit_identical_and_changes_outputs_meanwhile() {
    for family in fixtures() {
        let mut model = load_tiny(family);
        let r = reference(family);
        let before = model.all_logits(&r.ids).unwrap();
        let name = model.matrices()[0].name.clone();
        let original = model.matrix(&name).unwrap();
        model.replace_matrix(&name, vec![0.0; original.len()]).unwrap();
        assert_eq!(model.edited(), vec![name.clone()]);
        let edited = model.all_logits(&r.ids).unwrap();
        assert!(
            before.iter().zip(&edited).any(|(a, b)| (a - b).abs() > 1e-3),
            "{family}: zeroing {name} changed nothing"
        );
        // A second replacement keeps the first original.
        model.replace_matrix(&name, vec![1.0; original.len()]).unwrap();
        model.restore_matrix(&name).unwrap();
        assert_eq!(bits(&model.matrix(&name).unwrap()), bits(&original), "{family}");
        assert_eq!(bits(&model.all_logits(&r.ids).unwrap()), bits(&before), "{family}");
        assert!(model.edited().is_empty());
    }
}

#[test]
fn replacing_with_bad_data_is_an_error_naming_the_matrix() {
    let mut model = load_tiny("llama");
    let name = model.matrices()[2].name.clone();
    let n = model.matrix(&name).unwrap().len();
    let err = model.replace_matrix(&name, vec![0.0; n - 1]).unwrap_err().to_string();
    assert!(err.contains(&name), "{err}");
    let mut nan = vec![0.0; n];
    nan[7] = f32::NAN;
    assert!(model.replace_matrix(&name, nan).unwrap_err().to_string().contains("non-finite"));
    let err = model
        .replace_matrix("model.layers.9.mlp.up_proj.weight", vec![0.0; n])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.layers.9.mlp.up_proj.weight") && err.contains("not an editable matrix"),
        "{err}"
    );
    assert!(model.edited().is_empty(), "failed edits leave the model untouched");
}

#[test]
fn running_from_cached_layer_inputs_equals_the_full_forward() {
    for family in fixtures() {
        let model = load_tiny(family);
        let r = reference(family);
        let prep = model.prepare(&r.ids).unwrap();
        let at: Vec<(usize, usize)> = (0..3).flat_map(|s| [(s, 0), (s, 4), (s, 8)]).collect();
        let full = model.log_probs_at(&prep, None, &at).unwrap();
        let mut advanced = model.hidden_before(&prep, 0).unwrap();
        for layer in 0..=model.config().num_layers {
            let cached = model.hidden_before(&prep, layer).unwrap();
            advanced = model.advance_hidden(&prep, &advanced, layer).unwrap();
            assert_eq!(advanced.layer(), layer);
            let stepped = model.log_probs_at(&prep, Some(&advanced), &at).unwrap();
            for (a, b) in full.iter().flatten().zip(stepped.iter().flatten()) {
                assert!((a - b).abs() < 1e-5, "{family} advanced to layer {layer}: {a} vs {b}");
            }
            let resumed = model.log_probs_at(&prep, Some(&cached), &at).unwrap();
            for (a, b) in full.iter().flatten().zip(resumed.iter().flatten()) {
                assert!((a - b).abs() < 1e-5, "{family} from layer {layer}: {a} vs {b}");
            }
        }
        assert!(model.advance_hidden(&prep, &advanced, 0).is_err(), "states never move down");
    }
}

#[test]
fn padding_does_not_change_real_positions() {
    for family in fixtures() {
        let model = load_tiny(family);
        let r = reference(family);
        // Three lengths in one batch vs each sequence alone.
        let seqs: Vec<Vec<u32>> =
            vec![r.ids[0].clone(), r.ids[1][..5].to_vec(), r.ids[2][..7].to_vec()];
        let prep = model.prepare(&seqs).unwrap();
        for (s, seq) in seqs.iter().enumerate() {
            let at: Vec<(usize, usize)> = (0..seq.len()).map(|p| (s, p)).collect();
            let batched = model.log_probs_at(&prep, None, &at).unwrap();
            let alone_prep = model.prepare(std::slice::from_ref(seq)).unwrap();
            let alone_at: Vec<(usize, usize)> = (0..seq.len()).map(|p| (0, p)).collect();
            let alone = model.log_probs_at(&alone_prep, None, &alone_at).unwrap();
            for (a, b) in batched.iter().flatten().zip(alone.iter().flatten()) {
                assert!((a - b).abs() < 1e-4, "{family} seq {s}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn micro_batching_does_not_change_loss_or_gradients() {
    for family in ["llama", "roberta"] {
        let model = load_tiny(family);
        let r = reference(family);
        let targets = reference_targets(family, &r.ids);
        let names: Vec<String> = model.matrices().iter().map(|m| m.name.clone()).collect();
        let whole = model.loss_and_gradients(&r.ids, &targets, &names, 3).unwrap();
        let one = model.loss_and_gradients(&r.ids, &targets, &names, 1).unwrap();
        assert!((whole.loss - one.loss).abs() < 1e-5);
        for n in &names {
            for (a, b) in whole.grads[n].iter().zip(&one.grads[n]) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{family} {n}: {a} vs {b}");
            }
        }
    }
}

/// Mean NLL of `targets` by a plain forward pass (no gradient machinery, no shared prefix).
fn forward_loss(model: &Model, seqs: &[Vec<u32>], targets: &[TokenTarget]) -> f64 {
    let prep = model.prepare(seqs).unwrap();
    let lp = model.target_log_probs(&prep, None, targets).unwrap();
    -lp.iter().map(|&x| f64::from(x)).sum::<f64>() / lp.len() as f64
}

/// The gradient pass's loss and its `∂L/∂W` of `name` (the `entries` largest entries, where f32
/// round-off is small relative to the signal) against central finite differences of
/// [`forward_loss`].
fn assert_finite_differences(
    model: &mut Model,
    seqs: &[Vec<u32>],
    targets: &[TokenTarget],
    name: &str,
    entries: usize,
    micro_batch: usize,
) -> usize {
    let names = [name.to_owned()];
    let pass = model.loss_and_gradients(seqs, targets, &names, micro_batch).unwrap();
    let loss = forward_loss(model, seqs, targets);
    assert!((pass.loss - loss).abs() < 1e-5, "{name}: loss {} vs {loss}", pass.loss);
    let w = model.matrix(name).unwrap();
    let g = &pass.grads[name];
    let mut idx: Vec<usize> = (0..g.len()).collect();
    idx.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
    let h = 1e-2f32;
    for &i in &idx[..entries] {
        let mut plus = w.clone();
        plus[i] += h;
        model.replace_matrix(name, plus).unwrap();
        let lp = forward_loss(model, seqs, targets);
        let mut minus = w.clone();
        minus[i] -= h;
        model.replace_matrix(name, minus).unwrap();
        let lm = forward_loss(model, seqs, targets);
        model.restore_matrix(name).unwrap();
        let fd = (lp - lm) / (2.0 * f64::from(h));
        assert!(
            (fd - f64::from(g[i])).abs() < 2e-2 * f64::from(g[i]).abs() + 1e-4,
            "{name} entry {i}: fd {fd} vs {}",
            g[i]
        );
    }
    pass.micro_batches
}

#[test]
fn gradients_match_finite_differences_of_the_loss() {
    let mut model = load_tiny("llama");
    let r = reference("llama");
    let targets = reference_targets("llama", &r.ids);
    assert_finite_differences(
        &mut model,
        &r.ids,
        &targets,
        "model.layers.1.mlp.down_proj.weight",
        4,
        3,
    );
}

/// Sequences that share a prefix run it once for the whole pass: each micro-batch reads its keys
/// and values as leaves, and their summed gradients go back through the prefix at the end. The
/// loss and gradients must still be those of the plain forward pass (checked against finite
/// differences of that pass) with one micro-batch or one per sequence, whatever the architecture
/// does with positions (learned, rotary, sliding windows, soft-capped scores).
#[test]
fn a_shared_prefix_keeps_loss_and_gradients_exact() {
    for (family, name) in [
        ("llama", "model.layers.0.self_attn.v_proj.weight"),
        ("gpt2", "transformer.h.0.attn.c_attn.weight"),
        ("gpt_neox", "gpt_neox.layers.0.attention.query_key_value.weight"),
        ("mistral", "model.layers.0.self_attn.k_proj.weight"),
        ("gemma2", "model.layers.0.self_attn.q_proj.weight"),
    ] {
        let mut model = load_tiny(family);
        let r = reference(family);
        let opening: Vec<u32> = r.ids[0][..6].to_vec();
        let seqs: Vec<Vec<u32>> =
            r.ids.iter().map(|s| opening.iter().chain(s).copied().collect()).collect();
        let mut targets = reference_targets(family, &seqs);
        targets.push(TokenTarget { seq: 1, position: opening.len() + 1, token: seqs[1][8] });
        assert_finite_differences(&mut model, &seqs, &targets, name, 3, 8);
        let runs = assert_finite_differences(&mut model, &seqs, &targets, name, 3, 1);
        assert_eq!(runs, seqs.len(), "{family}: one micro-batch per sequence");
    }
}

#[test]
fn export_then_load_gives_identical_logits_for_every_family() {
    for family in fixtures() {
        let mut model = load_tiny(family);
        let r = reference(family);
        // Export an edited model: the edit must survive the round trip.
        let name = model.matrices()[1].name.clone();
        let halved: Vec<f32> = model.matrix(&name).unwrap().iter().map(|x| x * 0.5).collect();
        model.replace_matrix(&name, halved).unwrap();
        let expect = model.all_logits(&r.ids).unwrap();
        let dir = tmpdir(family);
        export_hf(&model, &dir).unwrap();
        assert!(dir.join("config.json").is_file() && dir.join("model.safetensors").is_file());
        // The weights are as readable as the files beside them (safetensors writes through a
        // private temporary file, mode 0600, which a shared model folder must not keep).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |f: &str| dir.join(f).metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("model.safetensors"), mode("config.json"), "{family}");
        }
        let back = Model::load(&dir, backend().device().unwrap()).unwrap();
        assert_eq!(back.config().family, model.config().family);
        assert_eq!(bits(&back.all_logits(&r.ids).unwrap()), bits(&expect), "{family}");
        // Tied weights are stored once.
        let st = std::fs::read(dir.join("model.safetensors")).unwrap();
        let names: Vec<String> = safetensors::SafeTensors::deserialize(&st)
            .unwrap()
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if family == "gpt2" {
            assert!(!names.iter().any(|n| n.starts_with("lm_head")), "{names:?}");
        }
        // Exporting over a non-empty folder is refused, and leaves it intact.
        assert!(export_hf(&model, &dir).is_err());
        assert!(dir.join("model.safetensors").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn bad_batches_are_errors_not_panics() {
    let model = load_tiny("gpt2");
    assert!(model.prepare(&[]).is_err());
    assert!(model.prepare(&[vec![]]).unwrap_err().to_string().contains("sequence 0 is empty"));
    let err = model.prepare(&[vec![1, 2, 512]]).unwrap_err().to_string();
    assert!(err.contains("512"), "{err}");
    let err = model.prepare(&[vec![1; 129]]).unwrap_err().to_string();
    assert!(err.contains("at most 128"), "{err}");
    let prep = model.prepare(&[vec![1, 2, 3]]).unwrap();
    assert!(model.log_probs_at(&prep, None, &[(0, 3)]).is_err());
    assert!(model.log_probs_at(&prep, None, &[(1, 0)]).is_err());
    let bad_target = TokenTarget { seq: 0, position: 0, token: 9999 };
    assert!(model.target_log_probs(&prep, None, &[bad_target]).is_err());
    let names = vec!["transformer.h.0.ln_1.weight".to_owned()];
    assert!(
        model
            .loss_and_gradients(
                &[vec![1, 2]],
                &[TokenTarget { seq: 0, position: 0, token: 2 }],
                &names,
                1
            )
            .is_err()
    );
}

/// Regression (issue 15): on the flex backend every matrix was held twice, the device tensor and
/// a host copy for faer's matmul; now the host view reads the device tensor's own buffer, also
/// after an edit. An edit adds exactly the kept original; restoring gives it back.
#[test]
fn the_flex_backend_holds_each_weight_once() {
    if backend() != laser_model::Backend::Flex {
        return; // other backends keep host copies by design
    }
    for family in fixtures() {
        let mut model = load_tiny(family);
        assert_eq!(model.host_copy_bytes(), 0, "{family}");
        let loaded = model.resident_bytes();
        let m = model.matrices()[0].clone();
        let w = model.matrix(&m.name).unwrap();
        model.replace_matrix(&m.name, w.iter().map(|x| x * 0.5).collect()).unwrap();
        assert_eq!(model.host_copy_bytes(), 0, "{family}");
        assert_eq!(model.resident_bytes(), loaded + w.len() as u64 * 4, "{family}");
        model.restore_all();
        assert_eq!(model.resident_bytes(), loaded, "{family}");
    }
}

/// A layer whose replaced matrices are all restored holds its loaded weights again, bit for bit,
/// and gets its stamp back: hidden states kept from before a candidate edit stay usable after
/// it. While any matrix of a layer is replaced, stamps from before differ; rounding the weights
/// to bf16 changes every stamp.
#[test]
fn a_restored_layer_gets_its_weight_stamp_back() {
    let mut model = load_tiny("llama");
    let layers = model.config().num_layers;
    let before = model.weights_below(layers);
    let below_one = model.weights_below(1);
    let in_layer = |l: usize| -> Vec<String> {
        model.matrices().iter().filter(|m| m.layer == l).map(|m| m.name.clone()).collect()
    };
    let (a, b) = (in_layer(1)[0].clone(), in_layer(1)[1].clone());
    let zeros = |name: &str| vec![0.0; model.matrix(name).unwrap().len()];
    let (za, zb) = (zeros(&a), zeros(&b));
    model.replace_matrix(&a, za.clone()).unwrap();
    assert_eq!(model.weights_below(1), below_one, "layer 0 is untouched");
    assert_ne!(model.weights_below(layers), before);
    model.replace_matrix(&b, zb).unwrap();
    model.restore_matrix(&a).unwrap();
    assert_ne!(model.weights_below(layers), before, "b is still replaced");
    model.restore_matrix(&b).unwrap();
    assert_eq!(model.weights_below(layers), before);
    model.replace_matrix(&a, za).unwrap();
    let edited = model.weights_below(layers);
    model.restore_all();
    assert_eq!(model.weights_below(layers), before);
    assert_ne!(edited, before);
    model.set_matrix_dtype(laser_model::WeightDtype::Bf16).unwrap();
    assert_ne!(model.weights_below(layers), before, "bf16 weights are other weights");
}

/// States computed reading a shared prefix's keys and values that kept the prefix's own states
/// carry them: scoring from them — with those keys and values or without (the prefix then runs
/// on from its kept states) — gives the log-probs of a run straight through, bit for bit, at
/// every layer and after moving up in steps.
#[test]
fn states_computed_with_a_shared_prefix_carry_the_prefix() {
    let model = load_tiny("llama");
    let prefix: Vec<u32> = (10..22).collect();
    let rows = vec![
        (vec![30, 31, 32], vec![vec![40, 41], vec![42]]),
        (vec![33, 34], vec![vec![43], vec![44, 45]]),
    ];
    let (prep, at) = model.prepare_packed_after(&prefix, &rows).unwrap();
    let mut targets = Vec::new();
    for (seq, (row, (_, conts))) in at.iter().zip(&rows).enumerate() {
        for (positions, cont) in row.iter().zip(conts) {
            for (&position, &token) in positions.iter().zip(cont) {
                targets.push(TokenTarget { seq, position, token });
            }
        }
    }
    let full = model.score_targets(&prep, None, &targets).unwrap();
    let shared = model.prefix_keys_values_keeping(&prep, None);
    assert!(shared.is_some(), "the rows continue a shared prefix");
    let mut stepped = None;
    for layer in 0..=model.config().num_layers {
        let h = model.hidden_before_sharing(&prep, None, layer, shared.as_ref()).unwrap();
        assert_eq!(h.layer(), layer);
        let up =
            model.hidden_before_sharing(&prep, stepped.as_ref(), layer, shared.as_ref()).unwrap();
        for (from, how) in [(&h, "straight"), (&up, "in steps")] {
            let alone = model.score_targets(&prep, Some(from), &targets).unwrap();
            assert_eq!(alone, full, "layer {layer} ({how}), the prefix run on from its states");
            let sharing =
                model.score_targets_sharing(&prep, Some(from), shared.as_ref(), &targets).unwrap();
            assert_eq!(sharing, full, "layer {layer} ({how}), reading the shared keys and values");
        }
        stepped = Some(up);
    }
    let top = stepped.unwrap();
    assert!(model.hidden_before_sharing(&prep, Some(&top), 0, shared.as_ref()).is_err());
}
