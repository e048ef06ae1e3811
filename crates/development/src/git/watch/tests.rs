//! The kept status against the truth: each test makes one change between two calls (the
//! first call sets the watches up) and checks that the call after it sees exactly what a
//! fresh status sees. A cache that served stale data fails here.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::Ordering;

use mcp_server_runtime::{CancelFlag, Roots};

use super::StatusCache;
use crate::git::diff::unstaged_changes;
use crate::git::info::{ChangedFile, changed_files};
use crate::git::open_repository;
use crate::git::tests::{git, repo_fixture};

fn sorted(mut changes: Vec<ChangedFile>) -> Vec<ChangedFile> {
    changes.sort_by(|a, b| (&a.path, a.area).cmp(&(&b.path, b.area)));
    changes
}

/// `git_info`'s changes through `cache`.
fn kept(cache: &StatusCache, roots: &Roots) -> Vec<ChangedFile> {
    let repo = open_repository(None, roots).unwrap();
    let cancel = CancelFlag::new();
    sorted(
        cache
            .get_or_compute(
                &repo,
                |watched| &mut watched.all_changes,
                || changed_files(&repo, &cancel),
            )
            .unwrap(),
    )
}

/// `git_info`'s changes computed afresh.
fn truth(roots: &Roots) -> Vec<ChangedFile> {
    let repo = open_repository(None, roots).unwrap();
    sorted(changed_files(&repo, &CancelFlag::new()).unwrap())
}

fn computed(cache: &StatusCache) -> usize {
    cache.computed.load(Ordering::Relaxed)
}

/// False (with a note) where the temporary directory's file system is not watched: then
/// every status is computed afresh, which the exactness checks still cover, but no call
/// can be served from the cache.
fn watchable(root: &Path) -> bool {
    let local = super::is_local_file_system(root);
    if !local {
        eprintln!(
            "NOTE: {} is not on a watched file system; the cache is off here",
            root.display()
        );
    }
    local
}

/// Sets the watches up (first call), checks a second call is served from the cache, runs
/// `change` and checks the next call sees what a fresh status sees, and that it differs
/// from before (the change is visible in a status at all).
fn sees(change: impl FnOnce(&Path)) {
    let (dir, roots) = repo_fixture();
    let cache = StatusCache::default();
    let before = kept(&cache, &roots);
    assert_eq!(before, truth(&roots));
    assert_eq!(kept(&cache, &roots), before);
    assert_eq!(
        computed(&cache),
        1,
        "the second call must be served from the cache"
    );
    change(dir.path());
    let after = kept(&cache, &roots);
    assert_eq!(after, truth(&roots));
    assert_ne!(after, before, "the change must show in the status");
    assert_eq!(computed(&cache), 2);
}

#[test]
fn sees_a_same_size_edit_of_a_clean_file() {
    sees(|root| fs::write(root.join("a.txt"), "TWO\n").unwrap());
}

#[test]
fn sees_a_new_file() {
    sees(|root| fs::write(root.join("fresh.txt"), "x\n").unwrap());
}

#[test]
fn sees_a_deletion() {
    sees(|root| fs::remove_file(root.join("a.txt")).unwrap());
}

#[test]
fn sees_a_rename() {
    sees(|root| fs::rename(root.join("a.txt"), root.join("renamed.txt")).unwrap());
}

