//! The activation budget and prompt truncation (issue 17, item 1): batches split to fit a budget
//! score exactly what unsplit batches score, gradients split into smaller micro-batches sum to
//! the same gradients, an item that cannot fit is refused by name, and a truncated prompt keeps
//! the end it was asked to keep and then fits.

mod common;

use common::*;
use laser_model::{Model, Pass, RowShape};
use laser_search::{Evaluator, Task, Truncate, check_context, gradient_pass, load_task};

fn task(tag: &str, prompts: &[String]) -> Task {
    let lines: Vec<serde_json::Value> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| serde_json::json!({"prompt": p, "choices": [" yes", " no", " maybe"], "answer": i % 3}))
        .collect();
    load_task(write_jsonl(tag, &lines)).unwrap()
}

/// A budget of exactly `rows` evaluation rows of `tokens` tokens (all three choices scored).
fn rows_budget(model: &Model, pass: Pass, rows: usize, tokens: usize) -> u64 {
    model.activation_bytes(pass, rows, RowShape { tokens, prefix: 0, scored: tokens })
}

#[test]
fn the_estimate_grows_linearly_in_rows_and_faster_than_linearly_in_tokens() {
    let model = tiny("llama");
    let shape = |tokens| RowShape { tokens, prefix: 0, scored: 4 };
    for pass in [Pass::Forward, Pass::Gradient] {
        let one = model.activation_bytes(pass, 1, shape(50));
        assert_eq!(model.activation_bytes(pass, 7, shape(50)), 7 * one);
        // Attention maps are quadratic: doubling the tokens more than doubles the bytes.
        let unscored = |tokens| RowShape { tokens, prefix: 0, scored: 0 };
        assert!(
            model.activation_bytes(pass, 1, unscored(100))
                > 2 * model.activation_bytes(pass, 1, unscored(50))
        );
        // Scored positions add the LM head's logits, linearly.
        let head = one - model.activation_bytes(pass, 1, unscored(50));
        assert_eq!(head, 4 * 3 * 4 * model.config().vocab_size as u64);
    }
    // A gradient pass keeps every layer's tensors: more than one layer's forward.
    assert!(
        model.activation_bytes(Pass::Gradient, 1, shape(50))
            > model.activation_bytes(Pass::Forward, 1, shape(50))
    );
}

#[test]
fn evaluation_split_to_fit_a_budget_scores_what_unsplit_batches_score() {
    let mut model = tiny("llama");
    let prompts: Vec<String> = (0..12).map(|i| words(300 + i, 2 + (i as usize % 5))).collect();
    let t = task("budget-eval", &prompts);
    // No budget: one or two batches (the batching cuts where padding costs more than a batch).
    let whole = Evaluator::new(&model, &t.items, 1 << 20).unwrap();
    assert!(whole.batches() <= 2, "{} batches", whole.batches());
    let whole = whole.evaluate(&model).unwrap();
    // Room for about one row at a time: a batch per row or two.
    let longest = t.items.iter().map(|i| i.prompt.len() + 12).max().unwrap();
    model.set_activation_budget(Some(rows_budget(&model, Pass::Forward, 1, longest + 8)));
    let split = Evaluator::new(&model, &t.items, 1 << 20).unwrap();
    assert!(split.batches() >= 6, "{} batches", split.batches());
    let split = split.evaluate(&model).unwrap();
    let (a, b) = (whole.items.unwrap(), split.items.unwrap());
    assert_eq!(a.correct, b.correct);
    for (x, y) in a.nll.iter().zip(&b.nll) {
        assert!((x - y).abs() < 1e-5, "{x} vs {y}");
    }
    assert_eq!(whole.accuracy, split.accuracy);
}

#[test]
fn gradients_in_budget_sized_micro_batches_equal_one_micro_batch() {
    let mut model = tiny("llama");
    let prompts: Vec<String> = (0..8).map(|i| words(500 + i, 3 + i as usize % 3)).collect();
    let t = task("budget-grad", &prompts);
    let names: Vec<String> = model.matrices().iter().map(|m| m.name.clone()).collect();
    let whole = gradient_pass(&model, &t.items, &names, 8).unwrap();
    let longest = t.items.iter().map(|i| i.prompt.len() + 8).max().unwrap();
    model.set_activation_budget(Some(rows_budget(&model, Pass::Gradient, 1, longest)));
    let split = gradient_pass(&model, &t.items, &names, 8).unwrap();
    assert_eq!(whole.micro_batches, 1);
    assert!(split.micro_batches >= 6, "{} micro-batches", split.micro_batches);
    assert!((whole.loss - split.loss).abs() < 1e-6 * whole.loss.abs().max(1.0));
    for name in &names {
        let (a, b) = (&whole.grads[name], &split.grads[name]);
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-4 * scale, "{name}: max diff {diff} of scale {scale}");
    }
}

