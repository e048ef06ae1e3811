//! A bounded, parallel file walker over the `ignore` crate.
//!
//! It honours `.gitignore` (inside git repositories, like ripgrep and tokei), `.ignore`
//! and optional custom ignore files, skips hidden files unless asked, never follows
//! symbolic links (so a walk cannot leave the directory it starts in), stops at a cap on
//! files and on bytes and says which cap it hit, and skips binary files when reading.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

mod ignore_guard;

use confined_fs::Opened;
use ignore::{WalkBuilder, WalkState};
use schemars::JsonSchema;
use serde::Serialize;

/// Bytes inspected for a NUL byte to decide that a file is binary (as git and ripgrep do).
const BINARY_SNIFF_BYTES: usize = 8 * 1024;
/// Walk errors kept verbatim; the rest are only counted.
const MAX_KEPT_ERRORS: usize = 20;

/// Limits and filters of a walk.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Stop after visiting this many files.
    pub max_files: usize,
    /// Stop once the visited files add up to more than this many bytes.
    pub max_total_bytes: u64,
    /// Skip (and count) files larger than this.
    pub max_file_bytes: u64,
    /// Visit hidden files and directories (dot files).
    pub include_hidden: bool,
    /// Extra ignore-file names honoured like `.gitignore` (e.g. `.tokeignore`).
    pub custom_ignore_filenames: Vec<String>,
    /// Worker threads; 0 lets the `ignore` crate choose.
    pub threads: usize,
    /// Include/exclude globs (ripgrep's `-g`), applied during the walk: excluded
    /// directories are pruned, so their files never count toward the caps.
    pub overrides: Option<ignore::overrides::Override>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self {
            max_files: 50_000,
            max_total_bytes: 512 * 1024 * 1024,
            max_file_bytes: 8 * 1024 * 1024,
            include_hidden: false,
            custom_ignore_filenames: Vec::new(),
            threads: 0,
            overrides: None,
        }
    }
}

/// What a walk did, including every reason it may have left files out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct WalkSummary {
    /// Files handed to the visitor.
    pub files_visited: usize,
    /// Bytes of the files handed to the visitor.
    pub bytes_visited: u64,
    /// Files skipped because they contain a NUL byte near the start.
    pub skipped_binary: usize,
    /// Files skipped because they are larger than the per-file limit.
    pub skipped_too_large: usize,
    /// The walk stopped early because the file cap was reached.
    pub max_files_reached: bool,
    /// The walk stopped early because the byte cap was reached.
    pub max_bytes_reached: bool,
    /// The walk stopped early because it was cancelled.
    pub cancelled: bool,
    /// Unreadable entries (permissions, broken ignore files, vanished files).
    pub error_count: usize,
    /// The first few of those errors.
    pub errors: Vec<String>,
}

impl WalkSummary {
    /// The summary of a walk that could not start because its root could not be opened.
    pub fn unopenable_root(error: &dyn std::fmt::Display) -> Self {
        Self {
            error_count: 1,
            errors: vec![error.to_string()],
            ..Self::default()
        }
    }

    /// True when some files may be missing from the results because a cap was hit or
    /// the walk was cancelled.
    pub fn is_partial(&self) -> bool {
        self.max_files_reached || self.max_bytes_reached || self.cancelled
    }
}

/// The visitor results of a walk (in no particular order) and its summary.
#[derive(Debug)]
pub struct WalkOutput<T> {
    pub items: Vec<T>,
    pub summary: WalkSummary,
}

/// A text file read by [`walk_sources`].
#[derive(Debug)]
pub struct SourceFile<'a> {
    /// The path as walked (under the walk's root).
    pub path: &'a Path,
    /// The contents, with invalid UTF-8 replaced by U+FFFD.
    pub text: &'a str,
}

