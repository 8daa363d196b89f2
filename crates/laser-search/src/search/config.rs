//! What a search runs: the strategy and every knob, with the defaults measured in
//! `docs/RESULTS.md`, and the checks that need the model.

use std::path::PathBuf;

use laser_linalg::{LASER_RHO_GRID, TruncationScore};
use laser_model::{MatrixInfo, MatrixKind, Model};
use serde::{Deserialize, Serialize};

use crate::edits::Factor;
use crate::error::{Result, SearchError};
use crate::fit::Truncate;
use crate::race::{RACE_BLOCK, Race};
use crate::select::SelectRule;
use crate::task::LoadOptions;

/// Which search to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Every grid point.
    Exhaustive,
    /// Gradient-ranked top-K.
    Gradient,
    /// Greedy stacking of the gradient scan's edits.
    Compose,
    /// Marchenko–Pastur ranks, accepted greedily.
    Mp,
}

impl Strategy {
    /// Parses `exhaustive`, `gradient`, `compose` or `mp`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "exhaustive" => Some(Self::Exhaustive),
            "gradient" => Some(Self::Gradient),
            "compose" => Some(Self::Compose),
            "mp" => Some(Self::Mp),
            _ => None,
        }
    }

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exhaustive => "exhaustive",
            Self::Gradient => "gradient",
            Self::Compose => "compose",
            Self::Mp => "mp",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::from_name(s).ok_or_else(|| {
            format!("unknown strategy `{s}` (expected gradient, exhaustive, compose or mp)")
        })
    }
}

/// Every knob of a search. Defaults are the measured choices documented in `docs/RESULTS.md`.
/// Serialised (a sharded search records it in its folder, `shard.rs`) with the options' stable
/// names; `out` is where it is recorded, so it is not part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// The strategy.
    pub strategy: Strategy,
    /// Selection items (the rest of the task is the test split).
    pub n: usize,
    /// Matrices scanned by the gradient strategy.
    pub top_k: usize,
    /// Gradient / compose: per scanned matrix, only this many ρ values, those with the best
    /// predicted truncation score (`None`: the whole ρ grid).
    pub rhos_per_matrix: Option<usize>,
    /// Kept-rank fractions scanned.
    pub rhos: Vec<f32>,
    /// Factorizations scanned.
    pub factors: Vec<Factor>,
    /// Restrict to these layers (inclusive range).
    pub layers: Option<(usize, usize)>,
    /// Restrict to these matrix kinds.
    #[serde(with = "crate::names::some_list")]
    pub kinds: Option<Vec<MatrixKind>>,
    /// Split shuffle and clustering seed.
    pub seed: u64,
    /// Folder for the resumable candidate log.
    #[serde(skip)]
    pub out: Option<PathBuf>,
    /// How the gradient strategy scores a truncation.
    #[serde(with = "crate::names::one")]
    pub score: TruncationScore,
    /// Padded tokens per evaluation batch.
    pub batch_tokens: usize,
    /// Sequences per gradient micro-batch.
    pub micro_batch: usize,
    /// Gradient passes, each over one run of layers: the gradient accumulators held at once
    /// shrink by this factor and the gradient pass takes as many times longer; the ranking is
    /// the same.
    pub grad_groups: usize,
    /// How the scanned single edits become the recommendation (gradient and exhaustive; compose
    /// and mp accept edits greedily by their own procedure and ignore it).
    pub select: SelectRule,
    /// Diagnostic: also evaluate on the test split what every rule (on every factorization
    /// scanned, and on all of them) would have chosen, reported in [`SearchReport::rules`].
    /// Turns racing off (the rules choose among subsets of the candidates).
    pub compare_rules: bool,
    /// Gradient and exhaustive strategies: stop evaluating a candidate once the rule cannot
    /// choose it (exact: the same recommendation as `Off`), or once a 99% interval of its
    /// results so far says it will not be chosen (statistical; `race.rs`).
    #[serde(default)]
    pub race: Race,
    /// Selection items per racing block (a candidate can be stopped between blocks). The
    /// selection items are scored in these blocks with racing off too.
    #[serde(default = "default_race_block")]
    pub race_block: usize,
    /// Cap on the test split's items (the first ones of the shuffled remainder).
    pub test_max: Option<usize>,
    /// Cut the prompts of items that do not fit the model's context or the activation budget at
    /// this end (`None`: such an item is an error). Counted in [`SearchReport::truncated`].
    pub truncate: Option<Truncate>,
    /// Gradient and compose strategies: read the ranking from this file (`laser grad --out`)
    /// instead of running the gradient pass; it must be a ranking of the same inputs.
    #[serde(skip)]
    pub ranking_file: Option<PathBuf>,
    /// How task files are read: a suite's tasks and a merge's task are loaded with it, so every
    /// shard and the merge see the same items.
    #[serde(default, skip_serializing_if = "LoadOptions::is_default")]
    pub load: LoadOptions,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::Gradient,
            n: 100,
            // Measured on the 15-task BIG-bench suite (docs/RESULTS.md, "A wider default scan"): the
            // top 8 matrices × 2 ρ × {svd, blocks:4} = 32 candidates, raced statistically and
            // chosen by choose-confirm.
            top_k: 8,
            // Measured on four tasks (docs/RESULTS.md): the two best-predicted ρ per matrix reach
            // the full grid's selection accuracy within a point, at 2/9 of the candidates.
            rhos_per_matrix: Some(2),
            rhos: LASER_RHO_GRID.to_vec(),
            factors: vec![Factor::Svd, Factor::Blocks(4)],
            layers: None,
            kinds: None,
            seed: 0,
            out: None,
            score: TruncationScore::FirstOrder,
            batch_tokens: 4096,
            micro_batch: 8,
            grad_groups: 1,
            // Its one confirmation test does not weaken as the scan widens, and its log-loss
            // guard refuses an edit that wins answers by wrecking the language model.
            select: SelectRule::ChooseConfirm,
            compare_rules: false,
            race: Race::Statistical,
            race_block: RACE_BLOCK,
            test_max: None,
            truncate: None,
            ranking_file: None,
            load: LoadOptions::default(),
        }
    }
}

