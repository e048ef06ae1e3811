//! The learning store: a thread-safe set of text records with `f32` embeddings, ranked by
//! cosine similarity. [`MemoryStore::save`] and [`MemoryStore::load`] (module `snapshot`) keep
//! it on disk as an atomic, checksummed snapshot; [`embed_text`] turns text into an embedding.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::kernels::{self, TopK};

mod embed;
mod snapshot;
#[cfg(test)]
mod tests;

pub use embed::embed_text;
use snapshot::FORMAT_VERSION;

/// The largest embedding dimension a store accepts (4 MiB per embedding). Far above any
/// real embedding model; it exists so that a bad argument is an error, not an allocation
/// that kills the process.
pub const MAX_DIMENSION: usize = 1 << 20;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "embedding has {found} dimensions but this store holds {expected}-dimensional embeddings; embed with the same dimension the store was created with"
    )]
    DimensionMismatch { expected: usize, found: usize },
    #[error("embedding component {index} is {value}; embeddings must be finite numbers")]
    NonFinite { index: usize, value: f32 },
    #[error("a store needs a dimension of at least 1")]
    ZeroDimension,
    #[error("dimension {dim} is above the limit of {MAX_DIMENSION}; use a smaller dimension")]
    DimensionTooLarge { dim: usize },
    #[error(
        "the store has used up its record ids (the next would be above {})",
        u64::MAX
    )]
    IdsExhausted,
    #[error("cannot {action} snapshot {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a learning-store snapshot ({reason}); pass a file written by MemoryStore::save"
    )]
    NotASnapshot { path: PathBuf, reason: String },
    #[error(
        "snapshot {path} has format version {found}, this build reads version {FORMAT_VERSION}; upgrade mcp-rust-core"
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error(
        "snapshot {path} is truncated: expected {expected} bytes of data, found {found}; restore it from a backup"
    )]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("snapshot {path} is corrupt ({reason}); restore it from a backup")]
    Corrupt { path: PathBuf, reason: String },
}

/// One stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u64,
    pub text: String,
    pub embedding: Vec<f32>,
    pub metadata: serde_json::Value,
}

/// A query result: the record and its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: u64,
    pub score: f32,
    pub text: String,
    pub metadata: serde_json::Value,
}

/// A record as kept in memory with its cached row norm. The norm is computed once when the
/// embedding is stored (add, update, load), not on every query, and lives in the same map
/// entry as the embedding: every write replaces both under the entry's lock, so a query
/// never sees one without the other, and removing the record removes its norm.
#[derive(Debug)]
struct Entry {
    record: Record,
    norm: f32,
}

impl Entry {
    fn new(record: Record) -> Entry {
        let norm = kernels::norm(&record.embedding);
        Entry { record, norm }
    }
}

/// Thread-safe store of embedded records; every method takes `&self`.
#[derive(Debug)]
pub struct MemoryStore {
    dim: usize,
    next_id: AtomicU64,
    records: DashMap<u64, Entry>,
}

impl MemoryStore {
    /// An empty store of `dim`-dimensional embeddings.
    pub fn new(dim: usize) -> Result<Self, StoreError> {
        check_dimension(dim)?;
        Ok(MemoryStore {
            dim,
            next_id: AtomicU64::new(1),
            records: DashMap::new(),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn check_embedding(&self, embedding: &[f32]) -> Result<(), StoreError> {
        if embedding.len() != self.dim {
            return Err(StoreError::DimensionMismatch {
                expected: self.dim,
                found: embedding.len(),
            });
        }
        if let Some((index, value)) = embedding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(StoreError::NonFinite {
                index,
                value: *value,
            });
        }
        Ok(())
    }

    /// Adds a record and returns its id (ids start at 1 and are never reused).
    pub fn add(
        &self,
        text: impl Into<String>,
        embedding: Vec<f32>,
        metadata: serde_json::Value,
    ) -> Result<u64, StoreError> {
        self.check_embedding(&embedding)?;
        // Ids are never reused: at u64::MAX the counter stops instead of wrapping to 0.
        let id = self
            .next_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| id.checked_add(1))
            .map_err(|_| StoreError::IdsExhausted)?;
        let record = Record {
            id,
            text: text.into(),
            embedding,
            metadata,
        };
        self.records.insert(id, Entry::new(record));
        Ok(id)
    }

    /// Replaces the embedding of record `id`, and its text and metadata when given; the
    /// cached norm is recomputed in the same step. Returns whether the record existed (a
    /// removed or never-issued id is not re-created: ids are never reused).
    pub fn update(
        &self,
        id: u64,
        embedding: Vec<f32>,
        text: Option<String>,
        metadata: Option<serde_json::Value>,
    ) -> Result<bool, StoreError> {
        self.check_embedding(&embedding)?;
        let Some(mut entry) = self.records.get_mut(&id) else {
            return Ok(false);
        };
        let record = &entry.record;
        let updated = Record {
            id,
            text: text.unwrap_or_else(|| record.text.clone()),
            embedding,
            metadata: metadata.unwrap_or_else(|| record.metadata.clone()),
        };
        *entry = Entry::new(updated);
        Ok(true)
    }

    /// The record with this id, if any.
    pub fn get(&self, id: u64) -> Option<Record> {
        self.records.get(&id).map(|entry| entry.record.clone())
    }

    /// Every record, by increasing id (for exporting the store's contents).
    pub fn records(&self) -> Vec<Record> {
        let mut records: Vec<Record> = self.records.iter().map(|e| e.record.clone()).collect();
        records.sort_by_key(|r| r.id);
        records
    }

    /// Removes a record; returns whether it existed.
    pub fn remove(&self, id: u64) -> bool {
        self.records.remove(&id).is_some()
    }

    /// The `k` records most cosine-similar to `query`, best first (ties: lower id first).
    /// Returns fewer than `k` hits when the store holds fewer records.
    pub fn query(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, StoreError> {
        self.check_embedding(query)?;
        let query_norm = kernels::norm(query);
        let mut top = TopK::new(k.min(self.records.len()));
        for entry in self.records.iter() {
            // invariant: add/update/load check every stored embedding has `self.dim`
            // components, and check_embedding above did the same for `query`.
            let dot = kernels::dot(&entry.record.embedding, query)
                .expect("stored embeddings have the store's dimension");
            let score = kernels::cosine_from_parts(dot, entry.norm, query_norm);
            top.push(entry.record.id as usize, score);
        }
        // A record removed between ranking and lookup is simply left out.
        Ok(top
            .into_sorted_vec()
            .into_iter()
            .filter_map(|scored| {
                let entry = self.records.get(&(scored.index as u64))?;
                Some(Hit {
                    id: entry.record.id,
                    score: scored.score,
                    text: entry.record.text.clone(),
                    metadata: entry.record.metadata.clone(),
                })
            })
            .collect())
    }
}

/// Checks an embedding dimension: at least 1, at most [`MAX_DIMENSION`].
pub fn check_dimension(dim: usize) -> Result<(), StoreError> {
    match dim {
        0 => Err(StoreError::ZeroDimension),
        dim if dim > MAX_DIMENSION => Err(StoreError::DimensionTooLarge { dim }),
        _ => Ok(()),
    }
}
