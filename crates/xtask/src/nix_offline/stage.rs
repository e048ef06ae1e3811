//! What the offline build needs before Nix runs: the crates and Rust components in the
//! host caches the substitute serves downloads from, the cargo tools it exposes, and the
//! staged substitute itself (`nix/offline/` + nixpkgs' `lib` + a generated `host.nix`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::Runner;
use crate::dist::sha256_hex;
use crate::metadata::Workspace;
use crate::process;

/// Where this host has a tool, if it does.
type Locate = fn() -> Option<PathBuf>;

/// Tools outside Debian that the substitute exposes as packages (checks, dev shell), and where
/// this host has them: the prerequisites of the Nix offline build (`crate::prereq`) put the
/// cargo tools on PATH and maturin in a venv of its own.
const HOST_TOOLS: [(&str, Locate); 3] = [
    ("cargo-nextest", || find_on_path("cargo-nextest")),
    ("cargo-deny", || find_on_path("cargo-deny")),
    ("maturin", || {
        Some(crate::prereq::venv::maturin_binary()).filter(|path| path.is_file())
    }),
];

/// Where Rust releases are published (rustup's default dist server).
const RUST_DIST: &str = "https://static.rust-lang.org/dist";

#[derive(Debug)]
pub struct Staged {
    /// The substitute to pass as `--override-input nixpkgs path:…`.
    pub nixpkgs: PathBuf,
    /// Host paths the run reads or writes; a chroot gets them at the same paths.
    pub paths_to_share: Vec<PathBuf>,
}

