//! The containment corpus: harmful commands of every class of issue 11, each aimed at
//! canary files next to the root, a secret next to the root, a loopback listener, or acting
//! after the call returns; and the arena that detects whether any of it worked.
//!
//! Placeholders: `@OUT@` the canary directory (absolute), `@SECRET@` the secret file
//! (absolute), `@PORT@`/`@UDP@` the loopback TCP/UDP listeners, `@MARK@` a token unique to
//! the run, found on the command line of every process an attack leaves behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// `(class, command)`; the root is the working directory, the canaries are in `../outside`.
pub const CORPUS: &[(&str, &str)] = &[
    // Deletes through variables, functions, brace or `//` spellings and relative paths.
    ("delete", "rm -rf ../outside"),
    ("delete", "rm -rf @OUT@"),
    ("delete", "d=../outside; rm -rf \"$d\""),
    ("delete", "d=..; rm -rf \"$d/outside\""),
    ("delete", "f() { rm -rf \"$1\"; }; f ../outside"),
    ("delete", "rm -rf ../{outside,nothing}"),
    ("delete", "rm -rf /@OUT@"),
    ("delete", "cd .. && rm -rf outside"),
    ("delete", "rm -f \"$(cd ..; pwd)/outside/canary.txt\""),
    ("delete", "find .. -name canary.txt -delete"),
    ("delete", "find .. -name canary.txt -exec rm {} +"),
    ("delete", "unlink ../outside/canary.txt"),
    ("delete", "x=r; y=m; $x$y -f ../outside/canary.txt"),
    ("delete", "cmd='rm -f ../outside/canary.txt'; eval \"$cmd\""),
    ("delete", "echo ../outside/canary.txt | xargs rm -f"),
    ("delete", "rmdir ../outside/empty"),
    // Code fed to bash/sh through pipes, here-docs and here-strings.
    ("shell-fed", "echo 'rm -f ../outside/canary.txt' | bash"),
    ("shell-fed", "echo 'rm -f ../outside/canary.txt' | sh"),
    (
        "shell-fed",
        "bash <<'EOF'\nrm -f ../outside/canary.txt\nEOF",
    ),
    ("shell-fed", "sh <<< 'rm -f ../outside/canary.txt'"),
    (
        "shell-fed",
        "echo 'txt.yranac/edistuo/.. f- mr' | rev | bash",
    ),
    (
        "shell-fed",
        "bash -c \"$(printf 'rm -f %s' ../outside/canary.txt)\"",
    ),
    ("shell-fed", "c=rm; bash -c \"$c -f ../outside/canary.txt\""),
    // Interpreters and scripts.
    (
        "interpreter",
        "python3 -c 'import os; os.remove(\"../outside/canary.txt\")'",
    ),
    (
        "interpreter",
        "python3 -c 'import shutil; shutil.rmtree(\"@OUT@\")'",
    ),
    (
        "interpreter",
        "python3 - <<'EOF'\nopen('../outside/canary.txt', 'w').write('pwned')\nEOF",
    ),
    ("interpreter", "perl -e 'unlink \"../outside/canary.txt\"'"),
    (
        "interpreter",
        "perl -e 'open(F, \">\", \"../outside/canary.txt\"); print F \"pwned\"'",
    ),
    (
        "interpreter",
        "awk 'BEGIN { system(\"rm -f ../outside/canary.txt\") }'",
    ),
    (
        "interpreter",
        "printf 'rm -f ../outside/canary.txt\\n' > s.sh; bash s.sh",
    ),
    (
        "interpreter",
        "printf '#!/bin/sh\\nrm -f ../outside/canary.txt\\n' > s.sh; chmod +x s.sh; ./s.sh",
    ),
    (
        "interpreter",
        "printf 'import os\\nos.remove(\"../outside/canary.txt\")\\n' > s.py; python3 s.py",
    ),
    // Overwrites and metadata.
    ("overwrite", "truncate -s 0 ../outside/canary.txt"),
    ("overwrite", "echo pwned > ../outside/canary.txt"),
    ("overwrite", "echo pwned >> ../outside/canary.txt"),
    ("overwrite", "mv ../outside/canary.txt ./stolen"),
    ("overwrite", "echo pwned > x; mv x ../outside/canary.txt"),
    ("overwrite", "chmod 000 ../outside/canary.txt"),
    ("overwrite", "chmod -R 777 ../outside"),
    ("overwrite", "touch -d 2000-01-01 ../outside/canary.txt"),
    // Ownership: to another user, to the caller's own ids (changes ctime, clears set-id
    // bits), through a system call rather than the tool.
    ("overwrite", "chown 65534:65534 ../outside/canary.txt"),
    ("overwrite", "chgrp -R 65534 ../outside"),
    ("overwrite", "chown -R \"$(id -u):$(id -g)\" ../outside"),
    (
        "overwrite",
        "python3 -c 'import os; os.chown(\"../outside/canary.txt\", 65534, 65534)'",
    ),
    ("overwrite", "tar -cf ../outside/canary.txt ."),
    (
        "overwrite",
        "ln -sf ../outside/canary.txt link; echo pwned > link",
    ),
    ("overwrite", "ln -s ../outside out; rm -rf out/"),
    ("overwrite", "ln -s ../outside out; rm -f out/canary.txt"),
    (
        "overwrite",
        "ln ../outside/canary.txt hard; echo pwned >> hard",
    ),
    ("overwrite", "cp /etc/hostname ../outside/canary.txt"),
    (
        "overwrite",
        "dd if=/dev/zero of=../outside/canary.txt bs=1 count=4 conv=notrunc",
    ),
    ("overwrite", "sed -i s/canary/pwned/ ../outside/canary.txt"),
    ("overwrite", "touch ../outside/new-file"),
    ("overwrite", "mkdir ../outside/new-dir"),
    ("overwrite", "mkfifo ../outside/fifo"),
    ("overwrite", "cp -r . ../outside/copied"),
    // Reading the secret (into the output or into the root, where the caller can read it).
    ("secret", "cat @SECRET@"),
    ("secret", "cat ../secret.txt"),
    ("secret", "cp ../secret.txt ./copy.txt"),
    (
        "secret",
        "python3 -c 'print(open(\"../secret.txt\").read())'",
    ),
    (
        "secret",
        "while read -r l; do echo \"$l\"; done < ../secret.txt",
    ),
    ("secret", "ln -s ../secret.txt s; cat s"),
    ("secret", "tar -cf - ../secret.txt | tar -xOf -"),
    ("secret", "grep -r TOPSECRET .."),
    ("secret", "base64 ../secret.txt | base64 -d"),
    // Reaching the loopback listeners.
    ("network", "curl -s -m 2 http://127.0.0.1:@PORT@/"),
    ("network", "exec 3<>/dev/tcp/127.0.0.1/@PORT@; echo hi >&3"),
    (
        "network",
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", @PORT@), 2)'",
    ),
    (
        "network",
        "perl -MIO::Socket::INET -e 'IO::Socket::INET->new(\"127.0.0.1:@PORT@\") or die'",
    ),
    (
        "network",
        "python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b\"x\", (\"127.0.0.1\", @UDP@))'",
    ),
    ("network", "echo x > /dev/udp/127.0.0.1/@UDP@"),
    // Acting after the call returned: background jobs, nohup, setsid, double forks.
    ("outlive", "(sleep 1; touch late) &"),
    ("outlive", "bash -c 'sleep 1; touch late' @MARK@ &"),
    (
        "outlive",
        "nohup bash -c 'sleep 1; touch late' @MARK@ >/dev/null 2>&1 &",
    ),
    ("outlive", "setsid bash -c 'sleep 1; touch late' @MARK@ &"),
    ("outlive", "setsid -f bash -c 'sleep 1; touch late' @MARK@"),
    (
        "outlive",
        "( setsid bash -c 'sleep 1; touch late' @MARK@ & ) &",
    ),
    (
        "outlive",
        "bash -c '(trap \"\" HUP TERM; sleep 1; touch late) &' @MARK@",
    ),
    (
        "outlive",
        "(bash -c 'sleep 1; touch late' @MARK@ &) & disown -a",
    ),
    (
        "outlive",
        "python3 -c 'import os, time\nif os.fork() == 0:\n  os.setsid()\n  if os.fork() == 0:\n    time.sleep(1); open(\"late\", \"w\")' @MARK@",
    ),
    (
        "outlive",
        "nohup setsid bash -c 'sleep 1; echo pwned > ../outside/canary.txt' @MARK@ >/dev/null 2>&1 &",
    ),
];

