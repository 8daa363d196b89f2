//! Errors of task loading, evaluation and search; each names the file, line, item or value.

use std::path::PathBuf;

/// What went wrong in `laser-search`.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A task file is malformed; `line` is 1-based when known.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Task { path: PathBuf, line: Option<usize>, message: String },
    /// An edit list is malformed or names something that does not exist.
    #[error("edit list{}: {message}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    EditList { path: Option<PathBuf>, message: String },
    /// A search log (`candidates.jsonl`) belongs to another search or is damaged; `line` is
    /// 1-based when known.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Log { path: PathBuf, line: Option<usize>, message: String },
    /// A [`crate::SearchConfig`] field holds a value that cannot work; `field` is the field's
    /// name (the CLI names its flag instead).
    #[error("invalid search option `{field}`: {reason}")]
    InvalidOption { field: &'static str, reason: String },
    /// A search option is invalid.
    #[error("invalid search option: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The model failed.
    #[error(transparent)]
    Model(#[from] laser_model::ModelError),
    /// Another process is writing into the output folder.
    #[error("{}: another laser process{} is writing to this folder; wait for it to finish or use another output folder", path.display(), pid.map(|p| format!(" (PID {p})")).unwrap_or_default())]
    Busy { path: PathBuf, pid: Option<u32> },
    /// A merge found shards or candidates missing from a sharded search's folder.
    #[error("{}: the sharded search is incomplete: {}; {}", dir.display(), incomplete_text(shards, candidates), incomplete_advice(running))]
    Incomplete {
        dir: PathBuf,
        /// Shards (one-based) that left no log.
        shards: Vec<usize>,
        /// Candidates (log keys) or suite tasks no shard finished, with the shard that owns each.
        candidates: Vec<(usize, String)>,
        /// Shards of those that a live process is still running (holding the shard's lock),
        /// with its PID where known: wait for them rather than rerun them.
        running: Vec<(usize, Option<u32>)>,
    },
    /// The caller asked the run to stop ([`crate::Progress::stop_requested`]); every candidate
    /// evaluated so far is in the log, so the same command resumes.
    #[error("stopped on request; every finished candidate is logged, and the same command resumes")]
    Stopped,
    /// The memory budget is smaller than what the model needs before any activation: `given`
    /// is the caller's budget (`None`: the default, `total` bytes).
    #[error("{} {}", given.map_or_else(|| crate::memory::size::default_budget_text(*total), |b| format!("a memory budget of {b}")), crate::memory::size::budget_shortfall(*weights, *accumulators))]
    MemoryBudget {
        given: Option<crate::memory::size::ByteSize>,
        total: u64,
        weights: u64,
        accumulators: u64,
    },
    /// Fetching a built-in model failed; `input` when the user can fix it (exit 2 in the CLI).
    #[error("fetching the model {model}: {message}")]
    Fetch { model: &'static str, message: String, input: bool },
    /// A linear-algebra call failed.
    #[error("matrix `{name}`: {source}")]
    Linalg {
        name: String,
        #[source]
        source: laser_linalg::LinalgError,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;

impl SearchError {
    pub(crate) fn task(
        path: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Self::Task { path: path.into(), line, message: message.into() }
    }

    pub(crate) fn option(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidOption { field, reason: reason.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// Reads a text input (task file, edit list, …): the file's I/O error with its path, or, for
/// bytes that are not UTF-8, an error naming the line and byte offset of the first bad byte.
pub(crate) fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| SearchError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count();
        SearchError::task(
            path,
            Some(line),
            format!("not UTF-8 text (invalid byte at offset {offset})"),
        )
    })
}

fn incomplete_advice(running: &[(usize, Option<u32>)]) -> String {
    if running.is_empty() {
        return "run the missing shards (or merge with --partial)".into();
    }
    let list: Vec<String> = running
        .iter()
        .map(|(s, pid)| match pid {
            Some(pid) => format!("{s} (PID {pid})"),
            None => s.to_string(),
        })
        .collect();
    let (these, are) = if running.len() == 1 { ("shard", "is") } else { ("shards", "are") };
    format!(
        "{these} {} {are} still running: merge once they finish (rerun any other missing shard, \
         or merge with --partial)",
        list.join(", ")
    )
}

fn incomplete_text(shards: &[usize], candidates: &[(usize, String)]) -> String {
    let mut parts = Vec::new();
    if !shards.is_empty() {
        let list: Vec<String> = shards.iter().map(usize::to_string).collect();
        parts.push(format!("no log from shard {}", list.join(", ")));
    }
    if !candidates.is_empty() {
        let shown: Vec<String> =
            candidates.iter().take(5).map(|(s, k)| format!("{k} (shard {s})")).collect();
        let more = candidates.len().saturating_sub(shown.len());
        parts.push(format!(
            "{} not done: {}{}",
            candidates.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    parts.join("; ")
}
