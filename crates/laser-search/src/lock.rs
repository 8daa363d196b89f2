//! One writer per output folder: a run that writes into a folder (a search's candidate log, a
//! suite's results) holds an advisory lock on `DIR/.laser.lock` for as long as it runs, with its
//! PID inside. A second process started on the same folder is refused, naming the holder; a
//! holder that dies — even by SIGKILL — releases the lock with its last file descriptor, so a
//! stale lock never blocks a resume.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::{Result, SearchError};

/// The lock file's name inside the folder.
pub const LOCK_FILE: &str = ".laser.lock";

/// A held folder lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

impl FolderLock {
    /// Takes the lock of `dir` (created if missing), or fails with [`SearchError::Busy`] naming
    /// the process that holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        Self::acquire_named(dir, LOCK_FILE)
    }

    /// [`FolderLock::acquire`] of the lock file `name`: the shards of one search share a folder,
    /// each writing its own log under its own lock.
    pub fn acquire_named(dir: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::io(dir, e))?;
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| SearchError::io(&path, e))?;
        if !try_lock(&file) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(SearchError::Busy {
                path: dir.to_owned(),
                pid: holder.trim().parse().ok(),
            });
        }
        let written = (|| {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_data()
        })();
        written.map_err(|e| SearchError::io(&path, e))?;
        Ok(Self { _file: file })
    }
}

/// Whether a live process holds the lock file `name` in `dir`, and its PID when it wrote one.
/// Probing takes the lock for an instant when it is free (and leaves the file as it was); a
/// missing file is a free lock.
pub fn holder(dir: &Path, name: &str) -> Option<Option<u32>> {
    let path = dir.join(name);
    let mut file = OpenOptions::new().read(true).write(true).open(path).ok()?;
    if try_lock(&file) {
        return None;
    }
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    Some(text.trim().parse().ok())
}

#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this process owns; no memory is shared with the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> bool {
    true
}
