//! The memory budget (the CLI's `--max-memory`, Python's `max_memory`; by default
//! [`DEFAULT_FRACTION`] of physical memory or of the container's limit): what is left of it after
//! the weights (and, for a gradient pass, its accumulators) becomes the model's activation budget,
//! to which batches are split.

use std::fmt;
use std::str::FromStr;

use laser_model::{Model, mib};

use crate::error::{Result, SearchError};
use crate::search::{SearchConfig, Strategy};

/// The default budget's share of physical memory (or of a cgroup's `memory.max`, when lower):
/// room for the OS, the page cache of the weights file and the estimate's slack.
pub const DEFAULT_FRACTION: f64 = 0.8;

/// Held back from the budget for what neither the weights nor the activation estimate count:
/// the binary and its libraries, the tokenizer, thread stacks, allocator slack, the SVD phase's
/// one matrix at a time. Measured: SmolLM2's `laser grad` under `--max-memory 1.8G` without it
/// peaked 68 MB over the budget (docs/SCALING.md).
pub const RUNTIME_RESERVE: u64 = 256 << 20;

/// A size in bytes: `123`, `512K`, `800M`, `1.5G`, `2T` (binary units; an `iB` or `B` suffix
/// is accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
        let (number, shift) = match t.chars().last() {
            Some('K' | 'k') => (&t[..t.len() - 1], 10),
            Some('M' | 'm') => (&t[..t.len() - 1], 20),
            Some('G' | 'g') => (&t[..t.len() - 1], 30),
            Some('T' | 't') => (&t[..t.len() - 1], 40),
            _ => (t, 0),
        };
        let bad = || format!("`{s}` is not a size like 800M, 12G or a number of bytes");
        let value: f64 = number.trim().parse().map_err(|_| bad())?;
        let bytes = value * (1u64 << shift) as f64;
        if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
            return Err(bad());
        }
        Ok(Self(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 1 << 20 { write!(f, "{} bytes", self.0) } else { f.write_str(&mib(self.0)) }
    }
}

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
    let Some(total) = max_memory.map(|b| b.0).or_else(default_budget) else {
        return Ok(());
    };
    let weights = model.resident_bytes();
    // bf16 matrices (flex only) are read in place by the gradient pass's linear op, one matrix
    // widened at a time (within the reserve), so the pass holds no f32 copy of them.
    let accumulators = gradient_groups.map_or(0, |g| model.matrix_bytes() / g.max(1) as u64);
    let fixed = weights + accumulators + RUNTIME_RESERVE;
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
    model.set_activation_budget(Some(total - fixed));
    Ok(())
}

/// What [`SearchError::MemoryBudget`] says after naming the budget.
pub(crate) fn budget_shortfall(weights: u64, accumulators: u64) -> String {
    format!(
        "leaves nothing for activations: the model's weights take {}{}, and {} is held back for \
         the runtime",
        mib(weights),
        if accumulators > 0 {
            format!(", the gradient pass's accumulators {}", mib(accumulators))
        } else {
            String::new()
        },
        mib(RUNTIME_RESERVE)
    )
}

/// How the default budget is named in messages.
pub(crate) fn default_budget_text(total: u64) -> String {
    format!(
        "the default memory budget ({:.0}% of this machine's memory, {})",
        DEFAULT_FRACTION * 100.0,
        mib(total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        for (text, bytes) in [
            ("123", 123),
            ("1K", 1024),
            ("512k", 512 << 10),
            ("800M", 800 << 20),
            ("800MiB", 800 << 20),
            ("1.5G", 3 << 29),
            ("2GB", 2 << 30),
            ("1T", 1 << 40),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in ["", "G", "-1G", "0", "abc", "1X", "nanG", "1e30T"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} parsed");
        }
    }
}