struct Shared {
    files: AtomicUsize,
    bytes: AtomicU64,
    skipped_binary: AtomicUsize,
    skipped_too_large: AtomicUsize,
    max_files_reached: AtomicBool,
    max_bytes_reached: AtomicBool,
    cancelled: AtomicBool,
    error_count: AtomicUsize,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn new() -> Self {
        Self {
            files: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            skipped_binary: AtomicUsize::new(0),
            skipped_too_large: AtomicUsize::new(0),
            max_files_reached: AtomicBool::new(false),
            max_bytes_reached: AtomicBool::new(false),
            cancelled: AtomicBool::new(false),
            error_count: AtomicUsize::new(0),
            errors: Mutex::new(Vec::new()),
        }
    }

    fn record_error(&self, message: String) {
        self.error_count.fetch_add(1, Ordering::Relaxed);
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < MAX_KEPT_ERRORS {
            errors.push(message);
        }
    }

    fn into_summary(self) -> WalkSummary {
        WalkSummary {
            files_visited: self.files.into_inner(),
            bytes_visited: self.bytes.into_inner(),
            skipped_binary: self.skipped_binary.into_inner(),
            skipped_too_large: self.skipped_too_large.into_inner(),
            max_files_reached: self.max_files_reached.into_inner(),
            max_bytes_reached: self.max_bytes_reached.into_inner(),
            cancelled: self.cancelled.into_inner(),
            error_count: self.error_count.into_inner(),
            errors: self.errors.into_inner().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// Walks `root` (a directory or a single file) in parallel and calls `visit` with each
/// file's path and size. `should_stop` is polled between files; when it returns true the
/// walk ends and the summary says `cancelled`.
///
/// Files count against the caps before `visit` runs, so a visitor that reads them cannot
/// push the walk past `max_total_bytes`.
pub fn walk_paths<T, V, S>(
    root: &Path,
    options: &WalkOptions,
    should_stop: S,
    visit: V,
) -> WalkOutput<T>
where
    T: Send,
    V: Fn(&Path, u64) -> Option<T> + Sync,
    S: Fn() -> bool + Sync,
{
    let ignore_files = ignore_guard::ignore_file_names(&options.custom_ignore_filenames);
    if let Some(reason) = ignore_guard::blocking_ignore_file_above(root, &ignore_files) {
        return WalkOutput {
            items: Vec::new(),
            summary: WalkSummary::unopenable_root(&reason),
        };
    }
    let shared = Shared::new();
    let items = Mutex::new(Vec::new());
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(!options.include_hidden)
        .follow_links(false)
        .threads(options.threads);
    let skipped_dirs = Arc::new(Mutex::new(Vec::new()));
    let skipped = Arc::clone(&skipped_dirs);
    builder.filter_entry(move |entry| {
        let is_dir = entry.file_type().is_some_and(|kind| kind.is_dir());
        match is_dir.then(|| ignore_guard::blocking_ignore_file(entry.path(), &ignore_files)) {
            Some(Some(reason)) => {
                skipped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(reason);
                false
            }
            _ => true,
        }
    });
    for name in &options.custom_ignore_filenames {
        builder.add_custom_ignore_filename(name);
    }
    if let Some(overrides) = &options.overrides {
        builder.overrides(overrides.clone());
    }
    builder.build_parallel().run(|| {
        let shared = &shared;
        let items = &items;
        let visit = &visit;
        let should_stop = &should_stop;
        Box::new(move |entry| {
            if should_stop() {
                shared.cancelled.store(true, Ordering::Relaxed);
                return WalkState::Quit;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    shared.record_error(error.to_string());
                    return WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                return WalkState::Continue;
            }
            let size = match entry.metadata() {
                Ok(metadata) => metadata.len(),
                Err(error) => {
                    shared.record_error(format!("{}: {error}", entry.path().display()));
                    return WalkState::Continue;
                }
            };
            if size > options.max_file_bytes {
                shared.skipped_too_large.fetch_add(1, Ordering::Relaxed);
                return WalkState::Continue;
            }
            if shared.files.fetch_add(1, Ordering::Relaxed) >= options.max_files {
                shared.files.fetch_sub(1, Ordering::Relaxed);
                shared.max_files_reached.store(true, Ordering::Relaxed);
                return WalkState::Quit;
            }
            let bytes_before = shared.bytes.fetch_add(size, Ordering::Relaxed);
            if bytes_before + size > options.max_total_bytes {
                shared.bytes.fetch_sub(size, Ordering::Relaxed);
                shared.files.fetch_sub(1, Ordering::Relaxed);
                shared.max_bytes_reached.store(true, Ordering::Relaxed);
                return WalkState::Quit;
            }
            if let Some(item) = visit(entry.path(), size) {
                items.lock().unwrap_or_else(|e| e.into_inner()).push(item);
            }
            WalkState::Continue
        })
    });
    for reason in std::mem::take(&mut *skipped_dirs.lock().unwrap_or_else(|e| e.into_inner())) {
        shared.record_error(reason);
    }
    WalkOutput {
        items: items.into_inner().unwrap_or_else(|e| e.into_inner()),
        summary: shared.into_summary(),
    }
}

/// Like [`walk_paths`] but reads each file and hands text files to `visit`; binary files
/// (a NUL byte in the first 8 KiB) are skipped and counted.
///
/// `root` is opened by name (see [`Opened::open_ambient`]); a server walking a user's path
/// opens it through its roots and calls [`walk_sources_in`].
pub fn walk_sources<T, V, S>(
    root: &Path,
    options: &WalkOptions,
    should_stop: S,
    visit: V,
) -> WalkOutput<T>
where
    T: Send,
    V: Fn(&SourceFile<'_>) -> Option<T> + Sync,
    S: Fn() -> bool + Sync,
{
    match Opened::open_ambient(root) {
        Ok(root) => walk_sources_in(&root, options, should_stop, visit),
        Err(error) => WalkOutput {
            items: Vec::new(),
            summary: WalkSummary::unopenable_root(&error),
        },
    }
}

/// [`walk_sources`] over an opened directory (or single file): the tree is listed by name,
/// but every file is read through [`Opened::open_file`], beneath the root's descriptor, so a
/// directory swapped for a symbolic link mid-walk cannot make it read a file outside, and
/// a FIFO or device swapped in is refused without blocking.
pub fn walk_sources_in<T, V, S>(
    root: &Opened,
    options: &WalkOptions,
    should_stop: S,
    visit: V,
) -> WalkOutput<T>
where
    T: Send,
    V: Fn(&SourceFile<'_>) -> Option<T> + Sync,
    S: Fn() -> bool + Sync,
{
    let skipped_binary = AtomicUsize::new(0);
    let read_errors = Mutex::new(Vec::new());
    let mut output = walk_paths(root.path(), options, should_stop, |path, size| {
        let bytes = match read_bounded(root, path, size.min(options.max_file_bytes)) {
            Ok(bytes) => bytes,
            Err(error) => {
                read_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(error);
                return None;
            }
        };
        if is_binary(&bytes) {
            skipped_binary.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let text = String::from_utf8_lossy(&bytes);
        visit(&SourceFile { path, text: &text })
    });
    let summary = &mut output.summary;
    summary.skipped_binary += skipped_binary.into_inner();
    let read_errors = read_errors.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.error_count += read_errors.len();
    let room = MAX_KEPT_ERRORS.saturating_sub(summary.errors.len());
    summary.errors.extend(read_errors.into_iter().take(room));
    output
}

/// True when `bytes` look binary: a NUL byte in the first 8 KiB.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0)
}

/// Reads at most `limit` bytes of the walked file `path` beneath `root`: a file that grew
/// after its size was checked cannot make the walk read more than it accounted for.
fn read_bounded(root: &Opened, path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = root.open_file(path).map_err(|error| error.to_string())?;
    file.read_capped(limit)
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// `path` relative to `root` for display, or `path` itself when it is not under `root`
/// (and `.` replaced by the file name when `root` is the file).
pub fn display_path(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix(root) {
        Ok(relative) if relative.as_os_str().is_empty() => path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| path.to_path_buf()),
        Ok(relative) => relative.to_path_buf(),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn never() -> bool {
        false
    }

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        // `.gitignore` applies inside a git repository, as for git itself.
        fs::create_dir(root.join(".git")).unwrap();
        fs::write(root.join(".gitignore"), "ignored/\n*.log\n").unwrap();
        fs::create_dir_all(root.join("src/nested")).unwrap();
        fs::create_dir_all(root.join("ignored")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(root.join("src/a.rs"), "fn a() {}\n").unwrap();
        fs::write(root.join("src/nested/b.py"), "def b():\n    pass\n").unwrap();
        fs::write(root.join("ignored/c.rs"), "fn c() {}\n").unwrap();
        fs::write(root.join("debug.log"), "log line\n").unwrap();
        fs::write(root.join(".hidden.rs"), "fn h() {}\n").unwrap();
        fs::write(root.join("image.bin"), b"\x89PNG\x00\x01\x02").unwrap();
        dir
    }

    fn visited(root: &Path, options: &WalkOptions) -> (Vec<String>, WalkSummary) {
        let output = walk_sources(root, options, never, |file| {
            Some(display_path(root, file.path).display().to_string())
        });
        let mut items = output.items;
        items.sort();
        (items, output.summary)
    }

    #[test]
    fn honours_gitignore_hidden_and_skips_binary() {
        let dir = fixture();
        let (files, summary) = visited(dir.path(), &WalkOptions::default());
        assert_eq!(files, vec!["src/a.rs", "src/nested/b.py"]);
        assert_eq!(summary.skipped_binary, 1);
        assert!(!summary.is_partial());
        assert_eq!(
            summary.files_visited, 3,
            "the binary file was visited, then skipped"
        );
    }

    #[test]
    fn includes_hidden_files_when_asked() {
        let dir = fixture();
        let options = WalkOptions {
            include_hidden: true,
            ..WalkOptions::default()
        };
        let (files, _) = visited(dir.path(), &options);
        assert!(files.contains(&".hidden.rs".to_owned()), "{files:?}");
        assert!(!files.iter().any(|f| f.starts_with(".git/")), "{files:?}");
    }

    #[test]
    fn reports_the_file_cap() {
        let dir = fixture();
        let options = WalkOptions {
            max_files: 2,
            threads: 1,
            ..WalkOptions::default()
        };
        let output = walk_paths(dir.path(), &options, never, |path, _| Some(path.to_owned()));
        assert_eq!(output.items.len(), 2);
        assert!(output.summary.max_files_reached);
        assert!(output.summary.is_partial());
    }

    #[test]
    fn reports_the_byte_cap_and_large_files() {
        let dir = fixture();
        fs::write(dir.path().join("src/big.rs"), "x".repeat(10_000)).unwrap();
        let options = WalkOptions {
            max_file_bytes: 5_000,
            ..WalkOptions::default()
        };
        let output = walk_paths(dir.path(), &options, never, |_, size| Some(size));
        assert_eq!(output.summary.skipped_too_large, 1);
        assert!(!output.summary.is_partial());

        let options = WalkOptions {
            max_total_bytes: 20,
            threads: 1,
            ..WalkOptions::default()
        };
        let output = walk_paths(dir.path(), &options, never, |_, size| Some(size));
        assert!(output.summary.max_bytes_reached);
        assert!(output.items.iter().sum::<u64>() <= 20);
        assert_eq!(
            output.summary.bytes_visited,
            output.items.iter().sum::<u64>()
        );
    }

    #[test]
    fn stops_when_cancelled() {
        let dir = fixture();
        let output = walk_paths(
            dir.path(),
            &WalkOptions::default(),
            || true,
            |_, _| Some(()),
        );
        assert!(output.items.is_empty());
        assert!(output.summary.cancelled);
    }

    #[test]
    fn walks_a_single_file_and_an_empty_directory() {
        let dir = fixture();
        let file = dir.path().join("src/a.rs");
        let (files, _) = visited(&file, &WalkOptions::default());
        assert_eq!(files, vec!["a.rs"]);
        let (files, summary) = visited(&dir.path().join("empty"), &WalkOptions::default());
        assert!(files.is_empty());
        assert_eq!(summary, WalkSummary::default());
    }

    #[test]
    fn does_not_follow_symlinks_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.rs"), "fn secret() {}\n").unwrap();
        let dir = fixture();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("src/link")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.rs"),
            dir.path().join("src/secret.rs"),
        )
        .unwrap();
        let (files, _) = visited(dir.path(), &WalkOptions::default());
        assert!(!files.iter().any(|f| f.contains("secret")), "{files:?}");
    }

    #[test]
    fn reads_invalid_utf8_and_huge_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = b"caf\xe9 ".to_vec();
        bytes.extend(std::iter::repeat_n(b'a', 1_000_000));
        fs::write(dir.path().join("odd.txt"), &bytes).unwrap();
        let output = walk_sources(dir.path(), &WalkOptions::default(), never, |file| {
            Some(file.text.len())
        });
        assert_eq!(output.items, vec![1_000_000 + 7]);
    }

    #[test]
    fn a_walked_file_is_read_beneath_the_root_even_after_a_swap() {
        // The walk listed `sub/f.rs`; before it is read, `sub` becomes a link outside.
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("sub/f.rs"), "inside").unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        fs::write(tmp.path().join("outside/f.rs"), "SECRET").unwrap();
        let opened = Opened::open_ambient(&root).unwrap();
        let walked = root.join("sub/f.rs");
        assert_eq!(read_bounded(&opened, &walked, 100).unwrap(), b"inside");
        fs::rename(root.join("sub"), tmp.path().join("old-sub")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("sub")).unwrap();
        let error = read_bounded(&opened, &walked, 100).unwrap_err();
        assert!(error.contains("leads outside"), "{error}");
    }

    #[test]
    fn a_single_file_root_is_read_through_its_handle() {
        let dir = fixture();
        let file = dir.path().join("src/a.rs");
        let (files, summary) = visited(&file, &WalkOptions::default());
        assert_eq!(files, vec!["a.rs"]);
        assert_eq!(summary.error_count, 0, "{summary:?}");
    }

    #[test]
    fn a_missing_root_is_reported_not_walked() {
        let dir = fixture();
        let (files, summary) = visited(&dir.path().join("missing"), &WalkOptions::default());
        assert!(files.is_empty());
        assert_eq!(summary.error_count, 1);
        assert!(summary.errors[0].contains("missing"), "{summary:?}");
    }

    #[test]
    fn a_fifo_named_like_an_ignore_file_is_skipped_not_read() {
        // The walker would open it with a blocking open and never return.
        let dir = fixture();
        let fifo = |path: &Path| {
            rustix::fs::mkfifoat(
                rustix::fs::CWD,
                path,
                rustix::fs::Mode::from_raw_mode(0o600),
            )
            .unwrap()
        };
        fifo(&dir.path().join("src/nested/.gitignore"));
        let (done, outcome) = std::sync::mpsc::channel();
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = done.send(visited(&root, &WalkOptions::default()));
        });
        let (files, summary) = outcome
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the walk blocked on the FIFO");
        assert_eq!(
            files,
            vec!["src/a.rs"],
            "the directory holding it is skipped"
        );
        assert_eq!(summary.error_count, 1, "{summary:?}");
        assert!(summary.errors[0].contains("FIFO"), "{summary:?}");

        // At the root (or above it) nothing is walked at all.
        fifo(&dir.path().join(".ignore"));
        let (files, summary) = visited(&dir.path().join("src"), &WalkOptions::default());
        assert!(files.is_empty());
        assert!(summary.errors[0].contains(".ignore"), "{summary:?}");
    }
}
