# `nix develop`: the build toolchain plus the editor and release tools.
#
# rust-analyzer comes from fenix and rust-src from the same rust-overlay release as the
# toolchain, both outside craneLib's toolchain: adding them to it would change every build
# derivation's hash.
{
  pkgs,
  craneLib,
  rustAnalyzer,
  rustSrc,
  build, # nix/packages.nix
}:
craneLib.devShell {
  packages = [
    rustAnalyzer
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
  ];
  RUST_SRC_PATH = "${rustSrc}/lib/rustlib/src/rust/library";
  # The same interpreter as the builds, so pyo3 in the shell matches them.
  PYO3_PYTHON = build.python.interpreter;
}
