//! Collateral harm (issue 28): an edit recommended for one task is also scored on every other
//! suite task's selection items, against the base model on the same items. A user adapting a
//! model to a task does not expect it to get worse at everything else; `laser suite
//! --collateral` measures it. Selection items only — the other tasks' test splits stay unseen.

use laser_model::Model;
use serde::{Deserialize, Serialize};

use crate::edits::EditEngine;
use crate::error::Result;
use crate::interval::AccuracyDelta;
use crate::scoring::{EvalRequest, SplitChoice, evaluate};
use crate::search::config::SearchConfig;
use crate::task::Task;

/// One other task under a task's recommended edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollateralTask {
    /// The other task's name.
    pub task: String,
    /// Its selection items.
    pub n: usize,
    /// Base model's selection accuracy there (%).
    pub base: f64,
    /// The edited model's (%).
    pub adapted: f64,
    /// The change with its 95% paired-bootstrap interval (points).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<AccuracyDelta>,
}

/// A recommended edit's effect on every other task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collateral {
    /// Mean accuracy change over the other tasks (points).
    pub mean_delta: f64,
    /// Other tasks whose interval lies entirely below zero.
    pub harmed: usize,
    /// Per other task.
    pub tasks: Vec<CollateralTask>,
}

/// A suite task as collateral measurement sees it: its name, its recommended edits (empty: no
/// edit), and whether it ran (a failed task is neither measured nor measured on).
pub(crate) struct TaskOutcome<'a> {
    pub name: &'a str,
    pub edits: &'a [crate::edits::Edit],
    pub ran: bool,
}

/// For every task whose recommendation edits the model, that edit scored on every other task
/// (loaded, and not failed) on its selection items; `None` for the others. The base model's
/// scores are computed once per task.
pub(crate) fn measure(
    model: &mut Model,
    outcomes: &[TaskOutcome<'_>],
    tasks: &[Option<&Task>],
    cfg: &SearchConfig,
) -> Result<Vec<Option<Collateral>>> {
    let request = EvalRequest {
        n: cfg.n,
        seed: cfg.seed,
        split: SplitChoice::Select,
        truncate: cfg.truncate,
        batch_tokens: cfg.batch_tokens,
    };
    let mut out = vec![None; outcomes.len()];
    let edited: Vec<usize> = (0..outcomes.len())
        .filter(|&i| outcomes[i].ran && !outcomes[i].edits.is_empty() && tasks[i].is_some())
        .collect();
    if edited.is_empty() {
        return Ok(out);
    }
    model.restore_all();
    let mut base = Vec::with_capacity(tasks.len());
    for t in tasks {
        base.push(match t {
            Some(t) => Some(evaluate(model, t, &request)?),
            None => None,
        });
    }
    let mut engine = EditEngine::new(cfg.seed);
    for i in edited {
        engine.apply(model, outcomes[i].edits)?;
        let mut others = Vec::new();
        for (j, (t, b)) in tasks.iter().zip(&base).enumerate() {
            let (Some(t), Some(b)) = (t, b) else { continue };
            if j == i || !outcomes[j].ran {
                continue;
            }
            let a = match evaluate(model, t, &request) {
                Ok(a) => a,
                Err(e) => {
                    model.restore_all();
                    return Err(e);
                }
            };
            others.push(CollateralTask {
                task: outcomes[j].name.to_owned(),
                n: a.metrics().n,
                base: b.metrics().accuracy,
                adapted: a.metrics().accuracy,
                delta: AccuracyDelta::between(b.metrics(), a.metrics()),
            });
        }
        model.restore_all();
        let mean_delta = if others.is_empty() {
            0.0
        } else {
            others.iter().map(|o| o.adapted - o.base).sum::<f64>() / others.len() as f64
        };
        let harmed = others.iter().filter(|o| o.delta.is_some_and(|d| d.harmed())).count();
        out[i] = Some(Collateral { mean_delta, harmed, tasks: others });
    }
    Ok(out)
}
