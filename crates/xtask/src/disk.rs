//! Disk space on the target directory's file system: a cold `cargo xtask ci` writes about
//! 15 GB there, and a full disk shows up as an LLVM "IO failure on output stream" deep in a
//! build. So ci warns before it starts when less is free than the run can still write there,
//! notes the space left after each step, and names a full disk when a step fails.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use walkdir::WalkDir;

/// What a `cargo xtask ci` from an empty target directory writes there at its peak (about
/// 15 GB measured with `du -sb` with per-variant dist directories, BENCHMARKS.md "Disk"),
/// rounded up.
pub const COLD_CI_PEAK_BYTES: u64 = 16 * GIB;

/// The least a run on a warm target directory is taken to write, however much the directory
/// holds (an estimate, rounded up): dist assembles a new `dist/` (0.5 GB, usually on the same
/// disk) beside the old one, images and wheels are made again (0.3 GB), and every workspace
/// crate that changed is rebuilt in each target directory (tests, clippy, every variant; a
/// server's test executable alone is about 50 MB). And part of what the directory holds may be
/// nothing ci writes (release builds, benchmarks), yet it counts as progress towards the peak.
const WARM_CI_FLOOR_BYTES: u64 = 2 * GIB;

/// Below this, a failed step is reported as probably caused by the disk filling up.
const NEARLY_FULL_BYTES: u64 = GIB / 2;

const GIB: u64 = 1 << 30;

/// Bytes available to this (unprivileged-equivalent) user on `path`'s file system, or `None`
/// when `path` and all its parents cannot be asked (then nothing is reported).
pub fn free_bytes(path: &Path) -> Option<u64> {
    path.ancestors().find_map(|dir| {
        let stat = rustix::fs::statvfs(dir).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    })
}

/// `12.3 GiB`.
pub fn human(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / GIB as f64)
}

/// Prints a loud warning when less is free than this run can still write: a cold run's peak
/// minus what the target directory already holds, never less than [`WARM_CI_FLOOR_BYTES`].
/// Not an error: the peak is an estimate. The target directory is walked only when free space
/// alone does not settle it, and only until it holds enough.
pub fn warn_if_short(target_dir: &Path) {
    let Some(free) = free_bytes(target_dir) else {
        return;
    };
    let held = match COLD_CI_PEAK_BYTES.checked_sub(free) {
        Some(enough) if enough > 0 => {
            // Seconds on a large target directory whose metadata is not cached yet.
            eprintln!(
                "==> [ci] {} free, less than a cold run writes: adding up what {} holds",
                human(free),
                target_dir.display()
            );
            bytes_held(target_dir, enough)
        }
        _ => 0,
    };
    if let Some(message) = shortage(target_dir, free, held, COLD_CI_PEAK_BYTES) {
        eprintln!("\n!!! {message} !!!\n");
    }
}

/// The bytes under `dir` (apparent sizes, each hard-linked file once and no other file
/// system: what `du -sbx` counts, as the peak was measured), counted until `enough` is
/// reached. Entries that cannot be read count as nothing, which errs towards warning.
fn bytes_held(dir: &Path, enough: u64) -> u64 {
    let mut held = 0u64;
    // cargo hard-links every binary and test executable from `deps/` to its final name.
    let mut linked = HashSet::new();
    for entry in WalkDir::new(dir).same_file_system(true) {
        if held >= enough {
            break;
        }
        let Ok(metadata) = entry.and_then(|entry| entry.metadata()) else {
            continue;
        };
        if metadata.nlink() > 1 && !linked.insert((metadata.dev(), metadata.ino())) {
            continue;
        }
        held = held.saturating_add(metadata.len());
    }
    held
}

/// The warning when `free` bytes are free on the disk of `target_dir`, which holds `held`
/// bytes (or at least `peak - free`) of a run that writes `peak` from empty; `None` when the
/// space suffices.
fn shortage(target_dir: &Path, free: u64, held: u64, peak: u64) -> Option<String> {
    let still = peak.saturating_sub(held);
    if free >= still.max(WARM_CI_FLOOR_BYTES) {
        return None;
    }
    let start = format!(
        "only {} free on the disk of {}",
        human(free),
        target_dir.display()
    );
    let fix = "Free space or set CARGO_TARGET_DIR to a larger disk";
    Some(if still > WARM_CI_FLOOR_BYTES {
        format!(
            "{start}; `cargo xtask ci` may still write {} there: a cold run wrote up to {} and \
             this target directory holds {} so far. {fix}",
            human(still),
            human(peak),
            human(held)
        )
    } else {
        format!(
            "{start}; even on a warm target directory `cargo xtask ci` writes about {} anew \
             (dist's new copy, images, rebuilt workspace crates). {fix}",
            human(WARM_CI_FLOOR_BYTES)
        )
    })
}