pub fn prepare(
    workspace: &Workspace,
    runner: &Runner,
    sources: &[(String, PathBuf)],
    work: &Path,
) -> Result<Staged> {
    let root = &workspace.root;
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let rustup_home = env_dir("RUSTUP_HOME").unwrap_or_else(|| home.join(".rustup"));
    let cargo_home = env_dir("CARGO_HOME").unwrap_or_else(|| home.join(".cargo"));
    let source = |var: &str| -> Result<&PathBuf> {
        sources
            .iter()
            .find(|(v, _)| v == var)
            .map(|(_, dir)| dir)
            .with_context(|| format!("{var} is not set"))
    };

    let toolchain = rust_toolchain(root, &rustup_home)?;
    // The dev shell's rust-analyzer and rust-src are components of the same release.
    for component in ["rust-src", "rust-analyzer"] {
        let listed =
            fs::read_to_string(toolchain.join("lib/rustlib/components")).unwrap_or_default();
        if !listed.lines().any(|c| c.starts_with(component)) {
            let channel = channel(root)?;
            process::run(Command::new("rustup").args([
                "component",
                "add",
                "--toolchain",
                &channel,
                component,
            ]))?;
        }
    }

    // Every crate of the workspace's lock file and of crane-utils' (built by crane for
    // writeTOML) in the cargo cache the substitute's fetchurl reads.
    process::run(
        Command::new("cargo")
            .args(["fetch", "--locked"])
            .current_dir(root),
    )?;
    let crane_utils = std::env::temp_dir().join("mcp-foundry-crane-utils-fetch");
    let _ = fs::remove_dir_all(&crane_utils);
    copy_dir(&source("CRANE_SRC")?.join("pkgs/crane-utils"), &crane_utils)?;
    process::run(
        Command::new("cargo")
            .args(["fetch", "--locked"])
            .current_dir(&crane_utils),
    )
    .context("fetching crane-utils' crates (crane's pkgs/crane-utils/Cargo.lock)")?;

    // fenix reads the release's channel manifest by its published hash (flake.nix);
    // rustup keeps only a re-serialised copy, so the published file is downloaded once.
    let channel = channel(root)?;
    let rust_dist_cache = rust_dist_cache(&channel);
    let manifest_name = format!("channel-rust-{channel}.toml");
    let manifest_path = rust_dist_cache.join(&manifest_name);
    if !manifest_path.is_file() {
        fs::create_dir_all(&rust_dist_cache)?;
        let partial = rust_dist_cache.join(format!("{manifest_name}.part"));
        process::run(
            Command::new("curl")
                .args([
                    "--fail",
                    "--silent",
                    "--show-error",
                    "--location",
                    "--output",
                ])
                .arg(&partial)
                .arg(format!("{RUST_DIST}/{manifest_name}")),
        )
        .with_context(|| format!("downloading the release's {manifest_name} (for fenix)"))?;
        fs::rename(&partial, &manifest_path)?;
    }

    let mut tools = Vec::new();
    for (tool, locate) in HOST_TOOLS {
        let path = locate().with_context(|| {
            format!("{tool} is missing; install it: cargo xtask setup --for nix-offline")
        })?;
        tools.push((tool, path));
    }

    let python_version =
        process::output(runner.command(Path::new("/"), "/usr/bin/python3").args([
            "-c",
            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
        ]))
        .context(
            "the substitute's python3 is the system's /usr/bin/python3 (apt-get install python3)",
        )?;

    // The substitute: nix/offline/ as committed, nixpkgs' lib, and this host's facts.
    let nixpkgs = work.join("nixpkgs");
    let _ = fs::remove_dir_all(&nixpkgs);
    copy_dir(&root.join("nix/offline"), &nixpkgs)?;
    let lib_src = source("NIXPKGS_LIB_SRC")?;
    let lib = if lib_src.join("lib/fixed-points.nix").is_file() {
        lib_src.join("lib")
    } else if lib_src.join("fixed-points.nix").is_file() {
        lib_src.clone()
    } else {
        bail!(
            "NIXPKGS_LIB_SRC={} holds no nixpkgs lib (lib/fixed-points.nix)",
            lib_src.display()
        );
    };
    copy_dir(&lib, &nixpkgs.join("lib"))?;
    let stamp = host_stamp(runner, &toolchain, &tools)?;
    fs::write(
        nixpkgs.join("host.nix"),
        host_nix(
            &rustup_home,
            &cargo_home,
            &toolchain,
            &rust_dist_cache,
            &python_version,
            &tools,
            &stamp,
        ),
    )?;

    let git_common_dir = PathBuf::from(process::output(
        Command::new("git")
            .args(["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .current_dir(root),
    )?);
    let mut paths = vec![
        root.clone(),
        git_common_dir,
        workspace.target_dir.clone(),
        rustup_home,
        cargo_home,
        rust_dist_cache,
    ];
    paths.extend(sources.iter().map(|(_, dir)| dir.clone()));
    paths.extend(
        tools
            .iter()
            .filter_map(|(_, p)| p.parent().map(Path::to_path_buf)),
    );
    Ok(Staged {
        nixpkgs,
        paths_to_share: outermost(paths),
    })
}

/// Where the release's channel manifest is kept: the user's cache, not the checkout's
/// target directory. Its path is in every Rust component's derivation (`host.nix`), so a
/// per-checkout path made a second checkout rebuild the toolchain and everything built
/// with it in the same Nix store (seen: two clones, no derivation shared).
fn rust_dist_cache(channel: &str) -> PathBuf {
    crate::prereq::venv::home("rust-dist", channel)
}

/// `host.nix` of the staged substitute (see nix/offline/pkgs.nix for its use).
pub fn host_nix(
    rustup_home: &Path,
    cargo_home: &Path,
    toolchain: &Path,
    rust_dist_cache: &Path,
    python_version: &str,
    tools: &[(&str, PathBuf)],
    stamp: &str,
) -> String {
    let mut text =
        String::from("# Generated by `cargo xtask nix-offline`: this host's facts.\n{\n");
    text.push_str(&format!("  rustupHome = {};\n", nix_string(rustup_home)));
    text.push_str(&format!("  cargoHome = {};\n", nix_string(cargo_home)));
    text.push_str(&format!("  rustToolchain = {};\n", nix_string(toolchain)));
    text.push_str(&format!(
        "  rustDistCache = {};\n",
        nix_string(rust_dist_cache)
    ));
    text.push_str(&format!("  pythonVersion = \"{python_version}\";\n"));
    text.push_str("  tools = {\n");
    for (tool, path) in tools {
        text.push_str(&format!("    {tool} = {};\n", nix_string(path)));
    }
    text.push_str("  };\n");
    text.push_str(&format!("  stamp = \"{stamp}\";\n}}\n"));
    text
}

fn nix_string(path: &Path) -> String {
    let text = path.display().to_string();
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("${", "\\${")
    )
}

/// Changes whenever what the substitute's packages link to changes: installed Debian
/// packages, the Rust toolchain, the cargo tools.
fn host_stamp(runner: &Runner, toolchain: &Path, tools: &[(&str, PathBuf)]) -> Result<String> {
    let mut facts = process::output(
        runner
            .command(Path::new("/"), "cat")
            .arg("/var/lib/dpkg/status"),
    )?;
    facts.push_str(
        &fs::read_to_string(toolchain.join("lib/rustlib/multirust-channel-manifest.toml"))
            .unwrap_or_default(),
    );
    for (_, path) in tools {
        let meta = fs::metadata(path)?;
        facts.push_str(&format!("{}:{}", path.display(), meta.len()));
    }
    Ok(sha256_hex(facts.as_bytes())[..16].to_owned())
}

/// The rustup toolchain of rust-toolchain.toml for this machine.
fn rust_toolchain(root: &Path, rustup_home: &Path) -> Result<PathBuf> {
    let channel = channel(root)?;
    let dir = rustup_home.join("toolchains").join(format!(
        "{channel}-{}-unknown-linux-gnu",
        std::env::consts::ARCH
    ));
    if !dir.is_dir() {
        bail!(
            "{} does not exist; install the toolchain of rust-toolchain.toml: rustup toolchain install {channel}",
            dir.display()
        );
    }
    Ok(dir)
}

fn channel(root: &Path) -> Result<String> {
    let text = fs::read_to_string(root.join("rust-toolchain.toml"))
        .context("reading rust-toolchain.toml")?;
    text.lines()
        .find_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("channel")?
                .trim()
                .strip_prefix('=')?;
            Some(rest.trim().trim_matches('"').to_owned())
        })
        .context("rust-toolchain.toml has no channel")
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The program's own file: a pyenv shim (a script that needs pyenv) resolved to the
/// executable it runs, since the substitute links the file, not the shell's lookup.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())?;
    if found.components().any(|c| c.as_os_str() == "shims") {
        return process::output(Command::new("pyenv").args(["which", program]))
            .ok()
            .map(PathBuf::from);
    }
    Some(found)
}

