//! Prerequisites of the tasks: the one list of what `cargo xtask dist | verify | image | ci`
//! need beyond the Rust toolchain, checked in seconds before anything is compiled.
//!
//! What can be installed without asking is installed: the targets and components
//! `rust-toolchain.toml` lists (rustup), the cargo tools below (`cargo install --locked`),
//! the pinned Python packages below (pip, into a venv of their own), and, as root on Debian
//! or Ubuntu, the distribution packages (apt-get). Anything else that
//! is missing fails the task with the exact fix; nothing is skipped silently. `.ci/run`
//! installs through this same code (`cargo xtask setup`), and the README's list is this
//! list (a test keeps them equal).

mod check;
pub mod venv;

use std::collections::BTreeSet;

pub use check::{
    Missing, PackageManager, SetupArgs, ToolchainFile, ensure, explain, is_debian_like, missing,
    parse_tool_version, setup,
};

use crate::metadata::{CrateSpec, Role};

/// What a task is about to do; each prerequisite names the uses that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Use {
    /// Release builds of shipped crates (`dist`, `verify --rebuild`).
    Dist,
    /// Static musl builds of the servers and the launcher.
    DistMusl,
    /// The Python module's build.
    DistPython,
    /// Static musl builds for another architecture than this machine's (cross C compiler).
    DistCross,
    /// Running those builds here under qemu-user (`cargo xtask emulate`).
    Emulate,
    /// `cargo fmt --check`.
    Fmt,
    /// `cargo clippy`.
    Clippy,
    /// `cargo doc` with rustdoc's warnings denied.
    Doc,
    /// The workspace's tests.
    Test,
    /// The workspace-hack check (`cargo hakari`).
    Hakari,
    /// Python FFI tests of the built module.
    Ffi,
    /// Writing images: `cargo xtask image`.
    Image,
    /// Running images: `cargo xtask image --smoke`.
    ImageSmoke,
    /// Running the images of another architecture in the smoke test (under a static
    /// qemu-user in their rootfs). Optional: without it they are checked, not run, loudly.
    ImageSmokeEmulated,
    /// Offline Nix checks.
    Nix,
    /// The flake built with real Nix in a Debian sid chroot (`cargo xtask nix-offline`).
    NixOffline,
    /// Signing a dist and checking its signature (`cargo xtask sign`).
    Sign,
}

impl Use {
    fn as_str(self) -> &'static str {
        match self {
            Use::Dist => "dist",
            Use::DistMusl => "dist (servers)",
            Use::DistPython => "dist (Python module)",
            Use::DistCross => "dist (other architectures)",
            Use::Emulate => "emulate (other architectures)",
            Use::Fmt => "fmt",
            Use::Clippy => "clippy",
            Use::Doc => "docs",
            Use::Test => "tests",
            Use::Hakari => "workspace-hack check",
            Use::Ffi => "FFI tests",
            Use::Image => "image",
            Use::ImageSmoke => "image smoke test",
            Use::ImageSmokeEmulated => "image smoke test (other architectures, optional)",
            Use::Nix => "Nix checks",
            Use::NixOffline => "Nix offline build",
            Use::Sign => "signing",
        }
    }
}

/// The uses of one task run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    pub task: String,
    pub uses: BTreeSet<Use>,
}

impl Needs {
    pub fn new(task: &str, uses: impl IntoIterator<Item = Use>) -> Needs {
        Needs {
            task: task.to_owned(),
            uses: uses.into_iter().collect(),
        }
    }

    /// `cargo xtask dist` of `crates`.
    pub fn dist(crates: &[&CrateSpec]) -> Needs {
        let mut needs = Needs::new("dist", [Use::Dist]);
        needs.add_dist(crates);
        needs
    }

    /// Adds the cross toolchain when `architectures` include another than this machine's.
    pub fn add_architectures(&mut self, architectures: &[String]) {
        if architectures
            .iter()
            .any(|arch| arch != std::env::consts::ARCH)
        {
            self.uses.insert(Use::DistCross);
        }
    }

