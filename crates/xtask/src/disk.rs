//! Disk space on the target directory's file system: a cold `cargo xtask ci` writes tens of
//! gigabytes there, and a full disk shows up as an LLVM "IO failure on output stream" deep in
//! a build. So ci warns before it starts, notes the space left after each step, and names a
//! full disk when a step fails.

use std::path::Path;

/// What a `cargo xtask ci` from an empty target directory writes there at its peak (about
/// 15 GB measured with per-variant dist directories, BENCHMARKS.md "Disk"), rounded up.
pub const COLD_CI_PEAK_BYTES: u64 = 16 * GIB;

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

/// Prints a loud warning when less is free than a cold run needed. Not an error: a warm
/// target directory needs far less.
pub fn warn_if_short(target_dir: &Path) {
    if let Some(message) = free_bytes(target_dir).and_then(|free| shortage(target_dir, free)) {
        eprintln!("\n!!! {message} !!!\n");
    }
}

fn shortage(target_dir: &Path, free: u64) -> Option<String> {
    (free < COLD_CI_PEAK_BYTES).then(|| {
        format!(
            "only {} free on the disk of {}; a cold `cargo xtask ci` wrote up to {} there. \
             If this target directory is empty, free space or set CARGO_TARGET_DIR to a larger disk",
            human(free),
            target_dir.display(),
            human(COLD_CI_PEAK_BYTES)
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
    fn a_short_disk_is_named_with_what_a_cold_run_needs() {
        let message = shortage(Path::new("/w/target"), 3 * GIB).unwrap();
        assert!(
            message.contains("only 3.0 GiB free on the disk of /w/target"),
            "{message}"
        );
        assert!(message.contains(&human(COLD_CI_PEAK_BYTES)), "{message}");
        assert_eq!(shortage(Path::new("/w/target"), COLD_CI_PEAK_BYTES), None);
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
