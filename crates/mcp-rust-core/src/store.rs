//! The learning store: a thread-safe set of text records with `f32` embeddings, ranked by
//! cosine similarity, with an atomic on-disk snapshot.
//!
//! Snapshot layout (all integers little-endian):
//!
//! ```text
//! magic "MCPSTORE" | format version u32 | body length u64 | SHA-256 of body (32 bytes) | body
//! body = header length u64 | header JSON {dim, next_id, records: [{id, text, metadata}]}
//!      | embeddings: records.len() * dim f32 values, in header order
//! ```
//!
//! The length and checksum make a truncated or corrupted file an error instead of a silently
//! smaller store. Embeddings are raw `f32`s so they round-trip bit-exactly and load quickly.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::kernels::{self, TopK};

/// The largest embedding dimension a store accepts (4 MiB per embedding). Far above any
/// real embedding model; it exists so that a bad argument is an error, not an allocation
/// that kills the process.
pub const MAX_DIMENSION: usize = 1 << 20;

const MAGIC: &[u8; 8] = b"MCPSTORE";
const FORMAT_VERSION: u32 = 1;
/// magic + version + body length + checksum.
const PREAMBLE_LEN: usize = 8 + 4 + 8 + 32;

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

#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    dim: usize,
    next_id: u64,
    records: Vec<SnapshotRecord>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotRecord {
    id: u64,
    text: String,
    metadata: serde_json::Value,
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

    /// Writes a snapshot atomically: a temporary file in the same directory is written,
    /// fsynced and renamed over `path`, then the directory is fsynced. A crash at any point
    /// leaves either the previous snapshot or the new one, never a mix.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), StoreError> {
        let path = path.as_ref();
        let io = |action: &'static str| {
            move |source: std::io::Error| StoreError::Io {
                action,
                path: path.to_path_buf(),
                source,
            }
        };
        let body = self.encode_body();
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".mcpstore-")
            .suffix(".tmp")
            .tempfile_in(directory)
            .map_err(io("create a temporary file next to"))?;
        {
            let mut writer = BufWriter::new(temp.as_file());
            writer.write_all(MAGIC).map_err(io("write"))?;
            writer
                .write_all(&FORMAT_VERSION.to_le_bytes())
                .map_err(io("write"))?;
            writer
                .write_all(&(body.len() as u64).to_le_bytes())
                .map_err(io("write"))?;
            writer
                .write_all(&Sha256::digest(&body))
                .map_err(io("write"))?;
            writer.write_all(&body).map_err(io("write"))?;
            writer.flush().map_err(io("write"))?;
        }
        temp.as_file().sync_all().map_err(io("fsync"))?;
        temp.persist(path)
            .map_err(|e| io("rename the temporary file onto")(e.error))?;
        // Make the rename itself durable.
        File::open(directory)
            .and_then(|dir| dir.sync_all())
            .map_err(io("fsync the directory of"))?;
        Ok(())
    }

    fn encode_body(&self) -> Vec<u8> {
        // Read the id counter first: every record present below has a smaller id.
        let next_id = self.next_id.load(Ordering::Relaxed);
        let mut entries: Vec<(SnapshotRecord, Vec<f32>)> = self
            .records
            .iter()
            .map(|entry| {
                let r = &entry.record;
                let header = SnapshotRecord {
                    id: r.id,
                    text: r.text.clone(),
                    metadata: r.metadata.clone(),
                };
                (header, r.embedding.clone())
            })
            .collect();
        entries.sort_by_key(|(record, _)| record.id);
        let next_id = entries
            .last()
            .map_or(next_id, |(r, _)| next_id.max(r.id + 1));
        let (records, embeddings): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
        let header = serde_json::to_vec(&SnapshotHeader {
            dim: self.dim,
            next_id,
            records,
        })
        .expect("snapshot header is plain JSON data");
        let mut body = Vec::with_capacity(8 + header.len() + embeddings.len() * self.dim * 4);
        body.extend_from_slice(&(header.len() as u64).to_le_bytes());
        body.extend_from_slice(&header);
        for value in embeddings.iter().flatten() {
            body.extend_from_slice(&value.to_le_bytes());
        }
        body
    }

    /// Reads a snapshot written by [`MemoryStore::save`]; a truncated, corrupted or foreign
    /// file is an error, never a partial store.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(|source| StoreError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })?;
        Self::decode(path, &bytes)
    }

    fn decode(path: &Path, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(StoreError::NotASnapshot {
                path: path.to_path_buf(),
                reason: "missing the MCPSTORE signature".into(),
            });
        }
        if bytes.len() < PREAMBLE_LEN {
            return Err(StoreError::Truncated {
                path: path.to_path_buf(),
                expected: PREAMBLE_LEN as u64,
                found: bytes.len() as u64,
            });
        }
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        let body_len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
        let checksum = &bytes[20..PREAMBLE_LEN];
        let body = &bytes[PREAMBLE_LEN..];
        if body.len() as u64 != body_len {
            return Err(StoreError::Truncated {
                path: path.to_path_buf(),
                expected: body_len,
                found: body.len() as u64,
            });
        }
        if Sha256::digest(body).as_slice() != checksum {
            return Err(corrupt("checksum mismatch".into()));
        }
        if body.len() < 8 {
            return Err(corrupt("body too short for its header length".into()));
        }
        let header_len = u64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
        let header_end = usize::try_from(header_len)
            .ok()
            .and_then(|len| len.checked_add(8))
            .filter(|end| *end <= body.len())
            .ok_or_else(|| corrupt(format!("header length {header_len} exceeds the file")))?;
        let header: SnapshotHeader = serde_json::from_slice(&body[8..header_end])
            .map_err(|e| corrupt(format!("invalid header: {e}")))?;
        let embedding_bytes = &body[header_end..];
        let expected_bytes = header
            .records
            .len()
            .checked_mul(header.dim)
            .and_then(|n| n.checked_mul(4));
        if expected_bytes != Some(embedding_bytes.len()) {
            return Err(corrupt(format!(
                "{} embedding bytes for {} records of dimension {}",
                embedding_bytes.len(),
                header.records.len(),
                header.dim
            )));
        }
        let store = MemoryStore::new(header.dim).map_err(|e| corrupt(e.to_string()))?;
        let mut max_id = 0;
        let embeddings = embedding_bytes.chunks_exact(4 * header.dim.max(1));
        for (record, raw) in header.records.into_iter().zip(embeddings) {
            let embedding: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                .collect();
            store
                .check_embedding(&embedding)
                .map_err(|e| corrupt(format!("record {}: {e}", record.id)))?;
            max_id = max_id.max(record.id);
            if record.id == 0 || record.id == u64::MAX {
                return Err(corrupt(format!("record id {} is out of range", record.id)));
            }
            let entry = Record {
                id: record.id,
                text: record.text,
                embedding,
                metadata: record.metadata,
            };
            if store.records.insert(record.id, Entry::new(entry)).is_some() {
                return Err(corrupt(format!("record id {} appears twice", record.id)));
            }
        }
        store
            .next_id
            .store(header.next_id.max(max_id + 1), Ordering::Relaxed);
        Ok(store)
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