#[test]
fn sees_a_chmod() {
    sees(|root| {
        fs::set_permissions(root.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    });
}

#[test]
fn sees_git_add() {
    sees(|root| git(root, &["add", "b.txt"]));
}

#[test]
fn sees_git_commit() {
    sees(|root| git(root, &["commit", "-q", "-m", "third"]));
}

#[test]
fn sees_a_branch_moved_without_touching_the_index() {
    sees(|root| git(root, &["update-ref", "refs/heads/trunk", "HEAD~1"]));
}

#[test]
fn sees_info_exclude() {
    sees(|root| fs::write(root.join(".git/info/exclude"), "new.txt\n").unwrap());
}

#[test]
fn sees_a_gitignore_edit() {
    sees(|root| fs::write(root.join(".gitignore"), "new.txt\n").unwrap());
}

#[test]
fn sees_a_configuration_change() {
    let (dir, roots) = repo_fixture();
    let root = dir.path();
    fs::set_permissions(root.join("a.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    let cache = StatusCache::default();
    let before = kept(&cache, &roots);
    assert!(before.iter().any(|change| change.path == "a.txt"));
    git(root, &["config", "core.fileMode", "false"]);
    let after = kept(&cache, &roots);
    assert_eq!(after, truth(&roots));
    assert!(!after.iter().any(|change| change.path == "a.txt"));
}

#[test]
fn sees_files_in_a_directory_made_after_the_first_call() {
    let (dir, roots) = repo_fixture();
    let root = dir.path();
    let cache = StatusCache::default();
    kept(&cache, &roots);
    fs::create_dir(root.join("later")).unwrap();
    // An empty directory is not a change git shows, but the next call must watch it.
    assert_eq!(kept(&cache, &roots), truth(&roots));
    assert_eq!(kept(&cache, &roots), truth(&roots));
    fs::create_dir(root.join("later/deeper")).unwrap();
    fs::write(root.join("later/deeper/file.txt"), "x\n").unwrap();
    let after = kept(&cache, &roots);
    assert_eq!(after, truth(&roots));
    assert!(
        after
            .iter()
            .any(|change| change.path == "later/deeper/file.txt")
    );
    fs::write(root.join("later/deeper/file.txt"), "y\n").unwrap();
    fs::write(root.join("later/second.txt"), "x\n").unwrap();
    let last = kept(&cache, &roots);
    assert_eq!(last, truth(&roots));
    assert!(last.iter().any(|change| change.path == "later/second.txt"));
}

#[test]
fn sees_edits_in_nested_tracked_directories() {
    let (dir, roots) = repo_fixture();
    let root = dir.path();
    fs::create_dir_all(root.join("src/deep")).unwrap();
    fs::write(root.join("src/deep/lib.rs"), "fn a() {}\n").unwrap();
    git(root, &["add", "src"]);
    let cache = StatusCache::default();
    let before = kept(&cache, &roots);
    fs::write(root.join("src/deep/lib.rs"), "fn b() {}\n").unwrap();
    let after = kept(&cache, &roots);
    assert_eq!(after, truth(&roots));
    assert_ne!(after, before);
}

#[test]
fn sees_writes_through_a_hard_link_outside_the_tree() {
    let (dir, roots) = repo_fixture();
    let outside = tempfile::tempdir().unwrap();
    let cache = StatusCache::default();
    let before = kept(&cache, &roots);
    // The link is made after the watches are up; the write goes through it only.
    fs::hard_link(dir.path().join("a.txt"), outside.path().join("alias")).unwrap();
    assert_eq!(kept(&cache, &roots), truth(&roots));
    fs::write(outside.path().join("alias"), "TWO\n").unwrap();
    let after = kept(&cache, &roots);
    assert_eq!(after, truth(&roots));
    assert_ne!(after, before);
}

#[test]
fn ignored_directories_are_not_watched_until_un_ignored() {
    let (dir, roots) = repo_fixture();
    let root = dir.path();
    fs::write(root.join(".gitignore"), "build/\n").unwrap();
    fs::create_dir(root.join("build")).unwrap();
    let cache = StatusCache::default();
    kept(&cache, &roots);
    fs::write(root.join("build/out.o"), "x").unwrap();
    assert_eq!(kept(&cache, &roots), truth(&roots));
    fs::write(root.join(".gitignore"), "").unwrap();
    let after = kept(&cache, &roots);
    assert_eq!(after, truth(&roots));
    assert!(after.iter().any(|change| change.path == "build/out.o"));
}

#[test]
fn git_diff_changes_are_kept_and_dropped_too() {
    let (dir, roots) = repo_fixture();
    let cache = StatusCache::default();
    let diff = |cache: &StatusCache| {
        let repo = open_repository(None, &roots).unwrap();
        let cancel = CancelFlag::new();
        let changes = cache
            .get_or_compute(
                &repo,
                |watched| &mut watched.unstaged,
                || unstaged_changes(&repo, &cancel),
            )
            .unwrap();
        changes
            .iter()
            .map(|change| format!("{} {:?}", change.path, change.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(diff(&cache), ["b.txt Modified"]);
    assert_eq!(diff(&cache), ["b.txt Modified"]);
    if watchable(dir.path()) {
        assert_eq!(computed(&cache), 1);
    }
    fs::write(dir.path().join("a.txt"), "TWO\n").unwrap();
    let mut after = diff(&cache);
    after.sort();
    assert_eq!(after, ["a.txt Modified", "b.txt Modified"]);
}
