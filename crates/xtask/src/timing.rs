//! Wall-clock timing of named steps, printed as one table when a task ends (also when it
//! fails, so a slow or failing step is visible without scrolling back).

use std::time::{Duration, Instant};

/// The outcome of one timed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    /// Not run, with the reason printed where it was decided.
    Skipped,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "ok",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "SKIPPED",
        }
    }
}

/// Runs `step`: its result, whether it passed, and its wall time (for [`Steps::time`] and
/// for callers that record into shared steps).
pub fn measure<T>(
    step: impl FnOnce() -> anyhow::Result<T>,
) -> (anyhow::Result<T>, Outcome, Duration) {
    let started = Instant::now();
    let result = step();
    let outcome = if result.is_ok() {
        Outcome::Passed
    } else {
        Outcome::Failed
    };
    (result, outcome, started.elapsed())
}

/// Steps in the order they ran.
#[derive(Debug, Default)]
pub struct Steps {
    started: Option<Instant>,
    rows: Vec<(String, Outcome, Duration)>,
    /// A remark per row index, printed after the outcome (e.g. the disk space left).
    notes: Vec<(usize, String)>,
}

impl Steps {
    pub fn new() -> Steps {
        Steps {
            started: Some(Instant::now()),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Runs `step`, recording its wall time and whether it passed.
    pub fn time<T>(
        &mut self,
        name: impl Into<String>,
        step: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let (result, outcome, elapsed) = measure(step);
        self.rows.push((name.into(), outcome, elapsed));
        result
    }

    /// Records a step that took `elapsed` (measured elsewhere).
    pub fn record(&mut self, name: impl Into<String>, outcome: Outcome, elapsed: Duration) {
        self.rows.push((name.into(), outcome, elapsed));
    }

    /// Adds a remark to the step recorded last.
    pub fn note_last(&mut self, note: impl Into<String>) {
        if let Some(last) = self.rows.len().checked_sub(1) {
            self.notes.push((last, note.into()));
        }
    }

    pub fn rows(&self) -> &[(String, Outcome, Duration)] {
        &self.rows
    }

    /// The table: one line per step and the total wall time since `new`.
    pub fn table(&self, title: &str) -> String {
        let width = self
            .rows
            .iter()
            .map(|(name, ..)| name.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let mut text = format!("{title}\n");
        for (index, (name, outcome, elapsed)) in self.rows.iter().enumerate() {
            let line = format!(
                "  {name:<width$}  {:>9}  {:<7}",
                human(*elapsed),
                outcome.as_str()
            );
            let notes: Vec<&str> = self
                .notes
                .iter()
                .filter(|(row, _)| *row == index)
                .map(|(_, note)| note.as_str())
                .collect();
            if notes.is_empty() {
                text.push_str(line.trim_end());
            } else {
                text.push_str(&format!("{line}  {}", notes.join("; ")));
            }
            text.push('\n');
        }
        if let Some(started) = self.started {
            text.push_str(&format!(
                "  {:<width$}  {:>9}\n",
                "total",
                human(started.elapsed())
            ));
        }
        text
    }
}

/// `1m 23.4s` / `4.2s`.
pub fn human(elapsed: Duration) -> String {
    // Round once, to the tenths shown, before splitting off minutes: 899.96 s is
    // "15m 00.0s", not "14m 60.0s".
    let tenths = (elapsed.as_secs_f64() * 10.0).round() as u64;
    if tenths >= 600 {
        format!(
            "{}m {:02}.{}s",
            tenths / 600,
            tenths % 600 / 10,
            tenths % 10
        )
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_stopwatch() {
        assert_eq!(human(Duration::from_millis(4_240)), "4.2s");
        assert_eq!(human(Duration::from_millis(83_400)), "1m 23.4s");
        assert_eq!(human(Duration::from_millis(899_960)), "15m 00.0s");
        assert_eq!(human(Duration::from_millis(59_960)), "1m 00.0s");
        assert_eq!(human(Duration::from_millis(605_000)), "10m 05.0s");
    }

    #[test]
    fn the_table_lists_every_step_with_its_outcome() {
        let mut steps = Steps::new();
        assert_eq!(steps.time("build", || Ok(7)).unwrap(), 7);
        assert!(
            steps
                .time("audit", || -> anyhow::Result<()> { anyhow::bail!("no") })
                .is_err()
        );
        steps.record("images", Outcome::Skipped, Duration::ZERO);
        let table = steps.table("steps:");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "steps:");
        assert!(
            lines[1].starts_with("  build ") && lines[1].ends_with("ok"),
            "{table}"
        );
        assert!(lines[2].ends_with("FAILED"), "{table}");
        assert!(
            lines[3].contains("images") && lines[3].ends_with("SKIPPED"),
            "{table}"
        );
        assert!(lines[4].trim_start().starts_with("total"), "{table}");
    }

    #[test]
    fn a_note_follows_the_outcome_of_its_own_step() {
        let mut steps = Steps::new();
        steps.note_last("before any step: dropped");
        steps.record("test", Outcome::Passed, Duration::from_secs(3));
        steps.note_last("12.5 GiB free");
        steps.record("dist", Outcome::Failed, Duration::from_secs(4));
        let table = steps.table("steps:");
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].ends_with("ok       12.5 GiB free"), "{table}");
        assert!(lines[2].ends_with("FAILED"), "{table}");
        assert!(!table.contains("dropped"), "{table}");
    }
}
