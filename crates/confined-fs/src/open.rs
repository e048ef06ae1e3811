//! Files and directories opened beneath a root: [`ConfinedFile`], [`ConfinedDir`], [`Opened`].

use std::ffi::OsString;
use std::fs::{File, FileType, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::ConfineError;
use crate::beneath::open_beneath;

/// A regular file opened for reading beneath a root. Never a FIFO, socket, device or
/// directory: those are refused before a single byte is read, without blocking.
#[derive(Debug)]
pub struct ConfinedFile {
    file: File,
    path: PathBuf,
    metadata: Metadata,
}

impl ConfinedFile {
    /// The path it was opened as (canonical when it came from [`crate::Roots`]); for
    /// messages, never for opening again.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Metadata of the open file (`fstat` on the descriptor, not a lookup by name).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    /// Size in bytes when it was opened.
    pub fn len(&self) -> u64 {
        self.metadata.len()
    }
    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }
    /// The open file, for APIs that take a `File`.
    pub fn into_file(self) -> File {
        self.file
    }
    /// Reads at most `limit` bytes from the current position: a file that grows while it
    /// is read cannot make the caller hold more than it budgeted.
    pub fn read_capped(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        let expected = self.len().min(limit);
        let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        (&self.file).take(limit).read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

impl Read for ConfinedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

/// A directory opened beneath a root. Paths opened through it stay beneath it.
#[derive(Debug)]
pub struct ConfinedDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl ConfinedDir {
    pub(crate) fn from_parts(fd: OwnedFd, path: PathBuf) -> Self {
        Self { fd, path }
    }

    /// The path it was opened as (canonical when it came from [`crate::Roots`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory's descriptor, for `*at` calls of your own.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens the regular file at `path` beneath this directory. `path` is relative to the
    /// directory, or absolute and lexically under [`path`](Self::path) (as a walk of
    /// `path()` yields them). Symbolic links and `..` are followed only while they stay
    /// beneath the directory (on kernels without `openat2`, not at all).
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<ConfinedFile, ConfineError> {
        let (relative, shown) = self.relative(path.as_ref())?;
        match open_at(self.as_fd(), &relative, shown, &self.path, Want::File)? {
            Opened::File(file) => Ok(file),
            // invariant: `Want::File` yields files only; this arm is never taken.
            Opened::Dir(dir) => Err(wrong_kind(dir.path, "a directory", Want::File)),
        }
    }

    /// Opens the directory at `path` beneath this directory (same rules as
    /// [`open_file`](Self::open_file)).
    pub fn open_dir(&self, path: impl AsRef<Path>) -> Result<ConfinedDir, ConfineError> {
        let (relative, shown) = self.relative(path.as_ref())?;
        match open_at(self.as_fd(), &relative, shown, &self.path, Want::Dir)? {
            Opened::Dir(dir) => Ok(dir),
            // invariant: `Want::Dir` yields directories only; this arm is never taken.
            Opened::File(file) => Err(wrong_kind(file.path, "a regular file", Want::Dir)),
        }
    }

    /// Opens whatever `path` is beneath this directory, if it is a regular file or a directory.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Opened, ConfineError> {
        let (relative, shown) = self.relative(path.as_ref())?;
        open_at(self.as_fd(), &relative, shown, &self.path, Want::Either)
    }

    /// The entries of this directory (not `.` and `..`), read through its descriptor.
    pub fn entries(&self) -> io::Result<Vec<DirEntry>> {
        let dir = rustix::fs::Dir::read_from(self.as_fd())?;
        let mut entries = Vec::new();
        for entry in dir {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsString::from(std::ffi::OsStr::from_bytes(name));
            let kind = match entry.file_type() {
                rustix::fs::FileType::Unknown => {
                    // Some filesystems leave d_type empty: ask without following a link.
                    let stat = rustix::fs::statat(
                        self.as_fd(),
                        name.as_os_str(),
                        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                    rustix::fs::FileType::from_raw_mode(stat.st_mode)
                }
                kind => kind,
            };
            entries.push(DirEntry {
                name,
                kind: EntryKind::from(kind),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// Another handle on the same directory.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// `path` relative to this directory, and the path to show in messages.
    fn relative(&self, path: &Path) -> Result<(PathBuf, PathBuf), ConfineError> {
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(ConfineError::NulByte);
        }
        if path.is_absolute() {
            match path.strip_prefix(&self.path) {
                Ok(relative) => Ok((relative.to_path_buf(), path.to_path_buf())),
                Err(_) => Err(ConfineError::Escape {
                    path: path.to_path_buf(),
                    dir: self.path.clone(),
                    reason: "it is an absolute path outside the directory",
                }),
            }
        } else {
            Ok((path.to_path_buf(), self.path.join(path)))
        }
    }
}

/// A directory entry: its name and what it is (a symbolic link is reported as one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name within the directory.
    pub name: OsString,
    /// What the entry is, without following a symbolic link.
    pub kind: EntryKind,
}

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

impl From<rustix::fs::FileType> for EntryKind {
    fn from(kind: rustix::fs::FileType) -> Self {
        match kind {
            rustix::fs::FileType::RegularFile => Self::File,
            rustix::fs::FileType::Directory => Self::Dir,
            rustix::fs::FileType::Symlink => Self::Symlink,
            _ => Self::Other,
        }
    }
}

/// A regular file or a directory, opened beneath a root.
#[derive(Debug)]
pub enum Opened {
    /// A regular file.
    File(ConfinedFile),
    /// A directory.
    Dir(ConfinedDir),
}

impl Opened {
    /// The path it was opened as.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(file) => file.path(),
            Self::Dir(dir) => dir.path(),
        }
    }
}

/// What the caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    File,
    Dir,
    Either,
}

impl Want {
    fn noun(self) -> &'static str {
        match self {
            Self::File => "a regular file",
            Self::Dir => "a directory",
            Self::Either => "a regular file or a directory",
        }
    }
}

