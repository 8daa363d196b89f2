//! The search log: every evaluated candidate is appended to `candidates.jsonl` in the `--out`
//! folder and flushed to disk before the search moves on, so a search killed at any point (even
//! by SIGKILL) resumes without re-evaluating anything and ends with the same result.
//!
//! The first line identifies the search (model, task, split, strategy options); resuming into a
//! folder that holds a different search is refused. A torn last line (the kill landed mid-write,
//! or the disk filled) is ignored and overwritten; any other line that does not read back is an
//! error naming it, since dropping it would silently drop every candidate after it. The folder is locked while the log is open ([`FolderLock`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::edits::{Edit, EditList};
use crate::error::{Result, SearchError};
use crate::lock::FolderLock;
use crate::metrics::Metrics;

/// One logged evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedCandidate {
    /// `EditList::key` of the edits ("base" for none).
    pub key: String,
    /// The edits evaluated.
    pub edits: Vec<Edit>,
    /// Metrics on the selection split.
    pub select: Metrics,
    /// Racing stopped it early: `select` covers the items it was scored on (`race.rs`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// The race that stopped it, as `rule/mode` ([`crate::Racer::context`]); absent in logs
    /// written before statistical racing, whose stops were exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

/// Whether a logged evaluation is complete, or which race stopped it early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoggedStop {
    /// Scored on every selection item.
    Complete,
    /// Stopped by the race `rule/mode`; `None` for a log that did not record it (exact racing).
    Stopped(Option<String>),
}

/// The log key of a candidate: `EditList::key` of its edits, "base" for none.
pub fn candidate_key(edits: &[Edit]) -> String {
    if edits.is_empty() { "base".to_owned() } else { EditList::key(edits) }
}

/// The log's file name in a single-process search's folder.
pub const LOG_FILE: &str = "candidates.jsonl";

/// The append-only log (or an in-memory stand-in without `--out`).
#[derive(Debug)]
pub struct CandidateLog {
    file: Option<(PathBuf, File)>,
    /// Held while the log is open: one writer per folder.
    _lock: Option<FolderLock>,
    known: Known,
}

/// Logged metrics by key, and whether racing stopped the candidate early.
type Known = HashMap<String, (Metrics, LoggedStop)>;

impl CandidateLog {
    /// No file: nothing is persisted.
    pub fn in_memory() -> Self {
        Self { file: None, _lock: None, known: HashMap::new() }
    }

    /// Opens (or creates) `dir/candidates.jsonl` for the search identified by `identity`.
    pub fn open(dir: &Path, identity: &Value) -> Result<Self> {
        Self::open_named(dir, LOG_FILE, crate::lock::LOCK_FILE, identity)
    }

    /// [`CandidateLog::open`] of the log `dir/name`, locked by `dir/lock` (a shard's log).
    pub fn open_named(dir: &Path, name: &str, lock: &str, identity: &Value) -> Result<Self> {
        let lock = FolderLock::acquire_named(dir, lock)?;
        let path = dir.join(name);
        let (known, valid_len) =
            if path.exists() { read_log(&path, identity)? } else { (HashMap::new(), 0) };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SearchError::io(&path, e))?;
        file.set_len(valid_len).map_err(|e| SearchError::io(&path, e))?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::End(0)).map_err(|e| SearchError::io(&path, e))?;
        let mut log = Self { file: Some((path, file)), _lock: Some(lock), known };
        if valid_len == 0 {
            log.write_line(&serde_json::json!({ "search": identity }))?;
        }
        Ok(log)
    }

    /// An in-memory log holding every candidate of the logs at `paths` (the shards of one search,
    /// read as they are: a shard still running may add more). Each must identify `identity`.
    pub fn merged(paths: &[PathBuf], identity: &Value) -> Result<Self> {
        let mut known = HashMap::new();
        for path in paths {
            known.extend(read_log(path, identity)?.0);
        }
        Ok(Self { file: None, _lock: None, known })
    }

    fn write_line(&mut self, v: &Value) -> Result<()> {
        if let Some((path, file)) = &mut self.file {
            let mut line = serde_json::to_string(v).expect("JSON values serialise");
            line.push('\n');
            file.write_all(line.as_bytes()).map_err(|e| SearchError::io(&*path, e))?;
            file.sync_data().map_err(|e| SearchError::io(&*path, e))?;
        }
        Ok(())
    }

    /// The logged metrics of `key`, if evaluated before, and whether racing stopped it early.
    /// A key logged twice (stopped by a racing scan, then scored on every item by one without
    /// racing) reads as its last line.
    pub fn get(&self, key: &str) -> Option<(&Metrics, &LoggedStop)> {
        self.known.get(key).map(|(m, stop)| (m, stop))
    }

    /// Records an evaluation (durably, when backed by a file); `stopped_by`: the race
    /// ([`crate::Racer::context`]) that stopped it early.
    pub fn record(
        &mut self,
        key: String,
        edits: &[Edit],
        select: &Metrics,
        stopped_by: Option<String>,
    ) -> Result<()> {
        let entry = LoggedCandidate {
            key: key.clone(),
            edits: edits.to_vec(),
            select: select.clone(),
            stopped: stopped_by.is_some(),
            stopped_by: stopped_by.clone(),
        };
        self.write_line(&serde_json::to_value(&entry).expect("serialisable"))?;
        let stop = stopped_by.map_or(LoggedStop::Complete, |by| LoggedStop::Stopped(Some(by)));
        self.known.insert(key, (select.clone(), stop));
        Ok(())
    }
}

