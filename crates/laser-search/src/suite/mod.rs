//! A suite: one search per task over many tasks, each on its own selection / test split, with the
//! test-accuracy change of each recommendation and its 95% paired-bootstrap interval, and the
//! suite's totals (mean change, tasks significantly harmed and helped).
//!
//! Durable: each task searches with its candidate log in `out/<task>/` and, once done, writes
//! `out/<task>/result.json` atomically. A suite killed at any point resumes: finished tasks are
//! read back (when the configuration that produced them is the same), the interrupted task
//! resumes from its log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use laser_model::{Model, WeightDtype};
use serde::{Deserialize, Serialize};

use crate::balanced::helped_in_balance;
use crate::collateral::TaskOutcome;
use crate::error::{Result, SearchError};
use crate::formats::load_task_with;
use crate::interval::AccuracyDelta;
use crate::log::write_atomic;
use crate::metrics::Metrics;
use crate::search::{Progress, SearchConfig, check_run, check_settings, run_search_with_progress};
use crate::shard::Shard;
use crate::split::Split;
use crate::task::Task;

pub(crate) mod report;

pub use report::{RuleSummary, StateMetrics, SuiteReport, SuiteTaskResult};

/// Task files of a suite (`.json` / `.jsonl`), named by their file stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteTask {
    /// File stem: the task's folder under the suite's output and its name in reports.
    pub name: String,
    /// The task file.
    pub path: PathBuf,
}

/// Expands files and folders (a folder contributes its `.json` / `.jsonl` files, sorted) into
/// suite tasks; names must be unique.
pub fn suite_tasks(inputs: &[PathBuf]) -> Result<Vec<SuiteTask>> {
    let mut paths = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input).map_err(|e| SearchError::io(input, e))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| SearchError::io(input, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file() && p.extension().is_some_and(|x| x == "json" || x == "jsonl")
                })
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(SearchError::Config(format!(
                    "{}: the folder holds no .json or .jsonl task files",
                    input.display()
                )));
            }
            paths.extend(found);
        } else {
            paths.push(input.clone());
        }
    }
    if paths.is_empty() {
        return Err(SearchError::Config("a suite needs at least one task file".into()));
    }
    let mut tasks: Vec<SuiteTask> = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SearchError::Config(format!("{}: no file name", path.display())))?;
        if let Some(other) = tasks.iter().find(|t| t.name == name) {
            return Err(SearchError::Config(format!(
                "two task files are both named `{name}` ({} and {}); rename one",
                other.path.display(),
                path.display()
            )));
        }
        tasks.push(SuiteTask { name, path });
    }
    Ok(tasks)
}

/// How to run a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct SuiteConfig {
    /// The search run on every task (its `out` is ignored: each task logs under `out/<task>`).
    pub search: SearchConfig,
    /// The suite's folder.
    pub out: PathBuf,
    /// A task that fails to load or run becomes an error row instead of stopping the suite.
    pub keep_going: bool,
    /// Score each recommended edit on every other task's selection items too.
    pub collateral: bool,
    /// The whole suite, one shard of its tasks, or the merge of the shards' results.
    pub part: SuitePart,
}

/// What this process does with a suite split across processes that share its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuitePart {
    /// Every task.
    #[default]
    Whole,
    /// Every N-th task of the list (round-robin); the report holds its tasks only.
    Shard(Shard),
    /// Runs nothing: every task's stored result, from the shards; a missing one is an error
    /// naming it and its shard, unless `partial` (the report then holds the tasks present).
    Merge { shards: usize, partial: bool },
}

/// The file recording a sharded suite in its folder: the same for every shard.
pub const SUITE_SPEC_FILE: &str = "suite-shards.json";

/// What a sharded suite's folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteShardSpec {
    /// The model, as given to the shards.
    pub model: PathBuf,
    /// How the shards stored the model's matrices.
    #[serde(with = "crate::names::one", default)]
    pub dtype: WeightDtype,
    /// The task files, in suite order.
    pub tasks: Vec<PathBuf>,
    /// How many shards.
    pub shards: usize,
    /// The search run on every task.
    pub search: SearchConfig,
    /// Failed tasks become error rows.
    pub keep_going: bool,
}

