//! Bias in Bios (De-Arteaga et al. 2019), as the HF export `LabHC/bias_in_bios` writes it to JSONL
//! (`hard_text`, `gender` 0 = male / 1 = female, `profession` 0–27). LASER's exact wording is not
//! available here; these templates follow its FEVER/TruthfulQA style and are fixed so that results
//! are comparable across runs: gender — `"Consider the following text: {bio}\nIs the person in this text male or female? The
//! person is"` with choices " male" / " female"; profession — `"Consider the following text:
//! {bio}\nWhat is the profession of the person in this text? The profession of this person is"`
//! with the 28 profession names as choices.

use std::path::Path;

use serde_json::Value;

use super::{jsonl_records, string_field};
use crate::error::{Result, SearchError};
use crate::task::{Item, LoadOptions, Target, Task, TaskFormat};

/// The 28 professions in `LabHC/bias_in_bios` label order.
pub const PROFESSIONS: [&str; 28] = [
    "accountant",
    "architect",
    "attorney",
    "chiropractor",
    "comedian",
    "composer",
    "dentist",
    "dietitian",
    "dj",
    "filmmaker",
    "interior designer",
    "journalist",
    "model",
    "nurse",
    "painter",
    "paralegal",
    "pastor",
    "personal trainer",
    "photographer",
    "physician",
    "poet",
    "professor",
    "psychologist",
    "rapper",
    "software engineer",
    "surgeon",
    "teacher",
    "yoga teacher",
];

/// Which attribute is predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attribute {
    Gender,
    Profession,
}

pub(crate) fn load(
    path: &Path,
    text: &str,
    attribute: Attribute,
    opts: LoadOptions,
) -> Result<Task> {
    let mut items = Vec::new();
    for record in jsonl_records(path, text) {
        let (line, r) = record?;
        let bio = string_field(path, Some(line), &r, "hard_text")?;
        let label = |key: &str, max: i64| -> Result<usize> {
            match r.get(key).and_then(Value::as_i64) {
                Some(v) if (0..max).contains(&v) => Ok(v as usize),
                _ => Err(SearchError::task(
                    path,
                    Some(line),
                    format!("`{key}` should be an integer in 0..{max}, found {:?}", r.get(key)),
                )),
            }
        };
        let item = match attribute {
            Attribute::Gender => Item {
                prompt: format!(
                    "Consider the following text: {}\nIs the person in this text male or female? The person is",
                    bio.trim()
                ),
                target: Target::Choice {
                    choices: vec![" male".into(), " female".into()],
                    answer: label("gender", 2)?,
                },
            },
            Attribute::Profession => Item {
                prompt: format!(
                    "Consider the following text: {}\nWhat is the profession of the person in this text? The profession of this person is",
                    bio.trim()
                ),
                target: Target::Choice {
                    choices: PROFESSIONS.iter().map(|p| format!(" {p}")).collect(),
                    answer: label("profession", 28)?,
                },
            },
        };
        items.push(item);
    }
    let format = match attribute {
        Attribute::Gender => TaskFormat::BiasInBiosGender,
        Attribute::Profession => TaskFormat::BiasInBiosProfession,
    };
    Task::new(path, format, items, 0, 0, opts)
}
