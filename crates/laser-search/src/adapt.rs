//! Adaptation as one library call — what `laser adapt` and Python's `laser_rs.adapt` both run:
//! the memory budget, the search, the chosen edits applied from the scan's own SVDs, the model
//! exported once (or, for "no edit", not copied), and the folder's reports and plots.
//!
//! Everything is written to a temporary name and renamed into place, so a failure leaves the
//! previous outputs of the folder whole.

use std::path::{Path, PathBuf};

use std::fmt;
use std::str::FromStr;

use laser_linalg::faer::MatRef;
use laser_model::{
    GgufExport, GgufTensorType, HfDtype, Model, check_gguf_export, export_gguf, export_hf_as,
};
use serde::Serialize;

use crate::card::{BaseModel, gguf_model_card, model_card};
use crate::edits::{Edit, EditEngine, EditList, Factor};
use crate::error::{Result, SearchError};
use crate::factorized::{FactorizedExport, export_factorized};
use crate::log::write_atomic;
use crate::memory::{ByteSize, apply_memory_budget, search_accumulators};
use crate::render::ModelOutput;
use crate::report::SearchReport;
use crate::search::{Progress, SearchConfig, search_keeping_svds};
use crate::task::Task;

/// The format(s) an adapted model is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// An HF folder (f32 safetensors, config, tokenizer).
    #[default]
    Hf,
    /// A GGUF file, from a GGUF source: its metadata and untouched tensors copied byte for byte.
    Gguf,
    /// Both.
    Both,
    /// An HF folder with each edited matrix stored as its factors (`factorized.rs`).
    Factorized,
}

impl ExportFormat {
    /// Whether an HF folder is written.
    pub fn hf(self) -> bool {
        matches!(self, Self::Hf | Self::Both)
    }

    /// Whether a GGUF file is written.
    pub fn gguf(self) -> bool {
        matches!(self, Self::Gguf | Self::Both)
    }

    /// Whether the factorized folder is written.
    pub fn factorized(self) -> bool {
        self == Self::Factorized
    }
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "hf" => Ok(Self::Hf),
            "gguf" => Ok(Self::Gguf),
            "both" => Ok(Self::Both),
            "factorized" => Ok(Self::Factorized),
            other => Err(format!(
                "unknown export format `{other}` (expected hf, gguf, both or factorized)"
            )),
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Hf => "hf",
            Self::Gguf => "gguf",
            Self::Both => "both",
            Self::Factorized => "factorized",
        })
    }
}

/// What [`adapt`] is asked to do.
#[derive(Debug, Clone)]
pub struct AdaptConfig {
    /// The search (its `out` is replaced by [`AdaptConfig::out`]).
    pub search: SearchConfig,
    /// The output folder: the candidate log, reports, plots and the adapted model.
    pub out: PathBuf,
    /// Write a copy of the model even when no edit is recommended.
    pub export_base: bool,
    /// The memory budget (`None`: the default share of this machine's memory).
    pub max_memory: Option<ByteSize>,
    /// The adapted model's format(s).
    pub export: ExportFormat,
    /// How a GGUF export writes the edited tensors.
    pub gguf_type: GgufTensorType,
    /// The HF export's weight dtype.
    pub hf_dtype: HfDtype,
    /// How this adaptation was asked for (the CLI's arguments, a Python call), for the model
    /// card's "Reproduce" section.
    pub command: Option<String>,
}

impl AdaptConfig {
    /// Adapt with `search` into `out`, no copy for "no edit", the default memory budget, an HF
    /// folder.
    pub fn new(search: SearchConfig, out: impl Into<PathBuf>) -> Self {
        Self {
            search,
            out: out.into(),
            export_base: false,
            max_memory: None,
            export: ExportFormat::Hf,
            gguf_type: GgufTensorType::F16,
            hf_dtype: HfDtype::Source,
            command: None,
        }
    }
}

/// What [`adapt`] produced: the search's report, and where the adapted model is. Serialised, it
/// is `report.json` (the search report's keys plus `output` and, for "no edit", `unchanged`).
#[derive(Debug, Clone, Serialize)]
pub struct AdaptReport {
    #[serde(flatten)]
    report: SearchReport,
    output: PathBuf,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unchanged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    gguf: Option<GgufExport>,
    /// The HF export's weight dtype (`f32`, `bf16`, `f16`), when one was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    model_dtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    factorized: Option<FactorizedExport>,
}

impl AdaptReport {
    /// The search's report.
    pub fn search(&self) -> &SearchReport {
        &self.report
    }

    /// The adapted model's folder, or the base model's own path when it is unchanged.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// Whether no edit was recommended and no copy written.
    pub fn unchanged(&self) -> bool {
        self.unchanged
    }

