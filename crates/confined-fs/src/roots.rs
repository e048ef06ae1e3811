//! [`Roots`]: the directories a server may touch, each held open from start-up.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::ConfineError;
use crate::open::{ConfinedDir, ConfinedFile, Opened, Want, open_at};

/// The canonical, existing directories a server may touch. Cheap to clone (the directory
/// descriptors are shared).
///
/// Each root is opened once, when the `Roots` are built, and every `open_*` call resolves
/// beneath that descriptor: renaming or replacing a root's path later cannot redirect opens.
#[derive(Clone)]
pub struct Roots {
    // Never empty: `Roots::new` refuses an empty list.
    dirs: Vec<RootDir>,
}

#[derive(Clone)]
struct RootDir {
    path: PathBuf,
    /// `O_PATH` descriptor: search permission suffices, and it cannot be read through.
    fd: Arc<OwnedFd>,
}

/// Where a user path lies: which root, and the path beneath it.
struct Resolved<'a> {
    root: &'a RootDir,
    canonical: PathBuf,
    relative: PathBuf,
}

impl Roots {
    /// Canonicalizes and opens every root; each must be an existing directory. Duplicates
    /// are dropped.
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Result<Self, ConfineError> {
        let mut dirs: Vec<RootDir> = Vec::new();
        for root in roots {
            let bad_root = |reason: String| ConfineError::BadRoot {
                root: root.clone(),
                reason,
            };
            let canonical = root
                .canonicalize()
                .map_err(|err| bad_root(err.to_string()))?;
            if dirs.iter().any(|dir| dir.path == canonical) {
                continue;
            }
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let fd = rustix::fs::open(&canonical, flags, Mode::empty()).map_err(|errno| {
                bad_root(match errno {
                    Errno::NOTDIR => "it is not a directory".to_owned(),
                    errno => std::io::Error::from(errno).to_string(),
                })
            })?;
            dirs.push(RootDir {
                path: canonical,
                fd: Arc::new(fd),
            });
        }
        if dirs.is_empty() {
            return Err(ConfineError::NoRoots);
        }
        Ok(Self { dirs })
    }

    /// The first root: relative paths are resolved against it.
    pub fn first(&self) -> &Path {
        &self.dirs[0].path
    }

    /// All roots, canonical, in the order given.
    pub fn iter(&self) -> RootPaths<'_> {
        RootPaths {
            inner: self.dirs.iter(),
        }
    }

    /// True when the canonical `path` is one of the roots or below one.
    /// `Path::starts_with` compares whole components, so `/srv/data-evil` is not under `/srv/data`.
    pub fn contains(&self, canonical: &Path) -> bool {
        self.dirs
            .iter()
            .any(|root| canonical.starts_with(&root.path))
    }

    /// `path` as a client should pass it back: relative to the first root when it lies
    /// under it (relative inputs resolve against that root; `.` for the root itself),
    /// absolute otherwise.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(self.first()) {
            Ok(relative) if relative.as_os_str().is_empty() => ".".to_owned(),
            Ok(relative) => relative.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    /// Opens the regular file at `path` (relative to the first root, or absolute) for
    /// reading. See the crate documentation for what is guaranteed.
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<ConfinedFile, ConfineError> {
        match self.open_as(path.as_ref(), Want::File)? {
            Opened::File(file) => Ok(file),
            // invariant: `Want::File` yields files only; this arm is never taken.
            Opened::Dir(dir) => Err(ConfineError::WrongKind {
                path: dir.path().to_path_buf(),
                found: "a directory",
                expected: "a regular file",
            }),
        }
    }

    /// Opens the directory at `path` (relative to the first root, or absolute).
    pub fn open_dir(&self, path: impl AsRef<Path>) -> Result<ConfinedDir, ConfineError> {
        match self.open_as(path.as_ref(), Want::Dir)? {
            Opened::Dir(dir) => Ok(dir),
            // invariant: `Want::Dir` yields directories only; this arm is never taken.
            Opened::File(file) => Err(ConfineError::WrongKind {
                path: file.path().to_path_buf(),
                found: "a regular file",
                expected: "a directory",
            }),
        }
    }

    /// Opens `path` if it is a regular file or a directory, whichever it is.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Opened, ConfineError> {
        self.open_as(path.as_ref(), Want::Either)
    }

    fn open_as(&self, path: &Path, want: Want) -> Result<Opened, ConfineError> {
        let Resolved {
            root,
            canonical,
            relative,
        } = self.resolve(path)?;
        open_at(root.fd.as_fd(), &relative, canonical, &root.path, want)
    }

    /// The canonical form of `path` if it lies inside a root (see [`crate::confine_path`]).
    pub(crate) fn canonicalize(&self, path: &Path) -> Result<PathBuf, ConfineError> {
        self.resolve(path).map(|resolved| resolved.canonical)
    }

    fn resolve(&self, path: &Path) -> Result<Resolved<'_>, ConfineError> {
        let shown = || path.to_string_lossy().into_owned();
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(ConfineError::NulByte);
        }
        if path.as_os_str().is_empty() {
            return Err(ConfineError::Empty);
        }
        let joined = self.first().join(path); // an absolute `path` replaces the base entirely
        let canonical = joined
            .canonicalize()
            .map_err(|err| ConfineError::NotFound {
                path: shown(),
                base: self.first().to_path_buf(),
                reason: err.to_string(),
            })?;
        for root in &self.dirs {
            if let Ok(relative) = canonical.strip_prefix(&root.path) {
                let relative = relative.to_path_buf();
                return Ok(Resolved {
                    root,
                    canonical,
                    relative,
                });
            }
        }
        Err(ConfineError::OutsideRoots {
            path: shown(),
            resolved: canonical,
            roots: self.describe(),
        })
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self.iter().map(|dir| dir.display().to_string()).collect();
        names.join(", ")
    }
}

impl PartialEq for Roots {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Roots {}

impl fmt::Debug for Roots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Roots")
            .field("dirs", &self.iter().collect::<Vec<_>>())
            .finish()
    }
}

/// The canonical paths of the [`Roots`], in order.
#[derive(Debug, Clone)]
pub struct RootPaths<'a> {
    inner: std::slice::Iter<'a, RootDir>,
}

impl<'a> Iterator for RootPaths<'a> {
    type Item = &'a Path;

    fn next(&mut self) -> Option<&'a Path> {
        self.inner.next().map(|dir| dir.path.as_path())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<'a> IntoIterator for &'a Roots {
    type Item = &'a Path;
    type IntoIter = RootPaths<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for RootDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.path.fmt(f)
    }
}
