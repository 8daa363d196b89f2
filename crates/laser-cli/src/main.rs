//! `laser`: adapt a language model to a task by low-rank edits, without fine-tuning.
//! Thin by design: flags become a validated configuration (`config`), the libraries do the work,
//! errors become exit codes (`exit`: 2 for bad input or usage, 1 otherwise).

mod args;
mod commands;
mod config;
mod exit;
mod output;
mod progress;
mod shards;
mod signals;
mod values;

use clap::Parser;

use crate::args::{Cli, Command};
use crate::commands::Env;
use crate::output::errln;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    signals::install();
    laser_model::allocator::retain_freed_memory();
    let result = run(cli);
    if let Some(signal) = signals::received() {
        // Stopped at a candidate boundary (or finished before the next one): the logs are synced.
        errln!(
            "stopped by {}: every finished candidate is logged; run the same command again to resume",
            signals::name(signal)
        );
        std::process::exit(128 + signal);
    }
    if let Err(err) = result {
        errln!("{}", exit::render(&err));
        std::process::exit(exit::code(&err));
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let backend = cli.backend;
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(exit::usage("--threads must be at least 1"));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("thread pool: {e}"))?;
    }
    if cli.verbose > 0 {
        let level = if cli.verbose > 1 { tracing::Level::DEBUG } else { tracing::Level::INFO };
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .with_target(false)
            // Its own report of a failed write is an `eprintln!`, which panics when standard
            // error is the thing that failed (`2>/dev/full`); log lines are dropped instead.
            .log_internal_errors(false)
            .init();
    }
    let env = Env { backend, verbose: cli.verbose > 0, max_memory: cli.max_memory };
    match &cli.command {
        Command::Inspect(a) => commands::inspect(&env, a),
        Command::Predict(a) => commands::predict(&env, a),
        Command::Eval(a) => commands::eval(&env, a),
        Command::Grad(a) => commands::grad(&env, a),
        Command::Search(a) => commands::search(&env, a),
        Command::Adapt(a) => commands::adapt(&env, a),
        Command::Suite(a) => commands::suite(&env, a),
        Command::Apply(a) => commands::apply(&env, a),
        Command::Merge(a) => commands::merge(&env, a),
    }
}