    /// The GGUF file written, with its edited tensors' types and errors (when one was).
    pub fn gguf(&self) -> Option<&GgufExport> {
        self.gguf.as_ref()
    }

    /// The output as the text renderers take it.
    pub fn model_output(&self) -> ModelOutput<'_> {
        if self.unchanged {
            ModelOutput::Unchanged(&self.output)
        } else {
            ModelOutput::Exported(&self.output)
        }
    }

    /// `report.json`'s value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("reports serialise")
    }
}

/// The file names [`adapt`] writes into its folder (besides the candidate log).
pub mod files {
    /// The machine-readable report.
    pub const REPORT_JSON: &str = "report.json";
    /// The human-readable report.
    pub const REPORT_MD: &str = "report.md";
    /// The recommended edits, an edit list `apply` takes.
    pub const EDITS: &str = "edits.json";
    /// The adapted model's HF folder.
    pub const MODEL: &str = "model";
    /// The adapted model as GGUF.
    pub const MODEL_GGUF: &str = "model.gguf";
    /// The GGUF's model card, beside it (as Hugging Face's GGUF repositories keep theirs).
    pub const GGUF_CARD: &str = "README.md";
    /// The adapted model with its edited matrices as factors.
    pub const MODEL_FACTORIZED: &str = "model-factorized";
}

/// Adapts `model` to `task`: applies the memory budget, searches, applies the chosen edits (the
/// model is left edited), exports `out/model` (none for "no edit" unless
/// [`AdaptConfig::export_base`]), and writes `edits.json`, the plots, `report.md` and
/// `report.json`. Interrupted through [`Progress::stop_requested`], it returns
/// [`SearchError::Stopped`] and the same call resumes.
pub fn adapt(
    model: &mut Model,
    task: &Task,
    cfg: &AdaptConfig,
    progress: &dyn Progress,
) -> Result<AdaptReport> {
    // A GGUF export this model cannot take is refused before the search writes its log.
    if cfg.export.gguf() {
        check_gguf_export(model, cfg.gguf_type)?;
    }
    apply_memory_budget(model, cfg.max_memory, search_accumulators(&cfg.search))?;
    let search = SearchConfig { out: Some(cfg.out.clone()), ..cfg.search.clone() };
    let (report, mut engine) = search_keeping_svds(model, task, &search, progress)?;
    engine.apply(model, &report.best.edits)?;
    let out = &cfg.out;
    let model_dir = out.join(files::MODEL);
    let model_gguf = out.join(files::MODEL_GGUF);
    let gguf_card = out.join(files::GGUF_CARD);
    let edits_json = serde_json::to_string_pretty(&EditList { edits: report.best.edits.clone() })
        .expect("edit lists serialise");
    // Copies an older run wrote into this folder for the same search would contradict it.
    let remove_stale = |hf: bool, gguf: bool| -> Result<()> {
        if hf && model_dir.is_dir() {
            std::fs::remove_dir_all(&model_dir).map_err(|e| SearchError::io(&model_dir, e))?;
        }
        for file in [&model_gguf, &gguf_card] {
            if gguf && file.is_file() {
                std::fs::remove_file(file).map_err(|e| SearchError::io(file, e))?;
            }
        }
        Ok(())
    };
    let mut gguf = None;
    let mut model_dtype = None;
    let mut factorized = None;
    let factorized_dir = out.join(files::MODEL_FACTORIZED);
    // "No edit" (the usual answer of the guarded rule) writes no copy of the unchanged model: the
    // report names the base model's own path.
    let (output, unchanged) = if report.best.edits.is_empty() && !cfg.export_base {
        write_atomic(&out.join(files::EDITS), edits_json.as_bytes())?;
        remove_stale(true, true)?;
        remove_stale_dir(&factorized_dir)?;
        (model.source().to_owned(), true)
    } else {
        // Export into a temporary sibling and swap it in only once everything is whole: a
        // failed write (full disk, file-size limit) leaves the previous model and reports
        // untouched. (The GGUF goes through its own temporary name.)
        let fresh = out.join(".model.new");
        if cfg.export.hf() {
            let _ = std::fs::remove_dir_all(&fresh);
            model_dtype = Some(export_hf_as(model, &fresh, cfg.hf_dtype)?.to_string());
            let card = model_card(&report, &BaseModel::of(model), cfg.command.as_deref());
            write_atomic(&fresh.join("README.md"), card.as_bytes())?;
        }
        if cfg.export.gguf() {
            let written = export_gguf(model, &model_gguf, cfg.gguf_type)?;
            let card =
                gguf_model_card(&report, &BaseModel::of(model), cfg.command.as_deref(), &written);
            write_atomic(&gguf_card, card.as_bytes())?;
            gguf = Some(written);
        }
        let fresh_factors = out.join(".model-factorized.new");
        if cfg.export.factorized() {
            let _ = std::fs::remove_dir_all(&fresh_factors);
            let edits = &report.best.edits;
            let mut f = export_factorized(model, &mut engine, edits, &fresh_factors, cfg.hf_dtype)?;
            f.path = factorized_dir.clone();
            let card = model_card(&report, &BaseModel::of(model), cfg.command.as_deref());
            write_atomic(&fresh_factors.join("README.md"), card.as_bytes())?;
            model_dtype = Some(f.dtype.clone());
            factorized = Some(f);
        }
        write_atomic(&out.join(files::EDITS), edits_json.as_bytes())?;
        if cfg.export.hf() {
            replace_dir(&fresh, &model_dir)?;
        }
        if cfg.export.factorized() {
            replace_dir(&fresh_factors, &factorized_dir)?;
        } else {
            remove_stale_dir(&factorized_dir)?;
        }
        remove_stale(!cfg.export.hf(), !cfg.export.gguf())?;
        let output = if cfg.export.hf() {
            model_dir
        } else if cfg.export.gguf() {
            model_gguf
        } else {
            factorized_dir
        };
        (output, false)
    };
    let adapted = AdaptReport { report, output, unchanged, gguf, model_dtype, factorized };
    write_plots(out, &adapted.report, &mut engine, model)?;
    write_atomic(
        &out.join(files::REPORT_MD),
        crate::render::markdown(&adapted.report, Some(adapted.model_output())).as_bytes(),
    )?;
    let json = serde_json::to_string_pretty(&adapted.to_json()).expect("JSON values serialise");
    write_atomic(&out.join(files::REPORT_JSON), json.as_bytes())?;
    Ok(adapted)
}

