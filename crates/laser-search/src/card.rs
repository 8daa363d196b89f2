//! The model card (`README.md` with Hugging Face's front matter) an adapted model carries — in
//! its HF folder, and beside an `adapt` GGUF — saying what was done to which base model, the
//! evidence for it (or, for `laser apply`'s edit lists, that none came with it), the GGUF's
//! written tensor types, and how to reproduce it.
//!
//! The front matter holds `base_model` (the Hugging Face repository when known: a built-in
//! model's, or an HF source's `_name_or_path` of the form `org/name`), `license` (a GGUF's
//! `general.license`, or the `license:` of the source folder's own card), `tags`, and
//! `pipeline_tag`. What is not known is left out, never guessed.

use std::fmt::Write;
use std::path::Path;

use laser_model::Model;
use laser_model::gguf::GgufFile;

use laser_model::gguf::GgufExport;

use crate::builtin::BUILTIN_MODELS;
use crate::edits::{Edit, EditSize};
use crate::render::delta_text;
use crate::report::SearchReport;

/// What the card says of the base model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseModel {
    /// Hugging Face repository (`org/name`).
    pub repo: Option<String>,
    /// License identifier.
    pub license: Option<String>,
    /// A human-readable name.
    pub name: Option<String>,
}

impl BaseModel {
    /// What `model`'s source says of itself.
    pub fn of(model: &Model) -> Self {
        let source = model.source();
        let file_name = source.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let builtin = BUILTIN_MODELS.iter().find(|b| b.file == file_name);
        let mut base = Self { repo: builtin.map(|b| b.hf_repo.to_owned()), ..Self::default() };
        if source.is_dir() {
            let raw = &model.config().raw;
            if base.repo.is_none() {
                base.repo = raw
                    .get("_name_or_path")
                    .and_then(|v| v.as_str())
                    .filter(|s| is_repo_id(s))
                    .map(str::to_owned);
            }
            base.license = front_matter_license(&source.join("README.md"));
        } else if let Ok(file) = GgufFile::open(source) {
            let text = |key: &str| {
                file.metadata.get(key).and_then(|v| match v {
                    laser_model::gguf::GgufValue::String(s) if !s.trim().is_empty() => {
                        Some(s.trim().to_owned())
                    }
                    _ => None,
                })
            };
            base.license = text("general.license");
            base.name = text("general.name");
        }
        base
    }
}

/// `org/name`: two non-empty path parts of repository characters.
fn is_repo_id(s: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(s.split_once('/'), Some((a, b)) if ok(a) && ok(b))
}

/// The `license:` of a card's front matter.
fn front_matter_license(card: &Path) -> Option<String> {
    let text = std::fs::read_to_string(card).ok()?;
    let rest = text.strip_prefix("---")?;
    let (front, _) = rest.split_once("\n---")?;
    front.lines().find_map(|l| {
        let v = l.strip_prefix("license:")?.trim().trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| v.to_owned())
    })
}

