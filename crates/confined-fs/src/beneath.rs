//! Opening a relative path beneath a directory descriptor, so that nothing met on the way
//! (`..`, a symbolic link swapped in a moment ago, a `/proc` magic link) leads outside it.
//!
//! The kernel does the work: `openat2(dir, path, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//! resolves every component relative to `dir` and fails with `EXDEV` the moment the walk
//! would leave it, atomically with the open. Kernels before 5.6 have no `openat2` (and some
//! container seccomp profiles refuse it); there the path is opened one component at a time
//! with `O_NOFOLLOW`, which follows no symbolic link and no `..` at all: stricter, but
//! still contained.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How a path is resolved beneath a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolver {
    /// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: symbolic links and `..` are
    /// followed as long as they stay beneath the directory.
    Openat2,
    /// One `openat(O_NOFOLLOW)` per component: no symbolic link and no `..` is followed.
    Components,
}

/// Set once `openat2` answered `ENOSYS`: the kernel does not have it.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

#[cfg(test)]
thread_local! {
    /// Tests run the same attacks against both resolvers on one kernel.
    pub(crate) static FORCED: std::cell::Cell<Option<Resolver>> = const { std::cell::Cell::new(None) };
}

/// `openat2` answers `EAGAIN` when a rename elsewhere raced a `..` lookup; retrying is
/// what the man page advises. Bounded so a hostile renamer cannot spin us forever.
const EAGAIN_RETRIES: usize = 16;

/// Opens `relative` beneath `dir` with `flags` (`O_CLOEXEC` is always added), using
/// `openat2` where the kernel has it and the component walk otherwise.
pub(crate) fn open_beneath(
    dir: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    #[cfg(test)]
    if let Some(resolver) = FORCED.get() {
        return open_with(resolver, dir, relative, flags);
    }
    if !OPENAT2_MISSING.load(Ordering::Relaxed) {
        match open_with(Resolver::Openat2, dir, relative, flags) {
            Err(Errno::NOSYS) => OPENAT2_MISSING.store(true, Ordering::Relaxed),
            // Container seccomp profiles written before openat2 existed answer EPERM for it.
            Err(Errno::PERM) => {}
            outcome => return outcome,
        }
    }
    open_with(Resolver::Components, dir, relative, flags)
}

/// Opens `relative` beneath `dir` with the given resolver.
pub(crate) fn open_with(
    resolver: Resolver,
    dir: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let flags = flags | OFlags::CLOEXEC;
    match resolver {
        Resolver::Openat2 => {
            let path = if relative.as_os_str().is_empty() {
                Path::new(".")
            } else {
                relative
            };
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            let mut tries = 0;
            loop {
                match rustix::fs::openat2(dir, path, flags, Mode::empty(), resolve) {
                    Err(Errno::AGAIN) if tries < EAGAIN_RETRIES => tries += 1,
                    outcome => return outcome,
                }
            }
        }
        Resolver::Components => open_by_components(dir, relative, flags),
    }
}

fn open_by_components(
    dir: BorrowedFd<'_>,
    relative: &Path,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    let mut names = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            // Same answer openat2 gives for a walk that would leave the directory.
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Errno::XDEV);
            }
        }
    }
    let Some((last, parents)) = names.split_last() else {
        return rustix::fs::openat(dir, ".", flags, Mode::empty());
    };
    let mut current: Option<OwnedFd> = None;
    for name in parents {
        let at = current.as_ref().map_or(dir, AsFd::as_fd);
        // O_PATH: only search permission is needed to pass through; O_DIRECTORY with
        // O_NOFOLLOW refuses a symbolic link in place of the directory.
        let next = rustix::fs::openat(
            at,
            *name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| match errno {
            // Say "a link was refused" (as openat2 and a final O_NOFOLLOW do), not "not a
            // directory", when the component is a symbolic link.
            Errno::NOTDIR if is_symlink(at, name) => Errno::LOOP,
            errno => errno,
        })?;
        current = Some(next);
    }
    let at = current.as_ref().map_or(dir, AsFd::as_fd);
    rustix::fs::openat(at, *last, flags | OFlags::NOFOLLOW, Mode::empty())
}

