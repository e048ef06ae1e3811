//! `dep-list embed`: see `dep-list --help`. The logic lives in the library.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dep-list",
    version,
    about = "The dependency list of an mcp-foundry artifact (cargo-auditable's .dep-v0 section)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed the list of what PACKAGE links for TARGET into each already stripped FILE.
    Embed {
        /// The workspace package the files were built from.
        #[arg(long)]
        package: String,
        /// The target triple they were built for.
        #[arg(long)]
        target: String,
        /// Features of the build, as `package/feature` (repeatable).
        #[arg(long = "features")]
        features: Vec<String>,
        /// The workspace root (default: the current directory).
        #[arg(long, default_value = ".")]
        workspace: PathBuf,
        /// The objcopy to embed with (default: the toolchain's rust-objcopy).
        #[arg(long)]
        objcopy: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> Result<()> {
    let Command::Embed {
        package,
        target,
        features,
        workspace,
        objcopy,
        files,
    } = Cli::parse().command;
    let resolution = dep_list::resolve(&workspace, &target, &features)?;
    let section = dep_list::LinkedCrates::of(&resolution, &package)?.section_bytes()?;
    let objcopy = match objcopy {
        Some(objcopy) => objcopy,
        None => dep_list::toolchain_objcopy(&workspace)?,
    };
    // Every file is checked before any is changed: a rerun after a half-done run would
    // find the section in the first files and refuse them.
    if let Some(missing) = files.iter().find(|file| !file.is_file()) {
        bail!("{}: no such file", missing.display());
    }
    for file in &files {
        dep_list::embed(&objcopy, file, &section)?;
    }
    Ok(())
}
