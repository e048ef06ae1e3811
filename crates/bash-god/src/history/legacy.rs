//! History files written before the journal: a learning-store snapshot (`MCPSTORE`) whose
//! records hold the command as text and the outcome as metadata. They are read once and
//! rewritten as a journal.

use std::path::Path;

use mcp_rust_core::store::MemoryStore;

use super::HistoryError;
use super::journal::{Contents, Entry};

/// The executions in a snapshot, oldest first. A record whose metadata is not an outcome
/// (not written by bash-god) is an error rather than silently dropped.
pub fn read_snapshot(path: &Path) -> Result<Contents, HistoryError> {
    let store = MemoryStore::load(path)?;
    let entries = store
        .records()
        .into_iter()
        .map(|record| {
            let outcome =
                serde_json::from_value(record.metadata).map_err(|e| HistoryError::Corrupt {
                    path: path.to_owned(),
                    line: 0,
                    reason: format!(
                        "snapshot record {} has no execution outcome: {e}",
                        record.id
                    ),
                })?;
            Ok(Entry {
                command: record.text,
                outcome,
            })
        })
        .collect::<Result<Vec<_>, HistoryError>>()?;
    Ok(Contents {
        entries,
        needs_rewrite: true,
        file_bytes: 0,
    })
}
