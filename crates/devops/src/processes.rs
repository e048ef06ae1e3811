//! Process listing and inspection through `sysinfo`, with secrets in command lines redacted.
//!
//! Reading `/proc` for every process takes tens of milliseconds, so the refreshes run on the
//! blocking pool; the wait between the two CPU readings is an async sleep.

use std::cmp::Ordering;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sysinfo::{
    MINIMUM_CPU_UPDATE_INTERVAL, Pid, Process, ProcessRefreshKind, ProcessesToUpdate, System,
    UpdateKind,
};

use crate::error::DevopsError;
use crate::metrics::{off_async_workers, round2};
use crate::redact::redact_args;
use crate::text::truncate_chars;

/// Default number of processes listed.
pub const DEFAULT_PROCESS_LIMIT: usize = 25;
/// Most processes listed in one call.
pub const MAX_PROCESS_LIMIT: usize = 1_000;
/// Longest command line returned, in characters.
const MAX_COMMAND_CHARS: usize = 1_024;

/// Order of a process listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProcessSort {
    /// Highest CPU usage first.
    #[default]
    Cpu,
    /// Largest resident memory first.
    Memory,
    /// Ascending process id.
    Pid,
    /// Name, alphabetically.
    Name,
}

/// One line of a process listing.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProcessSummary {
    pub pid: u32,
    pub parent_pid: Option<u32>,
    pub name: String,
    /// CPU usage during the sampling interval in percent of one core (can exceed 100).
    pub cpu_percent: f64,
    /// Resident memory.
    pub memory_bytes: u64,
    pub status: String,
    /// Command line, arguments joined by spaces (truncated when very long), with obvious
    /// secrets (passwords, tokens, URL credentials) replaced by `[redacted]`.
    pub command: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProcessListing {
    /// Processes on the system (threads not counted).
    pub total_processes: usize,
    /// Processes that passed `name_filter`.
    pub matched: usize,
    pub sort_by: ProcessSort,
    /// At most `limit` processes in `sort_by` order.
    pub processes: Vec<ProcessSummary>,
}

/// Full details of one process. The environment is deliberately left out: it often holds secrets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProcessDetails {
    pub pid: u32,
    pub parent_pid: Option<u32>,
    pub name: String,
    pub executable: Option<String>,
    /// Arguments, the program first, with obvious secrets replaced by `[redacted]`.
    pub command_line: Vec<String>,
    pub cwd: Option<String>,
    pub status: String,
    pub user_id: Option<String>,
    /// Start time in seconds since the Unix epoch.
    pub start_time_unix: u64,
    /// Start time in RFC 3339, UTC.
    pub start_time: Option<String>,
    pub run_time_secs: u64,
    /// CPU usage during the sampling interval in percent of one core (can exceed 100).
    pub cpu_percent: f64,
    pub accumulated_cpu_time_ms: u64,
    pub memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub disk_read_bytes: u64,
    pub disk_written_bytes: u64,
    /// Open file descriptors; absent when not permitted or not supported.
    pub open_files: Option<usize>,
    pub open_files_limit: Option<usize>,
    pub thread_count: Option<usize>,
}

fn list_refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .with_cmd(UpdateKind::OnlyIfNotSet)
        .without_tasks()
}

/// Refreshes twice, `MINIMUM_CPU_UPDATE_INTERVAL` apart, because CPU usage is the difference
/// between two readings. Both refreshes run off the async workers.
/// `only` limits the refresh to one process; `None` refreshes all.
async fn sampled_system(
    only: Option<Pid>,
    kind: ProcessRefreshKind,
) -> Result<System, DevopsError> {
    let refresh = move |system: &mut System| {
        let selected = only.map(|pid| [pid]);
        let to_update = match &selected {
            Some(pid) => ProcessesToUpdate::Some(pid),
            None => ProcessesToUpdate::All,
        };
        system.refresh_processes_specifics(to_update, true, kind);
    };
    let system = off_async_workers(move || {
        let mut system = System::new()
            .map_err(|e| DevopsError::Failed(format!("cannot read process information: {e}")))?;
        refresh(&mut system);
        Ok(system)
    })
    .await??;
    tokio::time::sleep(MINIMUM_CPU_UPDATE_INTERVAL).await;
    off_async_workers(move || {
        let mut system = system;
        refresh(&mut system);
        system
    })
    .await
}

