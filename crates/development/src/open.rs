//! The one place the server opens a file for reading.
//!
//! Every read of file contents (read_file, read_files, manifests, search, symbols, git
//! worktree blobs) goes through [`open_regular_file`], which opens by capability through
//! `confined-fs`: beneath the root's directory descriptor (openat2 `RESOLVE_BENEATH`), so
//! a symlink swapped in after a check cannot redirect the open.
//!
//! Only regular files are read: a FIFO (even one named `Cargo.toml`) neither hangs the
//! worker waiting for a writer nor is read; devices, sockets and directories are refused
//! the same way, from `fstat` on the open descriptor.

use std::fs::{File, Metadata};
use std::io::Read as _;
use std::path::{Path, PathBuf};

use mcp_server_runtime::{Roots, ToolError};

use crate::paths::display_path;

/// An open regular file and its metadata, taken from the descriptor (not the name).
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub file: File,
    pub metadata: Metadata,
    /// The canonical path it was opened as (inside a root), for messages.
    pub path: PathBuf,
}

/// Opens the regular file at `path` for reading, by capability: resolved beneath its root's
/// directory descriptor (openat2 `RESOLVE_BENEATH`, `confined-fs`), so a symlink swapped
/// in after any check cannot redirect it; FIFOs, sockets, devices and directories are
/// refused without blocking.
pub(crate) fn open_regular_file(roots: &Roots, path: &Path) -> Result<OpenFile, ToolError> {
    let confined = roots.open_file(path)?;
    let metadata = confined.metadata().clone();
    let path = confined.path().to_path_buf();
    Ok(OpenFile {
        file: confined.into_file(),
        metadata,
        path,
    })
}

/// Reads at most `limit` bytes of the regular file at `path`: a file that grows while it
/// is read cannot make the caller hold more than it budgeted.
pub(crate) fn read_regular_file(
    roots: &Roots,
    path: &Path,
    limit: u64,
) -> Result<Vec<u8>, ToolError> {
    let OpenFile { file, metadata, .. } = open_regular_file(roots, path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len().min(limit)).unwrap_or(0));
    file.take(limit).read_to_end(&mut bytes).map_err(|err| {
        ToolError::failed(format!("cannot read {}: {err}", display_path(roots, path)))
    })?;
    Ok(bytes)
}

/// Makes a FIFO at `path` for tests (no writer ever opens it: reading it would block).
#[cfg(test)]
pub(crate) fn make_fifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo in a temp dir");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "hello").unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let roots = Roots::new([dir.path().to_path_buf()]).unwrap();
        (dir, roots)
    }

    #[test]
    fn reads_a_regular_file_within_a_limit() {
        let (_dir, roots) = fixture();
        let path = roots.first().join("a.txt");
        assert_eq!(read_regular_file(&roots, &path, 100).unwrap(), b"hello");
        assert_eq!(read_regular_file(&roots, &path, 2).unwrap(), b"he");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (_dir, roots) = fixture();
        let fifo = roots.first().join("Cargo.toml");
        make_fifo(&fifo);
        // No writer ever opens it: a blocking open would hang this test forever.
        let err = open_regular_file(&roots, &fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
    }

    #[test]
    fn directories_symlinks_and_outside_paths_are_refused() {
        let (dir, roots) = fixture();
        let err = open_regular_file(&roots, &roots.first().join("sub")).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(outside.path().join("secret"), &link).unwrap();
        let err = open_regular_file(&roots, &roots.first().join("link")).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
        let err = open_regular_file(&roots, &outside.path().join("secret")).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
        let outside_name = outside.path().file_name().unwrap();
        let dotdot = roots
            .first()
            .join("sub/../..")
            .join(outside_name)
            .join("secret");
        let err = open_regular_file(&roots, &dotdot).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
        let err = open_regular_file(&roots, &roots.first().join("missing")).unwrap_err();
        assert!(err.to_string().starts_with("not found"), "{err}");
    }
}
