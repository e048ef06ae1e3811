//! The wheel file itself: a zip archive whose bytes depend only on its contents (entries
//! in a fixed order, one fixed timestamp, fixed permissions), with the `RECORD` of PEP 376
//! listing every other file's SHA-256 and size.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One file of the wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive, `/`-separated.
    pub path: String,
    pub data: Vec<u8>,
    /// Installed with the executable bits (shared libraries).
    pub executable: bool,
}

impl Entry {
    pub fn file(path: impl Into<String>, data: impl Into<Vec<u8>>) -> Entry {
        Entry {
            path: path.into(),
            data: data.into(),
            executable: false,
        }
    }
}

/// The `RECORD` file for `entries` (which must not contain it): one
/// `path,sha256=<urlsafe base64, unpadded>,size` line each, and `record_path,,` for itself.
pub fn record(entries: &[Entry], record_path: &str) -> String {
    let mut text = String::new();
    for entry in entries {
        let digest = Sha256::digest(&entry.data);
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        text.push_str(&format!(
            "{},sha256={hash},{}\n",
            entry.path,
            entry.data.len()
        ));
    }
    text.push_str(&format!("{record_path},,\n"));
    text
}

/// Writes `entries` as a zip archive to `path`, in the given order. Every entry gets the
/// same timestamp (the zip format's epoch, 1980-01-01 00:00) and mode 0644, or 0755 when
/// executable, so two builds of the same contents are the same bytes.
pub fn write_zip(path: &Path, entries: &[Entry]) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = ZipWriter::new(std::io::BufWriter::new(file));
    for entry in entries {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(DateTime::default())
            .unix_permissions(if entry.executable { 0o755 } else { 0o644 });
        zip.start_file(entry.path.as_str(), options)
            .with_context(|| format!("adding {} to {}", entry.path, path.display()))?;
        zip.write_all(&entry.data)
            .with_context(|| format!("writing {} into {}", entry.path, path.display()))?;
    }
    zip.finish()
        .and_then(|writer| writer.into_inner().map_err(|e| e.into_error().into()))
        .with_context(|| format!("finishing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry::file("pkg/__init__.py", "print('hi')\n"),
            Entry {
                path: "pkg/native.so".into(),
                data: vec![0x7f, b'E', b'L', b'F', 0, 1, 2],
                executable: true,
            },
        ]
    }

    #[test]
    fn record_lists_hash_and_size_and_itself() {
        let text = record(&entries(), "pkg-1.0.dist-info/RECORD");
        let lines: Vec<&str> = text.lines().collect();
        // sha256("print('hi')\n") in urlsafe base64 without padding.
        let digest = Sha256::digest(b"print('hi')\n");
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        assert_eq!(lines[0], format!("pkg/__init__.py,sha256={expected},12"));
        assert!(lines[1].starts_with("pkg/native.so,sha256=") && lines[1].ends_with(",7"));
        assert_eq!(lines[2], "pkg-1.0.dist-info/RECORD,,");
        assert!(!expected.contains('=') && !expected.contains('+') && !expected.contains('/'));
    }

    #[test]
    fn the_archive_is_reproducible_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.whl"), dir.path().join("b.whl"));
        write_zip(&a, &entries()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write_zip(&b, &entries()).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        let mut archive = zip::ZipArchive::new(std::fs::File::open(&a).unwrap()).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        assert_eq!(names.len(), 2);
        let native = archive.by_name("pkg/native.so").unwrap();
        assert_eq!(native.unix_mode().map(|m| m & 0o777), Some(0o755));
        assert_eq!(native.size(), 7);
    }
}