/// Adds the likely cause to a step's error when the disk was (nearly) full after it.
pub fn explain_if_full(error: anyhow::Error, free_after: Option<u64>) -> anyhow::Error {
    match free_after {
        Some(free) if free < NEARLY_FULL_BYTES => error.context(format!(
            "the disk of the target directory has only {} free: the step probably failed because \
             it filled up (look for \"No space left on device\"); free space or set \
             CARGO_TARGET_DIR to a larger disk",
            human(free)
        )),
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_directory_need_not_exist_yet() {
        let scratch = tempfile::tempdir().unwrap();
        let missing = scratch.path().join("not/yet/target");
        assert!(free_bytes(&missing).is_some_and(|free| free > 0));
    }

    #[test]
    fn a_cold_target_directory_needs_the_whole_peak() {
        let target = Path::new("/w/target");
        let message = shortage(target, 3 * GIB, 0, 16 * GIB).unwrap();
        assert_eq!(
            message,
            "only 3.0 GiB free on the disk of /w/target; `cargo xtask ci` may still write \
             16.0 GiB there: a cold run wrote up to 16.0 GiB and this target directory holds \
             0.0 GiB so far. Free space or set CARGO_TARGET_DIR to a larger disk"
        );
        assert_eq!(shortage(target, 16 * GIB, 0, 16 * GIB), None);
    }

    #[test]
    fn a_warm_target_directory_needs_only_the_rest_of_the_peak() {
        let target = Path::new("/w/target");
        // 12 GiB held: 4 GiB still to write.
        let message = shortage(target, 3 * GIB, 12 * GIB, 16 * GIB).unwrap();
        assert!(
            message.contains("may still write 4.0 GiB there"),
            "{message}"
        );
        assert!(message.contains("holds 12.0 GiB so far"), "{message}");
        assert_eq!(shortage(target, 4 * GIB, 12 * GIB, 16 * GIB), None);
        assert_eq!(shortage(target, 3 * GIB, 13 * GIB, 16 * GIB), None);
    }

    #[test]
    fn however_warm_the_target_directory_the_floor_stays_needed() {
        let target = Path::new("/w/target");
        for held in [15 * GIB, 16 * GIB, 40 * GIB] {
            let message = shortage(target, GIB, held, 16 * GIB).unwrap();
            assert!(
                message.starts_with("only 1.0 GiB free on the disk of /w/target; even on a warm"),
                "{message}"
            );
            assert!(message.contains("writes about 2.0 GiB anew"), "{message}");
            assert_eq!(shortage(target, WARM_CI_FLOOR_BYTES, held, 16 * GIB), None);
        }
    }

    #[test]
    fn what_the_target_directory_holds_counts_hard_links_once_and_stops_at_enough() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("target");
        std::fs::create_dir_all(root.join("debug/deps")).unwrap();
        std::fs::write(root.join("debug/deps/server-0a1b"), vec![1u8; 30_000]).unwrap();
        std::fs::hard_link(
            root.join("debug/deps/server-0a1b"),
            root.join("debug/server"),
        )
        .unwrap();
        std::fs::write(root.join("debug/.cargo-lock"), b"").unwrap();
        std::fs::write(root.join("CACHEDIR.TAG"), vec![2u8; 177]).unwrap();
        let directories: u64 = ["", "debug", "debug/deps"]
            .iter()
            .map(|dir| std::fs::metadata(root.join(dir)).unwrap().len())
            .sum();
        assert_eq!(bytes_held(&root, u64::MAX), 30_177 + directories);
        // The walk stops once it has seen enough (the 30 kB file is not always first).
        assert!(bytes_held(&root, 1) < 30_177 + directories);
        assert_eq!(bytes_held(&root.join("missing"), u64::MAX), 0);
    }

    #[test]
    fn a_failure_on_a_full_disk_says_so_and_other_failures_stay_as_they_are() {
        let full = explain_if_full(anyhow::anyhow!("rustc failed"), Some(GIB / 10));
        assert!(format!("{full:#}").contains("0.1 GiB free"), "{full:#}");
        assert!(format!("{full:#}").contains("rustc failed"), "{full:#}");
        let roomy = explain_if_full(anyhow::anyhow!("rustc failed"), Some(5 * GIB));
        assert_eq!(format!("{roomy:#}"), "rustc failed");
        let unknown = explain_if_full(anyhow::anyhow!("rustc failed"), None);
        assert_eq!(format!("{unknown:#}"), "rustc failed");
    }
}