/// Non-blocking, so a FIFO (no writer) or a device cannot hang the open; no controlling
/// terminal, whatever the path is.
const READ_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK).union(OFlags::NOCTTY);

/// Opens `relative` beneath `dir`, checks its kind on the descriptor, and returns it in
/// blocking mode. `shown` names it in messages; `base` is the directory it must stay in.
pub(crate) fn open_at(
    dir: BorrowedFd<'_>,
    relative: &Path,
    shown: PathBuf,
    base: &Path,
    want: Want,
) -> Result<Opened, ConfineError> {
    let flags = match want {
        // O_DIRECTORY: a device node is refused before its driver is ever asked to open.
        Want::Dir => READ_FLAGS | OFlags::DIRECTORY,
        Want::File | Want::Either => READ_FLAGS,
    };
    let fd = match open_beneath(dir, relative, flags) {
        Ok(fd) => fd,
        Err(Errno::NOTDIR) if want == Want::Dir => {
            return Err(describe_non_directory(dir, relative, shown));
        }
        Err(errno) => return Err(open_error(errno, shown, base, want)),
    };
    let file = File::from(fd);
    let metadata = file.metadata().map_err(|source| ConfineError::Io {
        path: shown.clone(),
        source,
    })?;
    let kind = metadata.file_type();
    if kind.is_dir() && want != Want::File {
        return Ok(Opened::Dir(ConfinedDir::from_parts(
            OwnedFd::from(file),
            shown,
        )));
    }
    if !kind.is_file() || want == Want::Dir {
        return Err(wrong_kind(shown, describe_kind(&kind), want));
    }
    // Reads of a regular file never block anyway; clearing the flag keeps the `File`
    // ordinary for callers that hand it to other libraries.
    let clear = rustix::fs::fcntl_getfl(&file)
        .and_then(|flags| rustix::fs::fcntl_setfl(&file, flags - OFlags::NONBLOCK));
    if let Err(errno) = clear {
        return Err(ConfineError::Io {
            path: shown,
            source: errno.into(),
        });
    }
    Ok(Opened::File(ConfinedFile {
        file,
        path: shown,
        metadata,
    }))
}

/// `relative` exists but is not a directory: say what it is (an `O_PATH` open calls no
/// driver and cannot block), or fall back to a plain "not a directory".
fn describe_non_directory(dir: BorrowedFd<'_>, relative: &Path, shown: PathBuf) -> ConfineError {
    let found = open_beneath(dir, relative, OFlags::PATH)
        .ok()
        .and_then(|fd| File::from(fd).metadata().ok())
        .map(|metadata| describe_kind(&metadata.file_type()));
    match found {
        Some(found) => wrong_kind(shown, found, Want::Dir),
        // A component on the way is not a directory: the path does not exist as written.
        None => ConfineError::Io {
            path: shown,
            source: Errno::NOTDIR.into(),
        },
    }
}

fn wrong_kind(path: PathBuf, found: &'static str, want: Want) -> ConfineError {
    ConfineError::WrongKind {
        path,
        found,
        expected: want.noun(),
    }
}

fn open_error(errno: Errno, path: PathBuf, base: &Path, want: Want) -> ConfineError {
    let escape = |reason| ConfineError::Escape {
        path: path.clone(),
        dir: base.to_path_buf(),
        reason,
    };
    match errno {
        Errno::XDEV => escape("a `..` or a symbolic link on the way leads out of it"),
        Errno::LOOP => escape(
            "a /proc magic link, a symbolic-link loop, or a symbolic link where none may be followed",
        ),
        // open(2) of a unix socket; also a device node whose driver is missing.
        Errno::NXIO => wrong_kind(path, "a socket or a device without a driver", want),
        errno => ConfineError::Io {
            path,
            source: errno.into(),
        },
    }
}

/// "a FIFO (named pipe)", "a socket"... for messages.
pub fn describe_kind(kind: &FileType) -> &'static str {
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
