# `nix develop`: the build toolchain plus what `cargo xtask ci|dist|verify|image` and the
# editor need.
#
# rust-analyzer and rust-src come from fenix, of the same release as the build toolchain
# (rust-overlay's): the proc-macro server and the sysroot sources then match the compiler.
# They stay outside craneLib's toolchain: adding them to it would change every build
# derivation's hash.
{
  pkgs,
  craneLib,
  editorComponents, # fenix's toolchain of rust-toolchain.toml's channel
  build, # nix/packages.nix
}:
craneLib.devShell (
  {
    packages = [
      editorComponents.rust-analyzer
      pkgs.cargo-nextest
      pkgs.cargo-deny
      pkgs.cargo-audit
      pkgs.maturin
      (build.python.withPackages (ps: [
        ps.numpy
        ps.pytest
      ]))
      pkgs.skopeo
      pkgs.umoci
      # The launcher's fallback test and `cargo xtask image`'s smoke run (qemu-x86_64).
      pkgs.qemu-user
      # `cargo xtask dist` records the commit; development's tests create repositories.
      pkgs.git
    ];
    RUST_SRC_PATH = "${editorComponents.rust-src}/lib/rustlib/src/rust/library";
    # The same interpreter as the builds, so pyo3 in the shell matches them.
    PYO3_PYTHON = build.python.interpreter;
  }
  # `cargo xtask dist` builds C code (tree-sitter) for musl: without musl's C compiler the
  # cc crate falls back to the glibc one and the link fails on glibc-only symbols. The
  # linker (rust-lld) is the packages' too; dist would set the same itself.
  // build.muslEnv
)