impl SuiteShardSpec {
    /// Records it in `dir`, or refuses when the folder records another sharded suite.
    pub fn record(&self, dir: &Path) -> Result<()> {
        let path = dir.join(SUITE_SPEC_FILE);
        let text = serde_json::to_string_pretty(self).expect("serialises");
        if crate::shard::create_once(&path, text.as_bytes())? {
            return Ok(());
        }
        if &Self::read(dir)? != self {
            return Err(SearchError::Log {
                path,
                line: None,
                message: "this folder holds another sharded suite; a shard must run with the same model, tasks, options and shard count, or use another --out folder".into(),
            });
        }
        Ok(())
    }

    /// The spec recorded in `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(SUITE_SPEC_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| SearchError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| SearchError::Log {
            path,
            line: Some(e.line()),
            message: format!("not a sharded suite's record: {e}"),
        })
    }
}

impl SuiteReport {
    /// Writes `suite.json` and `suite.md` into the suite's folder `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("reports serialise");
        write_atomic(&out.join("suite.json"), json.as_bytes())?;
        write_atomic(&out.join("suite.md"), crate::render::suite_markdown(self).as_bytes())
    }
}

/// What a finished task's `result.json` holds: the row and the configuration that produced it.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    config: serde_json::Value,
    result: SuiteTaskResult,
}

/// Everything that changes a task's result, for deciding whether a stored one still holds.
fn fingerprint(
    model: &Model,
    task: &SuiteTask,
    loaded: Option<&Task>,
    cfg: &SearchConfig,
) -> serde_json::Value {
    let mut f = serde_json::json!({
        "model": model.source().display().to_string(),
        "task": task.path.display().to_string(),
        "search": format!("{:?}", SearchConfig { out: None, ..cfg.clone() }),
    });
    // Absent for a task that failed to load (it stores no result) and in results stored before
    // it existed.
    if let Some(t) = loaded {
        f["items_digest"] = t.content_digest().into();
    }
    // Absent for f32, so that results stored before bf16 existed still count.
    if model.matrix_dtype() != WeightDtype::F32 {
        f["dtype"] = model.matrix_dtype().name().into();
    }
    f
}

