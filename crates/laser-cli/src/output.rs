//! Standard output and error that a closed reader cannot crash.
//!
//! `println!` panics when standard output cannot be written: its reader has gone (`laser grad … |
//! head -1`, a broken pipe) or its file is full (`> /dev/full`). Every command prints after its
//! work is done and its files are written, so a reader that has gone only silences what is left
//! to print — the command ends as it would have, exit 0 on success — while any other failed write
//! is an error naming standard output (exit 1). Standard error is where errors go, the channel of
//! last resort: a failed write to it is dropped rather than turned into a panic.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

/// Set once a write found standard output's reader gone; later output is dropped.
static READER_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `text` to standard output and flushes it (so a failure surfaces here, not at exit).
pub fn stdout(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    if READER_GONE.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
            READER_GONE.store(true, Ordering::Relaxed);
            Ok(())
        }
        result => result.context("writing to standard output"),
    }
}

/// Writes `text` to standard error; a failure is dropped (there is nowhere left to report it).
pub fn stderr(text: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(text);
}

/// `print!` that returns a `Result` instead of panicking ([`stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns a `Result` instead of panicking ([`stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics ([`stderr`]).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, out, outln};
