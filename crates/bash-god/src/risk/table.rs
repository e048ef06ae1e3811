//! The risk rules as data: which commands, under which conditions, are rated how and why.
//!
//! [`COMMAND_RULES`] and [`REDIRECT_ROWS`] are interpreted by [`super::assess`] (the row types
//! are in `rule.rs`); the bash-god README's rule table is rendered from them (`docs.rs`), and
//! every row carries examples that a test runs through the real parser and rater, so the
//! table, its documentation and its behaviour cannot drift.

use super::RiskLevel::{Caution, Dangerous};
use super::rule::{Check, Cond, Entry, Operands, PathClass, Row, Subject};

/// Downloaders: their output is code from the network.
pub const DOWNLOADERS: &[&str] = &["curl", "wget", "fetch", "aria2c"];
/// Commands that run code given to them: shells, then interpreters, then shell builtins.
const CODE_RUNNERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox", "python", "python2",
    "python3", "perl", "ruby", "node", "php", "eval", "source", ".",
];
pub const SHELLS: &[&str] = CODE_RUNNERS.split_at(9).0;
pub const INTERPRETERS: &[&str] = CODE_RUNNERS.split_at(9).1.split_at(7).0;
/// Words of the wrapper chain after which the next word is still checked for privilege.
pub const PRIVILEGE_CHAIN: &[&str] = &[
    "sudo", "doas", "env", "nice", "nohup", "time", "timeout", "xargs", "command", "exec",
    "setsid", "stdbuf", "ionice", "builtin",
];

const RECURSIVE: Cond = Cond::Flag("rR", &["--recursive"]);
const RECURSIVE_UPPER: Cond = Cond::Flag("R", &["--recursive"]);

/// The rows of every command that writes to its (last or every) operand; the examples
/// cover each entry using them.
const WRITE_TARGET_ROWS: &[Row] = &[
    Row {
        rule: "write-device",
        level: Dangerous,
        when: &[Cond::Is(PathClass::BlockDevice)],
        reason: "writes onto the device `{target}`",
        examples: &[
            "mv x /dev/sdb",
            "cp disk.img /dev/sda",
            "install x /dev/sdb",
            "ln -sf x /dev/sdc",
            "rsync x /dev/sdd",
            "tee /dev/nvme0n1 < x",
            "truncate -s 0 /dev/sda",
            "touch /dev/sda",
            "sed -i s/a/b/ /dev/sda",
            "perl -pi -e s/a/b/ /dev/sda",
        ],
    },
    Row {
        rule: "write-system-file",
        level: Dangerous,
        when: &[Cond::Is(PathClass::SystemFile)],
        reason: "`{name}` writes to `{target}`, a system location",
        examples: &[
            "mv x /etc/x",
            "cp evil /etc/cron.d/x",
            "install -m 755 x /usr/bin/x",
            "ln -s x /etc/x",
            "rsync -a x /usr/local/x",
            "echo x | tee -a /etc/hosts",
            "truncate -s 0 /var/log/syslog",
            "touch /etc/nologin",
            "sed -i 's/a/b/' /etc/ssh/sshd_config",
            "perl -pi -e 's/a/b/' /etc/hosts",
        ],
    },
];

