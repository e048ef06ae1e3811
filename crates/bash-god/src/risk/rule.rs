//! The shape of a rule row: what a row is checked on, its conditions and the path classes
//! they test (the rows themselves are in `table.rs`).

use super::RiskLevel;
use super::words;

/// The rules for one family of commands.
#[derive(Debug)]
pub struct Entry {
    /// Command names (basenames, after wrappers such as `sudo`/`env`/`xargs` are looked
    /// through); a name ending in `*` matches every name with that prefix.
    pub commands: &'static [&'static str],
    /// Conditions on the whole command that gate every check of the entry.
    pub when: &'static [Cond],
    pub checks: &'static [Check],
}

/// Rows tried in order on each instance of the subject; the first row whose conditions all
/// hold fires (one reason per subject instance).
#[derive(Debug)]
pub struct Check {
    pub subject: Subject,
    pub rows: &'static [Row],
}

#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// Stable identifier reported as `rule`.
    pub rule: &'static str,
    pub level: RiskLevel,
    pub when: &'static [Cond],
    /// Placeholders: `{name}` the command name, `{word}` the matched word as written,
    /// `{target}` the subject's text, `{roots}` the starting points of `find`.
    pub reason: &'static str,
    /// Commands on which this row fires (a test checks each one).
    pub examples: &'static [&'static str],
}

/// What the rows of a check are evaluated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The command, once.
    Command,
    /// Each selected operand in turn (`{target}`).
    Each(Operands),
    /// The value of the first argument starting with this prefix, e.g. `of=` of `dd`.
    ValueOf(&'static str),
    /// Each `-exec`/`-execdir`/`-ok`/`-okdir … ;` segment of `find`, after the command it
    /// runs has been rated like any other.
    ExecSegment,
    /// Each word of the wrapper chain (`sudo env nice …`), before options end it.
    WrapperWord,
    /// The target of each redirection that writes (`>`, `>>`, `&>`, `<>`, `>|`).
    RedirectTarget,
}

/// Which operands (non-option arguments) a subject or condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operands {
    All,
    Last,
    AllButFirst,
    AllButLast,
    /// The starting points of `find` (arguments before the first option or expression).
    FindRoots,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// One of the short option letters (alone or clustered, `-rf`) or one of the long options.
    Flag(&'static str, &'static [&'static str]),
    /// Some argument is exactly this.
    Arg(&'static str),
    /// Exactly this many arguments after the command name.
    ArgCount(usize),
    /// The first operand (the subcommand) is one of these.
    Subcommand(&'static [&'static str]),
    /// The subject's text is in this class.
    Is(PathClass),
    /// Some selected operand is in this class.
    Any(Operands, PathClass),
    /// The first operand is a mode that makes files writable by every user.
    WorldWritableMode,
    /// An argument holds a substitution (`$(…)`, `<(…)`, backticks) that runs a downloader.
    RunsDownload,
    /// The `find -exec` segment runs one of these commands.
    ExecRuns(&'static [&'static str]),
    /// Rating the command of the `find -exec` segment found nothing dangerous.
    ExecNotDangerous,
    /// The redirection truncates its target (`>`, `>|`, `&>`), not `>>` or `<>`.
    Truncates,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathClass {
    /// `/`, `/*`, `~`, `$HOME`, `.`, `..`, `*` or a system directory itself.
    Critical,
    /// Under a system directory (`/etc`, `/usr`, `/dev`, …).
    System,
    /// Under a system directory but not `/dev/…` or `/proc/self/…`.
    SystemFile,
    /// A block device or raw memory (`/dev/sd*`, `/dev/nvme*`, `/dev/mem`, …).
    BlockDevice,
    /// Starts with `$VAR/` without a `${VAR:?}` guard.
    UnguardedVariable,
    /// Exactly `/dev/null`.
    DevNull,
    /// Not under `/dev/`.
    NotDevice,
    /// Critical or under a system directory.
    CriticalOrSystem,
    /// A block device or under a system directory.
    DeviceOrSystem,
}

impl PathClass {
    /// Whether `path` (a word as written, quotes removed) is in this class.
    pub fn contains(self, path: &str) -> bool {
        use words::{is_block_device, is_critical_path, is_system_path};
        match self {
            Self::Critical => is_critical_path(path),
            Self::System => is_system_path(path),
            Self::SystemFile => {
                is_system_path(path)
                    && !path.starts_with("/dev/")
                    && !path.starts_with("/proc/self/")
            }
            Self::BlockDevice => is_block_device(path),
            Self::UnguardedVariable => words::starts_with_unguarded_variable(path),
            Self::DevNull => path == "/dev/null",
            Self::NotDevice => !path.starts_with("/dev/"),
            Self::CriticalOrSystem => is_critical_path(path) || is_system_path(path),
            Self::DeviceOrSystem => is_block_device(path) || is_system_path(path),
        }
    }
}

impl Entry {
    /// Whether the entry is about the command called `name`.
    pub fn applies_to(&self, name: &str) -> bool {
        self.commands.iter().any(|c| match c.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => *c == name,
        })
    }
}
