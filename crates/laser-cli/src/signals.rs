//! SIGINT and SIGTERM stop a run at the next candidate boundary instead of killing it: the
//! handler only records the signal; the search sees it through `Progress::stop_requested`,
//! returns with every finished candidate logged (and synced), and `main` exits 128 + signal
//! (130 / 143) after saying how to resume. A second signal ends the process at once.

use std::sync::atomic::{AtomicI32, Ordering};

/// The first stop signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    if RECEIVED.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: `_exit` is async-signal-safe; a second signal means "now".
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Installs the handlers (once, before any long work).
///
/// SIGXFSZ (a write past `ulimit -f`) is ignored, so that the write fails with `EFBIG` and the
/// command reports the file and exits 1 with its outputs intact, instead of being killed mid-write.
pub fn install() {
    // SAFETY: setting a signal's disposition to "ignore" has no handler code to run.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `record` only touches an atomic and calls `_exit`, both async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// The stop signal received so far, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The signal's name for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