/// Loads every task up front, so that a broken file stops the suite before any work (or, with
/// `keep_going`, becomes an error row).
fn load_all(
    tasks: &[SuiteTask],
    cfg: &SuiteConfig,
) -> Result<Vec<std::result::Result<Task, String>>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let loaded = load_task_with(&t.path, cfg.search.load).and_then(|task| {
            Split::new(task.items.len(), cfg.search.n, cfg.search.seed)
                .map_err(|e| SearchError::Config(format!("{}: {e}", t.path.display())))?;
            Ok(task)
        });
        match loaded {
            Ok(task) => out.push(Ok(task)),
            Err(e) if cfg.keep_going => out.push(Err(e.to_string())),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Runs the suite: every task's search in turn, resuming what a previous run finished.
pub fn run_suite(
    model: &mut Model,
    tasks: &[SuiteTask],
    cfg: &SuiteConfig,
    progress: &dyn Progress,
) -> Result<SuiteReport> {
    let start = Instant::now();
    let loaded = load_all(tasks, cfg)?;
    // Settings every task's search would refuse are refused before the folder is created; a
    // ranking file must be each task's own.
    check_settings(model, &cfg.search)?;
    if cfg.search.ranking_file.is_some() {
        for task in loaded.iter().flatten() {
            check_run(model, task, &cfg.search)?;
        }
    }
    refuse_changed_tasks(model, tasks, &loaded, cfg)?;
    // Shards of one suite share its folder: each holds its own lock.
    let _lock = match cfg.part {
        SuitePart::Shard(shard) => {
            SuiteShardSpec {
                model: model.source().to_owned(),
                dtype: model.matrix_dtype(),
                tasks: tasks.iter().map(|t| t.path.clone()).collect(),
                shards: shard.count(),
                search: SearchConfig { out: None, ranking_file: None, ..cfg.search.clone() },
                keep_going: cfg.keep_going,
            }
            .record(&cfg.out)?;
            crate::lock::FolderLock::acquire_named(&cfg.out, &shard.lock_name())?
        }
        _ => crate::lock::FolderLock::acquire(&cfg.out)?,
    };
    let mut rows = Vec::with_capacity(tasks.len());
    let mut resumed = 0;
    let mut missing = Vec::new();
    for (position, (task, loaded)) in tasks.iter().zip(&loaded).enumerate() {
        if let SuitePart::Shard(shard) = cfg.part
            && !shard.takes(position)
        {
            continue;
        }
        let dir = cfg.out.join(&task.name);
        let stored_path = dir.join("result.json");
        let config = fingerprint(model, task, loaded.as_ref().ok(), &cfg.search);
        if let Some(stored) =
            read_stored(&stored_path).filter(|s| crate::log::same_inputs(&s.config, &config))
        {
            tracing::info!(task = %task.name, "finished in an earlier run; read back");
            resumed += 1;
            rows.push(stored.result);
            continue;
        }
        if let SuitePart::Merge { shards, .. } = cfg.part {
            // Failed tasks (keep_going) store no result; their shard must run them again.
            missing.push((Shard::owner(shards, position), task.name.clone()));
            continue;
        }
        if progress.stop_requested() {
            return Err(SearchError::Stopped);
        }
        let row = match loaded {
            Err(error) => error_row(task, error.clone()),
            Ok(t) => match run_task(model, task, t, &dir, cfg, progress) {
                Ok(row) => row,
                Err(e) if cfg.keep_going && !matches!(e, SearchError::Stopped) => {
                    model.restore_all();
                    error_row(task, e.to_string())
                }
                Err(e) => return Err(e),
            },
        };
        if row.error.is_none() {
            let stored = Stored { config, result: row.clone() };
            let bytes = serde_json::to_vec_pretty(&stored).expect("serialisable");
            write_atomic(&stored_path, &bytes)?;
        }
        rows.push(row);
    }
    if let SuitePart::Merge { partial: false, shards } = cfg.part
        && !missing.is_empty()
    {
        let running =
            crate::shard::running_shards(&cfg.out, shards, missing.iter().map(|(s, _)| *s));
        return Err(SearchError::Incomplete {
            dir: cfg.out.clone(),
            shards: Vec::new(),
            candidates: missing,
            running,
        });
    }
    if cfg.collateral && !matches!(cfg.part, SuitePart::Shard(_)) {
        progress.phase("collateral (other tasks' selection items)", 1);
        let by_row: Vec<Option<&Task>> = loaded.iter().map(|l| l.as_ref().ok()).collect();
        let outcomes: Vec<TaskOutcome<'_>> = rows
            .iter()
            .map(|r| TaskOutcome { name: &r.task, edits: &r.edits, ran: r.error.is_none() })
            .collect();
        let measured = crate::collateral::measure(model, &outcomes, &by_row, &cfg.search)?;
        for (row, c) in rows.iter_mut().zip(measured) {
            row.collateral = c;
        }
        progress.advance();
    }
    Ok(summarise(model, cfg, rows, resumed, start.elapsed().as_secs_f64()))
}

fn read_stored(path: &Path) -> Option<Stored> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Stored>(&b).ok())
}

/// A task whose contents changed since this folder stored its result is refused before any
/// task runs: its stored result and candidate log describe other items, and silently mixing
/// the two (or running half the suite first) is worse than saying so.
fn refuse_changed_tasks(
    model: &Model,
    tasks: &[SuiteTask],
    loaded: &[std::result::Result<Task, String>],
    cfg: &SuiteConfig,
) -> Result<()> {
    for (task, loaded) in tasks.iter().zip(loaded) {
        let Ok(loaded) = loaded else { continue };
        let dir = cfg.out.join(&task.name);
        let Some(stored) = read_stored(&dir.join("result.json")) else { continue };
        let ours = fingerprint(model, task, Some(loaded), &cfg.search);
        let (was, now) = (&stored.config["items_digest"], &ours["items_digest"]);
        if !was.is_null() && was != now && stored.config["task"] == ours["task"] {
            return Err(SearchError::task(
                &task.path,
                None,
                format!(
                    "its items changed since this suite stored its result in {} (digest {} then, \
                     {} now); use another --out folder, or delete that task's folder to run it \
                     again",
                    dir.display(),
                    was.as_str().unwrap_or("?"),
                    now.as_str().unwrap_or("?"),
                ),
            ));
        }
    }
    Ok(())
}

fn error_row(task: &SuiteTask, error: String) -> SuiteTaskResult {
    tracing::warn!(task = %task.name, %error, "task failed; kept going");
    SuiteTaskResult {
        task: task.name.clone(),
        path: task.path.display().to_string(),
        n_select: 0,
        n_test: 0,
        base: None,
        adapted: None,
        delta: None,
        balanced_delta: None,
        edits: Vec::new(),
        reason: String::new(),
        seconds: 0.0,
        rules: Vec::new(),
        ceiling: None,
        sound_ceiling: None,
        error: Some(error),
        collateral: None,
    }
}

