//! Attacks on opening by capability, run against both resolvers (`openat2` and the
//! component walk of old kernels): a symbolic link swapped in a loop while another thread
//! opens, FIFOs, sockets, devices, `/proc` magic links, `..` through symlinked directories.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::fs::{CWD, RenameFlags};

use crate::beneath::{FORCED, Resolver};
use crate::{ConfineError, Roots, confine_path};

const BOTH: [Resolver; 2] = [Resolver::Openat2, Resolver::Components];
const SECRET: &str = "SECRET outside the root";
const INSIDE: &str = "inside";

/// Runs `test` with every open on this thread going through `resolver`.
fn with_resolver(resolver: Resolver, test: impl FnOnce()) {
    FORCED.set(Some(resolver));
    test();
    FORCED.set(None);
}

/// `<tmp>/root` (the root) with `real/f.txt` = INSIDE and `alt`, a symbolic link to
/// `<tmp>/outside`, whose `f.txt` = SECRET.
struct Swap {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

fn swap_fixture(link_target: impl Fn(&Path) -> PathBuf) -> Swap {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    fs::create_dir_all(root.join("real")).unwrap();
    fs::write(root.join("real/f.txt"), INSIDE).unwrap();
    fs::create_dir_all(base.join("outside")).unwrap();
    fs::write(base.join("outside/f.txt"), SECRET).unwrap();
    symlink(link_target(&base), root.join("alt")).unwrap();
    Swap { tmp, root }
}

/// Exchanges `real` and `alt` atomically, over and over, until dropped.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(root: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (real, alt) = (root.join("real"), root.join("alt"));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut swaps = 0;
            while !flag.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(CWD, &real, CWD, &alt, RenameFlags::EXCHANGE).unwrap();
                swaps += 1;
            }
            swaps
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let swaps = thread.join().unwrap();
            eprintln!("swapper exchanged the link and the directory {swaps} times");
        }
    }
}

/// Opens through `open` while the swapper runs, until both outcomes were seen often
/// enough (or a generous budget runs out). Panics if any open read the secret.
fn race(root: &Path, open: impl Fn() -> Result<String, ConfineError>) {
    let _swapper = Swapper::start(root);
    let (mut read_inside, mut refused) = (0u64, 0u64);
    let started = Instant::now();
    while (read_inside < 1000 || refused < 1000) && started.elapsed() < Duration::from_secs(60) {
        match open() {
            Ok(text) => {
                assert_ne!(text, SECRET, "an open read the secret outside the root");
                assert_eq!(text, INSIDE);
                read_inside += 1;
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!("race: {read_inside} opens read the inside file, {refused} were refused");
    assert!(
        read_inside > 0 && refused > 0,
        "the race was not exercised (inside {read_inside}, refused {refused})"
    );
}

fn read_all(file: crate::ConfinedFile) -> String {
    String::from_utf8(file.read_capped(1 << 20).unwrap()).unwrap()
}

#[test]
fn the_swap_really_redirects_a_check_then_open_by_name() {
    // The control: with the link in place of the directory, opening the checked name
    // reads the secret. This is what the races below must never do.
    let swap = swap_fixture(|base| base.join("outside"));
    let roots = Roots::new([swap.root.clone()]).unwrap();
    let checked = confine_path("real/f.txt", &roots).unwrap();
    rustix::fs::renameat_with(
        CWD,
        swap.root.join("real"),
        CWD,
        swap.root.join("alt"),
        RenameFlags::EXCHANGE,
    )
    .unwrap();
    assert_eq!(fs::read_to_string(&checked).unwrap(), SECRET);
    for resolver in BOTH {
        with_resolver(resolver, || {
            let err = roots.open_file(&checked).unwrap_err();
            assert!(matches!(err, ConfineError::OutsideRoots { .. }), "{err}");
            let dir = roots.open_dir(".").unwrap();
            let err = dir.open_file("real/f.txt").unwrap_err();
            assert!(matches!(err, ConfineError::Escape { .. }), "{err}");
        });
    }
    drop(swap.tmp);
}

#[test]
fn swapped_absolute_link_never_redirects_an_open_by_user_path() {
    for resolver in BOTH {
        let swap = swap_fixture(|base| base.join("outside"));
        let roots = Roots::new([swap.root.clone()]).unwrap();
        with_resolver(resolver, || {
            race(&swap.root, || roots.open_file("real/f.txt").map(read_all));
        });
    }
}

#[test]
fn swapped_relative_link_never_redirects_an_open_beneath_a_directory() {
    // No canonicalization here: every open meets the swap inside the kernel's walk.
    for resolver in BOTH {
        let swap = swap_fixture(|_| PathBuf::from("../outside"));
        let roots = Roots::new([swap.root.clone()]).unwrap();
        let dir = roots.open_dir(".").unwrap();
        with_resolver(resolver, || {
            race(&swap.root, || dir.open_file("real/f.txt").map(read_all));
        });
    }
}

#[test]
fn swapped_absolute_link_never_redirects_an_open_beneath_a_directory() {
    for resolver in BOTH {
        let swap = swap_fixture(|base| base.join("outside"));
        let roots = Roots::new([swap.root.clone()]).unwrap();
        let dir = roots.open_dir(".").unwrap();
        with_resolver(resolver, || {
            race(&swap.root, || dir.open_file("real/f.txt").map(read_all));
        });
    }
}

/// Runs `work` on another thread and fails (instead of hanging the suite) if it blocks.
fn must_not_block<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(work());
    });
    outcome
        .recv_timeout(Duration::from_secs(60))
        .expect("the open blocked")
}

