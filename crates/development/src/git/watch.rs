//! A working tree's status kept from one call to the next for as long as the kernel proves
//! that nothing it depends on changed (git's fsmonitor idea, checked synchronously).
//!
//! Computing a status costs an `lstat` per tracked file and a walk of every directory; an
//! agent calls `git_info` and `git_diff` again and again on a tree that did not change. What
//! a status depends on, and how every call checks it before a kept status is served:
//!
//! - the working tree: an inotify watch on every directory (but `.git` and ignored
//!   directories holding no tracked file) and on every file in them. File watches see writes
//!   and new links made through a hard link elsewhere. Each call first drains the queue:
//!   any event, an overflow or a read error drops what was kept. The kernel queues an event
//!   before the writing syscall returns, so whatever finished before a call started is seen
//!   by that call (no background thread, so no race with the reader).
//! - the index: its trailing checksum (its whole content when `index.skipHash` left none);
//! - HEAD's tree, and the resolved configuration (every file and override, serialized);
//! - exclude and attribute files outside the working tree (`info/exclude`, `info/attributes`,
//!   `core.excludesFile`, `core.attributesFile` or their XDG defaults, the system ones): content.
//!
//! A status is computed afresh every call (nothing kept) for repositories with submodules
//! (their state lives in other git directories), bare ones, working trees on file systems
//! other than local disks, tmpfs and overlays, or with mount points inside, trees needing more than
//! [`MAX_WATCHES`] watches, and when /proc is missing. Known blind spot, the same as git's
//! fsmonitor and watchman: a write through a shared writable `mmap` raises no inotify event.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use gix::bstr::{BStr, BString};
use gix::hash::ObjectId;
use mcp_server_runtime::ToolError;
use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use rustix::fs::{FileType, Mode, OFlags};

use super::info::ChangedFile;
use super::patch::Change;

/// Watches (directories and files) one working tree may take; beyond, no status is kept.
pub const MAX_WATCHES: usize = 50_000;

/// File systems whose every change goes through this kernel (so inotify sees it): ext2-4,
/// xfs, btrfs, tmpfs, f2fs, bcachefs, zfs, and overlayfs (containers; changes made through
/// the overlay). Network, FUSE and virtual machine shares (9p, virtiofs) are not.
const LOCAL_FILE_SYSTEMS: &[u64] = &[
    0xEF53,
    0x5846_5342,
    0x9123_683E,
    0x0102_1994,
    0xF2F5_2010,
    0xCA45_1A4E,
    0x2FC1_2FC1,
    0x794C_7630,
];

/// True when the file system holding `dir` is one whose changes inotify sees.
#[cfg(test)]
pub(crate) fn is_local_file_system(dir: &Path) -> bool {
    rustix::fs::statfs(dir).is_ok_and(|fs| LOCAL_FILE_SYSTEMS.contains(&(fs.f_type as u64)))
}

/// The statuses kept, for one working tree at a time (the last one asked about).
#[derive(Default)]
pub(crate) struct StatusCache {
    slot: Mutex<Option<Watched>>,
    /// Statuses computed rather than served (tests check the cache is used at all).
    #[cfg(test)]
    pub(crate) computed: std::sync::atomic::AtomicUsize,
}

/// What is kept about one working tree.
pub(crate) struct Watched {
    workdir: PathBuf,
    key: Key,
    /// `None`: this tree cannot be watched (see the module docs); nothing is kept.
    inotify: Option<OwnedFd>,
    /// `git_info`'s changes (staged, unstaged, untracked).
    pub(crate) all_changes: Option<Vec<ChangedFile>>,
    /// `git_diff`'s index-to-worktree changes.
    pub(crate) unstaged: Option<Vec<Change>>,
}

