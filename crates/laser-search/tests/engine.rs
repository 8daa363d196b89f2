//! The evaluation engine's shortcuts change nothing but speed: one packed row per prompt gives the
//! metrics of one row per (prompt, choice), and a candidate scored from the cached inputs of its
//! layer gives the metrics of a full forward pass. Masked models (RoBERTa) follow LASER's mask
//! protocol, checked against a direct forward pass over hand-built sequences.

mod common;

use common::*;
use laser_model::Model;
use laser_search::{Edit, EditEngine, EvalLayout, Evaluator, Metrics, gradient_pass, load_task};

fn close(a: &Metrics, b: &Metrics) {
    assert_eq!((a.n, a.accuracy), (b.n, b.accuracy));
    assert!((a.logloss - b.logloss).abs() < 1e-4 * a.logloss.abs().max(1.0), "{a:?} vs {b:?}");
}

/// Every layout gives the same metrics (one packed row per prompt after a shared prefix, packed
/// rows without it, one row per choice), and a candidate from its layer cache = a full pass.
fn engine_shortcuts_match(mut model: Model, edited: &str) {
    // A common opening (as BIG-bench task prefixes give) and choices of several lengths.
    let lines: Vec<serde_json::Value> = (0..24)
        .map(|i| {
            serde_json::json!({"prompt": format!("Relate these: {}", words(300 + i, 4)), "choices": ["a b", "c", "de f", "g"], "answer": (i % 4)})
        })
        .collect();
    let task = load_task(write_jsonl("engine", &lines)).unwrap();
    let layouts = [(true, true), (true, false), (false, false)].map(|(p, f)| {
        let layout = EvalLayout { share_prompts: p, share_prefix: f };
        Evaluator::with_layout(&model, &task.items, 512, layout).unwrap()
    });
    let base = layouts[0].evaluate(&model).unwrap();
    for other in &layouts[1..] {
        close(&base, &other.evaluate(&model).unwrap());
    }
    // Many small batches read the prefix's keys and values computed once per evaluation.
    let small = Evaluator::new(&model, &task.items, 96).unwrap();
    assert!(small.batches() >= 3, "{} batches", small.batches());
    close(&base, &small.evaluate(&model).unwrap());

    let edit = Edit::svd(edited, 0.1);
    let mut cached = Evaluator::new(&model, &task.items, 96).unwrap();
    cached.cache_layer(&model, 1).unwrap();
    EditEngine::new(0).apply(&mut model, std::slice::from_ref(&edit)).unwrap();
    let full = layouts[0].evaluate(&model).unwrap();
    assert_ne!(full.logloss, base.logloss, "the edit changes the model");
    close(&full, &cached.evaluate(&model).unwrap());
    for other in &layouts[1..] {
        close(&full, &other.evaluate(&model).unwrap());
    }
}

/// Regression: the layer cache trusted its caller, so an edit below the cached layer (or another
/// model) gave the metrics of a model that no longer existed. It now checks its weight stamp.
#[test]
fn an_edit_below_the_cached_layer_is_noticed() {
    let mut model = tiny("llama");
    let lines: Vec<serde_json::Value> = (0..12)
        .map(|i| serde_json::json!({"prompt": words(700 + i, 3), "choices": ["a", "b c"], "answer": i % 2}))
        .collect();
    let task = load_task(write_jsonl("stale-cache", &lines)).unwrap();
    let mut cached = Evaluator::new(&model, &task.items, 512).unwrap();
    cached.cache_layer(&model, 1).unwrap();
    let base = cached.evaluate(&model).unwrap();
    let below = Edit::svd("model.layers.0.mlp.down_proj.weight", 0.05);
    EditEngine::new(0).apply(&mut model, std::slice::from_ref(&below)).unwrap();
    let fresh = Evaluator::new(&model, &task.items, 512).unwrap().evaluate(&model).unwrap();
    assert_ne!(fresh.logloss, base.logloss, "the edit changes the model");
    close(&fresh, &cached.evaluate(&model).unwrap());
    // Rebuilding the cache at the same layer after the edit gives the new model's states.
    cached.cache_layer(&model, 1).unwrap();
    close(&fresh, &cached.evaluate(&model).unwrap());
    // Restoring is a change too; and a cache never serves another model.
    model.restore_all();
    close(&base, &cached.evaluate(&model).unwrap());
    let other = tiny("llama");
    close(&base, &cached.evaluate(&other).unwrap());
}

