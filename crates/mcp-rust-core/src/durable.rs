//! Durable whole-file replacement, the persistence primitive of the store's snapshots and of
//! bash-god's history journal: a reader or a crash sees the old file or the new one, never a
//! mix, and a successful return means the new file survives a power loss.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// The step of a replacement that failed (`action`, a phrase such as "write" or "fsync the
/// directory of", to be followed by the path) and the operating system's error.
#[derive(Debug)]
pub struct ReplaceError {
    pub action: &'static str,
    pub source: io::Error,
}

/// Replaces `path` with the bytes `write` produces. They go to a temporary file in the same
/// directory (`<temp_prefix>…​.tmp`, so the rename stays on one file system), which is
/// fsynced and renamed over `path`; then the directory is fsynced so the rename itself is
/// durable. On any error `path` is untouched and the temporary file is removed.
pub fn replace_file(
    path: &Path,
    temp_prefix: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), ReplaceError> {
    let fail = |action: &'static str| move |source: io::Error| ReplaceError { action, source };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(temp_prefix)
        .suffix(".tmp")
        .tempfile_in(directory)
        .map_err(fail("create a temporary file next to"))?;
    {
        let mut writer = BufWriter::new(temp.as_file());
        write(&mut writer)
            .and_then(|()| writer.flush())
            .map_err(fail("write"))?;
    }
    temp.as_file().sync_all().map_err(fail("fsync"))?;
    temp.persist(path)
        .map_err(|error| fail("rename the temporary file onto")(error.error))?;
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(fail("fsync the directory of"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, b"a much longer old content").unwrap();
        replace_file(&path, ".t-", |out| out.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names_in(dir.path()), ["data"]);
    }

    #[test]
    fn a_failing_writer_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        std::fs::write(&path, b"old").unwrap();
        let error = replace_file(&path, ".t-", |out| {
            out.write_all(b"half of the new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(error.action, "write");
        assert_eq!(error.source.to_string(), "disk full");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names_in(dir.path()), ["data"]);
    }

    #[test]
    fn a_missing_directory_fails_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/data");
        let error =
            replace_file(&path, ".t-", |_| unreachable!("nothing to write into")).unwrap_err();
        assert_eq!(error.action, "create a temporary file next to");
        assert_eq!(error.source.kind(), io::ErrorKind::NotFound);
    }
}
