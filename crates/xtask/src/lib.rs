//! `cargo xtask`: the mcp-foundry build driver.
//!
//! - [`metadata`]: the workspace's crates and CPU variants, read from `cargo metadata`.
//! - [`ci`]: the one test command (fmt, clippy, tests, dist, verify, FFI, images, Nix).
//! - [`dist`]: every shipped crate in every CPU variant, collected into `dist/`.
//! - [`image`]: reproducible OCI images of the servers and their smoke test.
//! - [`nix_check`]: offline verification of the Nix flake (`cargo xtask nix-check`).
//! - [`nix_offline`]: the flake built with real Nix offline (`cargo xtask nix-offline`).
//! - [`verify`]: instruction audit, exports check and reproducibility of `dist/`.

pub mod ci;
pub mod cpu;
pub mod dist;
pub mod image;
pub mod isa;
pub mod metadata;
pub mod nix_check;
pub mod nix_offline;
pub mod process;
pub mod verify;
