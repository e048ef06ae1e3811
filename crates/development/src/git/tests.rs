//! Tests of the git tools on repositories built with the `git` CLI in temp dirs.

use std::fs;
use std::path::Path;
use std::process::Command;

use mcp_server_runtime::{CancelFlag, Roots};

use super::patch;
use crate::paths::Globs;
use history::{log_params, show_params};

mod history;

use super::branches::*;
use super::diff::*;
use super::info::*;
use super::log::*;
use super::show::*;

/// `info`'s changed files as `(path, area, status)` rows, to compare with a literal list.
fn change_rows(info: &GitInfo) -> Vec<(&str, ChangeArea, &str)> {
    info.changes
        .iter()
        .map(|c| (c.path.as_str(), c.area, c.status.as_str()))
        .collect()
}

pub(crate) fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00+02:00")
        .env("GIT_COMMITTER_NAME", "Ada Lovelace")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00+02:00")
        .status()
        .expect("the git CLI is needed to build the fixture");
    assert!(status.success(), "git {args:?} failed");
}

fn params() -> GitInfoParams {
    GitInfoParams {
        path: None,
        max_commits: None,
        max_changes: None,
    }
}

pub(crate) fn repo_fixture() -> (tempfile::TempDir, Roots) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "trunk"]);
    fs::write(root.join("a.txt"), "one\n").unwrap();
    fs::write(root.join("b.txt"), "bee\n").unwrap();
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "first commit\n\nbody text"]);
    fs::write(root.join("a.txt"), "two\n").unwrap();
    git(root, &["commit", "-q", "-am", "second commit"]);
    // Working tree state: one staged addition, one unstaged edit, one untracked file.
    fs::write(root.join("staged.txt"), "s\n").unwrap();
    git(root, &["add", "staged.txt"]);
    fs::write(root.join("b.txt"), "changed\n").unwrap();
    fs::write(root.join("new.txt"), "n\n").unwrap();
    let roots = Roots::new([root.to_path_buf()]).unwrap();
    (dir, roots)
}

#[test]
fn reports_branch_commits_and_changes() {
    let (_dir, roots) = repo_fixture();
    let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(info.branch.as_deref(), Some("trunk"));
    assert!(!info.detached && !info.bare);
    let summaries: Vec<_> = info
        .recent_commits
        .iter()
        .map(|c| c.summary.as_str())
        .collect();
    assert_eq!(summaries, vec!["second commit", "first commit"]);
    let head = info.head.as_ref().unwrap();
    assert_eq!(head.summary, "second commit");
    assert_eq!(
        (head.author.as_str(), head.author_email.as_str()),
        ("Ada Lovelace", "ada@example.com")
    );
    assert_eq!(head.date, "2024-05-01T12:00:00+02:00");
    assert_eq!(head.id.len(), 40);
    assert_eq!(
        change_rows(&info),
        vec![
            ("b.txt", ChangeArea::Unstaged, "modified"),
            ("new.txt", ChangeArea::Unstaged, "untracked"),
            ("staged.txt", ChangeArea::Staged, "added"),
        ]
    );
}