    /// Adds the build uses of a dist of `crates`.
    pub fn add_dist<'a>(&mut self, crates: impl IntoIterator<Item = &'a &'a CrateSpec>) {
        self.uses.insert(Use::Dist);
        for spec in crates {
            match spec.role {
                Role::Server | Role::Launcher => self.uses.insert(Use::DistMusl),
                Role::PythonModule => self.uses.insert(Use::DistPython),
                _ => false,
            };
        }
    }
}

/// How to tell whether a program is there.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// An executable of this name on PATH.
    OnPath(&'static str),
    /// This command exits with success (for modules of an interpreter).
    Runs(&'static [&'static str]),
}

/// A program from a distribution package.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub name: &'static str,
    pub probe: Probe,
    /// The Debian/Ubuntu package providing it.
    pub debian: &'static str,
    pub used_by: &'static [Use],
    pub why: &'static str,
}

/// A cargo subcommand installed with `cargo install --locked <krate>@<version>`.
#[derive(Debug, Clone, Copy)]
pub struct CargoTool {
    /// The subcommand (`cargo <subcommand>`).
    pub subcommand: &'static str,
    pub krate: &'static str,
    pub version: &'static str,
    /// Another installed version does not do: its output is compared with committed files.
    pub exact: bool,
    pub used_by: &'static [Use],
    pub why: &'static str,
}

/// A program from a pinned Python package, installed with pip into a venv of its own in the
/// user's cache directory (no system package has it, and the venv leaves the system alone).
#[derive(Debug, Clone, Copy)]
pub struct PythonTool {
    pub name: &'static str,
    /// The package and its exact version (`pip install <package>==<version>`).
    pub package: &'static str,
    pub version: &'static str,
    pub used_by: &'static [Use],
    pub why: &'static str,
    pub installed: fn() -> bool,
    pub install: fn() -> anyhow::Result<()>,
}

/// Every pinned Python package a task may need.
pub const PYTHON_TOOLS: &[PythonTool] = &[
    PythonTool {
        name: "zig",
        package: "ziglang",
        version: crate::cross::ZIGLANG_VERSION,
        used_by: &[Use::DistPython, Use::DistCross, Use::Test],
        why: "links the Python module against glibc 2.17 (manylinux2014) on every architecture; its \
          clang compiles the C code (tree-sitter, ring) of the cross-built aarch64 servers, \
          which rust-lld links with Rust's own musl",
        installed: crate::cross::zig_installed,
        install: crate::cross::install_zig,
    },
    PythonTool {
        name: "maturin",
        package: "maturin",
        version: venv::MATURIN_VERSION,
        used_by: &[Use::NixOffline],
        why: "the Nix dev shell's maturin, which the offline nixpkgs substitute takes from this host",
        installed: venv::maturin_installed,
        install: venv::install_maturin,
    },
];

