//! Confinement of user-supplied paths to the directories a server was started with.
//!
//! Every root is opened when [`Roots`] are built, and files are opened **by capability**:
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let roots = confined_fs::Roots::new([std::path::PathBuf::from("/srv/project")])?;
//! let mut manifest = roots.open_file("Cargo.toml")?; // regular files only, never blocks
//! let text = manifest.read_capped(1 << 20)?;           // at most 1 MiB
//! let src = roots.open_dir("src")?;                    // a directory handle...
//! let main = src.open_file("main.rs")?;                // ...that opens beneath itself
//! # let _ = (text, main); Ok(()) }
//! ```
//!
//! ## What `open_*` guarantees
//! - **Nothing outside the roots is opened**, even when the file system changes during the
//!   call. A user path is canonicalized (symbolic links and `..` resolved) and checked to lie
//!   in a root, exactly as [`confine_path`] does; then the path *relative to that root* is
//!   opened beneath the root's descriptor with `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_MAGICLINKS)`. A symbolic link or `..` swapped in between the check and the
//!   open is followed only while it stays beneath the root; one that leads out fails the
//!   open ([`ConfineError::Escape`]). `/proc` magic links (`/proc/self/root`,
//!   `/proc/self/fd/N`) are never followed. [`ConfinedDir`] handles give the same guarantee
//!   relative to themselves.
//! - **Only the kind asked for is opened**: `open_file` returns regular files only. FIFOs,
//!   sockets and devices are refused ([`ConfineError::WrongKind`]) without blocking: the open
//!   is `O_NONBLOCK | O_NOCTTY`, the kind is read with `fstat` on the descriptor, and only
//!   then is the flag cleared. A FIFO named `Cargo.toml` cannot hang a worker.
//! - On kernels without `openat2` (before Linux 5.6, or where a seccomp profile refuses it)
//!   the relative path is opened one component at a time with `O_NOFOLLOW`: no symbolic
//!   link or `..` beneath the root is followed at all, so some paths that work elsewhere
//!   are refused there, but nothing escapes.
//!
//! ## What it does not cover
//! - Listing a tree *by name* (the `ignore` crate's walker, `read_dir` on a path) can be
//!   redirected by a directory swapped for a symbolic link mid-walk, and so can
//!   `metadata()` by name: names and sizes from outside may be *seen*. Contents are safe
//!   as long as each file is opened through [`ConfinedDir::open_file`] (or
//!   [`Roots::open_file`]), which refuses anything outside.
//! - [`confine_path`] returns a *path*, which is checked once and then used by name: a
//!   symbolic link swapped in afterwards redirects whatever opens it. Use it for messages
//!   and for APIs that insist on a path; open through [`Roots`] instead.
//! - Hard links and bind mounts placed inside a root by someone with access to the host
//!   are part of the root: containment is against paths, not against the administrator.

use std::io;
use std::path::{Path, PathBuf};

#[cfg(test)]
mod attacks;
mod beneath;
mod open;
mod roots;

pub use open::{ConfinedDir, ConfinedFile, DirEntry, EntryKind, Opened, describe_kind};
pub use roots::{RootPaths, Roots};

/// Why a root or a path was refused. Messages say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// No root was configured at all.
    #[error("no root directory configured; start the server with --root DIR")]
    NoRoots,
    /// A configured root is missing, unreadable or not a directory.
    #[error(
        "root {root:?} is not an existing directory ({reason}); pass an existing directory to --root"
    )]
    BadRoot {
        /// The root as given.
        root: PathBuf,
        /// What went wrong with it.
        reason: String,
    },
    /// The path contains a NUL byte, which no file name can.
    #[error("path contains a NUL byte; pass a plain file path")]
    NulByte,
    /// The path is empty.
    #[error("path is empty; pass a file or directory path inside the allowed roots")]
    Empty,
    /// The path does not exist (or cannot be resolved).
    #[error(
        "path {path:?} does not exist or cannot be accessed ({reason}); check the spelling, relative paths are resolved against {base:?}"
    )]
    NotFound {
        /// The path as given.
        path: String,
        /// The directory relative paths are resolved against.
        base: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The path resolves outside every root (through `..`, a symlink or an absolute path).
    #[error(
        "path {path:?} resolves to {resolved:?}, which is outside the allowed roots {roots}; use a path inside them"
    )]
    OutsideRoots {
        /// The path as given.
        path: String,
        /// Where it actually points.
        resolved: PathBuf,
        /// The allowed roots, for the message.
        roots: String,
    },
    /// Opening the path would have left its root or directory: a `..` or symbolic link
    /// that leads out (typically swapped in after the path was checked), a `/proc` magic
    /// link, or any symbolic link on kernels where none can be followed safely.
    #[error(
        "{path:?} leads outside {dir:?} while being opened ({reason}); use a path inside the allowed roots"
    )]
    Escape {
        /// The path being opened.
        path: PathBuf,
        /// The root or directory it had to stay in.
        dir: PathBuf,
        /// What led out.
        reason: &'static str,
    },
    /// The path is not the kind of file asked for: a FIFO, socket or device where a
    /// regular file is expected, a file where a directory is.
    #[error("{path:?} is {found}, not {expected}; pass {expected} inside the allowed roots")]
    WrongKind {
        /// The path.
        path: PathBuf,
        /// What it is ("a FIFO (named pipe)", "a directory"...).
        found: &'static str,
        /// What was asked for.
        expected: &'static str,
    },
    /// The OS refused to open or inspect the path (permissions, a file that vanished).
    #[error("cannot open {path:?}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Resolves a user-supplied `path` and returns its canonical form if it lies inside `roots`.
