//! The budget's unit and defaults: [`ByteSize`], the default's multiple of the weights and share
//! of memory, the runtime reserve, and how a budget is named in messages — apart from the policy
//! (`mod.rs`), so that an error can name a budget without depending on it.

use std::fmt;
use std::str::FromStr;

use laser_model::mib;

/// The default budget's share of physical memory (or of a cgroup's `memory.max`, when lower):
/// room for the OS, the page cache of the weights file and the estimate's slack.
pub const DEFAULT_FRACTION: f64 = 0.8;

/// The default budget in multiples of the weights the model holds (issue 27's target: an adapt
/// without flags peaks at no more than 3× the f32 weights). Above 3 because the activation
/// estimate is an upper bound: on SmolLM2 a budget of 3.75× peaked at 2.75× (the gradient pass
/// 15% slower than unbounded, whose micro-batches of 8 peaked at 3.6×); Gemma 3 270M peaks at
/// 2.9–3.0× with or without it (docs/SCALING.md).
pub const DEFAULT_WEIGHT_MULTIPLE: f64 = 3.75;

/// The least activation budget the default leaves after the weights, accumulators and reserve:
/// where those are most of the multiple (SmolLM2's 210 matrices are 78% of its weights) a
/// sequence still fits a micro-batch.
pub const MIN_DEFAULT_ACTIVATIONS: u64 = 256 << 20;

/// Held back from the budget for what neither the weights nor the activation estimate count:
/// the binary and its libraries, the tokenizer, thread stacks, allocator slack, the SVD phase's
/// one matrix at a time, faer's per-thread packing buffers (at most two 32 MiB panels a thread
/// since the products run in blocks, `laser_model`'s `host_kernels/product.rs`). Measured: SmolLM2's `laser grad` under `--max-memory 1.8G` without it
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

/// What `SearchError::MemoryBudget` says after naming the budget.
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
        "the default memory budget ({} — {DEFAULT_WEIGHT_MULTIPLE}× the weights, within {:.0}% of \
         this machine's memory)",
        mib(total),
        DEFAULT_FRACTION * 100.0
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
