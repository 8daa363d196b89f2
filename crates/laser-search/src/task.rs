//! The task model every format loads into: prompts with a target that says how an answer is
//! scored (LASER's protocol, DESIGN.md "Tasks and metrics").

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, SearchError};

/// How one item is scored.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Multiple choice: each choice is the exact continuation text (leading space included); the
    /// prediction is the choice with the highest summed token log-probability.
    Choice { choices: Vec<String>, answer: usize },
    /// Correct iff the top-1 next token equals the first token of `" " + answer` (compared
    /// lower-cased and stripped), as LASER scores CounterFact.
    NextToken { answer: String },
    /// Greedy decoding of at most `max_tokens`; correct iff a normalised gold answer is a
    /// substring of the normalised generation (not of the prompt).
    Generate { answers: Vec<String>, max_tokens: usize },
}

/// One task item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The prompt, exactly as fed to the model.
    pub prompt: String,
    /// How the answer is scored.
    pub target: Target,
}

impl Item {
    /// The gold continuation whose per-token NLL is the item's log-loss (and whose gradient the
    /// gradient pass follows).
    pub fn gold_continuation(&self) -> String {
        match &self.target {
            Target::Choice { choices, answer } => choices[*answer].clone(),
            Target::NextToken { answer } => format!(" {answer}"),
            Target::Generate { answers, .. } => format!(" {}", answers[0]),
        }
    }

    /// The gold class (choice index) of a choice item.
    pub fn class(&self) -> Option<usize> {
        match &self.target {
            Target::Choice { answer, .. } => Some(*answer),
            _ => None,
        }
    }
}

/// The data-set formats this crate reads (detected from content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFormat {
    /// EasyEdit-format CounterFact (`prompt`, `ground_truth`).
    CounterFact,
    /// ROME's `counterfact.json` (`requested_rewrite`, `paraphrase_prompts`).
    RomeCounterFact,
    /// FEVER jsonl (`claim`, `label`).
    Fever,
    /// HotpotQA json (`question`, `answer`).
    HotpotQa,
    /// A BIG-bench `task.json` with `target_scores` (multiple choice).
    BigBenchChoice,
    /// A BIG-bench `task.json` with string `target`s (generative).
    BigBenchGenerative,
    /// TruthfulQA `mc_task.json` (mc2 choices as true/false statements).
    TruthfulQa,
    /// Bias in Bios JSONL (`hard_text`, `gender`, `profession`): gender.
    BiasInBiosGender,
    /// Bias in Bios JSONL: profession (28 classes).
    BiasInBiosProfession,
    /// Generic JSONL: `{"prompt", "answer"}` or `{"prompt", "choices", "answer"}`.
    Jsonl,
}

impl TaskFormat {
    /// A short stable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::CounterFact => "counterfact",
            Self::RomeCounterFact => "counterfact-rome",
            Self::Fever => "fever",
            Self::HotpotQa => "hotpotqa",
            Self::BigBenchChoice => "bigbench-choice",
            Self::BigBenchGenerative => "bigbench-generative",
            Self::TruthfulQa => "truthfulqa-mc2",
            Self::BiasInBiosGender => "bias-in-bios-gender",
            Self::BiasInBiosProfession => "bias-in-bios-profession",
            Self::Jsonl => "jsonl",
        }
    }
}

/// How a task file is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Drop an ill-posed multiple-choice item — no choice with a positive BIG-bench target
    /// score, several sharing the top score, or a choice listed twice — instead of refusing the
    /// file; counted in [`Task::ill_posed`] and in the reports.
    pub drop_ill_posed: bool,
}

