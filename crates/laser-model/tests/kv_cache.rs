//! The KV-cache paths (shared-prompt scoring, greedy generation) agree with full forward passes.

mod common;

use common::*;
use laser_model::TokenTarget;

#[test]
fn continuations_scored_over_a_cached_prompt_match_full_sequences() {
    for family in causal_fixtures() {
        let model = load_tiny(family);
        let ids = &reference(family).ids;
        let prompt = ids[0][..5].to_vec();
        let conts: Vec<Vec<u32>> =
            vec![ids[1][..3].to_vec(), vec![ids[2][0]], ids[2][..4].to_vec()];
        let state = model.prefill(&prompt).unwrap();
        assert_eq!(state.len(), 5);
        let cached = model.continuation_log_probs(&state, &conts).unwrap();
        for (c, cont) in conts.iter().enumerate() {
            let full: Vec<u32> = prompt.iter().chain(cont).copied().collect();
            let prep = model.prepare(std::slice::from_ref(&full)).unwrap();
            let targets: Vec<TokenTarget> = (0..cont.len())
                .map(|k| TokenTarget { seq: 0, position: prompt.len() + k - 1, token: cont[k] })
                .collect();
            let expect = model.target_log_probs(&prep, None, &targets).unwrap();
            assert_eq!(cached[c].len(), cont.len());
            for (a, b) in cached[c].iter().zip(&expect) {
                assert!((a - b).abs() < 1e-4, "{family} continuation {c}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn greedy_generation_with_a_cache_matches_recomputing_everything() {
    for family in causal_fixtures() {
        let model = load_tiny(family);
        let prompt = reference(family).ids[1][..4].to_vec();
        let generated = model.generate_greedy(&prompt, 6, &[]).unwrap();
        assert_eq!(generated.len(), 6);
        let mut seq = prompt.clone();
        for (step, &tok) in generated.iter().enumerate() {
            let prep = model.prepare(std::slice::from_ref(&seq)).unwrap();
            let lp = model.log_probs_at(&prep, None, &[(0, seq.len() - 1)]).unwrap();
            let best = (0..lp[0].len())
                .max_by(|&a, &b| lp[0][a].total_cmp(&lp[0][b]).then(b.cmp(&a)))
                .unwrap();
            assert_eq!(tok as usize, best, "{family} step {step}");
            seq.push(tok);
        }
        // A stop token ends generation and is kept.
        let stop = generated[1];
        let first = generated.iter().position(|&t| t == stop).unwrap();
        let stopped = model.generate_greedy(&prompt, 6, &[stop]).unwrap();
        assert_eq!(stopped, generated[..=first].to_vec(), "{family}");
    }
}

#[test]
fn masked_language_models_cannot_continue_prompts() {
    let model = load_tiny("roberta");
    let err = model.prefill(&[0, 5, 6]).unwrap_err().to_string();
    assert!(err.contains("masked language model"), "{err}");
}

#[test]
fn packed_rows_score_each_continuation_as_if_alone() {
    for family in causal_fixtures() {
        let model = load_tiny(family);
        let ids = &reference(family).ids;
        let rows = vec![
            (
                ids[0][..4].to_vec(),
                vec![ids[1][..3].to_vec(), vec![ids[2][5]], ids[2][..2].to_vec()],
            ),
            (ids[1][..6].to_vec(), vec![ids[0][..2].to_vec()]),
        ];
        let (prep, predictors) = model.prepare_packed(&rows).unwrap();
        let mut targets = Vec::new();
        for (r, (_, conts)) in rows.iter().enumerate() {
            for (c, cont) in conts.iter().enumerate() {
                for (k, &token) in cont.iter().enumerate() {
                    targets.push(TokenTarget { seq: r, position: predictors[r][c][k], token });
                }
            }
        }
        let packed = model.target_log_probs(&prep, None, &targets).unwrap();
        // The layer cache works on packed rows too.
        let cached = model.hidden_before(&prep, 1).unwrap();
        let resumed = model.target_log_probs(&prep, Some(&cached), &targets).unwrap();
        let mut i = 0;
        for (prompt, conts) in &rows {
            for cont in conts {
                let full: Vec<u32> = prompt.iter().chain(cont).copied().collect();
                let alone = model.prepare(std::slice::from_ref(&full)).unwrap();
                let t: Vec<TokenTarget> = (0..cont.len())
                    .map(|k| TokenTarget { seq: 0, position: prompt.len() + k - 1, token: cont[k] })
                    .collect();
                for e in model.target_log_probs(&alone, None, &t).unwrap() {
                    assert!(
                        (packed[i] - e).abs() < 1e-4,
                        "{family} target {i}: packed {} vs alone {e}",
                        packed[i]
                    );
                    assert!((resumed[i] - e).abs() < 1e-4, "{family} target {i} from layer 1");
                    i += 1;
                }
            }
        }
        assert_eq!(i, targets.len());
    }
    assert!(load_tiny("roberta").prepare_packed(&[(vec![0, 5], vec![vec![6]])]).is_err());
}