#[test]
fn a_fifo_named_like_a_manifest_is_refused_without_blocking() {
    for resolver in BOTH {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("Cargo.toml");
        rustix::fs::mkfifoat(CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
        let roots = Roots::new([tmp.path().to_path_buf()]).unwrap();
        let errors = must_not_block(move || {
            FORCED.set(Some(resolver));
            let dir = roots.open_dir(".").unwrap();
            [
                roots.open_file("Cargo.toml").map(drop),
                roots.open("Cargo.toml").map(drop),
                roots.open_dir("Cargo.toml").map(drop),
                dir.open_file("Cargo.toml").map(drop),
            ]
        });
        for outcome in errors {
            let err = outcome.unwrap_err();
            assert!(
                matches!(err, ConfineError::WrongKind { found, .. } if found.contains("FIFO")),
                "{resolver:?}: {err}"
            );
        }
    }
}

#[test]
fn sockets_and_devices_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(tmp.path().join("log.sock")).unwrap();
    let roots = Roots::new([tmp.path().to_path_buf()]).unwrap();
    let devices = Roots::new([PathBuf::from("/dev")]).unwrap();
    for resolver in BOTH {
        with_resolver(resolver, || {
            let err = roots.open_file("log.sock").unwrap_err();
            assert!(matches!(err, ConfineError::WrongKind { .. }), "{err}");
            assert!(err.to_string().contains("socket"), "{err}");
            let err = devices.open_file("null").unwrap_err();
            assert!(err.to_string().contains("character device"), "{err}");
            let err = devices.open_dir("null").unwrap_err();
            assert!(err.to_string().contains("character device"), "{err}");
        });
    }
}

#[test]
fn directories_and_files_are_told_apart() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("sub")).unwrap();
    fs::write(tmp.path().join("sub/a.txt"), "a").unwrap();
    let roots = Roots::new([tmp.path().to_path_buf()]).unwrap();
    for resolver in BOTH {
        with_resolver(resolver, || {
            let err = roots.open_file("sub").unwrap_err();
            assert!(
                err.to_string()
                    .contains("is a directory, not a regular file"),
                "{err}"
            );
            let err = roots.open_dir("sub/a.txt").unwrap_err();
            assert!(
                err.to_string()
                    .contains("is a regular file, not a directory"),
                "{err}"
            );
            assert!(matches!(roots.open("sub").unwrap(), crate::Opened::Dir(_)));
            assert!(matches!(
                roots.open("sub/a.txt").unwrap(),
                crate::Opened::File(_)
            ));
            let sub = roots.open_dir("sub").unwrap();
            assert_eq!(read_all(sub.open_file("a.txt").unwrap()), "a");
            // Absolute paths under the directory (as a walk yields them) work too.
            assert_eq!(
                read_all(sub.open_file(sub.path().join("a.txt")).unwrap()),
                "a"
            );
        });
    }
}

