//! Library errors as Python exceptions, with the CLI's messages: a missing file is
//! `FileNotFoundError`, other unreadable or unwritable paths `OSError`, bad input or options
//! `ValueError`, a run stopped by Ctrl-C `KeyboardInterrupt`, a failing backend `RuntimeError`.

use std::io::ErrorKind;

use laser_model::ModelError;
use laser_search::SearchError;
use pyo3::PyErr;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError,
    PyValueError,
};

/// The Python name of a [`laser_search::SearchConfig`] field (the CLI's flag in snake case).
fn option_name(field: &str) -> &str {
    match field {
        "rhos" => "rho",
        "factors" => "factor",
        "ranking_file" => "ranking",
        other => other,
    }
}

fn io_error(message: String, e: &std::io::Error) -> PyErr {
    match e.kind() {
        ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
        ErrorKind::AlreadyExists => PyFileExistsError::new_err(message),
        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof => {
            PyValueError::new_err(message)
        }
        _ => PyOSError::new_err(message),
    }
}

/// A model error as its exception.
pub fn model_error(e: ModelError) -> PyErr {
    let message = e.to_string();
    match &e {
        ModelError::Io { source, .. } => io_error(message, source),
        ModelError::Backend(_) => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// A search error as its exception.
pub fn search_error(e: SearchError) -> PyErr {
    match e {
        SearchError::Model(m) => model_error(m),
        SearchError::InvalidOption { field, reason } => {
            PyValueError::new_err(format!("invalid option `{}`: {reason}", option_name(field)))
        }
        SearchError::Stopped => PyKeyboardInterrupt::new_err(SearchError::Stopped.to_string()),
        SearchError::Io { ref source, .. } => io_error(e.to_string(), source),
        SearchError::Busy { .. } | SearchError::Fetch { input: false, .. } => {
            PyOSError::new_err(e.to_string())
        }
        SearchError::Linalg { .. } => PyRuntimeError::new_err(e.to_string()),
        other => PyValueError::new_err(other.to_string()),
    }
}

/// `ValueError(message)`.
pub fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
