//! A search split across processes (issue 14): shard `I/N` evaluates every N-th candidate of the
//! list all shards enumerate alike, logging into `candidates.shard-I-of-N.jsonl` in one shared
//! folder; a merge reads every shard's log and finishes the search as one process would.
//!
//! The folder records what is being searched (`shards.json`: model, task, shard count and the
//! whole [`SearchConfig`]); a shard started with anything else refuses to run. The gradient
//! strategy's ranking is computed once and shared as `ranking.json` (or read from `laser grad
//! --out`'s), so every shard scans the same shortlist.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use laser_model::WeightDtype;

use crate::error::{Result, SearchError};
use crate::log::write_atomic;
use crate::report::MatrixScore;
use crate::search::config::SearchConfig;

/// The file recording a sharded search in its folder.
pub const SPEC_FILE: &str = "shards.json";
/// The shared gradient ranking in a sharded search's folder (and `laser grad --out`'s output).
pub const RANKING_FILE: &str = "ranking.json";

/// Part `index` of `count` (one-based, like "part 1 of 3").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// Part `index` of `count`, 1 ≤ `index` ≤ `count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index == 0 || index > count {
            return Err(SearchError::option(
                "shard",
                format!("{index}/{count} is not a part I/N with 1 ≤ I ≤ N"),
            ));
        }
        Ok(Self { index, count })
    }

    /// One-based index.
    pub fn index(self) -> usize {
        self.index
    }

    /// Number of shards.
    pub fn count(self) -> usize {
        self.count
    }

    /// This shard's candidate log in the shared folder.
    pub fn log_name(self) -> String {
        format!("candidates.shard-{}-of-{}.jsonl", self.index, self.count)
    }

    /// The lock a running shard holds (one writer per shard log).
    pub fn lock_name(self) -> String {
        format!(".laser.shard-{}-of-{}.lock", self.index, self.count)
    }

    /// Whether the candidate at `position` of the enumerated list is this shard's: round-robin,
    /// so that shards get candidates of every layer and matrix alike.
    pub fn takes(self, position: usize) -> bool {
        position % self.count == self.index - 1
    }

    /// The shard that evaluates the candidate at `position`.
    pub fn owner(count: usize, position: usize) -> usize {
        position % count + 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}` is not I/N with 1 ≤ I ≤ N (e.g. 2/8)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i: usize = i.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n).map_err(|_| bad())
    }
}

/// Of the shards `involved` (one-based, of `count`), those a live process still runs in `dir`
/// (it holds the shard's lock), in order, each with its PID where known.
pub fn running_shards(
    dir: &Path,
    count: usize,
    involved: impl IntoIterator<Item = usize>,
) -> Vec<(usize, Option<u32>)> {
    let involved: std::collections::BTreeSet<usize> = involved.into_iter().collect();
    involved
        .into_iter()
        .filter_map(|i| {
            let shard = Shard::new(i, count).ok()?;
            crate::lock::holder(dir, &shard.lock_name()).map(|pid| (i, pid))
        })
        .collect()
}

/// What a sharded search folder holds: the same for every shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// The model, as given to the shards.
    pub model: PathBuf,
    /// How the shards stored the model's matrices.
    #[serde(with = "crate::names::one", default)]
    pub dtype: WeightDtype,
    /// The task file.
    pub task: PathBuf,
    /// How many shards.
    pub shards: usize,
    /// The search.
    pub config: SearchConfig,
}

impl ShardSpec {
    /// Records this spec in `dir`, or checks that the one there is the same: a shard of another
    /// search (other model, task, options or shard count) refuses to share the folder. Creation
    /// is a hard link of a complete temporary file, so concurrent shards never see half a file
    /// and exactly one of them creates it.
    pub fn record(&self, dir: &Path) -> Result<()> {
        let path = dir.join(SPEC_FILE);
        let text = serde_json::to_string_pretty(self).expect("a spec serialises");
        if create_once(&path, text.as_bytes())? {
            return Ok(());
        }
        let there = Self::read(dir)?;
        if &there != self {
            return Err(SearchError::Log {
                path,
                line: None,
                message: format!(
                    "this folder holds another sharded search ({} shards of {} on {}); a shard \
                     must run with the same model, task, options and shard count, or use \
                     another --out folder",
                    there.shards,
                    there.task.display(),
                    there.model.display()
                ),
            });
        }
        Ok(())
    }

    /// The spec recorded in `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(SPEC_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| SearchError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| SearchError::Log {
            path,
            line: Some(e.line()),
            message: format!("not a sharded search's record: {e}"),
        })
    }

    /// The shards' log files in `dir`: those present, and the indices of those missing.
    pub fn logs(&self, dir: &Path) -> Result<(Vec<PathBuf>, Vec<usize>)> {
        let (mut present, mut missing) = (Vec::new(), Vec::new());
        for i in 1..=self.shards {
            let path = dir.join(Shard::new(i, self.shards)?.log_name());
            if path.is_file() { present.push(path) } else { missing.push(i) }
        }
        Ok((present, missing))
    }
}