#[test]
fn proc_magic_links_are_never_followed() {
    if !Path::new("/proc/self/root").exists() {
        eprintln!("SKIPPED: /proc is not mounted here");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("secret.txt"), SECRET).unwrap();
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    symlink("/proc/self/root/etc/hostname", root.join("host")).unwrap();
    let roots = Roots::new([root]).unwrap();
    // A root that contains magic links: /proc/self of this process.
    let proc_roots = Roots::new([PathBuf::from("/proc/self")]).unwrap();
    let secret = fs::File::open(tmp.path().join("secret.txt")).unwrap();
    let secret_fd = std::os::fd::AsRawFd::as_raw_fd(&secret);
    for resolver in BOTH {
        with_resolver(resolver, || {
            let err = roots.open_file("host").unwrap_err();
            assert!(matches!(err, ConfineError::OutsideRoots { .. }), "{err}");
            // Canonicalization resolves the magic link to `/`, outside the root...
            let err = proc_roots.open_file("root/etc/hostname").unwrap_err();
            assert!(matches!(err, ConfineError::OutsideRoots { .. }), "{err}");
            // ...and a walk beneath the descriptor refuses to follow it at all.
            let proc_dir = proc_roots.open_dir(".").unwrap();
            for path in ["root/etc/hostname".to_owned(), format!("fd/{secret_fd}")] {
                let err = proc_dir.open_file(&path).unwrap_err();
                assert!(matches!(err, ConfineError::Escape { .. }), "{path}: {err}");
            }
        });
    }
}

#[test]
fn dotdot_through_symlinked_directories_is_resolved_physically_and_confined() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/c.txt"), "a/c").unwrap();
    fs::write(root.join("c.txt"), "c").unwrap();
    fs::write(base.join("outside.txt"), SECRET).unwrap();
    // `deep` -> a/b: `deep/..` is `a` physically, not the root as the name suggests.
    symlink("a/b", root.join("deep")).unwrap();
    let roots = Roots::new([root.clone()]).unwrap();
    for resolver in BOTH {
        with_resolver(resolver, || {
            assert_eq!(read_all(roots.open_file("deep/../c.txt").unwrap()), "a/c");
            for escape in ["deep/../../../outside.txt", "a/b/../../../outside.txt"] {
                let err = roots.open_file(escape).unwrap_err();
                assert!(
                    matches!(err, ConfineError::OutsideRoots { .. }),
                    "{escape}: {err}"
                );
            }
            let dir = roots.open_dir("a").unwrap();
            let err = dir.open_file("../c.txt").unwrap_err();
            assert!(matches!(err, ConfineError::Escape { .. }), "{err}");
            let err = dir.open_file(root.join("c.txt")).unwrap_err();
            assert!(matches!(err, ConfineError::Escape { .. }), "{err}");
        });
    }
}

#[test]
fn a_root_renamed_after_start_up_keeps_serving_the_original_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let root = base.join("root");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("f.txt"), INSIDE).unwrap();
    let roots = Roots::new([root.clone()]).unwrap();
    // Someone moves the root away and plants a look-alike at its path.
    fs::rename(&root, base.join("moved")).unwrap();
    fs::create_dir(&root).unwrap();
    fs::write(root.join("f.txt"), SECRET).unwrap();
    for resolver in BOTH {
        with_resolver(resolver, || {
            assert_eq!(read_all(roots.open_file("f.txt").unwrap()), INSIDE);
        });
    }
}

#[test]
fn entries_are_listed_through_the_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("d")).unwrap();
    fs::write(tmp.path().join("f"), "").unwrap();
    symlink("f", tmp.path().join("l")).unwrap();
    let roots = Roots::new([tmp.path().to_path_buf()]).unwrap();
    let dir = roots.open_dir(".").unwrap();
    let listed: Vec<_> = dir
        .entries()
        .unwrap()
        .into_iter()
        .map(|entry| (entry.name.into_string().unwrap(), entry.kind))
        .collect();
    use crate::EntryKind::{Dir, File, Symlink};
    assert_eq!(
        listed,
        [("d".into(), Dir), ("f".into(), File), ("l".into(), Symlink)]
    );
}
