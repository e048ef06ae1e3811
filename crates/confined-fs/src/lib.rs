//! Confinement of user-supplied paths to the directories a server was started with.
//!
//! Every file path that arrives through MCP goes through [`confine_path`] before it is
//! opened. The check is done on the *canonical* path (symlinks and `..` resolved by the OS),
//! and compared component-wise, so neither `..`, symlinks pointing outside, nor sibling
//! directories sharing a name prefix (`/srv/data-evil` vs `/srv/data`) get through.

use std::path::{Path, PathBuf};

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
}

/// The canonical, existing directories a server may touch. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    // Never empty: `Roots::new` refuses an empty list.
    dirs: Vec<PathBuf>,
}

impl Roots {
    /// Canonicalizes every root; each must be an existing directory. Duplicates are dropped.
    pub fn new(roots: impl IntoIterator<Item = PathBuf>) -> Result<Self, ConfineError> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for root in roots {
            let canonical = root.canonicalize().map_err(|err| ConfineError::BadRoot {
                root: root.clone(),
                reason: err.to_string(),
            })?;
            if !canonical.is_dir() {
                return Err(ConfineError::BadRoot {
                    root,
                    reason: "it is not a directory".to_owned(),
                });
            }
            if !dirs.contains(&canonical) {
                dirs.push(canonical);
            }
        }
        if dirs.is_empty() {
            return Err(ConfineError::NoRoots);
        }
        Ok(Self { dirs })
    }

    /// The first root: relative paths are resolved against it.
    pub fn first(&self) -> &Path {
        &self.dirs[0]
    }

    /// All roots, canonical, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(PathBuf::as_path)
    }

    /// True when the canonical `path` is one of the roots or below one.
    /// `Path::starts_with` compares whole components, so `/srv/data-evil` is not under `/srv/data`.
    pub fn contains(&self, canonical: &Path) -> bool {
        self.dirs.iter().any(|root| canonical.starts_with(root))
    }

    fn describe(&self) -> String {
        let names: Vec<String> = self
            .dirs
            .iter()
            .map(|dir| dir.display().to_string())
            .collect();
        names.join(", ")
    }
}

impl<'a> IntoIterator for &'a Roots {
    type Item = &'a Path;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, PathBuf>, fn(&PathBuf) -> &Path>;

    fn into_iter(self) -> Self::IntoIter {
        self.dirs.iter().map(PathBuf::as_path)
    }
}

/// Resolves a user-supplied `path` and returns its canonical form if it lies inside `roots`.
///
/// Relative paths are resolved against [`Roots::first`]. The path must exist: it is
/// canonicalized (every symlink and `..` resolved by the OS) and the result must be a root
/// or lie below one. To create a new file, confine its parent directory and join the file
/// name yourself (after checking the name is a single normal component).
pub fn confine_path(path: &str, roots: &Roots) -> Result<PathBuf, ConfineError> {
    if path.contains('\0') {
        return Err(ConfineError::NulByte);
    }
    if path.is_empty() {
        return Err(ConfineError::Empty);
    }
    let joined = roots.first().join(path); // an absolute `path` replaces the base entirely
    let resolved = joined
        .canonicalize()
        .map_err(|err| ConfineError::NotFound {
            path: path.to_owned(),
            base: roots.first().to_path_buf(),
            reason: err.to_string(),
        })?;
    if roots.contains(&resolved) {
        Ok(resolved)
    } else {
        Err(ConfineError::OutsideRoots {
            path: path.to_owned(),
            resolved,
            roots: roots.describe(),
        })
    }
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