impl LoadOptions {
    /// Whether these are the defaults (left out of recorded settings, so older records match).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A loaded task.
#[derive(Debug, Clone)]
pub struct Task {
    /// Where it came from.
    pub path: PathBuf,
    /// The detected format.
    pub format: TaskFormat,
    /// The items, in file order.
    pub items: Vec<Item>,
    /// Records the protocol drops (FEVER's NOT ENOUGH INFO, duplicates and conflicts; BIG-bench
    /// list targets), counted so that nothing disappears silently.
    pub dropped: usize,
    /// Items whose prompt was cut to fit the model (`truncate_to_fit`); 0 as loaded.
    pub truncated: usize,
    /// Ill-posed items dropped on request ([`LoadOptions::drop_ill_posed`]).
    pub ill_posed: usize,
    /// Class names of a choice task whose items all share one choice list.
    pub classes: Option<Vec<String>>,
    /// A digest of the items as loaded ([`Task::content_digest`]).
    digest: String,
}

impl Task {
    /// Builds a task, rejecting an empty one and a choice item that lists one choice twice (the
    /// answer would be ambiguous) — or, with `opts.drop_ill_posed`, dropping such an item;
    /// `ill_posed` counts those the format's loader already dropped.
    pub(crate) fn new(
        path: &Path,
        format: TaskFormat,
        items: Vec<Item>,
        dropped: usize,
        ill_posed: usize,
        opts: LoadOptions,
    ) -> Result<Self> {
        let mut ill_posed = ill_posed;
        let mut kept = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            if let Target::Choice { choices, .. } = &item.target {
                let trimmed: Vec<&str> = choices.iter().map(|c| c.trim()).collect();
                if let Some(c) = (1..trimmed.len()).find(|&c| trimmed[..c].contains(&trimmed[c])) {
                    if opts.drop_ill_posed {
                        ill_posed += 1;
                        continue;
                    }
                    return Err(SearchError::task(
                        path,
                        None,
                        format!(
                            "item {i}: the choice {:?} is listed twice: the answer is ambiguous \
                             (--drop-ill-posed drops such items)",
                            trimmed[c]
                        ),
                    ));
                }
            }
            kept.push(item);
        }
        let items = kept;
        if items.is_empty() {
            return Err(SearchError::task(
                path,
                None,
                if ill_posed > 0 {
                    format!(
                        "no items left in this {} task after dropping {ill_posed} ill-posed ones",
                        format.name()
                    )
                } else {
                    format!("no items in this {} task", format.name())
                },
            ));
        }
        let classes = match &items[0].target {
            Target::Choice { choices, .. }
                if items.iter().all(
                    |i| matches!(&i.target, Target::Choice { choices: c, .. } if c == choices),
                ) =>
            {
                Some(choices.iter().map(|c| c.trim().to_owned()).collect())
            }
            _ => None,
        };
        let digest = items_digest(&items);
        Ok(Self {
            path: path.to_owned(),
            format,
            items,
            dropped,
            truncated: 0,
            ill_posed,
            classes,
            digest,
        })
    }

    /// A digest of the items as loaded (prompts and targets; not the file's formatting), kept
    /// when prompts are later cut to fit: part of a candidate log's, a ranking's and a suite
    /// result's identity, so that a task file edited between runs is not resumed with results
    /// of its old contents. FNV-1a, 64 bits: stable across builds and platforms, and a guard
    /// against accidents, not against an adversary.
    pub fn content_digest(&self) -> &str {
        &self.digest
    }
}

fn items_digest(items: &[Item]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut h = OFFSET;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    for item in items {
        eat(item.prompt.as_bytes());
        match &item.target {
            Target::Choice { choices, answer } => {
                eat(b"choice");
                choices.iter().for_each(|c| eat(c.as_bytes()));
                eat(&answer.to_le_bytes());
            }
            Target::NextToken { answer } => {
                eat(b"next-token");
                eat(answer.as_bytes());
            }
            Target::Generate { answers, max_tokens } => {
                eat(b"generate");
                answers.iter().for_each(|a| eat(a.as_bytes()));
                eat(&max_tokens.to_le_bytes());
            }
        }
    }
    format!("fnv1a64:{h:016x}")
}