fn is_symlink(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> bool {
    rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|stat| {
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Symlink
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const BOTH: [Resolver; 2] = [Resolver::Openat2, Resolver::Components];

    fn dir_fd(path: &Path) -> OwnedFd {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    fn read(fd: OwnedFd) -> String {
        std::io::read_to_string(fs::File::from(fd)).unwrap()
    }

    /// `<tmp>/root/{a.txt, sub/b.txt}` and `<tmp>/secret.txt` outside the root.
    fn fixture() -> (tempfile::TempDir, std::path::PathBuf, OwnedFd) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("a.txt"), "a").unwrap();
        fs::write(root.join("sub/b.txt"), "b").unwrap();
        fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
        let fd = dir_fd(&root);
        (tmp, root, fd)
    }

    #[test]
    fn plain_paths_open_with_both_resolvers() {
        let (_tmp, _root, fd) = fixture();
        for resolver in BOTH {
            let open = |p: &str| open_with(resolver, fd.as_fd(), Path::new(p), OFlags::RDONLY);
            assert_eq!(read(open("a.txt").unwrap()), "a", "{resolver:?}");
            assert_eq!(read(open("sub/b.txt").unwrap()), "b", "{resolver:?}");
            assert_eq!(read(open("./sub/./b.txt").unwrap()), "b", "{resolver:?}");
            assert!(open("").is_ok(), "the directory itself, {resolver:?}");
        }
    }

    #[test]
    fn dotdot_out_of_the_directory_is_refused_by_both() {
        let (_tmp, _root, fd) = fixture();
        for resolver in BOTH {
            for path in ["../secret.txt", "sub/../../secret.txt", ".."] {
                let outcome = open_with(resolver, fd.as_fd(), Path::new(path), OFlags::RDONLY);
                assert_eq!(outcome.unwrap_err(), Errno::XDEV, "{path} {resolver:?}");
            }
        }
        // openat2 allows `..` that stays inside; the component walk refuses every `..`.
        let inside = Path::new("sub/../a.txt");
        assert!(open_with(Resolver::Openat2, fd.as_fd(), inside, OFlags::RDONLY).is_ok());
        assert!(open_with(Resolver::Components, fd.as_fd(), inside, OFlags::RDONLY).is_err());
    }

    #[test]
    fn absolute_paths_are_refused_by_both() {
        let (tmp, _root, fd) = fixture();
        let secret = tmp.path().join("secret.txt");
        for resolver in BOTH {
            assert!(open_with(resolver, fd.as_fd(), &secret, OFlags::RDONLY).is_err());
        }
    }

    #[test]
    fn symlinks_out_are_refused_by_both() {
        let (tmp, root, fd) = fixture();
        symlink(tmp.path().join("secret.txt"), root.join("abs-file")).unwrap();
        symlink("../secret.txt", root.join("rel-file")).unwrap();
        symlink(tmp.path(), root.join("abs-dir")).unwrap();
        symlink("..", root.join("rel-dir")).unwrap();
        for resolver in BOTH {
            for path in [
                "abs-file",
                "rel-file",
                "abs-dir/secret.txt",
                "rel-dir/secret.txt",
            ] {
                let outcome = open_with(resolver, fd.as_fd(), Path::new(path), OFlags::RDONLY);
                assert!(outcome.is_err(), "{path} {resolver:?} opened");
            }
        }
    }

    #[test]
    fn symlinks_inside_are_followed_only_by_openat2() {
        let (_tmp, root, fd) = fixture();
        symlink("sub", root.join("alias")).unwrap();
        symlink("sub/b.txt", root.join("b-link")).unwrap();
        for path in ["alias/b.txt", "b-link"] {
            let open = |resolver| open_with(resolver, fd.as_fd(), Path::new(path), OFlags::RDONLY);
            assert_eq!(read(open(Resolver::Openat2).unwrap()), "b", "{path}");
            assert!(open(Resolver::Components).is_err(), "{path}");
        }
    }

    #[test]
    fn proc_magic_links_are_refused_by_both() {
        // /proc/self/root is a magic link to `/`; /proc/self/fd/N to whatever N is open on.
        let proc_self = Path::new("/proc/self");
        if !proc_self.join("root").exists() {
            eprintln!("SKIPPED: /proc is not mounted here");
            return;
        }
        let (tmp, _root, _fd) = fixture();
        let secret = fs::File::open(tmp.path().join("secret.txt")).unwrap();
        let secret_fd = std::os::fd::AsRawFd::as_raw_fd(&secret);
        let proc_fd = dir_fd(proc_self);
        for resolver in BOTH {
            for path in ["root/etc/hostname".to_owned(), format!("fd/{secret_fd}")] {
                let outcome =
                    open_with(resolver, proc_fd.as_fd(), Path::new(&path), OFlags::RDONLY);
                assert!(outcome.is_err(), "{path} {resolver:?} opened");
            }
        }
    }
}
