//! Keeps the `ignore` crate's walker from blocking on an ignore file that is not a file.
//!
//! The walker opens `.gitignore`, `.ignore`, `.git/info/exclude` and custom ignore files
//! *by name with a blocking open*, for the walk's root, its ancestors and every directory
//! it enters. A FIFO named `.gitignore` would block that open (and the walk, and a worker
//! thread) until something writes to it, which nothing ever does. Before the walk, the
//! root and its ancestors are checked; during the walk, each directory is checked before
//! the walker enters it (`filter_entry` runs before its ignore files are read), and one
//! holding such a file is skipped and reported.
//!
//! This is a check by name: a FIFO swapped in between the check and the walker's open
//! still blocks that walk. Containing that needs the walker itself to open ignore files
//! non-blocking, which the `ignore` crate does not offer.

use std::path::{Path, PathBuf};

use confined_fs::describe_kind;

/// The ignore-file names read in each directory, as given to the walker.
pub(super) fn ignore_file_names(custom: &[String]) -> Vec<String> {
    let mut names: Vec<String> = [".gitignore", ".ignore", ".git/info/exclude"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    names.extend(custom.iter().cloned());
    names
}

/// Why `dir` cannot be walked safely: one of its ignore files exists but is not a regular
/// file once links are followed (as the walker's own open follows them).
pub(super) fn blocking_ignore_file(dir: &Path, names: &[String]) -> Option<String> {
    names.iter().find_map(|name| {
        let path: PathBuf = dir.join(name);
        // `stat` never opens the file, so a FIFO cannot block it.
        let metadata = std::fs::metadata(&path).ok()?;
        (!metadata.is_file()).then(|| {
            format!(
                "{}: skipped, its ignore file {} is {}, which the walker would block reading",
                dir.display(),
                path.display(),
                describe_kind(&metadata.file_type())
            )
        })
    })
}

/// The same check for the walk's root directory and every ancestor (the walker reads
/// their ignore files too).
pub(super) fn blocking_ignore_file_above(root: &Path, names: &[String]) -> Option<String> {
    if !root.is_dir() {
        return None;
    }
    root.ancestors()
        .find_map(|dir| blocking_ignore_file(dir, names))
}
