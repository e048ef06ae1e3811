//! The benchmark tree: a deterministic git repository of generated sources, committed,
//! then edited in the working tree so status and diff have work to do.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::process;

/// Files in the tree (directories × files per directory).
pub const FILES: usize = DIRS * FILES_PER_DIR;
/// Files edited after the commit.
pub const CHANGED: usize = 20;
/// The file `read_file`/`read_text_file` read (about 20 KB).
pub const READ_TARGET: &str = "src/module_07/file_03.rs";

const DIRS: usize = 40;
const FILES_PER_DIR: usize = 25;
const LINES: usize = 400;
const HISTORY: usize = 12;

/// (Re)creates the tree at `dir` and returns its canonical path.
pub fn create(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    for d in 0..DIRS {
        let sub = dir.join(format!("src/module_{d:02}"));
        std::fs::create_dir_all(&sub)?;
        for f in 0..FILES_PER_DIR {
            // Alternate languages so a glob selects a part of the tree.
            let extension = if f % 5 == 4 { "py" } else { "rs" };
            std::fs::write(
                sub.join(format!("file_{f:02}.{extension}")),
                source(d, f, 0),
            )?;
        }
    }
    std::fs::write(dir.join(".gitignore"), "target/\n")?;
    git(dir, &["init", "-q", "-b", "main"])?;
    git(dir, &["add", "."])?;
    git(dir, &["commit", "-q", "-m", "generated tree"])?;
    // Some history for git_info's recent commits.
    std::fs::create_dir_all(dir.join("notes"))?;
    for n in 0..HISTORY {
        std::fs::write(dir.join(format!("notes/{n:02}.md")), format!("note {n}\n"))?;
        git(dir, &["add", "notes"])?;
        git(dir, &["commit", "-q", "-m", &format!("note {n}")])?;
    }
    for changed in 0..CHANGED {
        let d = changed * 2 % DIRS;
        let path = dir.join(format!("src/module_{d:02}/file_01.rs"));
        std::fs::write(path, source(d, 1, changed + 1))?;
    }
    Ok(dir.canonicalize()?)
}

/// A file's text; `edit` > 0 changes a few lines in its middle.
fn source(dir: usize, file: usize, edit: usize) -> String {
    let mut text = String::with_capacity(LINES * 48);
    for line in 0..LINES {
        if edit > 0 && (LINES / 2..LINES / 2 + 3).contains(&line) {
            let _ = writeln!(text, "    let edited_{edit}_{line} = {dir} * {file};");
        } else {
            let _ = writeln!(
                text,
                "    let value_{line} = compute({dir}, {file}, {line}); // generated"
            );
        }
    }
    text
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    process::run(
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_NAME", "Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z"),
    )
}