fn run_task(
    model: &mut Model,
    task: &SuiteTask,
    loaded: &Task,
    dir: &Path,
    cfg: &SuiteConfig,
    progress: &dyn Progress,
) -> Result<SuiteTaskResult> {
    tracing::info!(task = %task.name, items = loaded.items.len(), "suite task");
    let search = SearchConfig { out: Some(dir.to_owned()), ..cfg.search.clone() };
    let r = run_search_with_progress(model, loaded, &search, progress)?;
    let strip = |m: &Metrics| Metrics { items: None, ..m.clone() };
    Ok(SuiteTaskResult {
        task: task.name.clone(),
        path: task.path.display().to_string(),
        n_select: r.base.select.n,
        n_test: r.base.test.as_ref().map_or(0, |t| t.n),
        base: Some(StateMetrics {
            select: strip(&r.base.select),
            test: r.base.test.as_ref().map(strip),
        }),
        adapted: Some(StateMetrics {
            select: strip(&r.best.select),
            test: r.best.test.as_ref().map(strip),
        }),
        delta: r.delta,
        balanced_delta: r.balanced_delta,
        edits: r.best.edits,
        reason: r.selection.reason,
        seconds: r.seconds.total,
        rules: r.rules,
        ceiling: r.ceiling,
        sound_ceiling: r.sound_ceiling,
        error: None,
        collateral: None,
    })
}

fn summarise(
    model: &Model,
    cfg: &SuiteConfig,
    tasks: Vec<SuiteTaskResult>,
    resumed: usize,
    seconds: f64,
) -> SuiteReport {
    let deltas: Vec<AccuracyDelta> = tasks.iter().filter_map(|t| t.delta).collect();
    let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let mut rules: Vec<RuleSummary> = Vec::new();
    for t in &tasks {
        for o in &t.rules {
            let Some(d) = o.delta else { continue };
            let entry = match rules.iter().position(|r| r.rule == o.rule && r.factors == o.factors)
            {
                Some(p) => &mut rules[p],
                None => {
                    rules.push(RuleSummary {
                        rule: o.rule,
                        factors: o.factors.clone(),
                        mean_delta: 0.0,
                        harmed: 0,
                        helped: 0,
                        helped_balanced: 0,
                        edited: 0,
                    });
                    rules.last_mut().expect("just pushed")
                }
            };
            // Summed here, divided below.
            entry.mean_delta += d.accuracy;
            entry.harmed += usize::from(d.harmed());
            entry.helped += usize::from(d.helped());
            entry.helped_balanced += usize::from(helped_in_balance(&d, o.balanced_delta.as_ref()));
            entry.edited += usize::from(!o.edits.is_empty());
        }
    }
    let with_rules = tasks.iter().filter(|t| !t.rules.is_empty()).count().max(1) as f64;
    for r in &mut rules {
        r.mean_delta /= with_rules;
    }
    let collateral: Vec<f64> =
        tasks.iter().filter_map(|t| t.collateral.as_ref().map(|c| c.mean_delta)).collect();
    let mean_collateral = (!collateral.is_empty()).then(|| mean(&collateral));
    let ceilings: Vec<_> = tasks.iter().filter_map(|t| t.ceiling.as_ref()).collect();
    let ceiling_helped = (!ceilings.is_empty())
        .then(|| ceilings.iter().filter(|c| c.delta.is_some_and(|d| d.helped())).count());
    // Of the tasks with a ceiling: a task with none within the bound has no sound help.
    let sound_ceiling_helped = ceiling_helped.map(|_| {
        tasks
            .iter()
            .filter_map(|t| t.sound_ceiling.as_ref())
            .filter(|c| c.delta.is_some_and(|d| d.helped()))
            .count()
    });
    SuiteReport {
        mean_collateral,
        ceiling_helped,
        sound_ceiling_helped,
        model: model.source().display().to_string(),
        select_rule: cfg.search.select,
        mean_delta: mean(&deltas.iter().map(|d| d.accuracy).collect::<Vec<_>>()),
        harmed: deltas.iter().filter(|d| d.harmed()).count(),
        helped: deltas.iter().filter(|d| d.helped()).count(),
        helped_balanced: tasks
            .iter()
            .filter(|t| t.delta.is_some_and(|d| helped_in_balance(&d, t.balanced_delta.as_ref())))
            .count(),
        failed: tasks.iter().filter(|t| t.error.is_some()).count(),
        resumed,
        rules,
        seconds,
        tasks,
    }
}
