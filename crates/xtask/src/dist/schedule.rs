//! Running dist's jobs two at a time. One cargo invocation leaves cores idle in its serial
//! stretches (the fat-LTO link of its last binary runs on one thread, and a Python module
//! job is little else), so a second job of another variant fills them. Jobs of one variant
//! share a target directory, whose lock cargo would make the second wait on, so they never
//! overlap. A jobserver shared by every cargo keeps their compilers near the core count.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex};

use anyhow::{Context, Result, anyhow};

/// How many jobs run at once on this machine: two where there are cores to share.
pub fn workers() -> usize {
    if cores() > 1 { 2 } else { 1 }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The jobserver every job's cargo inherits (`CARGO_MAKEFLAGS`). A cargo that inherits one
/// runs its first compiler on its own implicit token and one more per token it takes, so
/// `cores - 1` tokens give one job all cores and two jobs one more compiler than cores.
pub fn jobserver() -> Result<jobserver::Client> {
    jobserver::Client::new(cores().saturating_sub(1).max(1))
        .context("creating the jobserver shared by dist's cargo invocations")
}

/// Runs `run(index)` for every job on `workers` threads, never two jobs with the same `key`
/// (target directory) at once, starting jobs in order as far as keys allow. After a failure
/// no new job starts; the first error is returned once the running jobs finish. Results
/// come back in job order.
pub fn run_all<T: Send>(
    keys: &[&str],
    workers: usize,
    run: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    struct State<'k, T> {
        pending: Vec<usize>,
        busy: BTreeSet<&'k str>,
        results: Vec<Option<T>>,
        error: Option<anyhow::Error>,
    }
    let state = Mutex::new(State {
        pending: (0..keys.len()).collect(),
        busy: BTreeSet::new(),
        results: (0..keys.len()).map(|_| None).collect(),
        error: None,
    });
    let changed = Condvar::new();
    let lock = || {
        state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| {
                loop {
                    let index = {
                        let mut guard = lock();
                        loop {
                            if guard.error.is_some() || guard.pending.is_empty() {
                                return;
                            }
                            let busy = &guard.busy;
                            if let Some(position) =
                                guard.pending.iter().position(|&i| !busy.contains(keys[i]))
                            {
                                let index = guard.pending.remove(position);
                                guard.busy.insert(keys[index]);
                                break index;
                            }
                            guard = changed
                                .wait(guard)
                                .unwrap_or_else(|poisoned| poisoned.into_inner());
                        }
                    };
                    // A panicking job fails the run instead of leaving its key busy forever.
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run(index)))
                        .unwrap_or_else(|_| Err(anyhow!("dist job {index} panicked")));
                    let mut guard = lock();
                    guard.busy.remove(keys[index]);
                    match result {
                        Ok(value) => guard.results[index] = Some(value),
                        Err(error) => {
                            guard.error.get_or_insert(error);
                        }
                    }
                    changed.notify_all();
                }
            });
        }
    });
    let state = state
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(error) = state.error {
        return Err(error);
    }
    state
        .results
        .into_iter()
        .enumerate()
        .map(|(index, result)| result.with_context(|| format!("dist job {index} did not run")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn jobs_of_different_keys_overlap_and_jobs_of_one_key_never_do() {
        // Job 0 (key a) waits until job 2 (key b) has started: that only happens if b starts
        // while a runs, passing job 1 (key a again), which must wait for job 0.
        let keys = ["a", "a", "b"];
        let running = Mutex::new(BTreeSet::new());
        let (started_b, b_has_started) = mpsc::channel();
        let b_has_started = Mutex::new(b_has_started);
        let results = run_all(&keys, 2, |index| {
            assert!(
                running.lock().unwrap().insert(keys[index]),
                "two jobs of key {} at once",
                keys[index]
            );
            match index {
                0 => b_has_started
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(60))
                    .expect("job 2 (another key) never started while job 0 ran"),
                2 => started_b.send(()).unwrap(),
                _ => {}
            }
            running.lock().unwrap().remove(keys[index]);
            Ok(index * 10)
        })
        .unwrap();
        assert_eq!(results, [0, 10, 20]);
    }

    #[test]
    fn a_failure_stops_new_jobs_and_is_returned() {
        let ran = Mutex::new(Vec::new());
        let error = run_all(&["a", "a", "a"], 2, |index| {
            ran.lock().unwrap().push(index);
            anyhow::ensure!(index != 1, "job {index} failed");
            Ok(())
        })
        .unwrap_err();
        assert_eq!(error.to_string(), "job 1 failed");
        assert_eq!(*ran.lock().unwrap(), [0, 1]);
    }

    #[test]
    fn one_worker_runs_everything_in_order() {
        let order = Mutex::new(Vec::new());
        run_all(&["a", "b", "c"], 1, |index| {
            order.lock().unwrap().push(index);
            Ok(())
        })
        .unwrap();
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    }
}
