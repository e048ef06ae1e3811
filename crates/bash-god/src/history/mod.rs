//! The learning store of executed commands: every run is recorded with its outcome, and
//! `suggest_from_history` finds the past commands most similar to a new one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mcp_rust_core::store::{MemoryStore, StoreError, embed_text};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exec::ExecOutcome;

/// Embedding dimension: hashed character n-grams of short command lines fit comfortably.
pub const EMBEDDING_DIM: usize = 256;

/// What is kept about one execution (the store's record metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecordedOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    /// Exit code 0 and no timeout.
    pub succeeded: bool,
    /// The working directory it ran in.
    pub cwd: String,
    /// Seconds since the Unix epoch.
    pub recorded_at: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Suggestion {
    pub command: String,
    /// Cosine similarity to the query, in [-1, 1].
    pub score: f32,
    pub outcome: Option<RecordedOutcome>,
}

/// The store plus its optional snapshot file (given by the operator with `--history`).
pub struct History {
    store: MemoryStore,
    snapshot: Option<PathBuf>,
    /// Serializes snapshot writes so the newest state is the one left on disk.
    save_lock: Mutex<()>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("records", &self.store.len())
            .field("snapshot", &self.snapshot)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history snapshot: {0}")]
    Store(#[from] StoreError),
    #[error(
        "history snapshot {path} holds {found}-dimensional embeddings, bash-god uses {EMBEDDING_DIM}; pass another --history file"
    )]
    Dimension { path: PathBuf, found: usize },
}

impl History {
    /// An empty history, or the one saved in `snapshot` if that file exists.
    pub fn open(snapshot: Option<&Path>) -> Result<Self, HistoryError> {
        let store = match snapshot {
            Some(path) if path.exists() => {
                let store = MemoryStore::load(path)?;
                if store.dim() != EMBEDDING_DIM {
                    return Err(HistoryError::Dimension {
                        path: path.to_owned(),
                        found: store.dim(),
                    });
                }
                store
            }
            _ => MemoryStore::new(EMBEDDING_DIM)?,
        };
        Ok(Self {
            store,
            snapshot: snapshot.map(Path::to_owned),
            save_lock: Mutex::new(()),
        })
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Records one execution.
    pub fn record(
        &self,
        command: &str,
        cwd: &Path,
        outcome: &ExecOutcome,
    ) -> Result<u64, HistoryError> {
        let recorded = RecordedOutcome {
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            timed_out: outcome.timed_out,
            duration_ms: outcome.duration_ms,
            succeeded: outcome.exit_code == Some(0) && !outcome.timed_out,
            cwd: cwd.display().to_string(),
            recorded_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        let metadata = serde_json::to_value(&recorded).unwrap_or_default();
        Ok(self
            .store
            .add(command, embed_text(command, EMBEDDING_DIM), metadata)?)
    }

    /// Writes the snapshot, if one is configured (blocking; atomic on disk).
    pub fn save(&self) -> Result<(), HistoryError> {
        let Some(path) = &self.snapshot else {
            return Ok(());
        };
        let _guard = self
            .save_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(self.store.save(path)?)
    }

    /// The `k` past commands most similar to `command`, best first.
    pub fn suggest(&self, command: &str, k: usize) -> Result<Vec<Suggestion>, HistoryError> {
        let hits = self.store.query(&embed_text(command, EMBEDDING_DIM), k)?;
        Ok(hits
            .into_iter()
            .map(|hit| Suggestion {
                outcome: serde_json::from_value(hit.metadata).ok(),
                command: hit.text,
                score: hit.score,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(exit_code: i32) -> ExecOutcome {
        ExecOutcome {
            exit_code: Some(exit_code),
            signal: None,
            timed_out: false,
            duration_ms: 12,
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            stdout_bytes: 0,
            stderr_bytes: 0,
        }
    }

    #[test]
    fn suggests_similar_commands_with_outcomes() {
        let history = History::open(None).unwrap();
        history
            .record("cargo test -p bash-god", Path::new("/w"), &outcome(0))
            .unwrap();
        history
            .record("ls -la /tmp", Path::new("/w"), &outcome(0))
            .unwrap();
        history
            .record("cargo build --release", Path::new("/w"), &outcome(101))
            .unwrap();
        let hits = history.suggest("cargo test -p mcp-rust-core", 2).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].command, "cargo test -p bash-god");
        assert!(hits[0].score > hits[1].score);
        assert_eq!(hits[0].outcome.as_ref().unwrap().exit_code, Some(0));
        assert!(hits.iter().all(|h| h.command != "ls -la /tmp"));
    }

    #[test]
    fn snapshot_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.bin");
        let history = History::open(Some(&path)).unwrap();
        history.record("make -j2", dir.path(), &outcome(2)).unwrap();
        history.save().unwrap();
        let reopened = History::open(Some(&path)).unwrap();
        assert_eq!(reopened.len(), 1);
        let hit = &reopened.suggest("make", 1).unwrap()[0];
        assert_eq!(hit.command, "make -j2");
        assert!(!hit.outcome.as_ref().unwrap().succeeded);
    }

    #[test]
    fn a_foreign_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.bin");
        std::fs::write(&path, b"not a snapshot").unwrap();
        assert!(History::open(Some(&path)).is_err());
    }
}