/// Every system program a task may need.
pub const PROGRAMS: &[Program] = &[
    Program {
        name: "cc",
        probe: Probe::OnPath("cc"),
        debian: "gcc",
        used_by: &[Use::Dist, Use::Clippy, Use::Doc, Use::Test],
        why: "links host programs (build scripts, tests)",
    },
    Program {
        name: "git",
        probe: Probe::OnPath("git"),
        debian: "git",
        used_by: &[Use::Dist, Use::Test],
        why: "dist records the commit and its time; the development server's tests make repositories",
    },
    Program {
        name: "musl-gcc",
        probe: Probe::OnPath("musl-gcc"),
        debian: "musl-tools",
        used_by: &[Use::DistMusl],
        why: "compiles the C code of the tree-sitter grammars into the static musl servers",
    },
    Program {
        name: "python3",
        probe: Probe::OnPath("python3"),
        debian: "python3",
        used_by: &[Use::DistPython, Use::DistCross, Use::Ffi],
        why: "pyo3 configures the Python module against it; runs the FFI tests",
    },
    Program {
        name: "python3 venv",
        probe: Probe::Runs(&["python3", "-c", "import venv, ensurepip"]),
        debian: "python3-venv",
        used_by: &[Use::DistPython, Use::DistCross, Use::Test, Use::Ffi],
        why: "the FFI tests install numpy into target/ffi-venv; zig (the glibc-floor linker and \
              cross C compiler) gets a venv",
    },
    Program {
        name: "nm",
        probe: Probe::OnPath("nm"),
        debian: "binutils",
        used_by: &[Use::Ffi],
        why: "the FFI tests check what the module exports",
    },
    Program {
        name: "pgrep",
        probe: Probe::OnPath("pgrep"),
        debian: "procps",
        used_by: &[Use::Test],
        why: "bash-god's tests check that no command outlives its timeout",
    },
    Program {
        name: "qemu-x86_64",
        probe: Probe::OnPath("qemu-x86_64"),
        debian: "qemu-user",
        used_by: &[Use::Test, Use::ImageSmoke],
        why: "runs the launcher and the dispatch image on an emulated CPU without the variants' features",
    },
    Program {
        name: "bash-static",
        probe: Probe::OnPath("bash-static"),
        debian: "bash-static",
        used_by: &[Use::Image, Use::Test],
        why: "bash-god's images ship a static bash: `execute_command` runs `bash -c`",
    },
    Program {
        name: "qemu-aarch64",
        probe: Probe::OnPath("qemu-aarch64"),
        debian: "qemu-user",
        used_by: &[Use::Emulate, Use::Ffi],
        why: "runs the cross-built aarch64 servers and launcher (MCP handshake) and the aarch64 \
              wheel's FFI tests on this machine",
    },
    Program {
        name: "skopeo",
        probe: Probe::OnPath("skopeo"),
        debian: "skopeo",
        used_by: &[Use::ImageSmoke],
        why: "the image smoke test inspects every image",
    },
    Program {
        name: "umoci",
        probe: Probe::OnPath("umoci"),
        debian: "umoci",
        used_by: &[Use::ImageSmoke],
        why: "the image smoke test unpacks every image into a runtime bundle",
    },
    Program {
        name: "qemu-aarch64-static",
        probe: Probe::OnPath("qemu-aarch64-static"),
        debian: "qemu-user-static",
        used_by: &[Use::ImageSmokeEmulated],
        why: "runs the arm64 images' entrypoints inside their rootfs (copied in; no binfmt_misc needed)",
    },
    Program {
        name: "nix-instantiate",
        probe: Probe::OnPath("nix-instantiate"),
        debian: "nix-bin",
        used_by: &[Use::Nix],
        why: "the offline Nix checks parse and evaluate the flake",
    },
    Program {
        name: "debootstrap",
        probe: Probe::OnPath("debootstrap"),
        debian: "debootstrap",
        used_by: &[Use::NixOffline, Use::Ffi],
        why: "the Nix offline build runs a current Nix (Debian sid's) in a chroot it bootstraps; \
              the wheel test gets CPython 3.9 and 3.13 from Debian bullseye and trixie chroots",
    },
    Program {
        name: "curl",
        probe: Probe::OnPath("curl"),
        debian: "curl",
        used_by: &[Use::NixOffline],
        why: "the Nix offline build downloads the Rust release's channel manifest fenix pins",
    },
    Program {
        name: "ssh-keygen",
        probe: Probe::OnPath("ssh-keygen"),
        debian: "openssh-client",
        used_by: &[Use::Sign, Use::Test],
        why: "signs dist/SHA256SUMS with the user's key and verifies it (OpenSSH SSHSIG format)",
    },
];

/// Every cargo subcommand a task may need.
pub const CARGO_TOOLS: &[CargoTool] = &[
    CargoTool {
        subcommand: "nextest",
        krate: "cargo-nextest",
        version: "0.9.143",
        exact: false,
        used_by: &[Use::Test, Use::NixOffline],
        why: "runs the workspace's tests (the Nix offline build's substitute serves this one)",
    },
    CargoTool {
        subcommand: "hakari",
        krate: "cargo-hakari",
        version: "0.9.39",
        exact: true,
        used_by: &[Use::Hakari],
        why: "keeps crates/workspace-hack equal to what the dependency graph needs",
    },
    CargoTool {
        subcommand: "deny",
        krate: "cargo-deny",
        version: "0.20.2",
        exact: false,
        used_by: &[Use::NixOffline],
        why: "the flake's advisory check, which the Nix offline build's substitute serves from this host",
    },
];

