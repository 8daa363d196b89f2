//! Progress and Ctrl-C while the GIL is released: the search calls back into Python (with the GIL
//! taken for the moment) to move a progress bar, and at each candidate boundary runs Python's
//! signal handlers, so that Ctrl-C stops the run there, as SIGINT does for the CLI: every
//! finished candidate is logged and the same call resumes.

use std::sync::Mutex;

use laser_search::Progress;
use pyo3::prelude::*;

/// Forwards a search's progress to a Python callable `callback(event, name, total)`.
#[derive(Debug)]
pub struct PyProgress {
    callback: Option<Py<PyAny>>,
    /// The exception a signal handler or the callback raised; the run stops and re-raises it.
    raised: Mutex<Option<PyErr>>,
}

impl PyProgress {
    pub fn new(callback: Option<Py<PyAny>>) -> Self {
        Self { callback, raised: Mutex::new(None) }
    }

    /// The exception that stopped the run, if one did.
    pub fn take_raised(&self) -> Option<PyErr> {
        self.raised.lock().map(|mut r| r.take()).unwrap_or(None)
    }

    fn keep(&self, e: PyErr) {
        if let Ok(mut r) = self.raised.lock()
            && r.is_none()
        {
            *r = Some(e);
        }
    }

    fn call(&self, event: &str, name: &str, total: u64) {
        let Some(callback) = &self.callback else { return };
        Python::attach(|py| {
            if let Err(e) = callback.call1(py, (event, name, total)) {
                self.keep(e);
            }
        });
    }
}

impl Progress for PyProgress {
    fn phase(&self, name: &str, total: u64) {
        self.call("phase", name, total);
    }

    fn advance(&self) {
        self.call("advance", "", 1);
    }

    fn stop_requested(&self) -> bool {
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                self.keep(e);
            }
        });
        self.raised.lock().map(|r| r.is_some()).unwrap_or(true)
    }
}
