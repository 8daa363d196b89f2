//! The generic JSONL task format, one object per line:
//! - `{"prompt": "...", "answer": "..."}` — next-token scoring as CounterFact (the first token of
//!   `" " + answer` must be the top-1 prediction); log-loss over all answer tokens;
//! - `{"prompt": "...", "choices": ["a", "b"], "answer": 0 | "a"}` — multiple choice over the
//!   continuations `" " + choice`;
//! - `{"prompt": "...", "answer": "...", "generate": 15}` — greedy generation of at most 15 tokens,
//!   correct iff the answer appears in it.

use std::path::Path;

use serde_json::Value;

use super::{jsonl_records, string_field};
use crate::error::{Result, SearchError};
use crate::task::{Item, LoadOptions, Target, Task, TaskFormat};

pub(super) fn load(path: &Path, text: &str, opts: LoadOptions) -> Result<Task> {
    let mut items = Vec::new();
    for record in jsonl_records(path, text) {
        let (line, r) = record?;
        let bad = |m: String| SearchError::task(path, Some(line), m);
        let prompt = string_field(path, Some(line), &r, "prompt")?;
        let target = match r.get("choices") {
            Some(Value::Array(cs)) => {
                let choices: Vec<String> = cs
                    .iter()
                    .map(|c| {
                        c.as_str()
                            .filter(|s| !s.trim().is_empty())
                            .map(|s| format!(" {}", s.trim_start()))
                            .ok_or_else(|| bad(format!("choice {c} is not a non-empty string")))
                    })
                    .collect::<Result<_>>()?;
                if r.get("generate").is_some() {
                    return Err(bad(
                        "`generate` applies to a free answer, not to `choices`: drop one".into(),
                    ));
                }
                if choices.len() < 2 {
                    return Err(bad(format!("needs at least two choices, has {}", choices.len())));
                }
                let answer = match r.get("answer") {
                    Some(Value::Number(n)) => n
                        .as_u64()
                        .map(|n| n as usize)
                        .filter(|&n| n < choices.len())
                        .ok_or_else(|| bad(format!("answer index {n} is out of range")))?,
                    Some(Value::String(s)) => choices
                        .iter()
                        .position(|c| c.trim_start() == s.trim_start())
                        .ok_or_else(|| bad(format!("answer {s:?} is not one of the choices")))?,
                    _ => {
                        return Err(bad(
                            "`answer` should be a choice index or a choice string".into()
                        ));
                    }
                };
                Target::Choice { choices, answer }
            }
            Some(other) => return Err(bad(format!("`choices` should be an array, found {other}"))),
            None => {
                let answer = string_field(path, Some(line), &r, "answer")?;
                match r.get("generate") {
                    None => Target::NextToken { answer },
                    Some(Value::Number(n)) if let Some(tokens @ 1..=256) = n.as_u64() => {
                        Target::Generate { answers: vec![answer], max_tokens: tokens as usize }
                    }
                    Some(other) => {
                        return Err(bad(format!(
                            "`generate` should be a token count in 1..=256, found {other}"
                        )));
                    }
                }
            }
        };
        items.push(Item { prompt, target });
    }
    Task::new(path, TaskFormat::Jsonl, items, 0, 0, opts)
}
