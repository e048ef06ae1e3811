//! `cargo xtask <command>`: see `cargo xtask --help`. The logic lives in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::metadata::Workspace;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "The mcp-foundry build driver", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The project's test command: fmt, clippy, tests, dist, verify, FFI tests, images, Nix.
    Ci(xtask::ci::CiArgs),
    /// Build every shipped crate in every CPU variant into dist/ (with manifest.json).
    Dist(xtask::dist::DistArgs),
    /// Audit dist/: instruction sets, exports, static linking; `--rebuild` for reproducibility.
    Verify(xtask::verify::VerifyArgs),
    /// OCI images of every server from dist/ (a tag per variant, `latest` dispatches by CPU).
    Image(xtask::image::ImageArgs),
    /// Offline checks of the Nix flake: every .nix parses, lib and wiring tests, flake.lock.
    NixCheck,
    /// The development server vs the reference MCP servers (PyPI git, npm filesystem): table in BENCHMARKS.md.
    BenchPeers(xtask::peer_bench::PeerBenchArgs),
    /// List the CPU variants and crates (with roles) that the workspace metadata declares.
    List,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let workspace = Workspace::load()?;
    match cli.command {
        Command::Ci(args) => xtask::ci::run(&workspace, &args),
        Command::Dist(args) => xtask::dist::run(&workspace, &args).map(drop),
        Command::Verify(args) => xtask::verify::run(&workspace, &args).map(drop),
        Command::Image(args) => xtask::image::run(&workspace, &args),
        Command::NixCheck => xtask::nix_check::run(&workspace.root),
        Command::BenchPeers(args) => xtask::peer_bench::run(&workspace.root, &args),
        Command::List => {
            println!("variants:");
            for variant in &workspace.variants {
                println!(
                    "  {:<10} target-cpu={:<10} {}",
                    variant.name, variant.target_cpu, variant.description
                );
            }
            println!("crates:");
            for spec in &workspace.crates {
                println!(
                    "  {:<22} {:<14} {}",
                    spec.name,
                    spec.role.as_str(),
                    spec.version
                );
            }
            Ok(())
        }
    }
}