#[test]
fn limits_commits_and_changes_and_works_from_a_subdirectory() {
    let (dir, roots) = repo_fixture();
    fs::create_dir(dir.path().join("sub")).unwrap();
    let p = GitInfoParams {
        path: Some("sub".into()),
        max_commits: Some(1),
        max_changes: Some(1),
    };
    let info = git_info(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(info.recent_commits.len(), 1);
    assert_eq!(
        (
            info.changes.len(),
            info.total_changes,
            info.changes_truncated
        ),
        (1, 3, true)
    );
}

#[test]
fn detached_head_and_empty_repository() {
    let (dir, roots) = repo_fixture();
    git(dir.path(), &["checkout", "-q", "--detach", "HEAD~1"]);
    let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
    assert!(info.detached);
    assert_eq!(info.branch, None);
    assert_eq!(info.head.unwrap().summary, "first commit");

    let empty = tempfile::tempdir().unwrap();
    git(empty.path(), &["init", "-q", "-b", "main"]);
    let roots = Roots::new([empty.path().to_path_buf()]).unwrap();
    let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(info.branch.as_deref(), Some("main"));
    assert!(info.head.is_none() && info.recent_commits.is_empty());
}

#[test]
fn not_a_repository_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let roots = Roots::new([dir.path().to_path_buf()]).unwrap();
    // Whatever lies above the temp dir (TMPDIR inside a checkout), discovery stops at the root.
    let err = git_info(&params(), &roots, &CancelFlag::new()).unwrap_err();
    assert!(err.to_string().contains("no git repository"), "{err}");
    let mut p = params();
    p.path = Some("/".into());
    let err = git_info(&p, &roots, &CancelFlag::new()).unwrap_err();
    assert!(err.to_string().starts_with("denied"), "{err}");
}

#[test]
fn discovery_never_climbs_above_a_root() {
    let (dir, _) = repo_fixture();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/inner.txt"), "i\n").unwrap();
    // The root is a subdirectory of the repository: the repository is above it.
    let roots = Roots::new([dir.path().join("sub")]).unwrap();
    let err = git_info(&params(), &roots, &CancelFlag::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("repositories above a root are not searched"),
        "{err}"
    );
    let err = git_log(&log_params(), &roots, &CancelFlag::new()).unwrap_err();
    assert!(err.to_string().starts_with("not found"), "{err}");
}

#[test]
fn a_worktree_or_git_dir_outside_the_roots_is_refused() {
    let (dir, roots) = repo_fixture();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.txt"), "s\n").unwrap();
    git(
        dir.path(),
        &["config", "core.worktree", outside.path().to_str().unwrap()],
    );
    let err = git_info(&params(), &roots, &CancelFlag::new()).unwrap_err();
    assert!(err.to_string().contains("working tree"), "{err}");

    // A `.git` file pointing at another repository's git dir, which never chose us.
    let other = tempfile::tempdir().unwrap();
    git(other.path(), &["init", "-q"]);
    let forged = tempfile::tempdir().unwrap();
    let gitdir = other.path().join(".git");
    fs::write(
        forged.path().join(".git"),
        format!("gitdir: {}\n", gitdir.display()),
    )
    .unwrap();
    let roots = Roots::new([forged.path().to_path_buf()]).unwrap();
    let err = git_info(&params(), &roots, &CancelFlag::new()).unwrap_err();
    assert!(err.to_string().starts_with("denied"), "{err}");
}

#[test]
fn a_linked_worktree_is_readable_as_a_root() {
    let (dir, _) = repo_fixture();
    let parent = tempfile::tempdir().unwrap();
    let linked = parent.path().join("linked");
    git(
        dir.path(),
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "side",
            linked.to_str().unwrap(),
        ],
    );
    let roots = Roots::new([linked]).unwrap();
    let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(info.branch.as_deref(), Some("side"));
    assert_eq!(info.head.unwrap().summary, "second commit");
}

fn diff_params() -> GitDiffParams {
    GitDiffParams {
        path: None,
        staged: false,
        from: None,
        to: None,
        text: DiffTextParams::default(),
    }
}