/// A YAML scalar: quoted when it holds anything YAML would read otherwise.
fn yaml(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

/// The front matter and title; `gguf` adds the tag Hugging Face lists GGUF repositories under.
fn header(s: &mut String, base: &BaseModel, gguf: bool, verb: &str) {
    s.push_str("---\n");
    if let Some(repo) = &base.repo {
        let _ = writeln!(s, "base_model: {}", yaml(repo));
    }
    if let Some(license) = &base.license {
        let _ = writeln!(s, "license: {}", yaml(license));
    }
    let gguf_tag = if gguf { "- gguf\n" } else { "" };
    let _ = writeln!(
        s,
        "tags:\n- laser-rs\n- laser\n- low-rank\n- rank-reduction\n{gguf_tag}pipeline_tag: text-generation\n---\n"
    );
    let title = base.repo.as_deref().or(base.name.as_deref()).unwrap_or("a language model");
    let _ = writeln!(s, "# {title}, {verb} with laser-rs\n");
}

/// The edits table; `sizes` gives the parameters kept where known.
fn edits_section(s: &mut String, edits: &[Edit], sizes: &[EditSize]) {
    let _ = writeln!(s, "## Edits\n");
    if edits.is_empty() {
        let _ = writeln!(s, "None: this is the base model, unchanged.\n");
        return;
    }
    let _ = writeln!(s, "| matrix | kept rank fraction ρ | factorization | parameters kept |");
    let _ = writeln!(s, "|---|---|---|---|");
    for e in edits {
        let kept = sizes
            .iter()
            .find(|z| z.name == e.name)
            .map_or_else(|| "—".to_owned(), |z| format!("{} of {}", z.factorized, z.dense));
        let _ = writeln!(s, "| `{}` | {} | {} | {kept} |", e.name, e.rho, e.factor);
    }
    s.push('\n');
}

fn reproduce_section(s: &mut String, command: Option<&str>) {
    if let Some(c) = command {
        let _ = writeln!(s, "\n## Reproduce\n\n```\n{c}\n```");
    }
}

/// The card of a model adapted by `report`'s recommendation from `base`; `command` is how it was
/// made (the CLI's arguments, a Python call).
pub fn model_card(report: &SearchReport, base: &BaseModel, command: Option<&str>) -> String {
    card(report, base, command, None)
}

/// [`model_card`] for the GGUF `gguf`: tagged `gguf`, with the file's edited tensors, their
/// written types and the error each adds.
pub fn gguf_model_card(
    report: &SearchReport,
    base: &BaseModel,
    command: Option<&str>,
    gguf: &GgufExport,
) -> String {
    card(report, base, command, Some(gguf))
}

fn card(
    report: &SearchReport,
    base: &BaseModel,
    command: Option<&str>,
    gguf: Option<&GgufExport>,
) -> String {
    let mut s = String::new();
    header(&mut s, base, gguf.is_some(), "adapted");
    let _ = writeln!(
        s,
        "No weights were trained. A few weight matrices of the base model (`{}`) were replaced by \
         low-rank approximations chosen for the task `{}` ({}, strategy {}), as in LASER (Sharma \
         et al. 2023) and \"Compress to Impress\" (Sreeram et al. 2025).\n",
        report.model,
        report.task,
        report.task_format,
        report.strategy.name()
    );
    edits_section(&mut s, &report.best.edits, &report.best.sizes);
    let _ = writeln!(s, "## Evidence\n");
    let _ = writeln!(s, "| model | split | items | accuracy | log-loss |\n|---|---|---|---|---|");
    let mut row = |who: &str, split: &str, m: Option<&crate::metrics::Metrics>| {
        if let Some(m) = m {
            let _ = writeln!(
                s,
                "| {who} | {split} | {} | {:.1}% | {:.4} |",
                m.n, m.accuracy, m.logloss
            );
        }
    };
    row("base", "selection", Some(&report.base.select));
    row("adapted", "selection", Some(&report.best.select));
    row("base", "test", report.base.test.as_ref());
    row("adapted", "test", report.best.test.as_ref());
    if let Some(d) = &report.delta {
        let _ = writeln!(s, "\nTest accuracy change: {} (paired bootstrap).", delta_text(d));
    }
    if let Some(m) = report.base.test.as_ref().and_then(|m| m.majority) {
        let _ = writeln!(s, "\nMajority-class rate of the test split: {m:.1}%.");
    }
    let _ = writeln!(
        s,
        "\nChosen by the rule `{}` on the selection items only: {}.",
        report.selection.rule, report.selection.reason
    );
    let _ = writeln!(
        s,
        "\nThe metrics are this task's; the edits were not checked on other tasks, where they may \
         help, hurt or change nothing."
    );
    if let Some(g) = gguf {
        gguf_section(&mut s, g);
    }
    reproduce_section(&mut s, command);
    s
}

/// What the GGUF holds: the source's metadata and untouched tensors, and each edited tensor's
/// written type with the error it adds.
fn gguf_section(s: &mut String, g: &GgufExport) {
    let name = g.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if g.edited.is_empty() {
        let _ = writeln!(s, "\n## Files\n\n`{name}` is the source GGUF, byte for byte.");
        return;
    }
    let _ = writeln!(
        s,
        "\n## Files\n\n`{name}` ({} bytes; the source {} bytes) keeps every metadata value and \
         every untouched tensor of the source GGUF byte for byte; the edited tensors are written \
         anew:\n",
        g.bytes, g.source_bytes
    );
    let _ =
        writeln!(s, "| tensor | source type | written type | relative error |\n|---|---|---|---|");
    for t in &g.edited {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {:.2e} |",
            t.gguf_name, t.source_type, t.written_type, t.relative_error
        );
    }
}

/// The card of a model edited by `laser apply` from the edit list `edits_file`: the edits, and
/// that no evidence came with them.
pub fn applied_card(
    edits: &[Edit],
    edits_file: &str,
    base: &BaseModel,
    command: Option<&str>,
    gguf: Option<&GgufExport>,
) -> String {
    let mut s = String::new();
    header(&mut s, base, gguf.is_some(), "edited");
    let _ = writeln!(
        s,
        "No weights were trained. The weight matrices below were replaced by low-rank \
         approximations, as listed in the edit list `{edits_file}` (LASER, Sharma et al. 2023; \
         \"Compress to Impress\", Sreeram et al. 2025).\n"
    );
    edits_section(&mut s, edits, &[]);
    let _ = writeln!(
        s,
        "## Evidence\n\nNone recorded: the edits came from a list, not from a search. \
         `laser eval --model <this model> --task <task>` measures them on a task; `laser adapt` \
         chooses edits with selection and test metrics."
    );
    if let Some(g) = gguf {
        gguf_section(&mut s, g);
    }
    reproduce_section(&mut s, command);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_ids_and_licenses_are_read_not_guessed() {
        assert!(is_repo_id("HuggingFaceTB/SmolLM2-135M-Instruct"));
        for bad in ["/tmp/model", "model", "a/b/c", "a b/c", ""] {
            assert!(!is_repo_id(bad), "{bad}");
        }
        let dir = std::env::temp_dir().join(format!("laser-card-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let card = dir.join("README.md");
        std::fs::write(&card, "---\nlicense: apache-2.0\ntags:\n- x\n---\n# m\nlicense: mit\n")
            .unwrap();
        assert_eq!(front_matter_license(&card).as_deref(), Some("apache-2.0"));
        std::fs::write(&card, "# no front matter\nlicense: mit\n").unwrap();
        assert_eq!(front_matter_license(&card), None);
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(yaml("apache-2.0"), "apache-2.0");
        assert_eq!(yaml("a: b"), "\"a: b\"");
    }
}
