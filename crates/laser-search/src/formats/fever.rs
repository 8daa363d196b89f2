//! FEVER 1.0 (Thorne et al. 2018), LASER's protocol: drop NOT ENOUGH INFO, SUPPORTS = true and
//! REFUTES = false, keep each claim once, and drop claims seen with both labels. Prompt:
//! `"Consider the following claim: {claim}. Is this claim true or false. The claim is"`, scored
//! by comparing log p(" true") with log p(" false").

use std::collections::HashMap;
use std::path::Path;

use super::{jsonl_records, string_field};
use crate::error::{Result, SearchError};
use crate::task::{Item, LoadOptions, Target, Task, TaskFormat};

pub(super) fn load(path: &Path, text: &str, opts: LoadOptions) -> Result<Task> {
    // claim → (label, first line); conflicting claims are removed at the end.
    let mut order: Vec<String> = Vec::new();
    let mut labels: HashMap<String, Option<bool>> = HashMap::new();
    let mut records = 0usize;
    for record in jsonl_records(path, text) {
        let (line, r) = record?;
        records += 1;
        let label = string_field(path, Some(line), &r, "label")?;
        let truth = match label.as_str() {
            "SUPPORTS" => true,
            "REFUTES" => false,
            "NOT ENOUGH INFO" => continue,
            other => {
                return Err(SearchError::task(
                    path,
                    Some(line),
                    format!("unknown label {other:?}"),
                ));
            }
        };
        let claim = string_field(path, Some(line), &r, "claim")?;
        match labels.get_mut(&claim) {
            None => {
                order.push(claim.clone());
                labels.insert(claim, Some(truth));
            }
            Some(seen) if *seen != Some(truth) => *seen = None,
            Some(_) => {}
        }
    }
    let items: Vec<Item> = order
        .into_iter()
        .filter_map(|claim| {
            let truth = labels[&claim]?;
            let claim = claim.trim_end().trim_end_matches('.').to_owned();
            Some(Item {
                prompt: format!("Consider the following claim: {claim}. Is this claim true or false. The claim is"),
                target: Target::Choice { choices: vec![" true".into(), " false".into()], answer: usize::from(!truth) },
            })
        })
        .collect();
    let dropped = records - items.len();
    Task::new(path, TaskFormat::Fever, items, dropped, 0, opts)
}
