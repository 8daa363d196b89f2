//! Flags → library configuration: the checks that need more than one flag. Every rejection names the flag and the value.

use laser_linalg::LASER_RHO_GRID;
use laser_search::{SearchConfig, Strategy, Truncate};
use std::path::{Path, PathBuf};

use crate::args::SearchOptions;
use crate::exit::usage;
use crate::values::RhosPerMatrix;

/// `--rho` values, or LASER's grid.
pub fn rhos(r: Option<&Vec<f32>>) -> anyhow::Result<Vec<f32>> {
    let v = r.cloned().unwrap_or_else(|| LASER_RHO_GRID.to_vec());
    if v.is_empty() {
        return Err(usage("--rho needs at least one value"));
    }
    if let Some(bad) = v.iter().find(|x| !(**x > 0.0 && **x <= 1.0)) {
        return Err(usage(format!("--rho {bad}: every kept-rank fraction must be in (0, 1]")));
    }
    Ok(v)
}

/// The search configuration of `search` / `adapt` / `suite` (`n` selection items, `seed`):
/// flags over [`SearchConfig::default`]. Ranges the library checks against the model and task
/// (`--layers`, `--n`) are reported by it, under the flag's name.
pub fn search(
    opts: &SearchOptions,
    n: usize,
    seed: u64,
    truncate: Option<Truncate>,
    out: Option<PathBuf>,
    default: Strategy,
) -> anyhow::Result<SearchConfig> {
    let strategy = opts.strategy.unwrap_or(default);
    if let Some(rule) = opts.select
        && matches!(strategy, Strategy::Compose | Strategy::Mp)
    {
        return Err(usage(format!(
            "--select {rule} applies to the gradient and exhaustive strategies; {strategy} accepts edits greedily"
        )));
    }
    let defaults = SearchConfig::default();
    Ok(SearchConfig {
        strategy,
        n,
        top_k: opts.top_k.unwrap_or(defaults.top_k),
        rhos_per_matrix: match opts.rhos_per_matrix {
            None => defaults.rhos_per_matrix,
            Some(RhosPerMatrix::All) => None,
            Some(RhosPerMatrix::Best(n)) => Some(n),
        },
        rhos: rhos(opts.rho.as_ref())?,
        factors: opts.factor.clone().unwrap_or_else(|| defaults.factors.clone()),
        layers: opts.layers.map(|r| (r.first, r.last)),
        kinds: opts.kinds.clone(),
        seed,
        out,
        score: opts.score.unwrap_or(defaults.score),
        select: opts.select.unwrap_or(defaults.select),
        compare_rules: opts.compare_rules,
        race: opts.race.unwrap_or(defaults.race),
        race_block: opts.race_block.unwrap_or(defaults.race_block),
        grad_groups: opts.grad_groups.unwrap_or(defaults.grad_groups),
        test_max: opts.test_max,
        truncate,
        ranking_file: opts.ranking.clone(),
        ..defaults
    })
}

/// `./laser-out/adapt-<task stem>`.
pub fn default_adapt_out(task: &Path) -> PathBuf {
    let stem =
        task.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "task".into());
    PathBuf::from("laser-out").join(format!("adapt-{stem}"))
}