/// Lists processes whose name or command line contains `name_filter` (case-insensitive),
/// sorted by `sort_by`, at most `limit`.
pub async fn process_list(
    sort_by: ProcessSort,
    limit: Option<usize>,
    name_filter: Option<&str>,
) -> Result<ProcessListing, DevopsError> {
    let limit = limit.unwrap_or(DEFAULT_PROCESS_LIMIT);
    if !(1..=MAX_PROCESS_LIMIT).contains(&limit) {
        return Err(DevopsError::invalid(format!(
            "limit must be between 1 and {MAX_PROCESS_LIMIT}, got {limit}"
        )));
    }
    let filter = name_filter.map(str::to_lowercase).filter(|f| !f.is_empty());
    let system = sampled_system(None, list_refresh_kind()).await?;
    off_async_workers(move || {
        let mut total_processes = 0;
        let mut matched: Vec<ProcessSummary> = system
            .processes()
            .values()
            .filter(|p| p.thread_kind().is_none())
            .inspect(|_| total_processes += 1)
            .map(summarize)
            // The filter sees the redacted command line: it must not probe for secrets.
            .filter(|s| filter.as_deref().is_none_or(|f| matches_filter(s, f)))
            .map(|s| s.summary)
            .collect();
        matched.sort_by(|a, b| compare(sort_by, a, b));
        let matched_count = matched.len();
        matched.truncate(limit);
        ProcessListing {
            total_processes,
            matched: matched_count,
            sort_by,
            processes: matched,
        }
    })
    .await
}

/// Whether the name or the (redacted, untruncated) command line contains the filter.
fn matches_filter(summarized: &Summarized, lowercase_filter: &str) -> bool {
    summarized
        .summary
        .name
        .to_lowercase()
        .contains(lowercase_filter)
        || summarized.command.to_lowercase().contains(lowercase_filter)
}

fn compare(sort_by: ProcessSort, a: &ProcessSummary, b: &ProcessSummary) -> Ordering {
    let primary = match sort_by {
        ProcessSort::Cpu => b.cpu_percent.total_cmp(&a.cpu_percent),
        ProcessSort::Memory => b.memory_bytes.cmp(&a.memory_bytes),
        ProcessSort::Pid => Ordering::Equal,
        ProcessSort::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
    };
    primary.then(a.pid.cmp(&b.pid))
}

/// A listing line and the full redacted command line it was cut from.
struct Summarized {
    summary: ProcessSummary,
    command: String,
}

fn summarize(process: &Process) -> Summarized {
    let command = redacted_command_line(process).join(" ");
    Summarized {
        summary: ProcessSummary {
            pid: process.pid().as_u32(),
            parent_pid: process.parent().map(Pid::as_u32),
            name: process.name().to_string_lossy().into_owned(),
            cpu_percent: round2(f64::from(process.cpu_usage())),
            memory_bytes: process.memory(),
            status: process.status().to_string(),
            command: truncate_chars(&command, MAX_COMMAND_CHARS),
        },
        command,
    }
}

fn redacted_command_line(process: &Process) -> Vec<String> {
    let args: Vec<String> = process
        .cmd()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    redact_args(&args)
}

/// Details of process `pid`; a pid that does not exist (or exited) is `NotFound`.
pub async fn process_info(pid: u32) -> Result<ProcessDetails, DevopsError> {
    let sys_pid = Pid::from_u32(pid);
    let kind = ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .with_disk_usage()
        .with_cmd(UpdateKind::OnlyIfNotSet)
        .with_exe(UpdateKind::OnlyIfNotSet)
        .with_cwd(UpdateKind::OnlyIfNotSet)
        .with_user(UpdateKind::OnlyIfNotSet)
        .with_tasks();
    let system = sampled_system(Some(sys_pid), kind).await?;
    off_async_workers(move || details(&system, pid)).await?
}