#[test]
fn shared_prompts_and_the_layer_cache_give_full_pass_metrics() {
    engine_shortcuts_match(tiny("llama"), "model.layers.1.mlp.down_proj.weight");
}

#[test]
fn every_causal_family_gives_full_pass_metrics_through_the_shortcuts() {
    for (family, edited) in [
        ("gpt2", "transformer.h.1.mlp.c_proj.weight"),
        ("gptj", "transformer.h.1.mlp.fc_out.weight"),
        ("gpt_neox", "gpt_neox.layers.1.mlp.dense_4h_to_h.weight"),
    ] {
        engine_shortcuts_match(tiny(family), edited);
    }
}

#[test]
fn masked_rows_and_the_layer_cache_give_full_pass_metrics() {
    engine_shortcuts_match(tiny_roberta(), "roberta.encoder.layer.1.output.dense.weight");
}

fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
    row.iter().map(|&x| x as f64 - lse).collect()
}

/// LASER's RoBERTa protocol, computed by hand: `<s> prompt <mask>… suffix </s>` through a plain
/// forward pass, answers scored by their log-probabilities at the masks.
#[test]
fn a_masked_model_scores_answers_at_masks_like_a_direct_forward_pass() {
    let model = tiny_roberta();
    let tok = model.tokenizer().unwrap().clone();
    let (bos, eos, mask) = (256u32, 258u32, 259u32);
    assert_eq!(tok.token_id("<mask>"), Some(mask));
    let v = model.config().vocab_size;
    // Choices of two lengths; next-token items (CounterFact's protocol adds a full stop).
    let mut lines: Vec<serde_json::Value> = (0..12)
        .map(|i| serde_json::json!({"prompt": format!("{} ", words(40 + i, 3)), "choices": [" ab", " c", " de"], "answer": (i % 3)}))
        .collect();
    lines.extend((0..8).map(|i| serde_json::json!({"prompt": words(90 + i, 4), "answer": "xy"})));
    let task = load_task(write_jsonl("masked", &lines)).unwrap();
    let got = Evaluator::new(&model, &task.items, 256).unwrap().evaluate(&model).unwrap();

    let (mut correct, mut loss) = (0usize, 0.0f64);
    // Log-probabilities of `answer` at masks placed after `prompt` (+ `suffix`).
    let at_masks = |prompt: &str, answer: &[u32], suffix: &[u32]| -> Vec<Vec<f64>> {
        let p = tok.encode(prompt.trim_end()).unwrap();
        let mut seq = vec![bos];
        seq.extend(&p);
        seq.extend(std::iter::repeat_n(mask, answer.len()));
        seq.extend(suffix);
        seq.push(eos);
        let logits = model.all_logits(&[seq]).unwrap();
        (0..answer.len()).map(|k| log_softmax(&logits[(1 + p.len() + k) * v..][..v])).collect()
    };
    for line in &lines {
        let prompt = line["prompt"].as_str().unwrap();
        if let Some(choices) = line["choices"].as_array() {
            let gold = line["answer"].as_u64().unwrap() as usize;
            let scores: Vec<(f64, usize)> = choices
                .iter()
                .map(|c| {
                    let ids = tok.encode(c.as_str().unwrap()).unwrap();
                    let lp = at_masks(prompt, &ids, &[]);
                    (ids.iter().zip(&lp).map(|(&t, row)| row[t as usize]).sum(), ids.len())
                })
                .collect();
            let pred =
                (0..scores.len()).fold(0, |b, c| if scores[c].0 > scores[b].0 { c } else { b });
            correct += usize::from(pred == gold);
            loss -= scores[gold].0 / scores[gold].1 as f64;
        } else {
            let ids = tok.encode(" xy").unwrap();
            let lp = at_masks(prompt, &ids, &tok.encode(".").unwrap());
            let top = (0..v).fold(0, |b, t| if lp[0][t] > lp[0][b] { t } else { b });
            // CounterFact compares token texts, lower-cased and stripped.
            let text = |t: u32| tok.token_text(t).unwrap().trim().to_lowercase();
            correct += usize::from(text(top as u32) == text(ids[0]));
            loss -= ids.iter().zip(&lp).map(|(&t, row)| row[t as usize]).sum::<f64>()
                / ids.len() as f64;
        }
    }
    let n = lines.len();
    assert_eq!(got.accuracy, 100.0 * correct as f64 / n as f64, "{got:?}");
    assert!((got.logloss - loss / n as f64).abs() < 1e-4, "{} vs {}", got.logloss, loss / n as f64);
}