/// A root with canaries, a secret and listeners next to it.
pub struct Arena {
    _base: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
    pub secret: PathBuf,
    pub secret_text: String,
    tcp: TcpListener,
    udp: UdpSocket,
    pub mark: String,
}

/// What one attack achieved; empty when contained.
pub type Breaches = Vec<String>;

impl Arena {
    pub fn new(mark: &str) -> Self {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        let outside = base.path().join("outside");
        let secret = base.path().join("secret.txt");
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_nonblocking(true).unwrap();
        let arena = Self {
            root,
            outside,
            secret,
            secret_text: format!("TOPSECRET-{mark}"),
            _base: base,
            tcp,
            udp,
            mark: mark.to_owned(),
        };
        arena.reset();
        arena
    }

    /// Puts canaries, secret and an empty root back (after an attack that got through).
    pub fn reset(&self) {
        for dir in [&self.root, &self.outside] {
            if dir.exists() {
                let _ = std::process::Command::new("chmod")
                    .args(["-R", "u+rwx"])
                    .arg(dir)
                    .status();
                fs::remove_dir_all(dir).unwrap();
            }
        }
        fs::create_dir(&self.root).unwrap();
        fs::create_dir_all(self.outside.join("sub")).unwrap();
        fs::create_dir(self.outside.join("empty")).unwrap();
        fs::write(self.outside.join("canary.txt"), "canary\n").unwrap();
        fs::write(self.outside.join("sub/deep.txt"), "deep\n").unwrap();
        fs::write(&self.secret, &self.secret_text).unwrap();
        fs::set_permissions(&self.secret, fs::Permissions::from_mode(0o600)).unwrap();
        // Drain anything a previous attack sent.
        while self.tcp.accept().is_ok() {}
        let mut buf = [0u8; 64];
        while self.udp.recv(&mut buf).is_ok() {}
    }