#[test]
fn diff_worktree_index_and_commits() {
    let (_dir, roots) = repo_fixture();
    let out = git_diff(&diff_params(), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.compared, "index -> worktree");
    let files: Vec<_> = out
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.additions, f.deletions))
        .collect();
    assert_eq!(
        files,
        vec![("b.txt", 1, 1)],
        "untracked files are not in a diff"
    );
    assert!(
        out.diff.contains(
            "diff --git a/b.txt b/b.txt\n--- a/b.txt\n+++ b/b.txt\n@@ -1 +1 @@\n-bee\n+changed\n"
        ),
        "{}",
        out.diff
    );

    let mut p = diff_params();
    p.staged = true;
    let out = git_diff(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.files.len(), 1);
    assert_eq!(
        (out.files[0].path.as_str(), out.files[0].status),
        ("staged.txt", patch::ChangeStatus::Added)
    );
    assert!(
        out.diff
            .contains("new file mode 100644\n--- /dev/null\n+++ b/staged.txt\n@@ -0,0 +1 @@\n+s\n"),
        "{}",
        out.diff
    );

    let mut p = diff_params();
    p.from = Some("HEAD~1".into());
    let out = git_diff(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.compared, "HEAD~1 -> HEAD");
    assert_eq!((out.total_additions, out.total_deletions), (1, 1));
    assert!(out.diff.contains("-one\n+two\n"), "{}", out.diff);
    p.to = Some("HEAD~1".into());
    p.from = Some("HEAD".into());
    let out = git_diff(&p, &roots, &CancelFlag::new()).unwrap();
    assert!(out.diff.contains("-two\n+one\n"), "{}", out.diff);
}