/// Removes a folder an older run wrote, if there is one.
fn remove_stale_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        std::fs::remove_dir_all(dir).map_err(|e| SearchError::io(dir, e))?;
    }
    Ok(())
}

/// Moves the complete folder `fresh` to `dest`, replacing what was there. Renames write no data,
/// so once `fresh` is whole this cannot fail for lack of space; the old folder is removed last.
fn replace_dir(fresh: &Path, dest: &Path) -> Result<()> {
    let old = dest.with_file_name(format!(
        ".{}.old",
        dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(dest, &old).map_err(|e| SearchError::io(dest, e))?;
    }
    std::fs::rename(fresh, dest).map_err(|e| SearchError::io(dest, e))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// The spectrum of an edited matrix before and after its edit. The "before" is the scan's cached
/// SVD of the original; a plain SVD edit keeps its leading values, so only a multi-subspace
/// edit's result needs singular values of its own.
fn spectra(engine: &mut EditEngine, model: &Model, edit: &Edit) -> Result<(Vec<f32>, Vec<f32>)> {
    let [m, n] = model.matrix_info(&edit.name)?.shape;
    let linalg = |source| SearchError::Linalg { name: edit.name.clone(), source };
    let before = engine.svd(model, &edit.name)?.s().to_vec();
    let after = match edit.factor {
        Factor::Svd => {
            let keep = laser_linalg::kept_rank(edit.rho, m, n).map_err(linalg)?;
            before.iter().enumerate().map(|(i, &s)| if i < keep { s } else { 0.0 }).collect()
        }
        Factor::Blocks(_) | Factor::KMeans(_) | Factor::KSubspaces(_) => {
            let w = model.matrix(&edit.name)?;
            laser_linalg::singular_values(MatRef::from_row_major_slice(&w, m, n)).map_err(linalg)?
        }
    };
    Ok((before, after))
}

/// The heatmap of gradient scores, selection accuracy against ρ, and the first chosen matrix's
/// spectrum (`plots.rs`).
fn write_plots(
    out: &Path,
    report: &SearchReport,
    engine: &mut EditEngine,
    model: &Model,
) -> Result<()> {
    if !report.ranking.is_empty() {
        write_atomic(
            &out.join("scores_heatmap.svg"),
            crate::plots::heatmap(&report.ranking).as_bytes(),
        )?;
    }
    write_atomic(
        &out.join("accuracy_vs_rho.svg"),
        crate::plots::accuracy_vs_rho(&report.candidates, report.base.select.accuracy).as_bytes(),
    )?;
    if let Some(e) = report.best.edits.first() {
        let (before, after) = spectra(engine, model, e)?;
        write_atomic(
            &out.join("spectrum.svg"),
            crate::plots::spectrum(&e.name, &before, &after).as_bytes(),
        )?;
    }
    Ok(())
}
