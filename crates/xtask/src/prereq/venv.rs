//! Pinned Python packages, each in a venv of its own under the user's cache directory: shared
//! by every checkout, recreated by `cargo xtask setup` when removed, and leaving the system's
//! Python alone.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::process;

/// `<cache>/mcp-foundry/<package>-<version>`, the venv of one pinned package.
pub fn home(package: &str, version: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".cache")
        });
    cache
        .join("mcp-foundry")
        .join(format!("{package}-{version}"))
}

/// Installs `package==version` into its venv ([`home`]): `python3 -m venv` and pip, the
/// ordinary clients (the package registry is reachable wherever the Rust crates are).
pub fn install(package: &str, version: &str) -> Result<()> {
    let home = home(package, version);
    if !home.join("bin/python").is_file() {
        process::run(Command::new("python3").args(["-m", "venv"]).arg(&home))
            .with_context(|| format!("creating the venv of {package} (needs python3-venv)"))?;
    }
    process::run(
        process::pip_install(&mut Command::new(home.join("bin/python")))
            .arg(format!("{package}=={version}")),
    )
}

/// maturin, which the Nix dev shell carries: the offline substitute serves this one.
pub const MATURIN_VERSION: &str = "1.16.0";

/// The `maturin` executable of its venv.
pub fn maturin_binary() -> PathBuf {
    home("maturin", MATURIN_VERSION).join("bin/maturin")
}

pub fn maturin_installed() -> bool {
    maturin_binary().is_file()
}

pub fn install_maturin() -> Result<()> {
    install("maturin", MATURIN_VERSION)
}
