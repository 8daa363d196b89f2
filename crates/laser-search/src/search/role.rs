//! What this process does in a search that may be split across processes (`shard.rs`): the whole
//! search, one shard's part of the candidate list, or the merge of the shards' logs — and the
//! candidate log and lock each role works with. The strategies see the role only through the
//! scan (which candidates it evaluates) and where a gradient ranking is shared.

use std::path::Path;

use crate::error::{Result, SearchError};
use crate::lock::FolderLock;
use crate::log::CandidateLog;
use crate::search::config::SearchConfig;
use crate::shard::{Shard, ShardSpec};

/// What this process does in a search that may be split across processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// The whole search.
    Whole,
    /// Every N-th candidate of the list, logged; no selection, no test split.
    Shard(Shard),
    /// No evaluation on the selection split: every candidate comes from the shards' logs.
    Merge { shards: usize, partial: bool },
}

/// The folder a sharded search's processes share (`cfg.out`, required).
pub(super) fn shard_dir(cfg: &SearchConfig) -> Result<&Path> {
    cfg.out.as_deref().ok_or_else(|| {
        SearchError::option("out", "a sharded search needs a folder all its shards share")
    })
}

impl Role {
    /// The candidate log of this role for a search of identity `id`: the output folder's (or one
    /// in memory) for a whole search, the shard's own, or every shard's merged (missing shards
    /// refused unless `partial`). A merge also holds the folder's lock while it writes the
    /// reports: one writer, as for a whole search.
    pub(super) fn open_log(
        self,
        cfg: &SearchConfig,
        id: &serde_json::Value,
    ) -> Result<(CandidateLog, Option<FolderLock>)> {
        match (self, &cfg.out) {
            (Role::Whole, Some(dir)) => Ok((CandidateLog::open(dir, id)?, None)),
            (Role::Whole, None) => Ok((CandidateLog::in_memory(), None)),
            (Role::Shard(shard), _) => {
                let dir = shard_dir(cfg)?;
                Ok((
                    CandidateLog::open_named(dir, &shard.log_name(), &shard.lock_name(), id)?,
                    None,
                ))
            }
            (Role::Merge { partial, .. }, _) => {
                let dir = shard_dir(cfg)?;
                let spec = ShardSpec::read(dir)?;
                let (present, missing) = spec.logs(dir)?;
                if !missing.is_empty() && !partial {
                    let running = crate::shard::running_shards(dir, spec.shards, missing.clone());
                    return Err(SearchError::Incomplete {
                        dir: dir.to_owned(),
                        shards: missing,
                        candidates: Vec::new(),
                        running,
                    });
                }
                let log = CandidateLog::merged(&present, id)?;
                Ok((log, Some(FolderLock::acquire(dir)?)))
            }
        }
    }
}
