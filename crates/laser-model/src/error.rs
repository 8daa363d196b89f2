//! Errors of model loading, running and editing. Each names the file, tensor or value at fault.

use std::path::PathBuf;

/// What went wrong in `laser-model`.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not in the format it claims (bad magic, truncated, lying sizes or offsets).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// `config.json` (or GGUF metadata) is missing, not JSON, lacks a field, or is inconsistent.
    #[error("{path}: invalid model config: {message}")]
    Config { path: PathBuf, message: String },
    /// A tensor the architecture needs is absent.
    #[error("missing tensor `{name}` in {path}")]
    MissingTensor { name: String, path: PathBuf },
    /// A tensor has the wrong shape for the config.
    #[error("tensor `{name}` has shape {got:?}, expected {expected:?}")]
    TensorShape { name: String, expected: Vec<usize>, got: Vec<usize> },
    /// A tensor holds NaN or infinite values.
    #[error("tensor `{name}` has a non-finite value {value} at flat index {index}")]
    NonFinite { name: String, index: usize, value: f32 },
    /// A tensor problem ([`ModelError::TensorShape`], [`ModelError::NonFinite`]) in a model file.
    #[error("{path}: {error}")]
    InFile { path: PathBuf, error: Box<ModelError> },
    /// A matrix name that is not an editable matrix of this model.
    #[error("`{name}` is not an editable matrix of this {family} model (see `laser inspect`)")]
    UnknownMatrix { name: String, family: &'static str },
    /// A family, dtype or tensor type this build does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Tokenizer problems: missing, invalid, or text that cannot be encoded.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Invalid arguments to a model call (empty batch, token id out of range, ...).
    #[error("invalid input: {0}")]
    Input(String),
    /// The tensor backend reported an error.
    #[error("backend: {0}")]
    Backend(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format { path: path.into(), message: message.into() }
    }

    pub(crate) fn config(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Config { path: path.into(), message: message.into() }
    }
}