/// The inputs of a status that live outside the working tree.
#[derive(PartialEq, Eq)]
struct Key {
    git_dir: PathBuf,
    head_tree: ObjectId,
    /// The index's identity, times and checksum (see [`index_checksum`]); `None` without one.
    index: Option<Vec<u8>>,
    config: BString,
    /// Exclude and attribute files outside the tree and their content (`None`: missing).
    outside: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl StatusCache {
    /// The value `field` keeps for `repo`'s working tree, computed by `compute` unless a
    /// kept one is still exact (see the module docs).
    pub(crate) fn get_or_compute<T: Clone>(
        &self,
        repo: &gix::Repository,
        field: fn(&mut Watched) -> &mut Option<T>,
        compute: impl FnOnce() -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        let (Some(workdir), Some(key)) = (repo.workdir(), Key::of(repo)) else {
            return self.compute(compute);
        };
        // A panic while holding the lock leaves at worst a slot we drop below.
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(watched) = slot.as_mut()
            && watched.workdir == workdir
            && watched.key == key
            && watched.unchanged()
        {
            if watched.inotify.is_none() {
                return self.compute(compute);
            }
            if let Some(kept) = field(watched) {
                return Ok(kept.clone());
            }
            let value = self.compute(compute)?;
            *field(watched) = Some(value.clone());
            return Ok(value);
        }
        // Drop the old watches first: they count against the user's limit.
        *slot = None;
        // Watches go up before the status is computed, so a change made while it runs is
        // an event for the next call.
        let inotify = match watch_worktree(repo, workdir) {
            Ok(inotify) => Some(inotify),
            Err(why) => {
                tracing::debug!(workdir = %workdir.display(), "git status not kept: {why}");
                None
            }
        };
        let mut watched = Watched {
            workdir: workdir.to_path_buf(),
            key,
            inotify,
            all_changes: None,
            unstaged: None,
        };
        let value = self.compute(compute)?;
        if watched.inotify.is_some() {
            *field(&mut watched) = Some(value.clone());
        }
        *slot = Some(watched);
        Ok(value)
    }

    fn compute<T>(&self, compute: impl FnOnce() -> Result<T, ToolError>) -> Result<T, ToolError> {
        #[cfg(test)]
        self.computed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        compute()
    }
}

impl Watched {
    /// True when no watch reported anything since the watches were set up (or for a tree
    /// that is not watched). Reads the whole queue: one event is enough to drop the cache.
    fn unchanged(&self) -> bool {
        let Some(inotify) = &self.inotify else {
            return true;
        };
        let mut buf = [0u8; 4096];
        matches!(
            rustix::io::read(inotify, &mut buf),
            Err(rustix::io::Errno::AGAIN)
        )
    }
}

impl Key {
    /// `None` when an input cannot be read: then nothing is kept.
    fn of(repo: &gix::Repository) -> Option<Self> {
        let head_tree = repo.head_tree_id_or_empty().ok()?.detach();
        let index = index_checksum(&repo.index_path(), repo.object_hash().len_in_bytes()).ok()?;
        let config = repo.config_snapshot().plumbing().to_bstring();
        let outside = outside_files(repo)
            .into_iter()
            .map(|path| match std::fs::read(&path) {
                Ok(content) => Some((path, Some(content))),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Some((path, None)),
                Err(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            git_dir: repo.git_dir().to_path_buf(),
            head_tree,
            index,
            config,
            outside,
        })
    }
}

/// The index's file identity and times, and its trailing checksum, which changes with every
/// byte before it (the whole file when the checksum was left out: `index.skipHash` writes
/// zeros). The times matter too: an entry modified at or after the index was written is
/// compared by content ("racily clean"), so a rewrite with the same bytes may change a
/// status. `None` without an index.
fn index_checksum(path: &Path, hash_len: usize) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    use std::os::unix::fs::MetadataExt as _;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = file.metadata()?;
    let mut stamp = Vec::with_capacity(64 + hash_len);
    for value in [
        meta.dev() as i64,
        meta.ino() as i64,
        meta.size() as i64,
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    ] {
        stamp.extend_from_slice(&value.to_le_bytes());
    }
    let mut checksum = vec![0; hash_len];
    if meta.len() >= hash_len as u64 {
        file.seek(SeekFrom::End(-(hash_len as i64)))?;
        file.read_exact(&mut checksum)?;
        if checksum.iter().any(|&byte| byte != 0) {
            stamp.extend_from_slice(&checksum);
            return Ok(Some(stamp));
        }
    }
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut stamp)?;
    Ok(Some(stamp))
}

/// The exclude and attribute files outside the working tree a status reads, where gix
/// looks for them.
fn outside_files(repo: &gix::Repository) -> Vec<PathBuf> {
    let config = repo.config_snapshot();
    let env = &mut |name: &str| std::env::var_os(name);
    let info = repo.common_dir().join("info");
    let configured = |key: &str, default: &str| match config.trusted_path(key) {
        Ok(Some(path)) => Some(path),
        _ => gix::path::env::xdg_config(default, &mut |name| std::env::var_os(name)),
    };
    let mut files = vec![info.join("exclude"), info.join("attributes")];
    files.extend(configured("core.excludesFile", "ignore"));
    files.extend(configured("core.attributesFile", "attributes"));
    for source in [
        gix::attrs::Source::GitInstallation,
        gix::attrs::Source::System,
    ] {
        files.extend(source.storage_location(env));
    }
    files
}