fn details(system: &System, pid: u32) -> Result<ProcessDetails, DevopsError> {
    let sys_pid = Pid::from_u32(pid);
    let process = system
        .process(sys_pid)
        .filter(|p| p.exists())
        .ok_or_else(|| {
            DevopsError::NotFound(format!(
                "no process with pid {pid} (it may have exited); use process_list to find live pids"
            ))
        })?;
    let start = process.start_time();
    let disk = process.disk_usage();
    Ok(ProcessDetails {
        pid,
        parent_pid: process.parent().map(Pid::as_u32),
        name: process.name().to_string_lossy().into_owned(),
        executable: process.exe().map(|p| p.display().to_string()),
        command_line: redacted_command_line(process)
            .iter()
            .map(|a| truncate_chars(a, MAX_COMMAND_CHARS))
            .collect(),
        cwd: process.cwd().map(|p| p.display().to_string()),
        status: process.status().to_string(),
        user_id: process.user_id().map(|u| u.to_string()),
        start_time_unix: start,
        start_time: i64::try_from(start)
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        run_time_secs: process.run_time(),
        cpu_percent: round2(f64::from(process.cpu_usage())),
        accumulated_cpu_time_ms: process.accumulated_cpu_time(),
        memory_bytes: process.memory(),
        virtual_memory_bytes: process.virtual_memory(),
        disk_read_bytes: disk.total_read_bytes,
        disk_written_bytes: disk.total_written_bytes,
        open_files: process.open_files(),
        open_files_limit: process.open_files_limit(),
        thread_count: process.tasks().map(|t| t.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_this_test_process_by_filter() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().to_uppercase();
        let listing = process_list(ProcessSort::Pid, Some(MAX_PROCESS_LIMIT), Some(&name[..10]))
            .await
            .unwrap();
        assert!(listing.processes.iter().any(|p| p.pid == me), "{listing:?}");
        assert!(listing.matched <= listing.total_processes);
        let pids: Vec<u32> = listing.processes.iter().map(|p| p.pid).collect();
        let mut sorted = pids.clone();
        sorted.sort();
        assert_eq!(pids, sorted);
    }

    #[tokio::test]
    async fn sorts_by_memory_and_respects_limit() {
        let listing = process_list(ProcessSort::Memory, Some(3), None)
            .await
            .unwrap();
        assert!(listing.processes.len() <= 3);
        assert!(listing.total_processes >= listing.processes.len());
        let mem: Vec<u64> = listing.processes.iter().map(|p| p.memory_bytes).collect();
        assert!(mem.windows(2).all(|w| w[0] >= w[1]), "{mem:?}");
    }

    #[tokio::test]
    async fn rejects_bad_limit() {
        let err = process_list(ProcessSort::Cpu, Some(0), None)
            .await
            .unwrap_err();
        assert!(matches!(err, DevopsError::InvalidInput(_)));
    }

    #[tokio::test]
    async fn details_of_this_process() {
        let me = std::process::id();
        let info = process_info(me).await.unwrap();
        assert_eq!(info.pid, me);
        assert_eq!(info.parent_pid, Some(std::os::unix::process::parent_id()));
        assert!(info.memory_bytes > 0);
        assert!(info.open_files.unwrap() >= 3, "{info:?}");
        assert!(info.thread_count.unwrap() >= 1);
        assert!(info.start_time.unwrap().ends_with('Z'));
        assert!(!info.command_line.is_empty());
    }

    #[tokio::test]
    async fn unknown_pid_is_not_found() {
        // Linux pids never exceed 2^22 (pid_max limit).
        let err = process_info(4_194_305 + 7).await.unwrap_err();
        assert!(
            matches!(err, DevopsError::NotFound(ref m) if m.contains("process_list")),
            "{err}"
        );
    }
}