/// 64-bit FNV-1a: a fixed, platform-independent hash, so an embedding computed today matches
/// one stored in a snapshot written by another build or machine.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Embeds text as hashed character trigrams: the lowercased text, padded with a space on each
/// side, is cut into overlapping 3-character windows; each window adds ±1 to the bucket its
/// hash selects (the sign, from another hash bit, keeps collisions from only adding up). The
/// result is L2-normalized, so similar strings get a high cosine similarity. Text with no
/// characters embeds to the zero vector; `dim == 0` gives an empty vector. The vector is
/// allocated whole: check untrusted dimensions with [`check_dimension`] first.
pub fn embed_text(text: &str, dim: usize) -> Vec<f32> {
    let mut embedding = vec![0.0f32; dim];
    if dim == 0 || text.is_empty() {
        return embedding;
    }
    let chars: Vec<char> = std::iter::once(' ')
        .chain(text.chars().flat_map(char::to_lowercase))
        .chain(std::iter::once(' '))
        .collect();
    let mut buffer = [0u8; 12];
    for window in chars.windows(3) {
        let mut len = 0;
        for c in window {
            len += c.encode_utf8(&mut buffer[len..]).len();
        }
        let hash = fnv1a(&buffer[..len]);
        let bucket = (hash % dim as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        embedding[bucket] += sign;
    }
    let norm = kernels::norm(&embedding);
    if norm > 0.0 {
        embedding.iter_mut().for_each(|v| *v /= norm);
    }
    embedding
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_with(texts: &[&str], dim: usize) -> MemoryStore {
        let store = MemoryStore::new(dim).unwrap();
        for (i, text) in texts.iter().enumerate() {
            store
                .add(*text, embed_text(text, dim), json!({ "n": i }))
                .unwrap();
        }
        store
    }

    #[test]
    fn embed_text_is_normalized_deterministic_and_similarity_preserving() {
        let a = embed_text("git commit -m 'fix'", 128);
        assert_eq!(a.len(), 128);
        assert!((kernels::norm(&a) - 1.0).abs() < 1e-5);
        assert_eq!(
            a,
            embed_text("GIT COMMIT -m 'FIX'", 128),
            "case-insensitive and deterministic"
        );
        let near = embed_text("git commit -m 'fixes'", 128);
        let far = embed_text("docker run --rm alpine", 128);
        let cos = |x: &[f32], y: &[f32]| kernels::dot(x, y).unwrap();
        assert!(cos(&a, &near) > cos(&a, &far) + 0.3);
        assert!(embed_text("", 16).iter().all(|v| *v == 0.0));
        assert!(embed_text("abc", 0).is_empty());
        // Non-ASCII input is hashed by its UTF-8 bytes without panicking.
        assert!((kernels::norm(&embed_text("ß日本語🙂", 32)) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn add_and_query_rank_by_cosine_similarity() {
        let store = store_with(
            &["ls -la /tmp", "git status", "git stash pop", "cargo build"],
            64,
        );
        assert_eq!(store.len(), 4);
        assert!(!store.is_empty());
        let hits = store.query(&embed_text("git status", 64), 2).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].text, "git status");
        assert_eq!(hits[0].metadata, json!({ "n": 1 }));
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert_eq!(hits[1].text, "git stash pop");
        assert!(hits[0].score >= hits[1].score);
    }

    #[test]
    fn query_with_k_above_len_returns_all_and_empty_store_returns_nothing() {
        let store = store_with(&["a", "b"], 8);
        assert_eq!(store.query(&embed_text("a", 8), 10).unwrap().len(), 2);
        let empty = MemoryStore::new(8).unwrap();
        assert!(empty.is_empty());
        assert!(empty.query(&[1.0; 8], 3).unwrap().is_empty());
    }

    #[test]
    fn dimension_and_non_finite_values_are_rejected() {
        let store = MemoryStore::new(4).unwrap();
        assert!(matches!(
            store.add("x", vec![1.0; 3], json!(null)),
            Err(StoreError::DimensionMismatch {
                expected: 4,
                found: 3
            })
        ));
        assert!(matches!(
            store.add("x", vec![1.0, f32::NAN, 0.0, 0.0], json!(null)),
            Err(StoreError::NonFinite { index: 1, .. })
        ));
        assert!(matches!(
            store.query(&[1.0; 5], 1),
            Err(StoreError::DimensionMismatch { .. })
        ));
        assert!(matches!(
            MemoryStore::new(0),
            Err(StoreError::ZeroDimension)
        ));
        assert!(store.is_empty(), "rejected records are not stored");
    }

    #[test]
    fn huge_k_and_huge_dimensions_are_answers_not_aborts() {
        let store = store_with(&["a", "b", "c"], 8);
        assert_eq!(store.query(&embed_text("a", 8), 1 << 40).unwrap().len(), 3);
        assert_eq!(
            store.query(&embed_text("a", 8), usize::MAX).unwrap().len(),
            3
        );
        for dim in [MAX_DIMENSION + 1, 1 << 40, usize::MAX] {
            let err = MemoryStore::new(dim).unwrap_err();
            assert!(matches!(err, StoreError::DimensionTooLarge { .. }), "{err}");
            assert!(err.to_string().contains("limit"), "{err}");
        }
        assert!(MemoryStore::new(MAX_DIMENSION).is_ok());
        assert!(check_dimension(MAX_DIMENSION).is_ok());
        assert!(matches!(check_dimension(0), Err(StoreError::ZeroDimension)));
    }

    #[test]
    fn the_id_counter_stops_at_the_end_instead_of_reusing_ids() {
        let store = MemoryStore::new(2).unwrap();
        store.next_id.store(u64::MAX - 1, Ordering::Relaxed);
        assert_eq!(
            store.add("last", vec![1.0, 0.0], json!(null)).unwrap(),
            u64::MAX - 1
        );
        assert!(matches!(
            store.add("one too many", vec![1.0, 0.0], json!(null)),
            Err(StoreError::IdsExhausted)
        ));
        assert_eq!(store.len(), 1);
    }

    /// A snapshot with a valid checksum around any header and embedding bytes, as a
    /// crafted (not merely damaged) file would be.
    fn crafted_snapshot(header: &serde_json::Value, embeddings: &[u8]) -> Vec<u8> {
        let header = serde_json::to_vec(header).unwrap();
        let mut body = (header.len() as u64).to_le_bytes().to_vec();
        body.extend_from_slice(&header);
        body.extend_from_slice(embeddings);
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&Sha256::digest(&body));
        bytes.extend_from_slice(&body);
        bytes
    }

    #[test]
    fn crafted_snapshots_are_errors_not_panics_or_reused_ids() {
        let record = |id: u64| json!({ "id": id, "text": "t", "metadata": null });
        let one = 1.0f32.to_le_bytes();
        let cases: Vec<(serde_json::Value, Vec<u8>)> = vec![
            (json!({ "dim": 0, "next_id": 1, "records": [] }), vec![]),
            (
                json!({ "dim": usize::MAX, "next_id": 1, "records": [] }),
                vec![],
            ),
            (
                json!({ "dim": 1u64 << 62, "next_id": 1, "records": [record(1)] }),
                vec![],
            ),
            (
                json!({ "dim": MAX_DIMENSION + 1, "next_id": 1, "records": [] }),
                vec![],
            ),
            (
                json!({ "dim": 1, "next_id": 1, "records": [record(u64::MAX)] }),
                one.to_vec(),
            ),
            (
                json!({ "dim": 1, "next_id": 1, "records": [record(0)] }),
                one.to_vec(),
            ),
            (
                json!({ "dim": 1, "next_id": 1, "records": [record(3), record(3)] }),
                [one, one].concat(),
            ),
            (
                json!({ "dim": 1, "next_id": 1, "records": [record(1)] }),
                f32::NAN.to_le_bytes().to_vec(),
            ),
            (
                json!({ "dim": 2, "next_id": 1, "records": [record(1)] }),
                one.to_vec(),
            ),
            (json!({ "dim": 1, "records": [] }), vec![]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crafted.bin");
        for (header, embeddings) in cases {
            std::fs::write(&path, crafted_snapshot(&header, &embeddings)).unwrap();
            let err = MemoryStore::load(&path).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{header}: {err}");
        }
        // A counter at its end loads, and then refuses to hand out an id twice.
        let header = json!({ "dim": 1, "next_id": u64::MAX, "records": [record(u64::MAX - 1)] });
        std::fs::write(&path, crafted_snapshot(&header, &one)).unwrap();
        let store = MemoryStore::load(&path).unwrap();
        assert!(matches!(
            store.add("x", vec![1.0], json!(null)),
            Err(StoreError::IdsExhausted)
        ));
    }

    /// Every cached norm equals the norm of the embedding stored next to it.
    fn assert_norms_match(store: &MemoryStore) {
        for entry in store.records.iter() {
            let fresh = kernels::norm(&entry.record.embedding);
            assert_eq!(
                entry.norm.to_bits(),
                fresh.to_bits(),
                "record {}",
                entry.record.id
            );
        }
    }

    /// The exact cosine similarity, computed from scratch in f64.
    fn exact_cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        (dot / (na * nb)) as f32
    }

    #[test]
    fn the_norm_cache_follows_add_update_remove_and_load() {
        let store = MemoryStore::new(3).unwrap();
        let a = store.add("a", vec![1.0, 0.0, 0.0], json!(null)).unwrap();
        let b = store
            .add("b", vec![0.0, 1.0, 0.0], json!({"k": 1}))
            .unwrap();
        assert_norms_match(&store);

        // Same direction, 100x the length: a stale norm would give a score of 100, not 1.
        assert!(store.update(a, vec![0.0, 100.0, 0.0], None, None).unwrap());
        assert_norms_match(&store);
        let hits = store.query(&[0.0, 1.0, 0.0], 2).unwrap();
        assert_eq!(hits.len(), 2);
        assert!(
            hits.iter().all(|h| (h.score - 1.0).abs() < 1e-6),
            "{hits:?}"
        );
        // Text and metadata are kept unless replaced.
        assert_eq!(store.get(a).unwrap().text, "a");
        assert!(
            store
                .update(b, vec![3.0, 4.0, 0.0], Some("b2".into()), None)
                .unwrap()
        );
        let record = store.get(b).unwrap();
        assert_eq!(
            (record.text.as_str(), &record.metadata),
            ("b2", &json!({"k": 1}))
        );
        let query = [1.0, 1.0, 0.5];
        for hit in store.query(&query, 2).unwrap() {
            let expected = exact_cosine(&store.get(hit.id).unwrap().embedding, &query);
            assert!((hit.score - expected).abs() < 1e-5, "{hit:?} vs {expected}");
        }

        // Bad input changes nothing; a removed id is not re-created.
        assert!(store.update(a, vec![1.0], None, None).is_err());
        assert!(
            store
                .update(a, vec![f32::NAN, 0.0, 0.0], None, None)
                .is_err()
        );
        assert_eq!(store.get(a).unwrap().embedding, vec![0.0, 100.0, 0.0]);
        assert!(store.remove(a));
        assert!(!store.update(a, vec![1.0, 0.0, 0.0], None, None).unwrap());
        assert!(!store.update(999, vec![1.0, 0.0, 0.0], None, None).unwrap());
        assert_eq!(store.len(), 1);
        let hits = store.query(&[1.0, 0.0, 0.0], 5).unwrap();
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![b]);

        // Loading recomputes the norms from the stored embeddings.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.bin");
        store.save(&path).unwrap();
        let loaded = MemoryStore::load(&path).unwrap();
        assert_norms_match(&loaded);
        assert_eq!(
            loaded.query(&query, 1).unwrap(),
            store.query(&query, 1).unwrap()
        );
    }

    #[test]
    fn concurrent_updates_never_pair_an_embedding_with_another_norm() {
        let store = std::sync::Arc::new(MemoryStore::new(4).unwrap());
        let id = store
            .add("x", vec![1.0, 0.0, 0.0, 0.0], json!(null))
            .unwrap();
        let writers: Vec<_> = (1..=4)
            .map(|scale| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        let s = scale as f32;
                        store
                            .update(id, vec![s, 0.0, 0.0, 0.0], None, None)
                            .unwrap();
                    }
                })
            })
            .collect();
        // Whatever length the embedding has at query time, a matching norm gives exactly 1.
        for _ in 0..500 {
            let hits = store.query(&[1.0, 0.0, 0.0, 0.0], 1).unwrap();
            assert!((hits[0].score - 1.0).abs() < 1e-6, "{hits:?}");
        }
        writers.into_iter().for_each(|w| w.join().unwrap());
        assert_norms_match(&store);
    }

    #[test]
    fn ids_are_unique_and_get_remove_work() {
        let store = store_with(&["one", "two"], 8);
        let id = store
            .add("three", embed_text("three", 8), json!(null))
            .unwrap();
        assert_eq!(id, 3);
        assert_eq!(store.get(id).unwrap().text, "three");
        assert!(store.remove(1));
        assert!(!store.remove(1));
        let ids: Vec<u64> = store.records().iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 3]);
        assert_eq!(store.len(), 2);
        assert!(
            store
                .query(&embed_text("one", 8), 5)
                .unwrap()
                .iter()
                .all(|h| h.id != 1)
        );
    }

    #[test]
    fn concurrent_adds_from_many_threads_are_all_kept() {
        let store = MemoryStore::new(16).unwrap();
        std::thread::scope(|scope| {
            for t in 0..4 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..250 {
                        let text = format!("thread {t} item {i}");
                        store
                            .add(text.clone(), embed_text(&text, 16), json!(null))
                            .unwrap();
                        store.query(&embed_text(&text, 16), 3).unwrap();
                    }
                });
            }
        });
        assert_eq!(store.len(), 1000);
    }

    #[test]
    fn snapshot_round_trips_records_and_id_counter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.bin");
        let store = store_with(&["alpha", "beta", "gamma"], 32);
        store.remove(2);
        store.save(&path).unwrap();
        let loaded = MemoryStore::load(&path).unwrap();
        assert_eq!(loaded.dim(), 32);
        assert_eq!(loaded.len(), 2);
        for id in [1, 3] {
            assert_eq!(
                loaded.get(id),
                store.get(id),
                "record {id} differs after reload"
            );
        }
        assert_eq!(
            loaded
                .add("delta", embed_text("delta", 32), json!(null))
                .unwrap(),
            4
        );
        // Only the snapshot is left in the directory: the temporary file was renamed.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("store.bin")]);
    }

    #[test]
    fn failed_save_keeps_the_previous_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.bin");
        store_with(&["kept"], 8).save(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        // Saving into a missing directory fails before anything is renamed.
        let missing = dir.path().join("missing").join("store.bin");
        let err = store_with(&["new"], 8).save(&missing).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // A stray temporary file from a crashed writer does not affect loading.
        std::fs::write(dir.path().join(".mcpstore-crash.tmp"), b"MCPSTORE partial").unwrap();
        assert_eq!(
            MemoryStore::load(&path).unwrap().get(1).unwrap().text,
            "kept"
        );
    }

    #[test]
    fn truncated_corrupt_and_foreign_snapshots_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.bin");
        store_with(&["alpha", "beta"], 8).save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad.bin");
        let load_with = |content: &[u8]| {
            std::fs::write(&bad, content).unwrap();
            MemoryStore::load(&bad).unwrap_err()
        };

        for cut in [bytes.len() - 1, PREAMBLE_LEN + 3, 30, 10] {
            let err = load_with(&bytes[..cut]);
            assert!(
                matches!(err, StoreError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
            assert!(err.to_string().contains("truncated"));
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 0x40;
        assert!(matches!(load_with(&flipped), StoreError::Corrupt { .. }));
        assert!(matches!(
            load_with(b"{\"json\": true}"),
            StoreError::NotASnapshot { .. }
        ));
        assert!(matches!(load_with(b""), StoreError::NotASnapshot { .. }));
        let mut future = bytes.clone();
        future[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(
            load_with(&future),
            StoreError::UnsupportedVersion { found: 2, .. }
        ));
        let missing = MemoryStore::load(dir.path().join("nope.bin")).unwrap_err();
        assert!(
            matches!(missing, StoreError::Io { action: "read", .. }),
            "{missing}"
        );
    }
}
