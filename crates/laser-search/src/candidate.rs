//! One evaluated candidate of a scan: its edits and selection metrics (and, when racing stopped
//! it, after how many items) — what the scan produces and the selection rules read.

use serde::{Deserialize, Serialize};

use crate::edits::Edit;
use crate::metrics::Metrics;

/// One evaluated candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateResult {
    /// The edits.
    pub edits: Vec<Edit>,
    /// Selection metrics: of every selection item, or (stopped by racing) of the first
    /// `stopped_after` items in the order they were scored.
    pub select: Metrics,
    /// Racing stopped it after this many items: the rule could no longer choose it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_after: Option<usize>,
}
