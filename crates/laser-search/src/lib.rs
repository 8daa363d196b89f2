//! laser-search: tasks, metrics, the evaluation engine and the search strategies that turn a
//! model and a task into the best low-rank edit — LASER's exhaustive search (Sharma et al. 2023)
//! and the gradient-guided, multi-subspace method of "Compress to Impress" (Sreeram et al. 2025).
//!
//! ```no_run
//! use laser_model::{Backend, Model};
//! use laser_search::{SearchConfig, Strategy, load_task, run_search};
//!
//! let mut model = Model::load("SmolLM2.gguf", Backend::Flex.device()?)?;
//! let task = load_task("epistemic_reasoning_task.json")?;
//! let cfg = SearchConfig { strategy: Strategy::Gradient, ..SearchConfig::default() };
//! let report = run_search(&mut model, &task, &cfg)?;
//! println!("{} → {}", report.base.select.accuracy, report.best.select.accuracy);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod adapt;
mod balanced;
mod batching;
mod builtin;
mod candidate;
mod card;
mod collateral;
mod edits;
mod error;
mod eval;
mod factorized;
mod fit;
mod formats;
mod gradient_pass;
mod interval;
mod lock;
mod log;
mod masked;
mod memory;
mod metrics;
mod names;
mod plots;
mod race;
mod ranking;
pub mod render;
mod report;
mod scoring;
mod search;
mod select;
mod shard;
mod split;
mod suite;
mod task;
mod tokens;

pub use adapt::{AdaptConfig, AdaptReport, ExportFormat, adapt, files as adapt_files};
pub use balanced::{balanced_accuracy, balanced_delta, helped_in_balance, shared_classes};
pub use builtin::{BUILTIN_MODELS, BuiltinModel, bundled_task, cache_dir, resolve_model};
pub use candidate::CandidateResult;
pub use card::{BaseModel, applied_card, gguf_model_card, model_card};
pub use collateral::{Collateral, CollateralTask};
pub use edits::{Edit, EditEngine, EditList, EditSize, Factor, to_row_major};
pub use error::{Result, SearchError};
pub use eval::{EvalLayout, Evaluated, Evaluator};
pub use factorized::{FactorizedExport, export_factorized};
pub use fit::{Truncate, check_context, truncate_to_fit};
pub use formats::{
    PROFESSIONS, load_bias_in_bios_profession, load_task, load_task_with, parse_task,
    parse_task_with,
};
pub use gradient_pass::gradient_pass;
pub use interval::{AccuracyDelta, BOOTSTRAP_RESAMPLES};
pub use lock::{FolderLock, LOCK_FILE};
pub use log::{CandidateLog, LOG_FILE, LoggedCandidate, write_atomic};
pub use memory::{
    ByteSize, DEFAULT_FRACTION, DEFAULT_WEIGHT_MULTIPLE, MIN_DEFAULT_ACTIVATIONS, RUNTIME_RESERVE,
    apply_memory_budget, default_budget, search_accumulators,
};
pub use metrics::{ClassAccuracy, ItemScores, Metrics};
pub use race::{RACE_BLOCK, Race, Racer, race_parts};
pub use ranking::{GradientRanking, MatrixSpectrum, matrix_svd, rank_matrices};
pub use report::{Best, Ceiling, MatrixScore, RuleOutcome, SearchReport, Seconds, SplitMetrics};
pub use scoring::{
    EvalRequest, Evaluation, MatrixEntry, ModelSummary, NextToken, Prediction, SplitChoice,
    TaskRanking, evaluate, inspect, predict, rank_task,
};
pub use search::{
    NoProgress, Progress, SOUND_LOGLOSS_RATIO, SearchConfig, Strategy, merge_search,
    ranking_identity, run_search, run_search_shard, run_search_with_progress,
};
pub use select::{GUARD_ALPHA, SelectRule, Selection, mcnemar_one_sided, select};
pub use shard::{RANKING_FILE, RankingFile, SPEC_FILE, Shard, ShardSpec, ShardSummary};
pub use split::Split;
pub use suite::{
    RuleSummary, SUITE_SPEC_FILE, StateMetrics, SuiteConfig, SuitePart, SuiteReport,
    SuiteShardSpec, SuiteTask, SuiteTaskResult, run_suite, suite_tasks,
};
pub use task::{Item, LoadOptions, Target, Task, TaskFormat};
pub use tokens::normalise_answer;