///
/// Relative paths are resolved against [`Roots::first`]. The path must exist: it is
/// canonicalized (every symlink and `..` resolved by the OS) and the result must be a root
/// or lie below one. To create a new file, confine its parent directory and join the file
/// name yourself (after checking the name is a single normal component).
///
/// **This checks a name, once.** The answer is true when it is given; a symbolic link
/// swapped into the path afterwards redirects anything that then opens the returned path
/// by name. It also says nothing about what the path is (a FIFO passes). To read or list
/// what a user named, open it with [`Roots::open_file`], [`Roots::open_dir`] or
/// [`Roots::open`], which give the guarantees in the crate documentation.
pub fn confine_path(path: &str, roots: &Roots) -> Result<PathBuf, ConfineError> {
    roots.canonicalize(Path::new(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// `<tmp>/data` (the root, holding `inside.txt` and `sub/`), plus siblings outside it.
    struct Fixture {
        _tmp: tempfile::TempDir,
        base: PathBuf,
        root: PathBuf,
        roots: Roots,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let root = base.join("data");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("inside.txt"), "in").unwrap();
        fs::write(root.join("sub/deep.txt"), "deep").unwrap();
        fs::create_dir_all(base.join("data-evil")).unwrap();
        fs::write(base.join("data-evil/secret.txt"), "evil").unwrap();
        fs::write(base.join("outside.txt"), "out").unwrap();
        let roots = Roots::new([root.clone()]).unwrap();
        Fixture {
            _tmp: tmp,
            base,
            root,
            roots,
        }
    }

    fn is_outside(result: Result<PathBuf, ConfineError>) -> bool {
        matches!(result, Err(ConfineError::OutsideRoots { .. }))
    }

    #[test]
    fn relative_path_resolves_against_first_root() {
        let f = fixture();
        assert_eq!(
            confine_path("inside.txt", &f.roots).unwrap(),
            f.root.join("inside.txt")
        );
        assert_eq!(
            confine_path("sub/deep.txt", &f.roots).unwrap(),
            f.root.join("sub/deep.txt")
        );
        assert_eq!(
            confine_path("./sub/../inside.txt", &f.roots).unwrap(),
            f.root.join("inside.txt")
        );
    }

    #[test]
    fn absolute_path_inside_is_accepted_and_canonical() {
        let f = fixture();
        let given = f.root.join("sub/../sub/deep.txt");
        assert_eq!(
            confine_path(given.to_str().unwrap(), &f.roots).unwrap(),
            f.root.join("sub/deep.txt")
        );
    }

    #[test]
    fn path_equal_to_root_is_accepted() {
        let f = fixture();
        assert_eq!(
            confine_path(f.root.to_str().unwrap(), &f.roots).unwrap(),
            f.root
        );
        assert_eq!(confine_path(".", &f.roots).unwrap(), f.root);
        assert_eq!(confine_path("sub/..", &f.roots).unwrap(), f.root);
    }

    #[test]
    fn dotdot_escape_is_refused() {
        let f = fixture();
        assert!(is_outside(confine_path("../outside.txt", &f.roots)));
        assert!(is_outside(confine_path("sub/../../outside.txt", &f.roots)));
        assert!(is_outside(confine_path("..", &f.roots)));
        let absolute = format!("{}/../outside.txt", f.root.display());
        assert!(is_outside(confine_path(&absolute, &f.roots)));
    }

    #[test]
    fn absolute_path_outside_is_refused() {
        let f = fixture();
        assert!(is_outside(confine_path(
            f.base.join("outside.txt").to_str().unwrap(),
            &f.roots
        )));
        assert!(is_outside(confine_path("/", &f.roots)));
    }

    #[test]
    fn sibling_prefix_is_refused() {
        let f = fixture();
        let sibling = f.base.join("data-evil/secret.txt");
        assert!(is_outside(confine_path(
            sibling.to_str().unwrap(),
            &f.roots
        )));
        assert!(is_outside(confine_path(
            "../data-evil/secret.txt",
            &f.roots
        )));
        assert!(is_outside(confine_path(
            f.base.join("data-evil").to_str().unwrap(),
            &f.roots
        )));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_leading_outside_is_refused() {
        let f = fixture();
        std::os::unix::fs::symlink(f.base.join("outside.txt"), f.root.join("link-out")).unwrap();
        std::os::unix::fs::symlink(&f.base, f.root.join("dir-out")).unwrap();
        assert!(is_outside(confine_path("link-out", &f.roots)));
        assert!(is_outside(confine_path("dir-out/outside.txt", &f.roots)));
        assert!(is_outside(confine_path("dir-out/data-evil", &f.roots)));
    }

    #[cfg(unix)]
    #[test]
    fn symlink_staying_inside_is_accepted_as_its_target() {
        let f = fixture();
        std::os::unix::fs::symlink(f.root.join("sub"), f.root.join("alias")).unwrap();
        assert_eq!(
            confine_path("alias/deep.txt", &f.roots).unwrap(),
            f.root.join("sub/deep.txt")
        );
    }

    #[test]
    fn nul_byte_is_refused() {
        let f = fixture();
        assert!(matches!(
            confine_path("inside.txt\0../../etc", &f.roots),
            Err(ConfineError::NulByte)
        ));
    }

    #[test]
    fn empty_path_is_refused() {
        let f = fixture();
        assert!(matches!(
            confine_path("", &f.roots),
            Err(ConfineError::Empty)
        ));
    }

    #[test]
    fn nonexistent_path_is_refused_with_guidance() {
        let f = fixture();
        let err = confine_path("missing.txt", &f.roots).unwrap_err();
        assert!(matches!(err, ConfineError::NotFound { .. }));
        let message = err.to_string();
        assert!(
            message.contains("missing.txt") && message.contains("relative paths"),
            "{message}"
        );
        // A nonexistent path that would also escape is still just refused.
        assert!(confine_path("../nope/../../etc/passwd-missing", &f.roots).is_err());
    }

    #[test]
    fn nonexistent_root_is_refused() {
        let f = fixture();
        let err = Roots::new([f.base.join("no-such-dir")]).unwrap_err();
        assert!(matches!(err, ConfineError::BadRoot { .. }));
        assert!(err.to_string().contains("--root"), "{err}");
    }

    #[test]
    fn file_as_root_is_refused() {
        let f = fixture();
        let err = Roots::new([f.base.join("outside.txt")]).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn paths_are_displayed_relative_to_the_first_root() {
        let f = fixture();
        let roots = Roots::new([f.root.clone(), f.base.join("data-evil")]).unwrap();
        assert_eq!(roots.display(&f.root), ".");
        assert_eq!(roots.display(&f.root.join("sub/deep.txt")), "sub/deep.txt");
        let other = f.base.join("data-evil/secret.txt");
        assert_eq!(roots.display(&other), other.display().to_string());
    }

    #[test]
    fn empty_roots_are_refused() {
        assert!(matches!(Roots::new(Vec::new()), Err(ConfineError::NoRoots)));
    }

    #[test]
    fn several_roots_accept_paths_in_any_of_them() {
        let f = fixture();
        let roots = Roots::new([f.root.clone(), f.base.join("data-evil"), f.root.clone()]).unwrap();
        assert_eq!(roots.iter().count(), 2, "duplicates are dropped");
        assert_eq!(roots.first(), f.root);
        let evil = f.base.join("data-evil/secret.txt");
        assert_eq!(confine_path(evil.to_str().unwrap(), &roots).unwrap(), evil);
        assert!(is_outside(confine_path(
            f.base.join("outside.txt").to_str().unwrap(),
            &roots
        )));
    }

    #[test]
    fn relative_root_is_canonicalized() {
        let f = fixture();
        let cwd_relative = PathBuf::from(".");
        let roots = Roots::new([cwd_relative]).unwrap();
        assert!(roots.first().is_absolute());
        drop(f);
    }
}
