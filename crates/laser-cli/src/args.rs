//! Command-line flags (the stable contract in DESIGN.md). Values are typed at parse time (the
//! libraries' `FromStr`); `config.rs` checks what needs several flags or the task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use laser_linalg::TruncationScore;
use laser_model::{Backend, MatrixKind, WeightDtype};
use laser_search::{Factor, Race, SelectRule, Shard, Strategy, Truncate};

use crate::values::{LayerRange, RhosPerMatrix};
use laser_model::{GgufTensorType, HfDtype};
use laser_search::{ByteSize, ExportFormat, LoadOptions, SplitChoice};

/// Adapt a language model to a task by low-rank edits of a few weight matrices (LASER and
/// gradient-guided multi-subspace LASER), without fine-tuning.
#[derive(Debug, Parser)]
#[command(name = "laser", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Tensor backend: flex (default), ndarray or wgpu (when compiled in).
    #[arg(long, global = true, default_value = "flex")]
    pub backend: Backend,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Log to stderr instead of progress bars: `-v` phases and every evaluated candidate,
    /// `-vv` also cache moves and gradient micro-batches.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Memory the run may use, e.g. 12G: batches and gradient micro-batches are split to fit
    /// what the weights leave, and an item too large for it even alone is refused (or cut, with
    /// --truncate). Default: a target of 3.75× the weights (within 80% of physical memory or the
    /// container's limit) that splits batches but lets a long item run alone.
    #[arg(long, global = true, value_name = "SIZE")]
    pub max_memory: Option<ByteSize>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Family, layers and editable matrices of a model.
    Inspect(InspectArgs),
    /// Next-token predictions for a text.
    Predict(PredictArgs),
    /// Accuracy and log-loss on a task, optionally with an edit list applied.
    Eval(EvalArgs),
    /// One gradient pass: matrices ranked by their σ-gradient truncation score.
    Grad(GradArgs),
    /// Search for the best edit(s).
    Search(SearchArgs),
    /// Gradient search, then export the adapted model and a report.
    Adapt(AdaptArgs),
    /// One search per task over many tasks: base vs adapted test accuracy with intervals.
    Suite(SuiteArgs),
    /// Apply an edit list and export the edited model.
    Apply(ApplyArgs),
    /// Finish a search or suite run as shards (`--shard I/N`): read every shard's results from
    /// the folder and write what one process would (report.json; suite.json and suite.md).
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct ModelArg {
    /// HF model folder, .gguf file, or a built-in model's name — smollm2-135m (the default) or
    /// gemma-3-270m — fetched on first use.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// How the editable matrices are stored: f32, or bf16 (half their memory; computation stays
    /// f32; flex backend only).
    #[arg(long, default_value = "f32", value_name = "f32|bf16")]
    pub dtype: WeightDtype,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// The text.
    #[arg(long)]
    pub text: String,
    /// How many next tokens to list.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    /// Task file in any supported format (default for adapt: the bundled epistemic-reasoning task).
    #[arg(long)]
    pub task: Option<PathBuf>,
    /// Selection items (the rest are the test split).
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Seed of the split shuffle (and of k-means / k-subspaces).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Cut the prompt of an item longer than the model's context (or too large for the memory
    /// budget) at its left (start) or right (end) instead of refusing it; counted in the report.
    #[arg(long, value_name = "left|right")]
    pub truncate: Option<Truncate>,
    /// Drop an ill-posed multiple-choice item (no choice with a positive BIG-bench target score,
    /// several sharing the top score, or a choice listed twice) instead of refusing the file;
    /// counted in the report.
    #[arg(long)]
    pub drop_ill_posed: bool,
}

