//! What the rules look at in a command's words: the argv behind wrappers, options,
//! operands, and classes of paths.

use crate::parse::{WordInfo, basename};

/// Directories whose loss or modification breaks the system.
pub const SYSTEM_DIRS: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/opt", "/proc", "/root",
    "/sbin", "/srv", "/sys", "/usr", "/var",
];
/// Block device name prefixes under `/dev`.
pub const BLOCK_DEVICES: &[&str] = &[
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

/// Each wrapper [`effective_argv`] looks through, with its options that take a separate value.
pub const WRAPPERS: &[(&str, &[&str])] = &[
    (
        "sudo",
        &[
            "-u", "-g", "-p", "-C", "-D", "-h", "-r", "-t", "-U", "-R", "-T",
        ],
    ),
    ("doas", &["-u", "-C"]),
    ("env", &["-u", "-C", "-S", "--unset", "--chdir"]),
    ("nice", &["-n", "--adjustment"]),
    ("ionice", &["-c", "-n", "-p", "-P", "-u"]),
    ("timeout", &["-s", "-k", "--signal", "--kill-after"]),
    (
        "xargs",
        &[
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
    ),
    ("exec", &["-a"]),
    ("watch", &["-n", "--interval", "-d"]),
    ("nohup", &[]),
    ("time", &[]),
    ("command", &[]),
    ("builtin", &[]),
    ("setsid", &[]),
    ("stdbuf", &[]),
    ("chrt", &[]),
    ("taskset", &[]),
    ("unbuffer", &[]),
    ("caffeinate", &[]),
    ("chronic", &[]),
];

/// Strips command wrappers (`sudo`, `env`, `nice`, `timeout`, `xargs`…) and their
/// options, returning the argv of the command that really runs.
pub fn effective_argv(words: &[WordInfo]) -> &[WordInfo] {
    let mut rest = words;
    loop {
        let Some(first) = rest.first() else {
            return rest;
        };
        let wrapper = basename(&first.literal);
        let Some((_, takes_value)) = WRAPPERS.iter().find(|(name, _)| *name == wrapper) else {
            return rest;
        };
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

/// Whether `args` hold one of the short option letters of `short` (alone or clustered, as
/// in `-rf`) or one of the `long` options, before any `--`.
pub fn has_flag(args: &[WordInfo], short: &str, long: &[&str]) -> bool {
    args.iter()
        .map(|w| w.literal.as_str())
        .take_while(|a| *a != "--")
        .any(|a| {
            long.contains(&a)
                || (a.starts_with('-')
                    && !a.starts_with("--")
                    && a[1..].chars().any(|c| short.contains(c)))
        })
}

/// Non-option arguments (everything after `--` counts).
pub fn operands(args: &[WordInfo]) -> Vec<&WordInfo> {
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

/// The starting points of `find`: its arguments before the first option or expression.
pub fn find_roots(args: &[WordInfo]) -> Vec<&WordInfo> {
    args.iter()
        .take_while(|w| {
            let a = w.literal.as_str();
            !a.starts_with('-') && a != "(" && a != "!"
        })
        .collect()
}

/// `/`, `/*`, `~`, `$HOME`, `.`, `..` and system directories (with or without `/*`).
pub fn is_critical_path(path: &str) -> bool {
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

pub fn is_system_path(path: &str) -> bool {
    SYSTEM_DIRS.iter().any(|d| is_under(path, d))
}

pub fn is_block_device(path: &str) -> bool {
    BLOCK_DEVICES.iter().any(|d| path.starts_with(d))
}

/// `$DIR/…` with no `${DIR:?}` guard: deletes from `/` when DIR is empty.
pub fn starts_with_unguarded_variable(path: &str) -> bool {
    (path.starts_with('$') && !path.starts_with("$(") && !path.contains(":?")) && path.contains('/')
}

/// A `chmod` mode that makes files writable by every user (`777`, `666`, `a+w`, `o+w`, `+rwx`…).
pub fn is_world_writable_mode(mode: &str) -> bool {
    mode.ends_with("777")
        || mode.ends_with("666")
        || mode.contains("a+w")
        || mode.contains("o+w")
        || mode.contains("a+rwx")
        || mode.contains("+rwx") && !mode.starts_with('u')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_classes() {
        for critical in [
            "/",
            "/*",
            "~",
            "~/",
            "$HOME",
            "${HOME}/*",
            ".",
            "..",
            "/usr",
            "/etc/",
        ] {
            assert!(is_critical_path(critical), "{critical}");
        }
        for not_critical in ["/usr/local/x", "./build", "~/x", "/tmp"] {
            assert!(!is_critical_path(not_critical), "{not_critical}");
        }
        assert!(is_system_path("/etc/hosts") && is_system_path("/usr"));
        assert!(!is_system_path("/usrx") && !is_system_path("/tmp/x"));
        assert!(is_block_device("/dev/nvme0n1p2") && !is_block_device("/dev/null"));
        assert!(starts_with_unguarded_variable("$DIR/x"));
        assert!(!starts_with_unguarded_variable("${DIR:?}/x"));
        assert!(!starts_with_unguarded_variable("$(pwd)/x"));
        assert!(!starts_with_unguarded_variable("$DIR"));
        for mode in ["777", "0666", "a+w", "o+w", "+rwx", "go+rwx"] {
            assert!(is_world_writable_mode(mode), "{mode}");
        }
        for mode in ["755", "+x", "u+rwx", "g+w"] {
            assert!(!is_world_writable_mode(mode), "{mode}");
        }
    }
}
