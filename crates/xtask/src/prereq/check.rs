//! Checking and installing the prerequisites of [`super::PROGRAMS`], [`super::CARGO_TOOLS`]
//! and `rust-toolchain.toml`, and the error that names the fix for what is left.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::{
    CARGO_TOOLS, Needs, PROGRAMS, PYTHON_TOOLS, Probe, TOOLCHAIN_USES, Use, markdown_table,
};
use crate::process;

/// `rust-toolchain.toml`'s `[toolchain]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ToolchainFile {
    pub channel: String,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
}

impl ToolchainFile {
    pub fn load(root: &Path) -> Result<ToolchainFile> {
        #[derive(Deserialize)]
        struct File {
            toolchain: ToolchainFile,
        }
        let path = root.join("rust-toolchain.toml");
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let file: File =
            toml::from_str(&text).with_context(|| format!("{} is malformed", path.display()))?;
        Ok(file.toolchain)
    }
}

/// One missing prerequisite and how to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    Target(String),
    Component(String),
    Package {
        program: String,
        debian: String,
        why: String,
    },
    Tool {
        krate: String,
        version: String,
        found: Option<String>,
    },
    /// A pinned Python package of [`PYTHON_TOOLS`], by its program's name.
    PythonTool {
        name: String,
        package: String,
        version: String,
        why: String,
    },
}

/// The prerequisites of `needs` that are missing on this machine.
pub fn missing(root: &Path, needs: &Needs) -> Result<Vec<Missing>> {
    let mut missing = Vec::new();
    if needs.uses.iter().any(|u| TOOLCHAIN_USES.contains(u)) {
        let toolchain = ToolchainFile::load(root)?;
        let sysroot = process::rustc_sysroot(root)?;
        for target in &toolchain.targets {
            if !sysroot
                .join("lib/rustlib")
                .join(target)
                .join("lib")
                .is_dir()
            {
                missing.push(Missing::Target(target.clone()));
            }
        }
        for component in &toolchain.components {
            if !component_installed(&sysroot, component) {
                missing.push(Missing::Component(component.clone()));
            }
        }
    }
    for program in PROGRAMS {
        if needed(program.used_by, needs) && !probe(program.probe) {
            missing.push(Missing::Package {
                program: program.name.to_owned(),
                debian: program.debian.to_owned(),
                why: program.why.to_owned(),
            });
        }
    }
    for tool in CARGO_TOOLS {
        if !needed(tool.used_by, needs) {
            continue;
        }
        let found = installed_tool_version(root, tool.subcommand);
        let acceptable = match &found {
            None => false,
            Some(version) => !tool.exact || version == tool.version,
        };
        if !acceptable {
            missing.push(Missing::Tool {
                krate: tool.krate.to_owned(),
                version: tool.version.to_owned(),
                found,
            });
        }
    }
    for tool in PYTHON_TOOLS {
        if needed(tool.used_by, needs) && !(tool.installed)() {
            missing.push(Missing::PythonTool {
                name: tool.name.to_owned(),
                package: tool.package.to_owned(),
                version: tool.version.to_owned(),
                why: tool.why.to_owned(),
            });
        }
    }
    Ok(missing)
}

fn needed(used_by: &[Use], needs: &Needs) -> bool {
    used_by.iter().any(|u| needs.uses.contains(u))
}

