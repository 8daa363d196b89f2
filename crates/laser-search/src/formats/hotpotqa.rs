//! HotpotQA (Yang et al. 2018), generative: `"{question} The answer is"`, greedy decoding of at
//! most 15 tokens, correct iff the normalised answer appears in the generation.

use std::path::Path;

use serde_json::Value;

use super::string_field;
use crate::error::{Result, SearchError};
use crate::task::{Item, LoadOptions, Target, Task, TaskFormat};

pub(super) fn load(path: &Path, records: &[Value], opts: LoadOptions) -> Result<Task> {
    let items = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let named = |e: SearchError| match e {
                SearchError::Task { path, line, message } => {
                    SearchError::Task { path, line, message: format!("record {i}: {message}") }
                }
                other => other,
            };
            let q = string_field(path, None, r, "question").map_err(named)?;
            let a = string_field(path, None, r, "answer").map_err(named)?;
            Ok(Item {
                prompt: format!("{} The answer is", q.trim()),
                target: Target::Generate { answers: vec![a], max_tokens: 15 },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Task::new(path, TaskFormat::HotpotQa, items, 0, 0, opts)
}