/// The gradient pass follows the loss the evaluator reports: with answers of equal token counts the
/// pass's mean token NLL is the evaluator's log-loss, for causal and masked models alike.
#[test]
fn the_gradient_pass_loss_is_the_evaluators_logloss() {
    for model in [tiny("gpt2"), tiny_roberta()] {
        let lines: Vec<serde_json::Value> = (0..10)
            .map(|i| serde_json::json!({"prompt": words(700 + i, 3), "choices": ["a", "b"], "answer": (i % 2)}))
            .collect();
        let task = load_task(write_jsonl("gradloss", &lines)).unwrap();
        let metrics = Evaluator::new(&model, &task.items, 256).unwrap().evaluate(&model).unwrap();
        let names = vec![model.matrices()[0].name.clone()];
        let pass = gradient_pass(&model, &task.items, &names, 3).unwrap();
        assert_eq!(pass.tokens, 20, "two byte tokens per answer");
        assert!((pass.loss - metrics.logloss).abs() < 1e-4, "{} vs {}", pass.loss, metrics.logloss);
        assert!(pass.grads[&names[0]].iter().any(|&g| g != 0.0));
    }
}

/// A family whose tokenizer puts a BOS before prompts (Llama 3, Gemma) is scored on exactly
/// that: the evaluator and the gradient pass both see it, and it changes the scores.
#[test]
fn prompts_start_with_the_tokenizers_bos_in_evaluation_and_gradients() {
    let plain = tiny("llama");
    let mut with_bos = tiny("llama");
    let tok = plain.tokenizer().unwrap().clone().with_bos(Some(1));
    with_bos.set_tokenizer(tok).unwrap();
    let lines: Vec<serde_json::Value> = (0..8)
        .map(|i| serde_json::json!({"prompt": words(800 + i, 2), "choices": ["a", "b"], "answer": (i % 2)}))
        .collect();
    let task = load_task(write_jsonl("bos", &lines)).unwrap();
    let names = vec![plain.matrices()[0].name.clone()];
    let mut losses = Vec::new();
    for model in [&plain, &with_bos] {
        let metrics = Evaluator::new(model, &task.items, 256).unwrap().evaluate(model).unwrap();
        let pass = gradient_pass(model, &task.items, &names, 3).unwrap();
        assert!((pass.loss - metrics.logloss).abs() < 1e-4, "{} vs {}", pass.loss, metrics.logloss);
        losses.push(metrics.logloss);
    }
    assert!((losses[0] - losses[1]).abs() > 1e-4, "the BOS changes what is scored: {losses:?}");
    // The evaluator's score equals a direct forward pass over BOS + prompt + answer.
    let item = &task.items[0];
    let tok = with_bos.tokenizer().unwrap();
    let prompt = tok.encode_prompt(&item.prompt).unwrap();
    assert_eq!(prompt[0], 1);
    let state = with_bos.prefill(&prompt).unwrap();
    let gold = tok.encode(&item.gold_continuation()).unwrap();
    let lp = with_bos.continuation_log_probs(&state, &[gold]).unwrap();
    let direct = -lp[0].iter().map(|&x| f64::from(x)).sum::<f64>() / lp[0].len() as f64;
    let one =
        Evaluator::new(&with_bos, &task.items[..1], 256).unwrap().evaluate(&with_bos).unwrap();
    assert!((one.logloss - direct).abs() < 1e-4, "{} vs {direct}", one.logloss);
}

#[test]
fn a_masked_model_rejects_generative_tasks_and_a_tokenizer_without_mask() {
    let model = tiny_roberta();
    let lines = [serde_json::json!({"prompt": "q", "answer": "x", "generate": 5})];
    let task = load_task(write_jsonl("masked-gen", &lines)).unwrap();
    let err = Evaluator::new(&model, &task.items, 256).unwrap_err().to_string();
    assert!(err.contains("generative") && err.contains("masked"), "{err}");
    let names = vec![model.matrices()[0].name.clone()];
    let err = gradient_pass(&model, &task.items, &names, 1).unwrap_err().to_string();
    assert!(err.contains("generative"), "{err}");

    let bare = tiny("roberta");
    let lines = [serde_json::json!({"prompt": "q", "choices": ["a", "b"], "answer": 0})];
    let task = load_task(write_jsonl("masked-nomask", &lines)).unwrap();
    let err = Evaluator::new(&bare, &task.items, 256).unwrap_err().to_string();
    assert!(err.contains("<mask>"), "{err}");
}