#[test]
fn an_item_over_the_budget_is_refused_naming_it_and_the_sizes() {
    let mut model = tiny("llama");
    let mut prompts: Vec<String> = (0..6).map(|i| words(700 + i, 2)).collect();
    prompts[4] = words(9, 15); // ~80 bytes: within the 128-token context
    let t = task("budget-refuse", &prompts);
    let short = t.items.iter().map(|i| i.prompt.len()).filter(|&n| n < 40).max().unwrap();
    model.set_activation_budget(Some(rows_budget(&model, Pass::Forward, 1, short + 20)));
    let err = check_context(&model, &t, Pass::Forward).unwrap_err().to_string();
    for needle in [t.path.to_str().unwrap(), "item 4", "memory budget", "MiB"] {
        assert!(err.contains(needle), "expected {needle:?} in {err}");
    }
    // The same items without the long one pass.
    let mut fits = t.clone();
    fits.items.remove(4);
    check_context(&model, &fits, Pass::Forward).unwrap();
}

/// The default budget is a target, not a limit: the same item a limit refuses runs alone under
/// a target of the same size, with the gradients and scores it has without any budget.
#[test]
fn a_default_target_splits_batches_but_lets_a_long_item_run_alone() {
    let mut model = tiny("llama");
    let mut prompts: Vec<String> = (0..6).map(|i| words(720 + i, 2)).collect();
    prompts[4] = words(19, 15);
    let t = task("budget-target", &prompts);
    let names: Vec<String> = model.matrices().iter().map(|m| m.name.clone()).collect();
    let free = gradient_pass(&model, &t.items, &names, 8).unwrap();
    let free_eval = Evaluator::new(&model, &t.items, 1 << 20).unwrap().evaluate(&model).unwrap();
    let short = t.items.iter().map(|i| i.prompt.len()).filter(|&n| n < 40).max().unwrap();
    let bytes = rows_budget(&model, Pass::Gradient, 1, short + 20);
    model.set_activation_budget(Some(bytes));
    assert!(model.activation_budget_is_hard());
    assert!(check_context(&model, &t, Pass::Gradient).is_err());
    assert!(gradient_pass(&model, &t.items, &names, 8).is_err());
    model.set_activation_target(bytes);
    assert!(!model.activation_budget_is_hard());
    check_context(&model, &t, Pass::Gradient).unwrap();
    let split = gradient_pass(&model, &t.items, &names, 8).unwrap();
    assert!(split.micro_batches >= 4, "{} micro-batches", split.micro_batches);
    assert!((free.loss - split.loss).abs() < 1e-6 * free.loss.abs().max(1.0));
    for name in &names {
        let (a, b) = (&free.grads[name], &split.grads[name]);
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-4 * scale, "{name}: max diff {diff} of scale {scale}");
    }
    let split_eval = Evaluator::new(&model, &t.items, 1 << 20).unwrap().evaluate(&model).unwrap();
    assert_eq!(free_eval.items.unwrap().correct, split_eval.items.unwrap().correct);
}

#[test]
fn truncation_keeps_the_asked_end_of_the_prompt_and_fits() {
    let model = tiny("llama");
    // Byte tokenizer: a token per byte, so "fits" is exact and the kept text is checkable.
    let long: String = (0..40).map(|i| format!("w{i:02} ")).collect(); // 160 bytes > 128
    let prompts = vec!["short".to_owned(), long.clone(), "also short".to_owned()];
    for side in [Truncate::Left, Truncate::Right] {
        let mut t = task(&format!("truncate-{side}"), &prompts);
        assert!(check_context(&model, &t, Pass::Forward).is_err());
        let cut = laser_search::truncate_to_fit(&model, &mut t, side, Pass::Forward).unwrap();
        assert_eq!((cut, t.truncated), (1, 1));
        check_context(&model, &t, Pass::Forward).unwrap();
        let kept = &t.items[1].prompt;
        match side {
            Truncate::Left => assert!(long.ends_with(kept.as_str()), "{kept:?}"),
            Truncate::Right => assert!(long.starts_with(kept.as_str()), "{kept:?}"),
        }
        // The longest prompt that fits: prompt + longest answer (" maybe", 6) = the context.
        assert_eq!(kept.len() + 6, model.context_length().0, "{kept:?}");
        assert_eq!(t.items[0].prompt, "short");
    }
}

#[test]
fn an_item_whose_answers_alone_exceed_the_context_cannot_be_truncated() {
    let model = tiny("llama");
    let answer = "x".repeat(200);
    let lines = vec![serde_json::json!({"prompt": "q", "choices": [answer, "y"], "answer": 0})];
    let mut t = load_task(write_jsonl("truncate-answers", &lines)).unwrap();
    let err = laser_search::truncate_to_fit(&model, &mut t, Truncate::Left, Pass::Forward)
        .unwrap_err()
        .to_string();
    assert!(err.contains("item 0") && err.contains("cannot be truncated"), "{err}");
}
