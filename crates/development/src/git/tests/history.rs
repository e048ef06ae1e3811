//! git_log, git_show and git_branches on a generated history.

use super::*;

pub(super) fn log_params() -> GitLogParams {
    GitLogParams {
        path: None,
        rev: None,
        paths: None,
        author: None,
        since: None,
        until: None,
        max_count: None,
        skip: None,
        full_message: false,
    }
}

fn history() -> (tempfile::TempDir, Roots) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    for (i, (who, file)) in [
        ("Ada", "a.txt"),
        ("Grace", "b.txt"),
        ("Ada", "a.txt"),
        ("Linus", "src/c.rs"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = root.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("v{i}\n")).unwrap();
        let date = format!("2024-0{}-01T12:00:00+00:00", i + 1);
        let status = Command::new("git")
            .args(["add", "."])
            .current_dir(root)
            .status()
            .unwrap();
        assert!(status.success());
        let status = Command::new("git")
            .args(["commit", "-q", "-m", &format!("commit {i}\n\nbody {i}")])
            .current_dir(root)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", who)
            .env(
                "GIT_AUTHOR_EMAIL",
                format!("{}@example.com", who.to_lowercase()),
            )
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_NAME", who)
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env("GIT_COMMITTER_DATE", &date)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let roots = Roots::new([root.to_path_buf()]).unwrap();
    (dir, roots)
}

fn summaries(out: &GitLogOutput) -> Vec<&str> {
    out.commits.iter().map(|c| c.summary.as_str()).collect()
}

#[test]
fn log_filters_by_path_author_dates_and_pages() {
    let (_dir, roots) = history();
    let all = git_log(&log_params(), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(
        summaries(&all),
        vec!["commit 3", "commit 2", "commit 1", "commit 0"]
    );
    assert!(!all.has_more && all.commits[0].message.is_none());
    assert_eq!(all.commits[3].parents.len(), 0);

    let mut p = log_params();
    p.paths = Some(Globs::One("a.txt".into()));
    assert_eq!(
        summaries(&git_log(&p, &roots, &CancelFlag::new()).unwrap()),
        vec!["commit 2", "commit 0"]
    );
    p.paths = Some(Globs::One("src".into()));
    assert_eq!(
        summaries(&git_log(&p, &roots, &CancelFlag::new()).unwrap()),
        vec!["commit 3"]
    );
    p.paths = Some(Globs::One("*.rs".into()));
    assert_eq!(
        summaries(&git_log(&p, &roots, &CancelFlag::new()).unwrap()),
        vec!["commit 3"]
    );

    let mut p = log_params();
    p.author = Some("ADA".into());
    assert_eq!(
        summaries(&git_log(&p, &roots, &CancelFlag::new()).unwrap()),
        vec!["commit 2", "commit 0"]
    );
    p.author = Some("grace@".into());
    assert_eq!(
        summaries(&git_log(&p, &roots, &CancelFlag::new()).unwrap()),
        vec!["commit 1"]
    );

    let mut p = log_params();
    p.since = Some("2024-02-01".into());
    p.until = Some("2024-03-15T00:00:00Z".into());
    assert_eq!(
        summaries(&git_log(&p, &roots, &CancelFlag::new()).unwrap()),
        vec!["commit 2", "commit 1"]
    );
    p.since = Some("not a date".into());
    let err = git_log(&p, &roots, &CancelFlag::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot read \"not a date\" as a date"),
        "{err}"
    );

    let mut p = log_params();
    p.max_count = Some(2);
    p.skip = Some(1);
    p.full_message = true;
    let out = git_log(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(summaries(&out), vec!["commit 2", "commit 1"]);
    assert!(out.has_more);
    assert_eq!(
        out.commits[0].message.as_deref(),
        Some("commit 2\n\nbody 2")
    );
    p.max_count = Some(1_001);
    assert!(git_log(&p, &roots, &CancelFlag::new()).is_err());
}

pub(super) fn show_params() -> GitShowParams {
    GitShowParams {
        path: None,
        rev: None,
        text: DiffTextParams::default(),
    }
}

#[test]
fn show_commit_root_commit_blob_and_tree() {
    let (_dir, roots) = history();
    let out = git_show(&show_params(), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.kind, "commit");
    let commit = out.commit.unwrap();
    assert_eq!(
        (commit.author.as_str(), commit.committer_email.as_str()),
        ("Linus", "c@example.com")
    );
    assert_eq!(commit.author_date, "2024-04-01T12:00:00+00:00");
    assert_eq!(out.files.len(), 1);
    assert_eq!(
        (out.files[0].path.as_str(), out.files[0].additions),
        ("src/c.rs", 1)
    );
    assert!(
        out.diff.contains("+++ b/src/c.rs\n@@ -0,0 +1 @@\n+v3\n"),
        "{}",
        out.diff
    );

    let mut p = show_params();
    p.rev = Some("HEAD~3".into());
    let out = git_show(&p, &roots, &CancelFlag::new()).unwrap();
    assert!(out.compared.unwrap().starts_with("(root commit)"));
    assert_eq!(out.files[0].path, "a.txt");

    p.rev = Some("HEAD~1:a.txt".into());
    let out = git_show(&p, &roots, &CancelFlag::new()).unwrap();
    let blob = out.blob.unwrap();
    assert_eq!(
        (out.kind.as_str(), blob.content.as_str(), blob.binary),
        ("blob", "v2\n", false)
    );

    p.rev = Some("HEAD:".into());
    let out = git_show(&p, &roots, &CancelFlag::new()).unwrap();
    let names: Vec<_> = out
        .tree
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("a.txt".into(), "file".into()),
            ("b.txt".into(), "file".into()),
            ("src".into(), "directory".into())
        ]
    );

    p.rev = Some("no-such-rev".into());
    assert!(
        git_show(&p, &roots, &CancelFlag::new())
            .unwrap_err()
            .to_string()
            .starts_with("not found")
    );
}