#[test]
fn diff_context_filters_limits_and_renames() {
    let (dir, roots) = repo_fixture();
    let body: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    fs::write(dir.path().join("long.txt"), &body).unwrap();
    fs::write(dir.path().join("-dash.txt"), "d\n").unwrap();
    git(dir.path(), &["add", "--", "long.txt", "-dash.txt"]);
    git(dir.path(), &["commit", "-q", "-m", "long"]);
    fs::write(
        dir.path().join("long.txt"),
        body.replace("line 10\n", "line ten\n"),
    )
    .unwrap();
    fs::write(dir.path().join("-dash.txt"), "dd\n").unwrap();
    let mut p = diff_params();
    p.text.context_lines = Some(1);
    p.text.paths = Some(Globs::One("long.txt".into()));
    let out = git_diff(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.files.len(), 1);
    assert!(
        out.diff
            .contains("@@ -9,3 +9,3 @@\n line 9\n-line 10\n+line ten\n line 11\n"),
        "{}",
        out.diff
    );
    // A path filter with a leading dash is a path, not an option.
    p.text.paths = Some(Globs::One("-dash.txt".into()));
    let out = git_diff(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(
        out.files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        vec!["-dash.txt"]
    );
    // Text past max_bytes is left out whole; stats stay.
    let mut p = diff_params();
    p.text.max_bytes = Some(10);
    let out = git_diff(&p, &roots, &CancelFlag::new()).unwrap();
    assert!(out.diff_truncated && out.diff.is_empty());
    assert_eq!(out.files.len(), 3);
    assert_eq!(out.omitted_from_diff.len(), 3);
    // Renames are detected between commits.
    git(dir.path(), &["checkout", "-q", "--", "."]);
    git(dir.path(), &["mv", "long.txt", "renamed.txt"]);
    git(dir.path(), &["commit", "-q", "-m", "rename"]);
    let mut p = diff_params();
    p.from = Some("HEAD~1".into());
    let out = git_diff(&p, &roots, &CancelFlag::new()).unwrap();
    let renamed = out.files.iter().find(|f| f.path == "renamed.txt").unwrap();
    assert_eq!(
        (renamed.status, renamed.old_path.as_deref()),
        (patch::ChangeStatus::Renamed, Some("long.txt"))
    );
}

#[test]
fn leading_dash_revisions_are_data_never_options() {
    let (dir, roots) = repo_fixture();
    let marker = dir.path().join("pwned");
    for rev in ["--output=pwned", "-p", "--all", "-1"] {
        let mut p = diff_params();
        p.from = Some(rev.into());
        let err = git_diff(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("not found"), "{rev}: {err}");
        let mut p = log_params();
        p.rev = Some(rev.into());
        assert!(git_log(&p, &roots, &CancelFlag::new()).is_err(), "{rev}");
    }
    assert!(!marker.exists());
    // A branch that really is named `-evil` (git update-ref allows it) resolves by name.
    git(dir.path(), &["update-ref", "refs/heads/-evil", "HEAD~1"]);
    let mut p = log_params();
    p.rev = Some("-evil".into());
    let out = git_log(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.commits[0].summary, "first commit");
    let mut p = show_params();
    p.rev = Some("-evil".into());
    assert_eq!(
        git_show(&p, &roots, &CancelFlag::new())
            .unwrap()
            .commit
            .unwrap()
            .message,
        "first commit\n\nbody text"
    );
}

#[test]
fn fifos_in_the_worktree_do_not_hang_git_tools() {
    let (dir, roots) = repo_fixture();
    let mkfifo = |name: &str| {
        crate::open::make_fifo(&dir.path().join(name));
    };
    // A tracked file replaced by a FIFO, and an untracked FIFO: no writer ever opens them.
    fs::remove_file(dir.path().join("a.txt")).unwrap();
    mkfifo("a.txt");
    mkfifo("untracked-pipe");
    let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
    assert!(
        info.changes.iter().any(|c| c.path == "a.txt"),
        "{:?}",
        info.changes
    );
    let out = git_diff(&diff_params(), &roots, &CancelFlag::new()).unwrap();
    let a = out.files.iter().find(|f| f.path == "a.txt").unwrap();
    assert_eq!(a.status, patch::ChangeStatus::TypeChanged, "{a:?}");
}

#[test]
fn a_second_call_sees_what_changed_on_disk_since_the_first() {
    // Objects are cached across calls (git/objects.rs); refs, the index and the working
    // tree must still be read afresh by every call.
    let (dir, roots) = repo_fixture();
    let root = dir.path();
    let cancel = CancelFlag::new();
    let first = git_info(&params(), &roots, &cancel).unwrap();
    let first_diff = git_diff(&diff_params(), &roots, &cancel).unwrap();
    assert_eq!(first.recent_commits.len(), 2);

    // A new commit (moves the branch), a new staged file, an edit and a new untracked file.
    git(root, &["commit", "-q", "-m", "third commit"]);
    fs::write(root.join("later.txt"), "l\n").unwrap();
    git(root, &["add", "later.txt"]);
    fs::write(root.join("a.txt"), "three\n").unwrap();
    fs::write(root.join("newer.txt"), "n\n").unwrap();
    let second = git_info(&params(), &roots, &cancel).unwrap();
    let summaries: Vec<_> = second
        .recent_commits
        .iter()
        .map(|c| c.summary.as_str())
        .collect();
    assert_eq!(summaries, ["third commit", "second commit", "first commit"]);
    assert_eq!(second.head.as_ref().unwrap().summary, "third commit");
    assert_eq!(
        change_rows(&second),
        [
            ("a.txt", ChangeArea::Unstaged, "modified"),
            ("b.txt", ChangeArea::Unstaged, "modified"),
            ("later.txt", ChangeArea::Staged, "added"),
            ("new.txt", ChangeArea::Unstaged, "untracked"),
            ("newer.txt", ChangeArea::Unstaged, "untracked"),
        ]
    );
    let second_diff = git_diff(&diff_params(), &roots, &cancel).unwrap();
    assert_ne!(first_diff.diff, second_diff.diff);
    assert!(second_diff.diff.contains("+three"), "{}", second_diff.diff);

    // The repository replaced by another at the same path, with other history.
    fs::remove_dir_all(root.join(".git")).unwrap();
    git(root, &["init", "-q", "-b", "other"]);
    git(root, &["add", "a.txt"]);
    git(root, &["commit", "-q", "-m", "unrelated history"]);
    let third = git_info(&params(), &roots, &cancel).unwrap();
    assert_eq!(third.branch.as_deref(), Some("other"));
    let summaries: Vec<_> = third
        .recent_commits
        .iter()
        .map(|c| c.summary.as_str())
        .collect();
    assert_eq!(summaries, ["unrelated history"]);
}
