//! Task loading: the format is detected from the file's content, never its name; each format
//! lives in its own file. Malformed input fails with the file and line.

mod bias_in_bios;
mod bigbench;
mod counterfact;
mod fever;
mod hotpotqa;
mod jsonl;
mod truthfulqa;

use std::path::Path;

use serde_json::Value;

use crate::error::{Result, SearchError};
use crate::task::{LoadOptions, Task};

pub use bias_in_bios::PROFESSIONS;

/// Loads a task file in any supported format.
pub fn load_task(path: impl AsRef<Path>) -> Result<Task> {
    load_task_with(path, LoadOptions::default())
}

/// [`load_task`] with options.
pub fn load_task_with(path: impl AsRef<Path>, opts: LoadOptions) -> Result<Task> {
    let path = path.as_ref();
    let text = crate::error::read_text(path)?;
    parse_task_with(path, &text, opts)
}

/// Parses a task from its text, detecting the format from the content; `path` names the file in
/// errors and in the task.
pub fn parse_task(path: &Path, text: &str) -> Result<Task> {
    parse_task_with(path, text, LoadOptions::default())
}

/// [`parse_task`] with options.
pub fn parse_task_with(path: &Path, text: &str, opts: LoadOptions) -> Result<Task> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(SearchError::task(path, None, "the file is empty"));
    }
    if trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(text).map_err(|e| json_error(path, &e))?;
        let items = value.as_array().expect("starts with [");
        let first = items
            .first()
            .ok_or_else(|| SearchError::task(path, None, "the JSON array is empty"))?;
        return if first.get("requested_rewrite").is_some() {
            counterfact::load_rome(path, items, opts)
        } else if first.get("ground_truth").is_some() && first.get("prompt").is_some() {
            counterfact::load_easyedit(path, items, opts)
        } else if first.get("mc2_targets").is_some() {
            truthfulqa::load(path, items, opts)
        } else if first.get("question").is_some() && first.get("answer").is_some() {
            hotpotqa::load(path, items, opts)
        } else {
            Err(unknown(path, first))
        };
    }
    // One JSON object is a BIG-bench task; several lines of objects are JSONL.
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text)
        && obj.contains_key("examples")
    {
        return bigbench::load(path, &obj, opts);
    }
    let first_line = text.lines().position(|l| !l.trim().is_empty()).unwrap_or(0);
    let first: Value = serde_json::from_str(text.lines().nth(first_line).unwrap_or(""))
        .map_err(|e| SearchError::task(path, Some(first_line + 1), format!("not JSON: {e}")))?;
    if first.get("claim").is_some() && first.get("label").is_some() {
        fever::load(path, text, opts)
    } else if first.get("hard_text").is_some() {
        bias_in_bios::load(path, text, bias_in_bios::Attribute::Gender, opts)
    } else if first.get("prompt").is_some() {
        jsonl::load(path, text, opts)
    } else {
        Err(unknown(path, &first))
    }
}

/// Loads a Bias in Bios JSONL file as the 28-way profession task (content detection alone picks
/// the gender task, since both read the same file).
pub fn load_bias_in_bios_profession(path: &Path) -> Result<Task> {
    let text = crate::error::read_text(path)?;
    bias_in_bios::load(path, &text, bias_in_bios::Attribute::Profession, LoadOptions::default())
}

fn unknown(path: &Path, first: &Value) -> SearchError {
    let keys: Vec<&str> =
        first.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    SearchError::task(
        path,
        None,
        format!(
            "unrecognised task format (first record has keys {keys:?}); supported: CounterFact, FEVER, HotpotQA, BIG-bench, TruthfulQA, Bias in Bios, JSONL with `prompt`"
        ),
    )
}

pub(crate) fn json_error(path: &Path, e: &serde_json::Error) -> SearchError {
    SearchError::task(path, Some(e.line()), format!("invalid JSON: {e}"))
}

/// Iterates the non-empty lines of a JSONL text as `(1-based line, object)`.
pub(crate) fn jsonl_records<'a>(
    path: &'a Path,
    text: &'a str,
) -> impl Iterator<Item = Result<(usize, Value)>> + 'a {
    text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(move |(i, l)| {
        let v: Value = serde_json::from_str(l)
            .map_err(|e| SearchError::task(path, Some(i + 1), format!("not JSON: {e}")))?;
        if v.is_object() {
            Ok((i + 1, v))
        } else {
            Err(SearchError::task(path, Some(i + 1), "expected a JSON object"))
        }
    })
}

/// A required non-empty string field.
pub(crate) fn string_field(
    path: &Path,
    line: Option<usize>,
    record: &Value,
    key: &str,
) -> Result<String> {
    match record.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => {
            Err(SearchError::task(path, line, format!("field `{key}` is empty")))
        }
        Some(other) => Err(SearchError::task(
            path,
            line,
            format!("field `{key}` should be a string, found {other}"),
        )),
        None => Err(SearchError::task(path, line, format!("missing field `{key}`"))),
    }
}