/// Sets up the watches of the working tree at `workdir` (see the module docs), or says why
/// it cannot be watched.
fn watch_worktree(repo: &gix::Repository, workdir: &Path) -> Result<OwnedFd, String> {
    let index = repo.index_or_empty().map_err(|err| err.to_string())?;
    if index
        .entries()
        .iter()
        .any(|entry| entry.mode == gix::index::entry::Mode::COMMIT)
    {
        return Err("it has submodules".into());
    }
    let mut excludes = repo
        .excludes(
            &index,
            None,
            gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
        )
        .map_err(|err| err.to_string())?;
    let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
        .map_err(|err| format!("inotify: {err}"))?;
    let root = open_dir(rustix::fs::CWD, workdir.as_os_str())
        .map_err(|err| format!("cannot open {}: {err}", workdir.display()))?;
    let fs_type = rustix::fs::fstatfs(&root)
        .map_err(|err| err.to_string())?
        .f_type as u64;
    if !LOCAL_FILE_SYSTEMS.contains(&fs_type) {
        return Err(format!(
            "file system type {fs_type:#x} is not a local disk one"
        ));
    }
    let mut walk = Walk {
        inotify: &inotify,
        device: rustix::fs::fstat(&root)
            .map_err(|err| err.to_string())?
            .st_dev,
        index: &index,
        excludes: &mut excludes,
        watches: 0,
    };
    walk.directory(root, BString::default())?;
    Ok(inotify)
}

/// Events that may change a status. Reads (access, open, close without writing) are left
/// out, so computing a status does not invalidate itself.
fn changes_mask() -> WatchFlags {
    WatchFlags::MODIFY
        | WatchFlags::ATTRIB
        | WatchFlags::CLOSE_WRITE
        | WatchFlags::MOVED_FROM
        | WatchFlags::MOVED_TO
        | WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
}

fn open_dir(at: impl AsFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

struct Walk<'a, 'repo> {
    inotify: &'a OwnedFd,
    device: u64,
    index: &'a gix::index::State,
    excludes: &'a mut gix::AttributeStack<'repo>,
    watches: usize,
}

impl Walk<'_, '_> {
    /// Watches `dir` (already open, at `relative` in the tree), then every file in it, and
    /// recurses. Watches name the open descriptor through /proc, so a directory swapped
    /// for a symlink meanwhile cannot move a watch outside the tree.
    fn directory(&mut self, dir: OwnedFd, relative: BString) -> Result<(), String> {
        let at = format!("/proc/self/fd/{}", dir.as_raw_fd());
        self.watch(OsStr::new(&at), changes_mask() | WatchFlags::ONLYDIR)?;
        let entries = rustix::fs::Dir::read_from(&dir).map_err(|err| err.to_string())?;
        for entry in entries {
            let entry = entry.map_err(|err| err.to_string())?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name);
            let kind = match entry.file_type() {
                FileType::Unknown => FileType::from_raw_mode(
                    rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|err| err.to_string())?
                        .st_mode,
                ),
                kind => kind,
            };
            if kind != FileType::Directory {
                // Files (and symlinks themselves): a write through another hard link only
                // reaches a watch on the file.
                let mut path = format!("{at}/").into_bytes();
                path.extend_from_slice(name.as_bytes());
                self.watch(
                    OsStr::from_bytes(&path),
                    changes_mask() | WatchFlags::DONT_FOLLOW,
                )?;
                continue;
            }
            if name == ".git" {
                continue;
            }
            let mut child = relative.clone();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(name.as_bytes());
            if self.is_ignored_and_untracked(child.as_ref())? {
                continue;
            }
            let child_dir = open_dir(&dir, name).map_err(|err| err.to_string())?;
            let device = rustix::fs::fstat(&child_dir)
                .map_err(|err| err.to_string())?
                .st_dev;
            if device != self.device {
                return Err(format!("{child} is a mount point"));
            }
            self.directory(child_dir, child)?;
        }
        Ok(())
    }

    /// An ignored directory without tracked files is never looked into by a status: changes
    /// inside it cannot show (a rule change that would un-ignore it is a change of a watched
    /// `.gitignore` or of the key).
    fn is_ignored_and_untracked(&mut self, relative: &BStr) -> Result<bool, String> {
        let mut prefix = relative.to_owned();
        prefix.push(b'/');
        if self
            .index
            .prefixed_entries_range(prefix.as_ref())
            .is_some_and(|range| !range.is_empty())
        {
            return Ok(false);
        }
        let platform = self
            .excludes
            .at_entry(relative, Some(gix::index::entry::Mode::DIR))
            .map_err(|err| err.to_string())?;
        Ok(platform.is_excluded())
    }

    fn watch(&mut self, path: &OsStr, flags: WatchFlags) -> Result<(), String> {
        self.watches += 1;
        if self.watches > MAX_WATCHES {
            return Err(format!("it needs more than {MAX_WATCHES} watches"));
        }
        inotify::add_watch(self.inotify, path, flags)
            .map(drop)
            .map_err(|err| format!("cannot watch {}: {err}", path.to_string_lossy()))
    }
}

#[cfg(test)]
mod tests;
