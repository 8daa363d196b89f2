//! Errors become exit codes: 2 for bad input or usage (a file, flag or value the user can fix),
//! 1 for other failures. Messages are one readable chain on stderr, never a panic trace.

use laser_model::ModelError;
use laser_search::SearchError;

/// A flag or flag combination that makes no sense.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand for a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

fn model_error_is_input(e: &ModelError) -> bool {
    !matches!(e, ModelError::Backend(_))
        && !matches!(e, ModelError::Io { source, .. } if !matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidData | std::io::ErrorKind::AlreadyExists))
}

/// The exit status for an error chain.
pub fn code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return 2;
        }
        if let Some(e) = cause.downcast_ref::<ModelError>() {
            return if model_error_is_input(e) { 2 } else { 1 };
        }
        if let Some(e) = cause.downcast_ref::<SearchError>() {
            return match e {
                SearchError::Model(m) => {
                    if model_error_is_input(m) {
                        2
                    } else {
                        1
                    }
                }
                SearchError::Io { source, .. } if source.kind() != std::io::ErrorKind::NotFound => {
                    1
                }
                _ => 2,
            };
        }
    }
    1
}

/// `error: outer: inner: …` on one line.
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    format!("error: {}", parts.join(": "))
}
