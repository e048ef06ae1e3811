//! `cargo xtask`: the mcp-foundry build driver.
//!
//! - [`metadata`]: the workspace's crates and CPU variants, read from `cargo metadata`.
//! - [`apt`]: Debian packages of another architecture, fetched with a private apt state.
//! - [`mod@bench`]: build-profile choices, runtime numbers and the reference MCP servers, each
//!   measured side by side (`cargo xtask bench`).
//! - [`cross`]: builds for other architectures (aarch64 from x86_64) and their run under
//!   qemu-user (`cargo xtask emulate`).
//! - [`ci`]: the one test command (fmt, clippy, tests, dist, verify, FFI, images, Nix).
//! - [`dist`]: every shipped crate in every CPU variant, collected into `dist/`.
//! - [`image`]: reproducible OCI images of the servers and their smoke test.
//! - [`mcp_client`]: a minimal MCP client over stdio (smoke tests, benchmarks).
//! - [`nix_check`]: offline verification of the Nix flake (`cargo xtask nix-check`).
//! - [`nix_offline`]: the flake built with real Nix offline (`cargo xtask nix-offline`).
//! - [`verify`]: instruction audit, exports check and reproducibility of `dist/`.
//! - [`prereq`]: the one list of prerequisites, checked (and installed) before a task runs.
//! - [`timing`]: per-step wall times, printed as a table when a task ends.
//! - [`wheel`]: the Python wheel of `dist/` and its install test.

pub mod apt;
pub mod bench;
pub mod ci;
pub mod cpu;
pub mod cross;
pub mod disk;
pub mod dist;
pub mod image;
pub mod isa;
pub mod mcp_client;
pub mod metadata;
pub mod nix_check;
pub mod nix_offline;
pub mod prereq;
pub mod process;
pub mod provenance;
pub mod sbom;
pub mod sign;
pub mod timing;
pub mod verify;
pub mod wheel;