/// An evaluation stopped between blocks and continued (`evaluate_rest`: the race's deferred
/// confirmation) gives exactly the metrics of one full evaluation — per item, per class, with
/// and without the layer cache — and results that end inside a block are refused.
#[test]
fn an_evaluation_continued_after_its_first_blocks_is_the_full_evaluation() {
    let mut model = tiny("llama");
    let lines: Vec<serde_json::Value> = (0..18)
        .map(|i| {
            serde_json::json!({"prompt": format!("Relate these: {}", words(900 + i, 2 + (i % 4) as usize)), "choices": ["a b", "c", "de"], "answer": (i % 3)})
        })
        .collect();
    let task = load_task(write_jsonl("evaluate-rest", &lines)).unwrap();
    let parts = [(0..18).step_by(2).collect::<Vec<usize>>(), (1..18).step_by(2).collect()];
    let mut eval = Evaluator::in_blocks(&model, &task.items, 96, &parts, 4).unwrap();
    assert!(eval.blocks().len() >= 5, "{:?}", eval.blocks());
    for cached in [false, true] {
        if cached {
            EditEngine::new(0)
                .apply(&mut model, &[Edit::svd("model.layers.1.mlp.down_proj.weight", 0.1)])
                .unwrap();
            eval.cache_layer(&model, 1).unwrap();
        }
        let full = eval.evaluate(&model).unwrap();
        for stop_after in 1..eval.blocks().len() {
            let mut seen = 0;
            let partial = eval
                .evaluate_while(&model, |_| {
                    seen += 1;
                    seen < stop_after
                })
                .unwrap();
            assert!(!partial.complete);
            let scored = partial.metrics.items.as_ref().unwrap();
            let rest = eval.evaluate_rest(&model, scored).unwrap();
            assert_eq!(rest, full, "cache {cached}, stopped after block {stop_after}");
        }
        assert!(full.per_class.is_some() && full.items.is_some());
        // Results ending inside a block belong to another evaluation.
        let one = laser_search::ItemScores { correct: vec![true], nll: vec![0.5] };
        assert!(eval.evaluate_rest(&model, &one).is_err());
    }
    model.restore_all();
}

/// The layer cache computes a batch's states only when an evaluation reads them: an evaluation
/// stopped after its first block leaves the other batches uncomputed, a cache moved up computes
/// nothing until read, and the metrics are those of the model run from its embeddings throughout.
#[test]
fn the_layer_cache_computes_only_the_batches_an_evaluation_reaches() {
    let mut model = tiny("llama");
    let lines: Vec<serde_json::Value> = (0..18)
        .map(|i| {
            serde_json::json!({"prompt": format!("Weigh these: {}", words(700 + i, 2 + (i % 5) as usize)), "choices": ["yes", "no"], "answer": (i % 2)})
        })
        .collect();
    let task = load_task(write_jsonl("lazy-cache", &lines)).unwrap();
    let parts = [(0..18).step_by(2).collect::<Vec<usize>>(), (1..18).step_by(2).collect()];
    let mut eval = Evaluator::in_blocks(&model, &task.items, 96, &parts, 4).unwrap();
    let stop_after_first = |eval: &Evaluator, model: &laser_model::Model| {
        eval.evaluate_while(model, |_| false).unwrap()
    };
    let (plain_first, plain) = (stop_after_first(&eval, &model), eval.evaluate(&model).unwrap());
    eval.cache_layer(&model, 0).unwrap();
    assert_eq!(eval.cached_batches(), 0, "nothing is computed before an evaluation reads it");
    assert_eq!(stop_after_first(&eval, &model), plain_first);
    let reached = eval.cached_batches();
    assert!(reached >= 1 && reached < eval.batches(), "{reached} of {}", eval.batches());
    assert_eq!(eval.evaluate(&model).unwrap(), plain);
    assert_eq!(eval.cached_batches(), eval.batches());
    // Moved up: the states entering layer 0 are moved to layer 1 when read, under an edit at
    // layer 1.
    eval.cache_layer(&model, 1).unwrap();
    assert_eq!(eval.cached_batches(), 0);
    EditEngine::new(0)
        .apply(&mut model, &[Edit::svd("model.layers.1.mlp.down_proj.weight", 0.1)])
        .unwrap();
    let edited_first = stop_after_first(&eval, &model);
    assert_eq!(eval.cached_batches(), reached);
    let edited = eval.evaluate(&model).unwrap();
    eval.clear_cache();
    assert_eq!(stop_after_first(&eval, &model), edited_first);
    assert_eq!(eval.evaluate(&model).unwrap(), edited);
    assert_ne!(edited, plain, "the edit changes something");
    model.restore_all();
}

