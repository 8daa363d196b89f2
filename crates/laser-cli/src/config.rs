//! Flags → validated library configuration. Every rejection names the flag and the value.

use std::path::{Path, PathBuf};

use laser_linalg::{LASER_RHO_GRID, TruncationScore};
use laser_model::MatrixKind;
use laser_search::{Factor, SearchConfig, Strategy};

use crate::args::SearchOptions;
use crate::exit::usage;

/// Which items `eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitChoice {
    Select,
    Test,
    All,
}

pub fn split(s: &str) -> anyhow::Result<SplitChoice> {
    match s {
        "select" => Ok(SplitChoice::Select),
        "test" => Ok(SplitChoice::Test),
        "all" => Ok(SplitChoice::All),
        other => Err(usage(format!("--split {other:?}: expected select, test or all"))),
    }
}

pub fn score(s: &str) -> anyhow::Result<TruncationScore> {
    TruncationScore::from_name(s)
        .ok_or_else(|| usage(format!("--score {s:?}: expected first-order, tail-grad or cosine")))
}

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

fn layers(s: &str) -> anyhow::Result<(usize, usize)> {
    let parse = |x: &str| {
        x.trim().parse::<usize>().map_err(|_| {
            usage(format!("--layers {s:?}: expected A-B or A with non-negative integers"))
        })
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let l = parse(s)?;
            (l, l)
        }
    };
    if lo > hi {
        return Err(usage(format!("--layers {s:?}: the range is empty")));
    }
    Ok((lo, hi))
}

/// The search configuration of `search` / `adapt`.
/// The search configuration of `search` / `adapt` / `suite` (`n` selection items, `seed`).
pub fn search(
    opts: &SearchOptions,
    n: usize,
    seed: u64,
    out: Option<PathBuf>,
    default: Strategy,
) -> anyhow::Result<SearchConfig> {
    let strategy = match &opts.strategy {
        None => default,
        Some(s) => Strategy::from_name(s).ok_or_else(|| {
            usage(format!("--strategy {s:?}: expected gradient, exhaustive, compose or mp"))
        })?,
    };
    let factors = match &opts.factor {
        None => vec![Factor::Svd],
        Some(fs) => fs
            .iter()
            .map(|f| f.parse::<Factor>().map_err(|e| usage(format!("--factor: {e}"))))
            .collect::<anyhow::Result<_>>()?,
    };
    if factors.is_empty() {
        return Err(usage("--factor needs at least one factorization"));
    }
    let kinds = match &opts.kinds {
        None => None,
        Some(ks) => Some(
            ks.iter()
                .map(|k| {
                    MatrixKind::from_name(k).ok_or_else(|| {
                        usage(format!(
                            "--kinds {k:?}: expected q, k, v, qkv, o, fc_in, fc_up, fc_gate_up or fc_out"
                        ))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
    };
    if let Some(rule) = opts.select
        && matches!(strategy, Strategy::Compose | Strategy::Mp)
    {
        return Err(usage(format!(
            "--select {rule} applies to the gradient and exhaustive strategies; {} accepts edits greedily",
            strategy.name()
        )));
    }
    if opts.top_k == Some(0) {
        return Err(usage("--top-k must be at least 1"));
    }
    if n == 0 {
        return Err(usage("--n must be at least 1"));
    }
    if opts.test_max == Some(0) {
        return Err(usage("--test-max must be at least 1"));
    }
    let defaults = SearchConfig::default();
    let rhos_per_matrix = match opts.rhos_per_matrix.as_deref() {
        None => defaults.rhos_per_matrix,
        Some("all") => None,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(usage(format!(
                    "--rhos-per-matrix takes a count ≥ 1 or `all`, got `{v}`"
                )));
            }
        },
    };
    Ok(SearchConfig {
        strategy,
        n,
        top_k: opts.top_k.unwrap_or(defaults.top_k),
        rhos_per_matrix,
        rhos: rhos(opts.rho.as_ref())?,
        factors,
        layers: opts.layers.as_deref().map(layers).transpose()?,
        kinds,
        seed,
        out,
        score: opts.score.as_deref().map(score).transpose()?.unwrap_or(defaults.score),
        select: opts.select.unwrap_or(defaults.select),
        compare_rules: opts.compare_rules,
        test_max: opts.test_max,
        ..defaults
    })
}

/// `./laser-out/adapt-<task stem>`.
pub fn default_adapt_out(task: &Path) -> PathBuf {
    let stem =
        task.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "task".into());
    PathBuf::from("laser-out").join(format!("adapt-{stem}"))
}
