//! Unit tests of the prerequisite checks and installs.
use super::*;

#[test]
fn os_release_detection() {
    assert!(is_debian_like("ID=debian\nVERSION_ID=\"12\"\n"));
    assert!(is_debian_like("ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n"));
    assert!(is_debian_like("ID=ubuntu\n"));
    assert!(!is_debian_like("ID=fedora\nID_LIKE=\"rhel centos\"\n"));
    assert!(!is_debian_like(""));
}

#[test]
fn cargo_tools_install_unoptimized_into_one_shared_target_directory() {
    let command = tool_install_command(Path::new("/ws"), "cargo-hakari", "0.9.39");
    let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
    assert_eq!(
        args,
        ["install", "--locked", "--debug", "cargo-hakari@0.9.39"]
    );
    let envs: Vec<_> = command.get_envs().collect();
    assert_eq!(
        envs,
        [
            (
                std::ffi::OsStr::new("CARGO_PROFILE_DEV_DEBUG"),
                Some(std::ffi::OsStr::new("false"))
            ),
            (
                std::ffi::OsStr::new("CARGO_TARGET_DIR"),
                Some(Path::new("/ws/target/cargo-tools").as_os_str())
            )
        ]
    );
}

#[test]
fn tool_versions_are_read_from_the_first_line() {
    assert_eq!(
        parse_tool_version("cargo-hakari 0.9.39").as_deref(),
        Some("0.9.39")
    );
    assert_eq!(
        parse_tool_version("cargo-nextest 0.9.143 (60fa45f63 2026-08-04)\nrelease: 0.9.143")
            .as_deref(),
        Some("0.9.143")
    );
    assert_eq!(parse_tool_version("error: no such command"), None);
}

#[test]
fn the_explanation_names_what_is_missing_and_every_fix() {
    let text = explain(
        "dist",
        &[
            Missing::Target("x86_64-unknown-linux-musl".into()),
            Missing::Package {
                program: "musl-gcc".into(),
                debian: "musl-tools".into(),
                why: "C code".into(),
            },
            Missing::Package {
                program: "umoci".into(),
                debian: "umoci".into(),
                why: "unpacks".into(),
            },
            Missing::Tool {
                krate: "cargo-hakari".into(),
                version: "0.9.39".into(),
                found: Some("0.9.30".into()),
            },
        ],
    );
    assert!(
        text.starts_with("missing prerequisites of `cargo xtask dist`:"),
        "{text}"
    );
    assert!(
        text.contains("musl-gcc (Debian/Ubuntu package musl-tools): C code"),
        "{text}"
    );
    assert!(
        text.contains("rustup target add x86_64-unknown-linux-musl"),
        "{text}"
    );
    assert!(
        text.contains("apt-get install --no-install-recommends musl-tools umoci"),
        "{text}"
    );
    assert!(
        text.contains("cargo install --locked cargo-hakari@0.9.39"),
        "{text}"
    );
    assert!(text.contains("found 0.9.30"), "{text}");
}

#[test]
fn a_missing_program_is_reported_and_present_ones_are_not() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // `sh` is always there; a made-up program never is.
    assert!(probe(Probe::OnPath("sh")));
    assert!(!probe(Probe::OnPath("mcp-foundry-no-such-program")));
    assert!(probe(Probe::Runs(&["sh", "-c", "exit 0"])));
    assert!(!probe(Probe::Runs(&["sh", "-c", "exit 3"])));
    // Nothing needed, nothing missing (and no toolchain lookup).
    assert!(missing(&root, &Needs::new("t", [])).unwrap().is_empty());
}

#[test]
fn the_toolchain_file_is_read() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let toolchain = ToolchainFile::load(&root).unwrap();
    assert!(!toolchain.channel.is_empty());
    assert!(
        toolchain
            .targets
            .iter()
            .any(|t| t == "x86_64-unknown-linux-musl")
    );
}
