//! The store's on-disk snapshot: [`MemoryStore::save`] writes it atomically and
//! [`MemoryStore::load`] reads it back, refusing anything but a complete, intact file.
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
use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Entry, MemoryStore, Record, StoreError};

const MAGIC: &[u8; 8] = b"MCPSTORE";
pub(super) const FORMAT_VERSION: u32 = 1;
/// magic + version + body length + checksum.
const PREAMBLE_LEN: usize = 8 + 4 + 8 + 32;

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
        crate::durable::replace_file(path, ".mcpstore-", |out| {
            out.write_all(MAGIC)?;
            out.write_all(&FORMAT_VERSION.to_le_bytes())?;
            out.write_all(&(body.len() as u64).to_le_bytes())?;
            out.write_all(&Sha256::digest(&body))?;
            out.write_all(&body)
        })
        .map_err(|error| io(error.action)(error.source))
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
        let header = SnapshotHeader {
            dim: self.dim,
            next_id,
            records,
        };
        // invariant: the header is numbers, strings and JSON values with string keys;
        // serializing it into a Vec cannot fail.
        let header = serde_json::to_vec(&header).expect("snapshot header is plain JSON data");
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
        // invariant: the preamble is PREAMBLE_LEN bytes (checked above); the slices below
        // have the exact lengths of the integers read from them.
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if version != FORMAT_VERSION {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        // invariant: as above, 8 bytes of the checked preamble.
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
        // invariant: the body is at least 8 bytes long (checked just above).
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
            // invariant: chunks_exact(4) yields 4-byte chunks only.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::store_with;
    use crate::store::{MAX_DIMENSION, embed_text};
    use serde_json::json;

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
