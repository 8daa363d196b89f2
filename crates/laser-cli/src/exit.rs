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

/// I/O failures the user fixes by naming another path (2) — a missing file, a folder where a
/// file belongs, unreadable or malformed bytes, an output folder already in use — as opposed to
/// the machine failing a write (full disk, file-size limit, read-only filesystem: 1).
fn io_is_input(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::NotFound
            | K::InvalidData
            | K::InvalidInput
            | K::AlreadyExists
            | K::IsADirectory
            | K::NotADirectory
            | K::PermissionDenied
            | K::UnexpectedEof
    )
}

fn model_error_is_input(e: &ModelError) -> bool {
    match e {
        ModelError::Backend(_) => false,
        ModelError::Io { source, .. } => io_is_input(source),
        _ => true,
    }
}

/// The exit status for an error chain.
pub fn code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return 2;
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            return if io_is_input(e) { 2 } else { 1 };
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
                SearchError::Io { source, .. } if !io_is_input(source) => 1,
                SearchError::Fetch { input: false, .. } => 1,
                _ => 2,
            };
        }
    }
    1
}

/// The flag that sets a [`laser_search::SearchConfig`] field.
fn flag_of(field: &str) -> String {
    match field {
        "rhos" => "--rho".into(),
        "factors" => "--factor".into(),
        "ranking_file" => "--ranking".into(),
        "select" => "--select".into(),
        other => format!("--{}", other.replace('_', "-")),
    }
}

/// `error: outer: inner: …` on one line. A library's invalid option is named by its flag.
pub fn render(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s =
            match cause.downcast_ref::<SearchError>() {
                Some(SearchError::InvalidOption { field, reason }) => {
                    format!("{} {reason}", flag_of(field))
                }
                // The library names the budget by value; here it is the flag's.
                Some(e @ SearchError::MemoryBudget { given: Some(b), .. }) => e
                    .to_string()
                    .replacen(&format!("a memory budget of {b}"), &format!("--max-memory {b}"), 1),
                _ => cause.to_string(),
            };
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    format!("error: {}", parts.join(": "))
}