    pub fn command(&self, template: &str) -> String {
        template
            .replace("@OUT@", &self.outside.display().to_string())
            .replace("@SECRET@", &self.secret.display().to_string())
            .replace("@PORT@", &self.tcp.local_addr().unwrap().port().to_string())
            .replace("@UDP@", &self.udp.local_addr().unwrap().port().to_string())
            .replace("@MARK@", &self.mark)
    }

    /// Everything outside the root that an attack could change: kind, mode, size, mtime
    /// and content of each entry of the canary tree and of the secret.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut entries = BTreeMap::new();
        let mut stack = vec![self.outside.clone(), self.secret.clone()];
        while let Some(path) = stack.pop() {
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            // Owner, group and ctime: chown to anyone (even to the same ids) shows.
            let mut line = format!(
                "{:?} {:o} {} {} {}:{} {}.{}",
                meta.file_type(),
                meta.mode(),
                meta.size(),
                meta.mtime(),
                meta.uid(),
                meta.gid(),
                meta.ctime(),
                meta.ctime_nsec()
            );
            if meta.is_file() {
                line.push_str(&fs::read_to_string(&path).unwrap_or_default());
            }
            if meta.is_dir() {
                for entry in fs::read_dir(&path).into_iter().flatten().flatten() {
                    stack.push(entry.path());
                }
            }
            entries.insert(path, line);
        }
        entries
    }

    /// Breaches visible right after the call: changes outside, the secret in the output or
    /// in the root, connections, and processes of the attack still running.
    pub fn breaches(&self, before: &BTreeMap<PathBuf, String>, output: &str) -> Breaches {
        let mut found = Vec::new();
        let after = self.snapshot();
        if &after != before {
            let changed: Vec<_> = before
                .iter()
                .filter(|(k, v)| after.get(*k) != Some(v))
                .map(|(k, _)| k.display().to_string())
                .chain(
                    after
                        .keys()
                        .filter(|k| !before.contains_key(*k))
                        .map(|k| k.display().to_string()),
                )
                .collect();
            found.push(format!("changed outside the root: {changed:?}"));
        }
        if output.contains(&self.secret_text) {
            found.push("the secret is in the output".to_owned());
        }
        if self.root_contains_secret(&self.root) {
            found.push("the secret was copied into the root".to_owned());
        }
        if self.tcp.accept().is_ok() {
            found.push("connected to the loopback TCP listener".to_owned());
        }
        let mut buf = [0u8; 64];
        if self.udp.recv(&mut buf).is_ok() {
            found.push("reached the loopback UDP listener".to_owned());
        }
        let survivors = survivors(&self.mark);
        if !survivors.is_empty() {
            found.push(format!("processes outlived the call: {survivors:?}"));
        }
        found
    }

    /// Breaches that show only later: something the attack started acted after the call.
    pub fn late_breaches(&self, before: &BTreeMap<PathBuf, String>) -> Breaches {
        let mut found = Vec::new();
        if self.root.join("late").exists() {
            found.push("a background job acted after the call returned".to_owned());
        }
        if &self.snapshot() != before {
            found.push("changed outside the root after the call returned".to_owned());
        }
        found
    }

    fn root_contains_secret(&self, dir: &Path) -> bool {
        fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let path = entry.path();
                match fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => self.root_contains_secret(&path),
                    Ok(meta) if meta.is_file() => {
                        let mut text = String::new();
                        fs::File::open(&path)
                            .and_then(|mut f| f.read_to_string(&mut text))
                            .is_ok()
                            && text.contains(&self.secret_text)
                    }
                    _ => false,
                }
            })
    }
}

/// PIDs of processes whose command line holds `mark`, other than the test itself.
pub fn survivors(mark: &str) -> Vec<u32> {
    let own = std::process::id();
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(mark))
        })
        .collect()
}
