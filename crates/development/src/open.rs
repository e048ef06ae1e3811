//! The one place the server opens a file for reading.
//!
//! Every read of file contents (read_file, read_files, manifests, search, symbols, git
//! worktree blobs) goes through [`open_regular_file`], so moving to opening by capability
//! beneath a root directory (openat2 `RESOLVE_BENEATH`, the `confined-fs` crate) changes
//! only its body. Until then the path is confined by name first (`confine_path` at the tool
//! boundary, or the walker's own paths under a confined base) and opened here without
//! following a final symlink, so a link swapped in after the check is refused (`ELOOP`).
//!
//! Only regular files are read: the open is non-blocking, so a FIFO (even one named
//! `Cargo.toml`) neither hangs the worker waiting for a writer nor is read; devices,
//! sockets and directories are refused the same way after `fstat` on the open descriptor.

use std::fs::{File, Metadata};
use std::io::Read as _;
use std::path::{Component, Path};

use mcp_server_runtime::{Roots, ToolError};
use rustix::fs::{Mode, OFlags};

use crate::paths::display_path;

/// An open regular file and its metadata, taken from the descriptor (not the name).
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub file: File,
    pub metadata: Metadata,
}

/// Opens the regular file at `path` for reading. `path` must be absolute, free of `..`,
/// and inside `roots` (a `confine_path` result or a walk entry under one).
pub(crate) fn open_regular_file(roots: &Roots, path: &Path) -> Result<OpenFile, ToolError> {
    let shown = || display_path(roots, path);
    let lexically_inside = path.is_absolute()
        && !path.components().any(|c| matches!(c, Component::ParentDir))
        && roots.contains(path);
    if !lexically_inside {
        return Err(ToolError::denied(format!(
            "{} is outside the allowed roots; use a path inside them",
            path.display()
        )));
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|err| match err {
        rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR => {
            ToolError::not_found(format!("{} does not exist", shown()))
        }
        // NOFOLLOW on a symlink: it appeared after the path was confined.
        rustix::io::Errno::LOOP => ToolError::denied(format!(
            "{} became a symbolic link after it was checked; refusing to follow it",
            shown()
        )),
        rustix::io::Errno::ACCESS | rustix::io::Errno::PERM => {
            ToolError::denied(format!("{}: permission denied", shown()))
        }
        other => ToolError::failed(format!("cannot open {}: {other}", shown())),
    })?;
    let file = File::from(fd);
    let metadata = file
        .metadata()
        .map_err(|err| ToolError::failed(format!("cannot stat {}: {err}", shown())))?;
    if !metadata.is_file() {
        return Err(ToolError::invalid_input(format!(
            "{} is {}, not a regular file; only regular files are read",
            shown(),
            describe_kind(&metadata.file_type())
        )));
    }
    Ok(OpenFile { file, metadata })
}

/// Reads at most `limit` bytes of the regular file at `path`: a file that grows while it
/// is read cannot make the caller hold more than it budgeted.
pub(crate) fn read_regular_file(
    roots: &Roots,
    path: &Path,
    limit: u64,
) -> Result<Vec<u8>, ToolError> {
    let OpenFile { file, metadata } = open_regular_file(roots, path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len().min(limit)).unwrap_or(0));
    file.take(limit).read_to_end(&mut bytes).map_err(|err| {
        ToolError::failed(format!("cannot read {}: {err}", display_path(roots, path)))
    })?;
    Ok(bytes)
}

/// "a directory", "a FIFO (named pipe)"... for messages.
pub(crate) fn describe_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_char_device() {
        "a character device"
    } else {
        "not a regular file"
    }
}

/// Makes a FIFO at `path` for tests (no writer ever opens it: reading it would block).
#[cfg(test)]
pub(crate) fn make_fifo(path: &Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, path, Mode::from_raw_mode(0o600))
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
        let dotdot = roots.first().join("sub/../../x");
        let err = open_regular_file(&roots, &dotdot).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
        let err = open_regular_file(&roots, &roots.first().join("missing")).unwrap_err();
        assert!(err.to_string().starts_with("not found"), "{err}");
    }
}
