//! The memory budget (the CLI's `--max-memory`, Python's `max_memory`; by default
//! [`DEFAULT_WEIGHT_MULTIPLE`] times the weights the model holds, within [`DEFAULT_FRACTION`] of
//! physical memory or of the container's limit): what is left of it after the weights (and, for a
//! gradient pass, its accumulators) becomes the model's activation budget, to which batches are
//! split.

use laser_model::Model;

use crate::error::{Result, SearchError};
use crate::search::config::{SearchConfig, Strategy};

pub(crate) mod size;

pub use size::{
    ByteSize, DEFAULT_FRACTION, DEFAULT_WEIGHT_MULTIPLE, MIN_DEFAULT_ACTIVATIONS, RUNTIME_RESERVE,
};

/// [`DEFAULT_FRACTION`] of the memory this process may use: physical memory, or a cgroup v2
/// limit when lower. `None` where neither can be read (no budget then).
pub fn default_budget() -> Option<u64> {
    let physical = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let limit = match (physical, cgroup) {
        (Some(p), Some(c)) => p.min(c),
        (p, c) => p.or(c)?,
    };
    Some((limit as f64 * DEFAULT_FRACTION) as u64)
}

/// The gradient accumulators a search with `cfg` holds at once (one group of matrices), for
/// [`apply_memory_budget`]; `None` for strategies without a gradient pass.
pub fn search_accumulators(cfg: &SearchConfig) -> Option<usize> {
    matches!(cfg.strategy, Strategy::Gradient | Strategy::Compose).then_some(cfg.grad_groups)
}

/// Sets `model`'s activation budget from `max_memory` (else the default): what is left after
/// the weights it holds, [`RUNTIME_RESERVE`] and, when `gradient_groups` is given, the
/// accumulators of one group of matrices. A budget the model alone exceeds is
/// [`SearchError::MemoryBudget`], naming the sizes.
pub fn apply_memory_budget(
    model: &mut Model,
    max_memory: Option<ByteSize>,
    gradient_groups: Option<usize>,
) -> Result<()> {
    let weights = model.resident_bytes();
    // bf16 matrices (flex only) are read in place by the gradient pass's linear op, one matrix
    // widened at a time (within the reserve), so the pass holds no f32 copy of them.
    let accumulators = gradient_groups.map_or(0, |g| model.matrix_bytes() / g.max(1) as u64);
    let fixed = weights + accumulators + RUNTIME_RESERVE;
    let Some(total) = max_memory.map(|b| b.0).or_else(|| model_default_budget(weights, fixed))
    else {
        return Ok(());
    };
    if fixed >= total {
        return Err(SearchError::MemoryBudget { given: max_memory, total, weights, accumulators });
    }
    tracing::info!(
        budget = total,
        weights,
        accumulators,
        activations = total - fixed,
        "memory budget"
    );
    // A budget the user gives is a limit (a row over it is refused); the default is a target (a
    // row over it runs alone): a long prompt is not an error the user did not ask for.
    if max_memory.is_some() {
        model.set_activation_budget(Some(total - fixed));
    } else {
        model.set_activation_target(total - fixed);
    }
    Ok(())
}

/// The default budget of a model holding `weights` bytes whose fixed part (weights,
/// accumulators, reserve) is `fixed`: [`DEFAULT_WEIGHT_MULTIPLE`] × `weights`, at least `fixed`
/// plus [`MIN_DEFAULT_ACTIVATIONS`], at most [`default_budget`].
fn model_default_budget(weights: u64, fixed: u64) -> Option<u64> {
    let by_weights = (DEFAULT_WEIGHT_MULTIPLE * weights as f64) as u64;
    Some(default_budget()?.min(by_weights.max(fixed + MIN_DEFAULT_ACTIVATIONS)))
}
