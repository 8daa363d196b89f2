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

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