/// Components are files in the sysroot, so rustup-less toolchains (Nix) are checked too.
fn component_installed(sysroot: &Path, component: &str) -> bool {
    let binary = match component {
        "rustfmt" => "rustfmt",
        "clippy" => "cargo-clippy",
        "llvm-tools" | "llvm-tools-preview" => {
            return fs::read_dir(sysroot.join("lib/rustlib"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|dir| dir.path().join("bin/llvm-objcopy").is_file());
        }
        "rust-src" => return sysroot.join("lib/rustlib/src/rust").is_dir(),
        other => other,
    };
    sysroot.join("bin").join(binary).is_file()
}

fn probe(probe: Probe) -> bool {
    match probe {
        Probe::OnPath(program) => process::on_path(program),
        Probe::Runs(argv) => Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// The version `cargo <subcommand> --version` prints (`cargo-hakari 0.9.39` → `0.9.39`).
fn installed_tool_version(root: &Path, subcommand: &str) -> Option<String> {
    let text = process::output(
        Command::new(cargo())
            .args([subcommand, "--version"])
            .current_dir(root)
            .stderr(Stdio::null()),
    )
    .ok()?;
    parse_tool_version(&text)
}

/// The first word that starts with a digit on the first line.
pub fn parse_tool_version(text: &str) -> Option<String> {
    text.lines()
        .next()?
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// How this machine can install distribution packages without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// Root on Debian or Ubuntu with apt-get.
    Apt,
    /// Nothing xtask may use: the fix is printed.
    None,
}

impl PackageManager {
    pub fn detect() -> PackageManager {
        let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
        if is_debian_like(&os_release) && running_as_root() && process::on_path("apt-get") {
            PackageManager::Apt
        } else {
            PackageManager::None
        }
    }
}

/// `ID` or `ID_LIKE` of os-release names Debian or Ubuntu.
pub fn is_debian_like(os_release: &str) -> bool {
    os_release.lines().any(|line| {
        let Some((key, value)) = line.split_once('=') else {
            return false;
        };
        (key == "ID" || key == "ID_LIKE")
            && value
                .trim_matches('"')
                .split_whitespace()
                .any(|id| id == "debian" || id == "ubuntu")
    })
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Checks the prerequisites of `needs`, installs what can be installed without asking, and
/// fails with the exact fix for the rest. Prints nothing when everything is there.
pub fn ensure(root: &Path, needs: &Needs) -> Result<()> {
    let first = missing(root, needs)?;
    if first.is_empty() {
        return Ok(());
    }
    install(root, &first, PackageManager::detect())?;
    let left = missing(root, needs)?;
    if left.is_empty() {
        eprintln!(
            "prerequisites of `cargo xtask {}`: all installed",
            needs.task
        );
        return Ok(());
    }
    bail!("{}", explain(&needs.task, &left))
}

/// `cargo install` of a cargo tool, as the set-up does it: unoptimized, with one target
/// directory shared by every tool. Measured side by side (AMD EPYC Zen 4, 2 cores):
/// cargo-nextest + cargo-hakari took 1017 s of CPU as two release installs and 392 s as
/// debug installs sharing their dependencies' builds, minutes of every fresh CI run. The
/// tools' own speed does not matter here: nextest's time goes to the tests it runs, and
/// hakari reads one dependency graph. Without debug info: nobody debugs them, and it was
/// most of the gigabytes their build leaves on CI's small disk.
fn tool_install_command(root: &Path, krate: &str, version: &str) -> Command {
    let mut command = Command::new(cargo());
    command
        .args([
            "install",
            "--locked",
            "--debug",
            &format!("{krate}@{version}"),
        ])
        .env("CARGO_TARGET_DIR", tools_target_dir(root))
        .env("CARGO_PROFILE_DEV_DEBUG", "false");
    command
}

/// Where the cargo tools are built; removed once they are installed (their binaries are
/// copied to cargo's bin directory, and nothing else reuses the build).
fn tools_target_dir(root: &Path) -> PathBuf {
    root.join("target").join("cargo-tools")
}

/// Installs what can be installed without asking; the rest is left for [`explain`].
fn install(root: &Path, missing: &[Missing], manager: PackageManager) -> Result<()> {
    let toolchain = ToolchainFile::load(root).unwrap_or_default();
    let rustup = process::on_path("rustup") && !toolchain.channel.is_empty();
    for item in missing {
        let mut command = match item {
            Missing::Target(target) if rustup => {
                let mut c = Command::new("rustup");
                c.args(["target", "add", "--toolchain", &toolchain.channel, target]);
                c
            }
            Missing::Component(component) if rustup => {
                let mut c = Command::new("rustup");
                c.args([
                    "component",
                    "add",
                    "--toolchain",
                    &toolchain.channel,
                    component,
                ]);
                c
            }
            Missing::Tool { krate, version, .. } => tool_install_command(root, krate, version),
            _ => continue,
        };
        eprintln!("==> installing: {}", process::display(&command));
        // A failure here shows up as still missing, with the fix.
        if let Err(error) = process::run(command.current_dir(root)) {
            eprintln!("warning: {error:#}");
        }
    }
    if missing
        .iter()
        .any(|item| matches!(item, Missing::Tool { .. }))
        && let Err(error) = crate::dist::collect::remove_if_exists(&tools_target_dir(root))
    {
        eprintln!("warning: {error:#}");
    }
    let packages = debian_packages(missing);
    if manager == PackageManager::Apt && !packages.is_empty() {
        eprintln!("==> installing with apt-get: {}", packages.join(" "));
        let apt = |args: &[&str]| {
            let mut command = Command::new("apt-get");
            command
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdin(Stdio::null());
            command
        };
        let installed = process::run(&mut apt(&["update", "-qq"])).and_then(|()| {
            process::run(apt(&["install", "-y", "-qq", "--no-install-recommends"]).args(&packages))
        });
        if let Err(error) = installed {
            eprintln!("warning: {error:#}");
        }
    }
    // After the system packages: pip needs python3 and its venv module.
    for item in missing {
        let Missing::PythonTool { name, .. } = item else {
            continue;
        };
        let Some(tool) = PYTHON_TOOLS.iter().find(|t| t.name == name) else {
            continue;
        };
        eprintln!(
            "==> installing: {}=={} (pip, into its own venv)",
            tool.package, tool.version
        );
        if let Err(error) = (tool.install)() {
            eprintln!("warning: {error:#}");
        }
    }
    Ok(())
}

fn debian_packages(missing: &[Missing]) -> Vec<&str> {
    let mut packages: Vec<&str> = missing
        .iter()
        .filter_map(|m| match m {
            Missing::Package { debian, .. } => Some(debian.as_str()),
            _ => None,
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

/// The error text: what is missing, why, and the commands that fix it.
pub fn explain(task: &str, missing: &[Missing]) -> String {
    let mut text = format!("missing prerequisites of `cargo xtask {task}`:\n");
    let mut fixes = Vec::new();
    for item in missing {
        match item {
            Missing::Target(target) => {
                text.push_str(&format!("  - Rust target {target} (rust-toolchain.toml)\n"));
                fixes.push(format!("rustup target add {target}"));
            }
            Missing::Component(component) => {
                text.push_str(&format!(
                    "  - Rust component {component} (rust-toolchain.toml)\n"
                ));
                fixes.push(format!("rustup component add {component}"));
            }
            Missing::Package {
                program,
                debian,
                why,
            } => {
                text.push_str(&format!(
                    "  - {program} (Debian/Ubuntu package {debian}): {why}\n"
                ));
            }
            Missing::Tool {
                krate,
                version,
                found,
            } => {
                let found = match found {
                    Some(other) => format!(", found {other}"),
                    None => String::new(),
                };
                text.push_str(&format!("  - {krate} {version}{found}\n"));
                fixes.push(format!("cargo install --locked {krate}@{version}"));
            }
            Missing::PythonTool {
                name,
                package,
                version,
                why,
            } => {
                text.push_str(&format!(
                    "  - {name} (Python package {package}=={version}): {why}\n"
                ));
                fixes.push(format!(
                    "cargo xtask setup --for dist-cross   (pip-installs {package}=={version} \
                     into its own venv; needs python3 with venv)"
                ));
            }
        }
    }
    let packages = debian_packages(missing);
    if !packages.is_empty() {
        fixes.push(format!(
            "apt-get install --no-install-recommends {}   (as root on Debian/Ubuntu, \
             `cargo xtask setup` does this itself; elsewhere install the packages that provide \
             these programs)",
            packages.join(" ")
        ));
    }
    text.push_str("fix:\n");
    for fix in fixes {
        text.push_str(&format!("  {fix}\n"));
    }
    text
}

/// `cargo xtask setup`: checks and installs what a task needs, then lists it.
#[derive(Debug, Clone, clap::Args)]
pub struct SetupArgs {
    /// Uses to set up for (repeatable; default: everything `cargo xtask ci` does).
    #[arg(long = "for", value_enum, value_name = "USE")]
    pub uses: Vec<Use>,
    /// Only check; install nothing, fail when something is missing.
    #[arg(long)]
    pub check: bool,
    /// Print the README's table of prerequisites and exit.
    #[arg(long)]
    pub print_table: bool,
}

pub fn setup(root: &Path, args: &SetupArgs) -> Result<()> {
    if args.print_table {
        print!("{}", markdown_table());
        return Ok(());
    }
    let uses: Vec<Use> = if args.uses.is_empty() {
        // What `cargo xtask ci` may need: its Nix offline build runs only when the pinned
        // input sources are given (and its tools cost minutes to install).
        <Use as clap::ValueEnum>::value_variants()
            .iter()
            .copied()
            .filter(|u| *u != Use::NixOffline || crate::nix_offline::sources_given())
            .collect()
    } else {
        args.uses.clone()
    };
    let needs = Needs::new("setup", uses);
    if args.check {
        let missing = missing(root, &needs)?;
        if !missing.is_empty() {
            bail!("{}", explain("setup", &missing));
        }
    } else {
        ensure(root, &needs)?;
    }
    eprintln!(
        "prerequisites present for: {}",
        needs
            .uses
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests;