impl TaskArgs {
    /// How to read the task file.
    pub fn load(&self) -> LoadOptions {
        LoadOptions { drop_ill_posed: self.drop_ill_posed }
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub task: TaskArgs,
    /// Which items: select, test or all.
    #[arg(long, default_value = "select")]
    pub split: SplitChoice,
    /// Edit list to apply first.
    #[arg(long)]
    pub edits: Option<PathBuf>,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct GradArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub task: TaskArgs,
    /// Truncation score: first-order, tail-grad or cosine.
    #[arg(long, default_value = "first-order")]
    pub score: TruncationScore,
    /// Kept-rank fractions the score is maximised over.
    #[arg(long, value_delimiter = ',')]
    pub rho: Option<Vec<f32>>,
    /// Run the gradient pass G times, each over a run of layers: G times less gradient memory,
    /// G times the gradient-pass time, the same ranking.
    #[arg(long, value_name = "G", default_value_t = 1)]
    pub grad_groups: usize,
    /// Write the ranking to DIR/ranking.json, for searches and shards to read (`--ranking`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SearchOptions {
    /// Search strategy: gradient (adapt's), exhaustive (search's default), compose or mp.
    #[arg(long)]
    pub strategy: Option<Strategy>,
    /// Matrices scanned by the gradient strategy (default 8).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Gradient / compose: per scanned matrix, the N ρ values with the best predicted score, or
    /// `all` for the whole grid.
    #[arg(long, value_name = "N|all")]
    pub rhos_per_matrix: Option<RhosPerMatrix>,
    /// Kept-rank fractions (default: LASER's grid 0.9,…,0.005).
    #[arg(long, value_delimiter = ',')]
    pub rho: Option<Vec<f32>>,
    /// Factorizations: svd, blocks:C, kmeans:C, ksub:C (default: svd,blocks:4; mp uses svd).
    #[arg(long, value_delimiter = ',')]
    pub factor: Option<Vec<Factor>>,
    /// Layers, as `A-B` or `A`.
    #[arg(long, value_name = "A-B|A")]
    pub layers: Option<LayerRange>,
    /// Matrix kinds: q,k,v,qkv,o,fc_in,fc_up,fc_gate_up,fc_out (`laser inspect` lists a model's).
    #[arg(long, value_delimiter = ',')]
    pub kinds: Option<Vec<MatrixKind>>,
    /// Truncation score of the gradient strategy: first-order, tail-grad or cosine.
    #[arg(long)]
    pub score: Option<TruncationScore>,
    /// Gradient strategy: run the gradient pass G times, each over a run of layers (G times less
    /// gradient memory, G times the gradient-pass time, the same ranking).
    #[arg(long, value_name = "G")]
    pub grad_groups: Option<usize>,
    /// How scanned edits become the recommendation: choose-confirm (default: chosen on half the
    /// selection items, confirmed on the other half by one paired test; refused when log-loss
    /// gets significantly worse), guarded (only an edit that beats the base model significantly
    /// on the selection items, Bonferroni-corrected for the candidates), laser (accuracy, ties by
    /// log-loss), logloss, or split-confirm.
    #[arg(long, value_name = "RULE")]
    pub select: Option<SelectRule>,
    /// Diagnostic: also evaluate on the test split what every selection rule would have chosen
    /// (never used to choose). Turns racing off.
    #[arg(long)]
    pub compare_rules: bool,
    /// Gradient and exhaustive strategies: statistical (default: stop evaluating a candidate once
    /// a 99% interval of its results so far says the rule will not choose it: far fewer items,
    /// the recommendation may differ from a full scan's), exact (stop it once the rule cannot
    /// choose it, whatever the rest holds: a full scan's recommendation) or off (every candidate
    /// on every selection item).
    #[arg(long, value_name = "MODE")]
    pub race: Option<Race>,
    /// Selection items per racing block: a candidate can be stopped after each block (and after
    /// the first half of the first).
    #[arg(long, value_name = "N")]
    pub race_block: Option<usize>,
    /// At most this many test items (default: all for search/adapt, 300 for suite).
    #[arg(long, value_name = "N")]
    pub test_max: Option<usize>,
    /// Gradient and compose strategies: read the ranking from FILE (`laser grad --out`) instead
    /// of running the gradient pass.
    #[arg(long, value_name = "FILE")]
    pub ranking: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub task: TaskArgs,
    #[command(flatten)]
    pub options: SearchOptions,
    /// Folder for the resumable candidate log and report.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run part I of N of the search (one-based) into --out, shared by all parts; `laser merge`
    /// finishes. Without it, read from a Slurm array, a Kubernetes Indexed Job or an AWS Batch
    /// array job's environment.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// The number of shards where the engine gives only an index (Kubernetes'
    /// JOB_COMPLETION_INDEX); or set LASER_NUM_SHARDS.
    #[arg(long, value_name = "N")]
    pub num_shards: Option<usize>,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdaptArgs {
    #[command(flatten)]
    pub model: ModelArg,
    #[command(flatten)]
    pub task: TaskArgs,
    #[command(flatten)]
    pub options: SearchOptions,
    /// Output folder (default: ./laser-out/adapt-<task>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// When the rule recommends no edit, still write a copy of the unchanged base model to
    /// OUT/model (by default none is written and the report names the base model's own path).
    #[arg(long)]
    pub export_base: bool,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The adapted model's format (adapt, apply).
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// hf: an HF folder (OUT/model); gguf: a GGUF file (OUT/model.gguf) — from a GGUF source,
    /// its metadata and untouched tensors copied byte for byte; from an HF folder (llama, mistral,
    /// qwen2, qwen3, phi3, gemma2, gemma3), written in llama.cpp's layout; both; factorized: an HF
    /// folder (OUT/model-factorized) with each edited matrix stored as its low-rank factors.
    #[arg(long, value_name = "hf|gguf|both|factorized", default_value = "hf")]
    pub export: ExportFormat,
    /// How a GGUF export writes the edited tensors: f16 (default), f32, or `same` (their source
    /// type, re-quantized: floats, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). Only with
    /// --export gguf or both.
    #[arg(long, value_name = "f16|f32|same")]
    pub gguf_type: Option<GgufTensorType>,
    /// The HF folder's weight dtype: the source's (default: an HF folder's torch_dtype; bf16 for
    /// a quantized GGUF), or f32, bf16, f16. Only with --export hf, both or factorized.
    #[arg(long, value_name = "source|f32|bf16|f16")]
    pub export_dtype: Option<HfDtype>,
}

impl ExportArgs {
    /// The GGUF tensor type and HF dtype to export with, refusing either where the export
    /// writes no file it applies to (a flag that would do nothing is a mistake to report).
    pub fn types(&self) -> Result<(GgufTensorType, HfDtype), String> {
        if self.gguf_type.is_some() && !self.export.gguf() {
            return Err(format!(
                "--gguf-type applies to a GGUF export; add --export gguf or both (now: {})",
                self.export
            ));
        }
        if self.export_dtype.is_some() && !(self.export.hf() || self.export.factorized()) {
            return Err(format!(
                "--export-dtype applies to an HF export; --export {} writes none",
                self.export
            ));
        }
        Ok((
            self.gguf_type.unwrap_or(GgufTensorType::F16),
            self.export_dtype.unwrap_or(HfDtype::Source),
        ))
    }
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Task files, or folders of .json / .jsonl task files.
    #[arg(long, required = true, num_args = 1..)]
    pub tasks: Vec<PathBuf>,
    /// Selection items per task (the rest, up to --test-max, are its test split).
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// Seed of the split shuffle (and of k-means / k-subspaces).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Cut the prompt of an item longer than the model's context (or too large for the memory
    /// budget) at its left (start) or right (end) instead of refusing it; counted in the report.
    #[arg(long, value_name = "left|right")]
    pub truncate: Option<Truncate>,
    /// Drop an ill-posed multiple-choice item (no choice with a positive BIG-bench target score,
    /// several sharing the top score, or a choice listed twice) instead of refusing the file;
    /// counted in the report.
    #[arg(long)]
    pub drop_ill_posed: bool,
    #[command(flatten)]
    pub options: SearchOptions,
    /// Suite folder: per-task logs and results (a killed suite resumes), suite.json, suite.md.
    #[arg(long)]
    pub out: PathBuf,
    /// Run every N-th task (part I of N, one-based) into --out, shared by all parts; `laser
    /// merge` writes suite.json. Without it, read from a Slurm array, a Kubernetes Indexed Job
    /// or an AWS Batch array job's environment.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// The number of shards where the engine gives only an index; or set LASER_NUM_SHARDS.
    #[arg(long, value_name = "N")]
    pub num_shards: Option<usize>,
    /// A task that fails becomes an error row instead of stopping the suite.
    #[arg(long)]
    pub keep_going: bool,
    /// Also score each recommended edit on every other task's selection items (collateral
    /// harm: suite.json adds `collateral` per task and `mean_collateral`; suite.md a table).
    #[arg(long)]
    pub collateral: bool,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub model: ModelArg,
    /// Edit list.
    #[arg(long)]
    pub edits: PathBuf,
    /// Output: a model folder (must not exist, or be empty); with --export gguf the .gguf file
    /// (must not exist); with both, the folder, the GGUF inside it as model.gguf.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The folder the shards wrote into (their --out).
    pub dir: PathBuf,
    /// Merge what the shards logged even if shards or candidates are missing (listed in the
    /// report as `incomplete`).
    #[arg(long)]
    pub partial: bool,
    /// A suite's merge: also score each recommended edit on every other task's selection
    /// items (as `laser suite --collateral`).
    #[arg(long)]
    pub collateral: bool,
    /// Print one JSON object on stdout (the contract's keys) instead of text.
    #[arg(long)]
    pub json: bool,
}
