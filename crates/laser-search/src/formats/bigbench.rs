//! BIG-bench `task.json` (Srivastava et al. 2022): multiple-choice tasks (`target_scores`) and
//! generative tasks (`target`), formatted as BIG-bench's reference formatter does
//! (`default_format_fn` in `bigbench/api/json_task.py`):
//!
//! prompt = `task_prefix + example_input_prefix + input [+ choice_prefix + each choice] +
//! example_output_prefix`, trailing whitespace stripped (so epistemic reasoning prompts end in
//! "Relation:"). The choices are appended when `append_choices_to_input` is true (BIG-bench's
//! default) and the task is multiple choice; `choice_prefix` defaults to `"\n  choice: "`,
//! `example_input_prefix` to `"\nQ: "`, `example_output_prefix` to `"\nA: "`.
//!
//! One documented difference: BIG-bench appends the choices in an order drawn by a seeded numpy
//! permutation of the sorted choice texts; we append them in sorted order (deterministic without
//! numpy's generator, and the same for every run).
//!
//! A choice is scored as the continuation `" " + choice`; the gold choice is the one with the
//! highest score. Generative tasks keep examples whose target is a single string (as LASER does
//! for WikidataQA); list targets are counted in `dropped`.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Result, SearchError};
use crate::task::{Item, LoadOptions, Target, Task, TaskFormat};

pub(super) fn load(path: &Path, task: &Map<String, Value>, opts: LoadOptions) -> Result<Task> {
    let text = |key: &str, default: &str| -> Result<String> {
        match task.get(key) {
            None | Some(Value::Null) => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(SearchError::task(
                path,
                None,
                format!("`{key}` should be a string, found {other}"),
            )),
        }
    };
    let prefix = text("task_prefix", "")?;
    let input_prefix = text("example_input_prefix", "\nQ: ")?;
    let output_prefix = text("example_output_prefix", "\nA: ")?;
    let choice_prefix = text("choice_prefix", "\n  choice: ")?;
    let append_choices = match task.get("append_choices_to_input") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(SearchError::task(
                path,
                None,
                format!("`append_choices_to_input` should be true or false, found {other}"),
            ));
        }
    };
    let examples = task
        .get("examples")
        .and_then(Value::as_array)
        .ok_or_else(|| SearchError::task(path, None, "`examples` should be an array"))?;
    let bad = |i: usize, m: String| SearchError::task(path, None, format!("example {i}: {m}"));
    let choice_task = examples.first().is_some_and(|e| e.get("target_scores").is_some());
    let mut items = Vec::new();
    let (mut dropped, mut ill_posed) = (0, 0);
    for (i, e) in examples.iter().enumerate() {
        let input = e
            .get("input")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(i, "missing string `input`".into()))?;
        let prompt = |input: &str| {
            format!("{prefix}{input_prefix}{input}{output_prefix}").trim_end().to_owned()
        };
        if choice_task {
            let scores = e
                .get("target_scores")
                .and_then(Value::as_object)
                .ok_or_else(|| bad(i, "missing `target_scores` object".into()))?;
            if scores.len() < 2 {
                return Err(bad(i, format!("needs at least two choices, has {}", scores.len())));
            }
            let mut choices = Vec::new();
            let mut best = (0usize, f64::NEG_INFINITY);
            let mut tied = Vec::new();
            for (c, (name, score)) in scores.iter().enumerate() {
                let s = score
                    .as_f64()
                    .ok_or_else(|| bad(i, format!("score of {name:?} is not a number")))?;
                if s > best.1 {
                    best = (c, s);
                    tied.clear();
                }
                if s == best.1 {
                    tied.push(name.as_str());
                }
                choices.push(format!(" {name}"));
            }
            // An item BIG-bench itself cannot grade is refused (or dropped, on request), not
            // scored against a guess.
            let ill = if best.1 <= 0.0 {
                Some(format!(
                    "no choice has a positive target score (best {}): there is no answer to score",
                    best.1
                ))
            } else if tied.len() > 1 {
                Some(format!(
                    "choices {} share the top target score {}: the answer is ambiguous",
                    tied.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", "),
                    best.1
                ))
            } else {
                None
            };
            if let Some(reason) = ill {
                if opts.drop_ill_posed {
                    ill_posed += 1;
                    continue;
                }
                return Err(bad(i, format!("{reason} (--drop-ill-posed drops such items)")));
            }
            // `target_scores` iterates in sorted key order (serde_json's map is ordered).
            let prompt = if append_choices {
                let listed: Vec<&str> = scores.keys().map(String::as_str).collect();
                prompt(&format!("{input}{choice_prefix}{}", listed.join(&choice_prefix)))
            } else {
                prompt(input)
            };
            items.push(Item { prompt, target: Target::Choice { choices, answer: best.0 } });
        } else {
            match e.get("target") {
                Some(Value::String(t)) if !t.trim().is_empty() => items.push(Item {
                    prompt: prompt(input),
                    target: Target::Generate { answers: vec![t.clone()], max_tokens: 10 },
                }),
                Some(Value::Array(_)) => dropped += 1,
                Some(other) => {
                    return Err(bad(
                        i,
                        format!("`target` should be a string or a list, found {other}"),
                    ));
                }
                None => return Err(bad(i, "has neither `target_scores` nor `target`".into())),
            }
        }
    }
    let format =
        if choice_task { TaskFormat::BigBenchChoice } else { TaskFormat::BigBenchGenerative };
    Task::new(path, format, items, dropped, ill_posed, opts)
}