/// A gradient ranking with the inputs it was computed from (`laser grad --out`, `ranking.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankingFile {
    /// Model, task, split and gradient options: a search reads it only when they are its own.
    pub identity: Value,
    /// Mean gold-answer NLL of the gradient pass.
    pub loss: f64,
    /// Every ranked matrix, best first.
    pub ranking: Vec<MatrixScore>,
}

impl RankingFile {
    /// Reads `path`, refusing a ranking of other inputs than `identity`.
    pub fn read(path: &Path, identity: &Value) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| SearchError::io(path, e))?;
        let file: Self = serde_json::from_str(&text).map_err(|e| SearchError::Log {
            path: path.to_owned(),
            line: Some(e.line()),
            message: format!("not a gradient ranking: {e}"),
        })?;
        if !crate::log::same_inputs(&file.identity, identity) {
            return Err(SearchError::Log {
                path: path.to_owned(),
                line: None,
                message: format!(
                    "a ranking of other inputs ({}); this search needs {}",
                    file.identity, identity
                ),
            });
        }
        Ok(file)
    }

    /// Writes it to `path` atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, serde_json::to_string_pretty(self).expect("serialises").as_bytes())
    }

    /// Publishes it as `path` unless a file is there already (another shard was first); returns
    /// the ranking now at `path`.
    pub fn publish(&self, path: &Path) -> Result<Self> {
        let text = serde_json::to_string_pretty(self).expect("serialises");
        if create_once(path, text.as_bytes())? {
            Ok(self.clone())
        } else {
            Self::read(path, &self.identity)
        }
    }
}

/// Creates `path` holding `bytes` unless it exists (then `false`). The file appears whole or not
/// at all — a hard link of a complete temporary file — and of processes racing to create it,
/// exactly one succeeds: the others read what it wrote.
pub(crate) fn create_once(path: &Path, bytes: &[u8]) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| SearchError::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    write_atomic(&tmp, bytes)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(SearchError::io(path, e)),
    }
}

/// What one shard did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// `I/N`.
    pub shard: String,
    /// Candidates in this shard's part of the list.
    pub candidates: usize,
    /// Of those, evaluated by this run (the rest came from its log).
    pub evaluated: usize,
    /// Its log file.
    pub log: PathBuf,
    /// Wall time.
    pub seconds: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_one_based_and_partition_round_robin() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard::new(2, 3).unwrap());
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?} parsed");
        }
        // Every position belongs to exactly one shard, and the owner is the shard that takes it.
        for n in 1..5 {
            for pos in 0..20 {
                let takers: Vec<usize> =
                    (1..=n).filter(|&i| Shard::new(i, n).unwrap().takes(pos)).collect();
                assert_eq!(takers, vec![Shard::owner(n, pos)]);
            }
        }
        assert_eq!(Shard::new(2, 3).unwrap().log_name(), "candidates.shard-2-of-3.jsonl");
    }
}
