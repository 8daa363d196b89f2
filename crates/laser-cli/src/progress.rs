//! Progress bars with ETA on stderr — only when stderr is a terminal, output is not `--json` and
//! `-v` has not replaced them with log lines (each phase is also a tracing event).

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws one bar per phase.
#[derive(Debug)]
pub struct Bars {
    enabled: bool,
    current: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// `quiet`: `--json` or `-v` (logs instead of bars).
    pub fn new(quiet: bool) -> Self {
        Self { enabled: !quiet && std::io::stderr().is_terminal(), current: Mutex::new(None) }
    }

    /// Whether bars (and notes) are drawn.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// A one-off message (e.g. "loading model"), shown only when bars are.
    pub fn note(&self, msg: &str) {
        if self.enabled {
            crate::output::errln!("{msg}");
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = self.current.lock().expect("not poisoned").take() {
            bar.finish_and_clear();
        }
    }
}

impl laser_search::Progress for Bars {
    fn phase(&self, name: &str, total: u64) {
        tracing::info!(steps = total, "phase: {name}");
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:28} [{bar:30}] {pos}/{len} {elapsed_precise} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(name.to_owned());
        if let Some(old) = self.current.lock().expect("not poisoned").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self) {
        if let Some(bar) = self.current.lock().expect("not poisoned").as_ref() {
            bar.inc(1);
        }
    }

    fn stop_requested(&self) -> bool {
        crate::signals::received().is_some()
    }
}