fn default_race_block() -> usize {
    RACE_BLOCK
}

pub(super) fn validate(cfg: &SearchConfig, model: &Model) -> Result<()> {
    if cfg.race_block == 0 {
        return Err(SearchError::option("race_block", "must be at least 1"));
    }
    if cfg.rhos.is_empty() {
        return Err(SearchError::option("rhos", "needs at least one value"));
    }
    if let Some(bad) = cfg.rhos.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
        return Err(SearchError::option("rhos", format!("{bad} is outside (0, 1]")));
    }
    if cfg.factors.is_empty() {
        return Err(SearchError::option("factors", "needs at least one factorization"));
    }
    if cfg.top_k == 0 {
        return Err(SearchError::option("top_k", "must be at least 1"));
    }
    if cfg.test_max == Some(0) {
        return Err(SearchError::option("test_max", "must be at least 1"));
    }
    if cfg.rhos_per_matrix == Some(0) {
        return Err(SearchError::option("rhos_per_matrix", "must be at least 1"));
    }
    let l = model.config().num_layers;
    if let Some((lo, hi)) = cfg.layers
        && (lo > hi || hi >= l)
    {
        return Err(SearchError::option(
            "layers",
            format!("{lo}-{hi} is outside this model's layers 0-{}", l - 1),
        ));
    }
    // Options a strategy would silently ignore are refused: a user who passes them expects them
    // to act.
    let ranks_by_gradient = matches!(cfg.strategy, Strategy::Gradient | Strategy::Compose);
    if !ranks_by_gradient {
        if cfg.ranking_file.is_some() {
            return Err(SearchError::option(
                "ranking_file",
                format!(
                    "does nothing with the {} strategy, which runs no gradient pass (it applies \
                     to the gradient and compose strategies)",
                    cfg.strategy
                ),
            ));
        }
        if cfg.grad_groups != 1 {
            return Err(SearchError::option(
                "grad_groups",
                format!(
                    "{} does nothing with the {} strategy, which runs no gradient pass (it \
                     applies to the gradient and compose strategies)",
                    cfg.grad_groups, cfg.strategy
                ),
            ));
        }
    }
    if cfg.grad_groups == 0 || cfg.grad_groups > l {
        return Err(SearchError::option(
            "grad_groups",
            format!("{} is not between 1 and the model's {l} layers", cfg.grad_groups),
        ));
    }
    // mp reads one plain SVD per matrix: a factorization asked of it is a mistake, but the
    // default list (left as it is) simply does not apply.
    let asked = cfg.factors != [Factor::Svd] && cfg.factors != SearchConfig::default().factors;
    if cfg.strategy == Strategy::Mp && asked {
        return Err(SearchError::option(
            "factors",
            "does nothing with the mp strategy, which sets each matrix's rank by the \
             Marchenko–Pastur bound on one plain SVD (factorizations apply to the exhaustive, \
             gradient and compose strategies)",
        ));
    }
    Ok(())
}

/// Every factorization's cluster count must fit every matrix the search may edit (a gradient
/// shortlist can be any of them): checked before the search writes anything.
pub(super) fn check_cluster_counts(matrices: &[MatrixInfo], factors: &[Factor]) -> Result<()> {
    let Some(smallest) = matrices.iter().min_by_key(|m| m.shape[0]) else { return Ok(()) };
    let rows = smallest.shape[0];
    for factor in factors {
        let clusters = match *factor {
            Factor::Svd => continue,
            Factor::Blocks(c) | Factor::KMeans(c) | Factor::KSubspaces(c) => c,
        };
        if clusters == 0 || clusters > rows {
            return Err(SearchError::option(
                "factors",
                format!(
                    "{factor} needs between 1 and {rows} clusters here: {} has {rows} rows \
                     (narrow the matrices with --kinds or --layers, or use fewer clusters)",
                    smallest.name
                ),
            ));
        }
    }
    Ok(())
}
