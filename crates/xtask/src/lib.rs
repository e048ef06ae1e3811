//! `cargo xtask`: the mcp-foundry build driver.
//!
//! - [`metadata`]: the workspace's crates and CPU variants, read from `cargo metadata`.
//! - [`ci`]: the one test command (fmt, clippy, tests, dist, verify, FFI, images, Nix).
//! - [`dist`]: every shipped crate in every CPU variant, collected into `dist/`.
//! - [`image`]: reproducible OCI images of the servers and their smoke test.
//! - [`peer_bench`]: the development server against the reference MCP servers.
//! - [`nix_check`]: offline verification of the Nix flake (`cargo xtask nix-check`).
//! - [`verify`]: instruction audit, exports check and reproducibility of `dist/`.

pub mod ci;
pub mod cpu;
pub mod dist;
pub mod image;
pub mod isa;
pub mod metadata;
pub mod nix_check;
pub mod peer_bench;
pub mod process;
pub mod verify;