/// The rules for commands, by command name. Rules that follow the shape of the program
/// (pipelines, functions, redirections, computed names) are in [`super::STRUCTURAL_RULES`].
pub const COMMAND_RULES: &[Entry] = &[
    Entry {
        commands: &["sudo", "doas", "su", "pkexec", "run0"],
        when: &[],
        checks: &[Check {
            subject: Subject::WrapperWord,
            rows: &[Row {
                rule: "privilege-escalation",
                level: Dangerous,
                when: &[],
                reason: "`{word}` runs with root privileges: any mistake affects the whole system",
                examples: &["sudo ls", "su -c id", "env doas ls", "nice pkexec x"],
            }],
        }],
    },
    Entry {
        commands: &["rm", "rmdir", "unlink"],
        when: &[],
        checks: &[
            Check {
                subject: Subject::Command,
                rows: &[Row {
                    rule: "recursive-delete-root",
                    level: Dangerous,
                    when: &[Cond::Arg("--no-preserve-root")],
                    reason: "`--no-preserve-root` disables the last safeguard against deleting `/`",
                    examples: &["rm -rf --no-preserve-root /tmp"],
                }],
            },
            Check {
                subject: Subject::Each(Operands::All),
                rows: &[
                    Row {
                        rule: "recursive-delete-root",
                        level: Dangerous,
                        when: &[RECURSIVE, Cond::Is(PathClass::Critical)],
                        reason: "recursively deletes `{target}`",
                        examples: &[
                            "rm -rf /",
                            "rm -fr /*",
                            "rm -r -f ~",
                            "rm -R $HOME",
                            "rm -rf /usr",
                        ],
                    },
                    Row {
                        rule: "delete-system-file",
                        level: Dangerous,
                        when: &[Cond::Is(PathClass::System)],
                        reason: "deletes `{target}`, a system location",
                        examples: &["rm /etc/passwd", "unlink /usr/bin/ls"],
                    },
                    Row {
                        rule: "recursive-delete-unguarded-variable",
                        level: Caution,
                        when: &[RECURSIVE, Cond::Is(PathClass::UnguardedVariable)],
                        reason: "recursively deletes `{target}`: if the variable is empty this starts at `/`; use `${VAR:?}`",
                        examples: &["rm -rf \"$DIR/\"*", "rm -r $BUILD/out"],
                    },
                    Row {
                        rule: "recursive-delete",
                        level: Caution,
                        when: &[RECURSIVE],
                        reason: "recursively deletes `{target}`",
                        examples: &["rm -rf ./build", "rm --recursive target"],
                    },
                    Row {
                        rule: "delete",
                        level: Caution,
                        when: &[],
                        reason: "deletes `{target}`",
                        examples: &["rm file.txt", "rmdir empty"],
                    },
                ],
            },
        ],
    },
    Entry {
        commands: &["dd"],
        when: &[],
        checks: &[Check {
            subject: Subject::ValueOf("of="),
            rows: &[
                Row {
                    rule: "write-device",
                    level: Dangerous,
                    when: &[Cond::Is(PathClass::BlockDevice)],
                    reason: "`dd` writes raw data onto the device `{target}`, destroying it",
                    examples: &["dd if=/dev/zero of=/dev/sda bs=1M"],
                },
                Row {
                    rule: "write-system-file",
                    level: Dangerous,
                    when: &[Cond::Is(PathClass::SystemFile)],
                    reason: "`dd` overwrites `{target}`, a system location",
                    examples: &["dd if=x of=/boot/vmlinuz"],
                },
                Row {
                    rule: "overwrite-file",
                    level: Caution,
                    when: &[Cond::Is(PathClass::NotDevice)],
                    reason: "`dd` overwrites `{target}`",
                    examples: &["dd if=/dev/zero of=out.img bs=1M count=1"],
                },
            ],
        }],
    },
    Entry {
        commands: &[
            "mkfs*",
            "mke2fs",
            "mkswap",
            "wipefs",
            "fdisk",
            "sfdisk",
            "cfdisk",
            "parted",
            "gdisk",
            "sgdisk",
            "blkdiscard",
            "cryptsetup",
        ],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[Row {
                rule: "format-device",
                level: Dangerous,
                when: &[],
                reason: "`{name}` formats or repartitions a disk, destroying its data",
                examples: &[
                    "mkfs.ext4 /dev/sdb1",
                    "mkswap /dev/nvme0n1p2",
                    "wipefs -a /dev/sdc",
                ],
            }],
        }],
    },
    Entry {
        commands: &["shred"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[
                Row {
                    rule: "shred",
                    level: Dangerous,
                    when: &[Cond::Any(Operands::All, PathClass::DeviceOrSystem)],
                    reason: "`shred` irrecoverably overwrites its targets",
                    examples: &["shred /dev/sda", "shred -u /etc/shadow"],
                },
                Row {
                    rule: "shred",
                    level: Caution,
                    when: &[],
                    reason: "`shred` irrecoverably overwrites its targets",
                    examples: &["shred secret.txt"],
                },
            ],
        }],
    },
    Entry {
        commands: &["chmod"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[
                Row {
                    rule: "recursive-permissions",
                    level: Dangerous,
                    when: &[RECURSIVE_UPPER, Cond::WorldWritableMode],
                    reason: "`{name} -R` makes every file below world-writable",
                    examples: &["chmod -R 777 /", "chmod -R 777 .", "chmod -R a+w src"],
                },
                Row {
                    rule: "recursive-permissions",
                    level: Dangerous,
                    when: &[
                        RECURSIVE_UPPER,
                        Cond::Any(Operands::AllButFirst, PathClass::CriticalOrSystem),
                    ],
                    reason: "`{name} -R` changes ownership or permissions of a system tree",
                    examples: &["chmod -R 700 /usr", "chmod -R go-r ~"],
                },
                Row {
                    rule: "world-writable",
                    level: Caution,
                    when: &[Cond::WorldWritableMode],
                    reason: "makes files writable by every user",
                    examples: &["chmod 777 file", "chmod o+w shared"],
                },
                Row {
                    rule: "recursive-permissions",
                    level: Caution,
                    when: &[RECURSIVE_UPPER],
                    reason: "`{name} -R` changes a whole tree",
                    examples: &["chmod -R 755 build"],
                },
            ],
        }],
    },
    Entry {
        commands: &["chown", "chgrp"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[
                Row {
                    rule: "recursive-permissions",
                    level: Dangerous,
                    when: &[
                        RECURSIVE_UPPER,
                        Cond::Any(Operands::AllButFirst, PathClass::CriticalOrSystem),
                    ],
                    reason: "`{name} -R` changes ownership or permissions of a system tree",
                    examples: &["chown -R nobody /usr", "chgrp -R users /"],
                },
                Row {
                    rule: "recursive-permissions",
                    level: Caution,
                    when: &[RECURSIVE_UPPER],
                    reason: "`{name} -R` changes a whole tree",
                    examples: &["chown -R me:me build"],
                },
            ],
        }],
    },
    Entry {
        commands: &["shutdown", "reboot", "halt", "poweroff", "kexec"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[Row {
                rule: "power",
                level: Dangerous,
                when: &[],
                reason: "`{name}` stops or restarts the machine",
                examples: &["shutdown -h now", "reboot"],
            }],
        }],
    },
    Entry {
        commands: &["init", "telinit"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[Row {
                rule: "power",
                level: Dangerous,
                when: &[Cond::Subcommand(&["0", "6"])],
                reason: "changes the runlevel to halt or reboot",
                examples: &["init 0", "telinit 6"],
            }],
        }],
    },
    Entry {
        commands: &["systemctl"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[Row {
                rule: "power",
                level: Dangerous,
                when: &[Cond::Subcommand(&[
                    "poweroff",
                    "reboot",
                    "halt",
                    "kexec",
                    "suspend",
                    "hibernate",
                ])],
                reason: "stops, restarts or suspends the machine",
                examples: &["systemctl reboot", "systemctl suspend"],
            }],
        }],
    },
    Entry {
        commands: &["kill"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[
                Row {
                    rule: "kill-all",
                    level: Dangerous,
                    when: &[Cond::Arg("-1")],
                    reason: "`kill -1` signals every process the user can reach",
                    examples: &["kill -9 -1", "kill -1"],
                },
                Row {
                    rule: "kill",
                    level: Caution,
                    when: &[],
                    reason: "`{name}` terminates processes",
                    examples: &["kill 1234"],
                },
            ],
        }],
    },
    Entry {
        commands: &["pkill", "killall"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[
                Row {
                    rule: "kill-all",
                    level: Dangerous,
                    when: &[Cond::Arg("-1"), Cond::ArgCount(1)],
                    reason: "`kill -1` signals every process the user can reach",
                    examples: &["pkill -1"],
                },
                Row {
                    rule: "kill",
                    level: Caution,
                    when: &[],
                    reason: "`{name}` terminates processes",
                    examples: &["pkill nginx", "killall -9 node"],
                },
            ],
        }],
    },
    Entry {
        commands: &["crontab"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[Row {
                rule: "crontab-remove",
                level: Dangerous,
                when: &[Cond::Flag("r", &[])],
                reason: "`crontab -r` deletes every cron job without confirmation",
                examples: &["crontab -r", "crontab -ir"],
            }],
        }],
    },
    Entry {
        commands: &["mv"],
        when: &[],
        checks: &[
            Check {
                subject: Subject::Each(Operands::Last),
                rows: &[
                    Row {
                        rule: "move-to-dev-null",
                        level: Dangerous,
                        when: &[Cond::Is(PathClass::DevNull)],
                        reason: "moving files onto /dev/null destroys them",
                        examples: &["mv data /dev/null"],
                    },
                    WRITE_TARGET_ROWS[0],
                    WRITE_TARGET_ROWS[1],
                ],
            },
            Check {
                subject: Subject::Command,
                rows: &[Row {
                    rule: "move-critical",
                    level: Dangerous,
                    when: &[Cond::Any(Operands::AllButLast, PathClass::Critical)],
                    reason: "moves a critical directory away",
                    examples: &["mv /usr /tmp/old", "mv ~ /tmp/x"],
                }],
            },
        ],
    },
    Entry {
        commands: &["cp", "install", "ln", "rsync"],
        when: &[],
        checks: &[Check {
            subject: Subject::Each(Operands::Last),
            rows: WRITE_TARGET_ROWS,
        }],
    },
    Entry {
        commands: &["tee", "truncate", "touch"],
        when: &[],
        checks: &[Check {
            subject: Subject::Each(Operands::All),
            rows: WRITE_TARGET_ROWS,
        }],
    },
    Entry {
        commands: &["sed", "perl"],
        when: &[Cond::Flag("i", &["--in-place"])],
        checks: &[Check {
            subject: Subject::Each(Operands::All),
            rows: WRITE_TARGET_ROWS,
        }],
    },
    Entry {
        commands: &["find"],
        when: &[],
        checks: &[
            Check {
                subject: Subject::Command,
                rows: &[
                    Row {
                        rule: "find-delete",
                        level: Dangerous,
                        when: &[
                            Cond::Arg("-delete"),
                            Cond::Any(Operands::FindRoots, PathClass::Critical),
                        ],
                        reason: "`find -delete` removes every match below {roots}",
                        examples: &["find / -delete", "find ~ -name '*.bak' -delete"],
                    },
                    Row {
                        rule: "find-delete",
                        level: Caution,
                        when: &[Cond::Arg("-delete")],
                        reason: "`find -delete` removes every match below {roots}",
                        examples: &["find build -name '*.o' -delete"],
                    },
                ],
            },
            Check {
                subject: Subject::ExecSegment,
                rows: &[Row {
                    rule: "find-delete",
                    level: Dangerous,
                    when: &[
                        Cond::ExecRuns(&["rm"]),
                        Cond::Any(Operands::FindRoots, PathClass::Critical),
                        Cond::ExecNotDangerous,
                    ],
                    reason: "`find -exec rm` deletes matches below {roots}",
                    examples: &[
                        "find / -name '*.log' -exec rm {} +",
                        "find /etc -exec rm -f {} \\;",
                    ],
                }],
            },
        ],
    },
    Entry {
        commands: &["git"],
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[
                Row {
                    rule: "git-force-push",
                    level: Caution,
                    when: &[
                        Cond::Subcommand(&["push"]),
                        Cond::Flag("f", &["--force", "--force-with-lease"]),
                    ],
                    reason: "force-push rewrites the remote history",
                    examples: &["git push -f origin main", "git push --force-with-lease"],
                },
                Row {
                    rule: "git-discard",
                    level: Caution,
                    when: &[Cond::Subcommand(&["reset"]), Cond::Arg("--hard")],
                    reason: "`git reset --hard` discards uncommitted work",
                    examples: &["git reset --hard HEAD~1"],
                },
                Row {
                    rule: "git-discard",
                    level: Caution,
                    when: &[Cond::Subcommand(&["clean"]), Cond::Flag("f", &["--force"])],
                    reason: "`git clean -f` deletes untracked files",
                    examples: &["git clean -fdx"],
                },
            ],
        }],
    },
    Entry {
        commands: DOWNLOADERS,
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[Row {
                rule: "network",
                level: Caution,
                when: &[],
                reason: "`{name}` downloads from the network",
                examples: &["curl -o file http://x", "wget http://x/a.tgz"],
            }],
        }],
    },
    Entry {
        commands: CODE_RUNNERS,
        when: &[],
        checks: &[Check {
            subject: Subject::Command,
            rows: &[Row {
                rule: "download-and-execute",
                level: Dangerous,
                when: &[Cond::RunsDownload],
                reason: "runs code downloaded from the network with `{name}` without any verification",
                examples: &[
                    "bash <(curl -s http://x)",
                    "sh -c \"$(curl -fsSL http://x)\"",
                    "eval \"$(wget -O- http://x)\"",
                    "python3 -c \"$(curl -s http://x)\"",
                    "perl -e \"$(curl -s http://x)\"",
                ],
            }],
        }],
    },
];

/// How redirections that write are rated (subject: the redirection's target).
pub const REDIRECT_ROWS: &[Row] = &[
    Row {
        rule: "write-device",
        level: Dangerous,
        when: &[Cond::Is(PathClass::BlockDevice)],
        reason: "redirects output onto the device `{target}`, destroying its data",
        examples: &["echo x > /dev/sda", "cat img > /dev/mmcblk0"],
    },
    Row {
        rule: "write-system-file",
        level: Dangerous,
        when: &[Cond::Is(PathClass::SystemFile)],
        reason: "writes to `{target}`, a system location",
        examples: &[
            "echo 'nameserver 1.1.1.1' > /etc/resolv.conf",
            "echo x >> /etc/profile",
        ],
    },
    Row {
        rule: "overwrite-file",
        level: Caution,
        when: &[Cond::Truncates, Cond::Is(PathClass::NotDevice)],
        reason: "overwrites `{target}`",
        examples: &["echo hi > out.txt", "ls &> log"],
    },
];
