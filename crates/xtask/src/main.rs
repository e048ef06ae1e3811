//! `cargo xtask <command>`: see `cargo xtask --help`. The logic lives in the library.

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::metadata::Workspace;
use xtask::prereq::{self, Needs};

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
    /// Run every foreign-architecture (cross-built) binary of dist/ under qemu-user: MCP
    /// handshake of each server, the launcher's choice.
    Emulate(xtask::cross::emulate::EmulateArgs),
    /// OCI images of every server from dist/ (a tag per variant, `latest` dispatches by CPU).
    Image(xtask::image::ImageArgs),
    /// Sign dist/ with an OpenSSH key (SHA256SUMS + SHA256SUMS.sig), or `--verify` it.
    Sign(xtask::sign::SignArgs),
    /// Offline checks of the Nix flake: every .nix parses, lib and wiring tests, flake.lock.
    NixCheck,
    /// Build the flake with real Nix >= 2.31 offline (pinned inputs from CRANE_SRC etc.).
    NixOffline(xtask::nix_offline::NixOfflineArgs),
    /// Benchmarks: build-profile choices, runtime numbers of a dist/, the reference MCP servers.
    Bench(xtask::bench::BenchArgs),
    /// Check and install the prerequisites of the tasks (what `.ci/run` does first).
    Setup(xtask::prereq::SetupArgs),
    /// List the CPU variants and crates (with roles) that the workspace metadata declares.
    List,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let workspace = Workspace::load()?;
    match cli.command {
        Command::Ci(args) => xtask::ci::run(&workspace, &args),
        Command::Dist(args) => xtask::dist::run(&workspace, &args).map(drop),
        Command::Verify(args) => {
            if args.rebuild {
                let crates: Vec<_> = workspace.shipped_crates().collect();
                let mut needs = Needs::dist(&crates);
                needs.task = "verify --rebuild".to_owned();
                prereq::ensure(&workspace.root, &needs)?;
            }
            xtask::verify::run(&workspace, &args).map(drop)
        }
        Command::Emulate(args) => {
            prereq::ensure(
                &workspace.root,
                &Needs::new("emulate", [prereq::Use::Emulate]),
            )?;
            xtask::cross::emulate::run(&workspace, &args).map(drop)
        }
        Command::Image(args) => xtask::image::run(&workspace, &args),
        Command::Sign(args) => {
            prereq::ensure(&workspace.root, &Needs::new("sign", [prereq::Use::Sign]))?;
            xtask::sign::run(&workspace.root.join("dist"), &args)
        }
        Command::NixCheck => xtask::nix_check::run(&workspace.root),
        Command::NixOffline(args) => {
            prereq::ensure(&workspace.root, &xtask::nix_offline::needs(&workspace)?)?;
            xtask::nix_offline::run(&workspace, &args)
        }
        Command::Bench(args) => xtask::bench::run(&workspace, &args),
        Command::Setup(args) => prereq::setup(&workspace.root, &args),
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
