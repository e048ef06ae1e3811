//! Files and directories opened beneath a root: [`ConfinedFile`], [`ConfinedDir`], [`Opened`].

use std::ffi::OsString;
use std::fs::{File, FileType, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileExt as _, FileTypeExt as _};
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
    /// Reads at most `limit` bytes from the start of the file (positional reads: the
    /// offset [`Read`] uses is not moved). A file that grows while it is read cannot make
    /// the caller hold more than it budgeted.
    pub fn read_capped(&self, limit: u64) -> io::Result<Vec<u8>> {
        let expected = self.len().min(limit);
        let mut bytes = vec![0; usize::try_from(expected).unwrap_or(0)];
        let mut filled = 0;
        loop {
            if filled == bytes.len() {
                if filled as u64 >= limit {
                    break;
                }
                // The file grew since it was opened: keep reading up to the limit.
                let more = (limit - filled as u64).min(64 * 1024) as usize;
                bytes.resize(filled + more, 0);
            }
            match self.file.read_at(&mut bytes[filled..], filled as u64) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        bytes.truncate(filled);
        Ok(bytes)
    }

    /// Another handle on the same open file. It shares the offset [`Read`] moves;
    /// [`read_capped`](Self::read_capped) does not use it.
    pub fn try_clone(&self) -> io::Result<Self> {
        Ok(Self {
            file: self.file.try_clone()?,
            path: self.path.clone(),
            metadata: self.metadata.clone(),
        })
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
    /// Opens `path` by name, following symbolic links wherever they lead, for paths the
    /// caller trusts (tests, command-line tools, a walk over a directory it chose). Only the
    /// kind checks apply: a FIFO is still refused without blocking.
    pub fn open_ambient(path: impl AsRef<Path>) -> Result<Self, ConfineError> {
        open_by_name(path.as_ref(), Want::Either)
    }

    /// The path it was opened as.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(file) => file.path(),
            Self::Dir(dir) => dir.path(),
        }
    }

    /// The regular file at `path`, as a walk of [`path`](Self::path) yields it: for a
    /// directory, opened beneath it ([`ConfinedDir::open_file`]); for a file, the file
    /// itself (another handle on it) when `path` is its path.
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<ConfinedFile, ConfineError> {
        let path = path.as_ref();
        match self {
            Self::Dir(dir) => dir.open_file(path),
            Self::File(file) if path == file.path() || path.as_os_str().is_empty() => {
                file.try_clone().map_err(|source| ConfineError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Self::File(file) => Err(ConfineError::Escape {
                path: path.to_path_buf(),
                dir: file.path().to_path_buf(),
                reason: "only the file itself can be opened through a file",
            }),
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
    classify(fd, shown, want)
}

/// Opens `path` by name, following symbolic links wherever they lead: for paths the
/// caller trusts (tests, command-line tools). Same kind checks as the confined opens.
pub(crate) fn open_by_name(path: &Path, want: Want) -> Result<Opened, ConfineError> {
    let flags = match want {
        Want::Dir => READ_FLAGS | OFlags::DIRECTORY,
        Want::File | Want::Either => READ_FLAGS,
    };
    let fd = rustix::fs::open(path, flags | OFlags::CLOEXEC, rustix::fs::Mode::empty())
        .map_err(|errno| open_error(errno, path.to_path_buf(), path, want))?;
    classify(fd, path.to_path_buf(), want)
}

/// Checks the kind of the open `fd` and returns it in blocking mode.
fn classify(fd: OwnedFd, shown: PathBuf, want: Want) -> Result<Opened, ConfineError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Roots;
    use std::fs;
    use std::io::Write as _;

    #[test]
    fn read_capped_reads_from_the_start_up_to_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), "0123456789").unwrap();
        let roots = Roots::new([tmp.path().to_path_buf()]).unwrap();
        let mut file = roots.open_file("f").unwrap();
        assert_eq!(file.read_capped(4).unwrap(), b"0123");
        assert_eq!(file.read_capped(100).unwrap(), b"0123456789");
        // Positional: the stream offset is untouched, and reads do not disturb it.
        let mut head = [0u8; 3];
        file.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"012");
        assert_eq!(file.read_capped(2).unwrap(), b"01");
    }

    #[test]
    fn read_capped_follows_a_file_that_grew_but_not_past_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), "ab").unwrap();
        let roots = Roots::new([tmp.path().to_path_buf()]).unwrap();
        let file = roots.open_file("f").unwrap();
        let mut append = fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join("f"))
            .unwrap();
        append.write_all(&[b'x'; 100_000]).unwrap();
        assert_eq!(file.len(), 2, "metadata is from the open");
        assert_eq!(file.read_capped(80_000).unwrap().len(), 80_000);
        assert_eq!(file.read_capped(1 << 20).unwrap().len(), 100_002);
        let empty = tmp.path().join("empty");
        fs::write(&empty, "").unwrap();
        assert!(
            roots
                .open_file("empty")
                .unwrap()
                .read_capped(10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn opened_file_opens_only_itself() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), "f").unwrap();
        fs::write(tmp.path().join("g"), "g").unwrap();
        let roots = Roots::new([tmp.path().to_path_buf()]).unwrap();
        let opened = roots.open("f").unwrap();
        let again = opened.open_file(opened.path()).unwrap();
        assert_eq!(again.read_capped(10).unwrap(), b"f");
        let err = opened.open_file(tmp.path().join("g")).unwrap_err();
        assert!(matches!(err, ConfineError::Escape { .. }), "{err}");
    }

    #[test]
    fn ambient_open_checks_the_kind_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let err = Opened::open_ambient(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert!(matches!(
            Opened::open_ambient(tmp.path()).unwrap(),
            Opened::Dir(_)
        ));
        let err = Opened::open_ambient(tmp.path().join("missing")).unwrap_err();
        assert!(
            matches!(&err, ConfineError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
    }
}