/// The uses that need the toolchain's targets and components (rust-toolchain.toml).
/// The Nix offline build's substitute serves `rust-bin` from this rustup toolchain, so the
/// flake's musl builds need its targets too.
pub const TOOLCHAIN_USES: &[Use] = &[
    Use::Dist,
    Use::DistCross,
    Use::Fmt,
    Use::Clippy,
    Use::Doc,
    Use::Test,
    Use::NixOffline,
];

/// The README's table of prerequisites, generated from [`PROGRAMS`] and [`CARGO_TOOLS`].
pub fn markdown_table() -> String {
    let uses = |used_by: &[Use]| -> String {
        used_by
            .iter()
            .map(|u| u.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = String::from("| prerequisite | installed from | needed by | why |\n");
    text.push_str("| --- | --- | --- | --- |\n");
    // DistCross adds targets the row's "dist" already names.
    let toolchain_uses: Vec<Use> = TOOLCHAIN_USES
        .iter()
        .copied()
        .filter(|u| *u != Use::DistCross)
        .collect();
    text.push_str(&format!(
        "| targets and components of `rust-toolchain.toml` | rustup | {} \
         | the pinned toolchain builds every crate for its target |\n",
        uses(&toolchain_uses)
    ));
    let mut row = |name: String, source: String, used_by: &[Use], why: &str| {
        text.push_str(&format!(
            "| `{name}` | {source} | {} | {why} |\n",
            uses(used_by)
        ));
    };
    for program in PROGRAMS {
        row(
            program.name.to_owned(),
            format!("Debian package `{}`", program.debian),
            program.used_by,
            program.why,
        );
    }
    for tool in CARGO_TOOLS {
        row(
            format!("cargo {}", tool.subcommand),
            format!("`cargo install --locked {}@{}`", tool.krate, tool.version),
            tool.used_by,
            tool.why,
        );
    }
    for tool in PYTHON_TOOLS {
        row(
            tool.name.to_owned(),
            format!(
                "Python package `{}=={}` (pip, own venv in the user's cache)",
                tool.package, tool.version
            ),
            tool.used_by,
            tool.why,
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    #[test]
    fn the_uses_of_a_dist_follow_the_roles() {
        let server = CrateSpec {
            role: Role::Server,
            ..CrateSpec::default()
        };
        let module = CrateSpec {
            role: Role::PythonModule,
            ..CrateSpec::default()
        };
        let only_module = Needs::dist(&[&module]);
        assert!(only_module.uses.contains(&Use::DistPython));
        assert!(!only_module.uses.contains(&Use::DistMusl));
        let both = Needs::dist(&[&server, &module]);
        assert!(both.uses.contains(&Use::DistMusl) && both.uses.contains(&Use::Dist));
    }

    #[test]
    fn every_use_is_needed_by_something_and_names_are_unique() {
        for u in <Use as clap::ValueEnum>::value_variants() {
            let used = PROGRAMS.iter().any(|p| p.used_by.contains(u))
                || CARGO_TOOLS.iter().any(|t| t.used_by.contains(u))
                || PYTHON_TOOLS.iter().any(|t| t.used_by.contains(u))
                || TOOLCHAIN_USES.contains(u);
            assert!(used, "{u:?} has no prerequisite");
        }
        let names: BTreeSet<&str> = PROGRAMS.iter().map(|p| p.name).collect();
        assert_eq!(names.len(), PROGRAMS.len());
    }

    /// The README lists exactly these prerequisites (regenerate with the table printed on
    /// failure).
    #[test]
    fn the_readme_lists_the_prerequisites_of_the_code() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let readme = fs::read_to_string(root.join("README.md")).unwrap();
        let start =
            "<!-- prerequisites: generated by `cargo xtask setup --print-table`; keep equal -->\n";
        let end = "<!-- end of prerequisites -->";
        let from = readme
            .find(start)
            .expect("README has the prerequisites marker")
            + start.len();
        let to = from + readme[from..].find(end).expect("README has the end marker");
        assert_eq!(
            &readme[from..to],
            markdown_table(),
            "README.md's prerequisites table differs from prereq.rs; paste the expected table"
        );
    }
}
