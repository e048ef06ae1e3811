//! The learning store of executed commands: every run is recorded with its outcome, and
//! `suggest_from_history` finds the past commands most similar to a new one.
//!
//! The history is bounded ([`Limits`]: entries and bytes; the oldest executions go first)
//! and kept, when the operator gives a file, in an append-only journal (`journal.rs`): a
//! record is one appended line, not a rewrite of the whole history.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mcp_rust_core::store::{MemoryStore, StoreError, embed_text};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exec::ExecOutcome;

mod journal;
mod legacy;

use journal::{Entry, Journal};

/// Embedding dimension: hashed character n-grams of short command lines fit comfortably.
pub const EMBEDDING_DIM: usize = 256;
/// Journal bytes beyond twice the live records' size that trigger a compaction.
const COMPACTION_SLACK: u64 = 64 * 1024;

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

/// How much history is kept; beyond either bound the oldest executions are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    /// Bytes of the records as journal lines (command, outcome, JSON).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The store plus its optional journal (given by the operator with `--history`).
pub struct History {
    store: MemoryStore,
    limits: Limits,
    path: Option<PathBuf>,
    state: Mutex<State>,
}

/// The live records, oldest first, and the journal; changed together under one lock.
#[derive(Debug, Default)]
struct State {
    /// Store id and journal line length of each live record.
    live: VecDeque<(u64, u64)>,
    live_bytes: u64,
    journal: Option<Journal>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("records", &self.store.len())
            .field("limits", &self.limits)
            .field("path", &self.path)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history: {0}")]
    Store(#[from] StoreError),
    #[error("cannot {action} history file {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a bash-god history file; pass another --history file (or remove this one to start afresh)",
        path.display()
    )]
    NotAJournal { path: PathBuf },
    #[error(
        "history file {} has format version {found}, this bash-god reads version 1; upgrade bash-god or pass another --history file",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error(
        "history file {} is corrupt at line {line} ({reason}); restore it from a backup or move it away to start afresh",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl History {
    /// An empty history, or the one in the journal at `path` (created if missing; an old
    /// snapshot file is converted). Blocking.
    pub fn open(path: Option<&Path>, limits: Limits) -> Result<Self, HistoryError> {
        let history = Self {
            store: MemoryStore::new(EMBEDDING_DIM)?,
            limits,
            path: path.map(Path::to_owned),
            state: Mutex::new(State::default()),
        };
        let Some(path) = path else {
            return Ok(history);
        };
        let mut state = history.lock();
        let (contents, exists) = match path.try_exists() {
            Ok(true) => (journal::read(path)?, true),
            _ => (journal::Contents::default(), false),
        };
        for entry in &contents.entries {
            history.insert(&mut state, entry, entry.line().len() as u64)?;
        }
        let dropped = contents.entries.len() > state.live.len();
        state.journal = Some(
            if !exists || contents.needs_rewrite || dropped || wasteful(&state, contents.file_bytes)
            {
                Journal::create(path, &history.live_lines(&state))?
            } else {
                Journal::open_for_append(path, contents.file_bytes)?
            },
        );
        drop(state);
        Ok(history)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Records one execution: appended to the journal (and on disk) before it is added to
    /// the store; the oldest records go when a bound is passed. Blocking.
    pub fn record(
        &self,
        command: &str,
        cwd: &Path,
        outcome: &ExecOutcome,
    ) -> Result<u64, HistoryError> {
        let entry = Entry {
            command: command.to_owned(),
            outcome: RecordedOutcome {
                exit_code: outcome.exit_code,
                signal: outcome.signal,
                timed_out: outcome.timed_out,
                duration_ms: outcome.duration_ms,
                succeeded: outcome.exit_code == Some(0) && !outcome.timed_out,
                cwd: cwd.display().to_string(),
                recorded_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            },
        };
        let line = entry.line();
        let mut state = self.lock();
        if let Some(journal) = state.journal.as_mut() {
            journal.append(&line)?;
        }
        let id = self.insert(&mut state, &entry, line.len() as u64)?;
        let file_bytes = state.journal.as_ref().map_or(0, |j| j.file_bytes);
        if wasteful(&state, file_bytes) {
            let lines = self.live_lines(&state);
            if let Some(journal) = state.journal.as_mut()
                && let Err(e) = journal.compact(&lines)
            {
                // The journal stays valid (appends go on); it is compacted next time.
                tracing::warn!("cannot compact the history journal: {e}");
            }
        }
        Ok(id)
    }

    /// Adds `entry` to the store and evicts the oldest records beyond the limits.
    fn insert(&self, state: &mut State, entry: &Entry, bytes: u64) -> Result<u64, HistoryError> {
        // invariant: RecordedOutcome is plain data; serialization cannot fail.
        let metadata = serde_json::to_value(&entry.outcome).unwrap_or_default();
        let embedding = embed_text(&entry.command, EMBEDDING_DIM);
        let id = self
            .store
            .add(entry.command.as_str(), embedding, metadata)?;
        state.live.push_back((id, bytes));
        state.live_bytes += bytes;
        while state.live.len() > self.limits.max_entries
            || (state.live_bytes > self.limits.max_bytes && !state.live.is_empty())
        {
            if let Some((old, old_bytes)) = state.live.pop_front() {
                self.store.remove(old);
                state.live_bytes -= old_bytes;
            }
        }
        Ok(id)
    }

    /// The journal lines of the live records, oldest first.
    fn live_lines(&self, state: &State) -> Vec<Vec<u8>> {
        state
            .live
            .iter()
            .filter_map(|(id, _)| self.store.get(*id))
            .filter_map(|record| {
                Some(
                    Entry {
                        command: record.text,
                        outcome: serde_json::from_value(record.metadata).ok()?,
                    }
                    .line(),
                )
            })
            .collect()
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

/// Whether evicted records take as much of the journal as the live ones (and more than the
/// slack): compacting then costs no more than the appends since the last compaction.
fn wasteful(state: &State, file_bytes: u64) -> bool {
    file_bytes > 2 * state.live_bytes + COMPACTION_SLACK
}

#[cfg(test)]
mod tests;