/// Whether a log's (or ranking's) recorded `identity` is `ours`. One written before identities
/// carried the task's [`crate::Task::content_digest`] (`items_digest`) is compared without it, so
/// that it still resumes, as it did then.
pub(crate) fn same_inputs(recorded: &Value, ours: &Value) -> bool {
    if recorded.get("items_digest").is_none()
        && let Some(mut legacy) = ours.as_object().cloned()
        && legacy.remove("items_digest").is_some()
    {
        return recorded.as_object() == Some(&legacy);
    }
    recorded == ours
}

/// Every candidate of the log at `path` and the length of its whole lines (a torn last line is
/// not counted); refused when its first line identifies another search than `identity`.
fn read_log(path: &Path, identity: &Value) -> Result<(Known, u64)> {
    let mut known = HashMap::new();
    let mut valid_len = 0u64;
    let f = File::open(path).map_err(|e| SearchError::io(path, e))?;
    let mut reader = BufReader::new(f);
    let mut line = String::new();
    let mut lineno = 0;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| SearchError::io(path, e))?;
        if n == 0 || !line.ends_with('\n') {
            break; // end, or a torn last line (the write was cut short)
        }
        lineno += 1;
        // A whole line that does not read back was not written by a search: refuse rather than
        // drop it and everything after it.
        let damaged = |message: String| SearchError::Log {
            path: path.to_owned(),
            line: Some(lineno),
            message: format!("{message}; the log is damaged (move it away to start over)"),
        };
        let v = serde_json::from_str::<Value>(&line).map_err(|e| damaged(e.to_string()))?;
        if lineno == 1 {
            if !v.get("search").is_some_and(|logged| same_inputs(logged, identity)) {
                return Err(SearchError::Log {
                    path: path.to_owned(),
                    line: None,
                    message: "holds a different search (model, task or options differ); use another --out folder".into(),
                });
            }
        } else {
            let c = serde_json::from_value::<LoggedCandidate>(v)
                .map_err(|e| damaged(format!("not a logged candidate: {e}")))?;
            if c.key != candidate_key(&c.edits) {
                return Err(damaged(format!("key `{}` does not match its edits", c.key)));
            }
            c.select.check().map_err(damaged)?;
            let stop = match (c.stopped, c.stopped_by) {
                (false, None) => LoggedStop::Complete,
                (_, by) => LoggedStop::Stopped(by),
            };
            known.insert(c.key, (c.select, stop));
        }
        valid_len += n as u64;
    }
    Ok((known, valid_len))
}

/// Writes `bytes` to a temporary name beside `path`, syncs it, then renames it into place, so that
/// `path` holds either its old contents or all of the new ones.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(SearchError::io(&tmp, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| SearchError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ItemScores;

    /// A log's identity must match ours, items digest included; one written before the digest
    /// existed matches on the other keys alone, and no other key is waived.
    #[test]
    fn identities_match_with_the_digest_or_legacy_without_it() {
        let ours = serde_json::json!({"task": "t.jsonl", "items": 3, "items_digest": "fnv1a64:1"});
        assert!(same_inputs(&ours, &ours));
        let edited =
            serde_json::json!({"task": "t.jsonl", "items": 3, "items_digest": "fnv1a64:2"});
        assert!(!same_inputs(&edited, &ours));
        let legacy = serde_json::json!({"task": "t.jsonl", "items": 3});
        assert!(same_inputs(&legacy, &ours));
        let other = serde_json::json!({"task": "t.jsonl", "items": 4});
        assert!(!same_inputs(&other, &ours));
        let ours_without = serde_json::json!({"task": "t.jsonl", "items": 3});
        assert!(!same_inputs(&ours, &ours_without), "a digest we do not have is not waived");
    }

    /// Regression: serde_json's default float parser is not exact, so a resumed search read
    /// 7.70496114095052 back for a logged 7.7049611409505205 and its report differed from an
    /// uninterrupted run's (found by the SIGINT resume test).
    #[test]
    fn logged_metrics_read_back_bit_identical() {
        let dir = std::env::temp_dir().join(format!("laser-log-roundtrip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let nll = vec![7.7049611409505205, 7.7394726276397705, 0.1 + 0.2, 1e-300, 5e-324];
        let m = Metrics {
            n: nll.len(),
            accuracy: 100.0 / 3.0,
            logloss: nll.iter().sum::<f64>() / nll.len() as f64,
            majority: None,
            per_class: None,
            items: Some(ItemScores { correct: vec![true, false, true, true, false], nll }),
        };
        let identity = serde_json::json!({"test": 1});
        let edit = vec![Edit::svd("model.layers.0.mlp.up_proj.weight", 0.5)];
        let mut log = CandidateLog::open(&dir, &identity).unwrap();
        log.record("base".into(), &[], &m, None).unwrap();
        log.record(candidate_key(&edit), &edit, &m, Some("guarded/statistical".into())).unwrap();
        drop(log);
        let back = CandidateLog::open(&dir, &identity).unwrap();
        assert_eq!(back.get("base"), Some((&m, &LoggedStop::Complete)));
        let stopped = LoggedStop::Stopped(Some("guarded/statistical".into()));
        assert_eq!(
            back.get(&candidate_key(&edit)),
            Some((&m, &stopped)),
            "racing's mark reads back"
        );
        drop(back);
        // A log written before stops named their race: an exact stop of unknown rule.
        let old = format!(
            "{}\n",
            serde_json::json!({"key": candidate_key(&edit), "edits": edit, "select": m, "stopped": true})
        );
        let path = dir.join(LOG_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&old);
        std::fs::write(&path, text).unwrap();
        let back = CandidateLog::open(&dir, &identity).unwrap();
        assert_eq!(back.get(&candidate_key(&edit)).unwrap().1, &LoggedStop::Stopped(None));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