#[test]
fn branches_with_head_upstream_and_contains() {
    let (dir, roots) = history();
    git(dir.path(), &["branch", "old", "HEAD~2"]);
    git(
        dir.path(),
        &["update-ref", "refs/remotes/origin/main", "HEAD~1"],
    );
    git(dir.path(), &["config", "remote.origin.url", "/nonexistent"]);
    git(
        dir.path(),
        &[
            "config",
            "remote.origin.fetch",
            "+refs/heads/*:refs/remotes/origin/*",
        ],
    );
    git(dir.path(), &["config", "branch.main.remote", "origin"]);
    git(
        dir.path(),
        &["config", "branch.main.merge", "refs/heads/main"],
    );
    let params = |kind, contains: Option<&str>| GitBranchesParams {
        path: None,
        kind,
        contains: contains.map(str::to_owned),
        not_contains: None,
    };
    let out = git_branches(&params(BranchKind::Local, None), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.current.as_deref(), Some("main"));
    let names: Vec<_> = out
        .branches
        .iter()
        .map(|b| (b.name.as_str(), b.is_head))
        .collect();
    assert_eq!(names, vec![("main", true), ("old", false)]);
    assert_eq!(out.branches[0].upstream.as_deref(), Some("origin/main"));
    assert_eq!(out.branches[1].commit.summary, "commit 1");

    let out = git_branches(&params(BranchKind::All, None), &roots, &CancelFlag::new()).unwrap();
    assert_eq!(out.branches.len(), 3);
    assert_eq!(out.branches[2].kind, "remote");
    let out = git_branches(
        &params(BranchKind::All, Some("HEAD~1")),
        &roots,
        &CancelFlag::new(),
    )
    .unwrap();
    let names: Vec<_> = out.branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, vec!["main", "origin/main"]);
    let mut p = params(BranchKind::Local, None);
    p.not_contains = Some("HEAD".into());
    let out = git_branches(&p, &roots, &CancelFlag::new()).unwrap();
    assert_eq!(
        out.branches
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>(),
        vec!["old"]
    );
}