/// The paths, without any that lies inside another (one bind mount covers it).
pub fn outermost(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    paths.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !kept.iter().any(|k| path.starts_with(k)) {
            kept.push(path);
        }
    }
    kept
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    process::run(Command::new("cp").arg("-r").arg(from).arg(to))
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_cache_does_not_depend_on_the_checkout() {
        let workspace = Workspace::load().unwrap();
        let cache = rust_dist_cache("1.95.0");
        assert!(!cache.starts_with(&workspace.root), "{}", cache.display());
        assert!(
            !cache.starts_with(&workspace.target_dir),
            "{}",
            cache.display()
        );
        assert!(cache.ends_with("rust-dist-1.95.0"), "{}", cache.display());
    }

    #[test]
    fn nested_paths_share_one_mount() {
        let kept = outermost(vec![
            PathBuf::from("/work/wt/x/target"),
            PathBuf::from("/work/wt/x"),
            PathBuf::from("/root/.cargo/bin"),
            PathBuf::from("/root/.cargo"),
            PathBuf::from("/root/.cargo-other"),
        ]);
        assert_eq!(
            kept,
            [
                PathBuf::from("/root/.cargo"),
                PathBuf::from("/root/.cargo-other"),
                PathBuf::from("/work/wt/x")
            ]
        );
    }

    #[test]
    fn host_nix_is_nix() {
        let text = host_nix(
            Path::new("/r"),
            Path::new("/c"),
            Path::new("/r/toolchains/1.95.0-x86_64-unknown-linux-gnu"),
            Path::new("/t/rust-dist"),
            "3.14",
            &[("cargo-deny", PathBuf::from("/c/bin/cargo-deny"))],
            "abc",
        );
        assert!(text.contains("  cargoHome = \"/c\";"), "{text}");
        assert!(
            text.contains("  rustDistCache = \"/t/rust-dist\";"),
            "{text}"
        );
        assert!(
            text.contains("    cargo-deny = \"/c/bin/cargo-deny\";"),
            "{text}"
        );
        assert!(text.trim_end().ends_with('}'), "{text}");
        assert_eq!(nix_string(Path::new("/a\"${b}")), "\"/a\\\"\\${b}\"");
    }
}
