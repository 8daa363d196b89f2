//! CounterFact (Meng et al. 2022, ROME): "the prompt's next token is the true object".
//! EasyEdit's release (`prompt` with the subject filled in, `ground_truth`) and ROME's own
//! `counterfact.json` (`requested_rewrite.prompt` with `{}` for the subject, `target_true.str`).
//! LASER also scores ROME's paraphrase prompts; each becomes one more item with the same answer.

use std::path::Path;

use serde_json::Value;

use super::string_field;
use crate::error::{Result, SearchError};
use crate::task::{Item, LoadOptions, Target, Task, TaskFormat};

pub(super) fn load_easyedit(path: &Path, records: &[Value], opts: LoadOptions) -> Result<Task> {
    let items = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |e: SearchError| with_record(e, i);
            let prompt = string_field(path, None, r, "prompt").map_err(at)?;
            let answer = string_field(path, None, r, "ground_truth").map_err(at)?;
            Ok(Item { prompt, target: Target::NextToken { answer } })
        })
        .collect::<Result<Vec<_>>>()?;
    Task::new(path, TaskFormat::CounterFact, items, 0, 0, opts)
}

pub(super) fn load_rome(path: &Path, records: &[Value], opts: LoadOptions) -> Result<Task> {
    let mut items = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let at = |e: SearchError| with_record(e, i);
        let rw = r
            .get("requested_rewrite")
            .ok_or_else(|| at(SearchError::task(path, None, "missing `requested_rewrite`")))?;
        let template = string_field(path, None, rw, "prompt").map_err(at)?;
        let subject = string_field(path, None, rw, "subject").map_err(at)?;
        let truth = rw
            .get("target_true")
            .ok_or_else(|| at(SearchError::task(path, None, "missing `target_true`")))?;
        let answer = string_field(path, None, truth, "str").map_err(at)?;
        if !template.contains("{}") {
            return Err(at(SearchError::task(
                path,
                None,
                format!("prompt {template:?} has no `{{}}` for the subject"),
            )));
        }
        items.push(Item {
            prompt: template.replace("{}", &subject),
            target: Target::NextToken { answer: answer.clone() },
        });
        // Paraphrases are items too: a malformed one is an error, not silently skipped.
        let paraphrases = match r.get("paraphrase_prompts") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(ps)) => ps.as_slice(),
            Some(other) => {
                return Err(at(SearchError::task(
                    path,
                    None,
                    format!("`paraphrase_prompts` should be a list of strings, found {other}"),
                )));
            }
        };
        for p in paraphrases {
            let p = p.as_str().filter(|p| !p.trim().is_empty()).ok_or_else(|| {
                at(SearchError::task(
                    path,
                    None,
                    format!("paraphrase prompt {p} is not a non-empty string"),
                ))
            })?;
            items.push(Item {
                prompt: p.to_owned(),
                target: Target::NextToken { answer: answer.clone() },
            });
        }
    }
    Task::new(path, TaskFormat::RomeCounterFact, items, 0, 0, opts)
}

/// Names the record (0-based index) in a whole-file JSON error.
fn with_record(e: SearchError, index: usize) -> SearchError {
    match e {
        SearchError::Task { path, line, message } => {
            SearchError::Task { path, line, message: format!("record {index}: {message}") }
        }
        other => other,
    }
}