/// Checkpoints: the base model's evaluation keeps the states entering the layers asked for, so
/// that moving the layer cache up to one of them computes nothing — even after candidate edits
/// below it were restored — and every metric is what an evaluator without checkpoints gives.
/// Within a byte cap the highest layers are kept; an edit below a checkpoint makes it unusable.
#[test]
fn checkpoints_kept_by_the_base_evaluation_serve_the_scan_without_changing_a_metric() {
    let mut model = tiny("llama");
    let lines: Vec<serde_json::Value> = (0..14)
        .map(|i| {
            serde_json::json!({"prompt": format!("Sort these out: {}", words(900 + i, 2 + (i % 4) as usize)), "choices": ["yes", "no", "maybe"], "answer": (i % 3)})
        })
        .collect();
    let task = load_task(write_jsonl("checkpoints", &lines)).unwrap();
    let parts = [(0..14).collect::<Vec<usize>>()];
    let plain = Evaluator::in_blocks(&model, &task.items, 96, &parts, 4).unwrap();
    let mut eval = Evaluator::in_blocks(&model, &task.items, 96, &parts, 4).unwrap();
    let layers = model.config().num_layers;
    assert!(layers >= 2, "the tiny model has {layers} layers");
    let one = eval.checkpoint_bytes(&model);
    assert!(one > 0);
    assert_eq!(
        eval.keep_states_at(&model, &[1, 0, layers, 1], one),
        vec![1],
        "0 and the end are not layers an edit starts at"
    );
    assert_eq!(eval.keep_states_at(&model, &[1], 0), Vec::<usize>::new(), "no room");
    assert_eq!(eval.keep_states_at(&model, &[1], 3 * one), vec![1]);
    let base = eval.evaluate(&model).unwrap();
    assert_eq!(base, plain.evaluate(&model).unwrap());
    let down = |l: usize| format!("model.layers.{l}.mlp.down_proj.weight");
    // A candidate at layer 0 (edited and restored), then the cache moves up to the checkpoint.
    eval.cache_layer(&model, 0).unwrap();
    EditEngine::new(0).apply(&mut model, &[Edit::svd(down(0), 0.1)]).unwrap();
    let at_zero = eval.evaluate(&model).unwrap();
    model.restore_all();
    eval.cache_layer(&model, 1).unwrap();
    assert_eq!(eval.cached_batches(), eval.batches(), "every batch ready before any is read");
    EditEngine::new(0).apply(&mut model, &[Edit::svd(down(1), 0.1)]).unwrap();
    let at_one = eval.evaluate(&model).unwrap();
    assert_eq!(at_one, plain.evaluate(&model).unwrap());
    assert_ne!(at_one, base, "the edit changes something");
    model.restore_all();
    EditEngine::new(0).apply(&mut model, &[Edit::svd(down(0), 0.1)]).unwrap();
    assert_eq!(at_zero, plain.evaluate(&model).unwrap());
    model.restore_all();
    // Kept under weights that are not the model's now: not used.
    let mut stale = Evaluator::in_blocks(&model, &task.items, 96, &parts, 4).unwrap();
    stale.keep_states_at(&model, &[1], one);
    stale.evaluate(&model).unwrap();
    EditEngine::new(0).apply(&mut model, &[Edit::svd(down(0), 0.1)]).unwrap();
    stale.cache_layer(&model, 1).unwrap();
    assert_eq!(stale.cached_batches(), 0, "a checkpoint under other weights below it is not used");
    assert_eq!(stale.evaluate(&model).unwrap(), at_zero);
    model.restore_all();
}
