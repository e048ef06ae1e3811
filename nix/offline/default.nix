# A nixpkgs substitute for building this repository's flake offline with real Nix and the
# real crane/rust-overlay: `nix build --override-input nixpkgs path:<staged copy>` (see
# crates/xtask/src/nix_offline.rs, which stages this directory with nixpkgs' `lib` and a
# generated host.nix).
#
# Every package is a program of this host (Debian), exposed alone: a package's bin/ holds
# only its own executables (from dpkg's file lists), so a derivation that forgets an input
# fails as in a sandbox. stdenv is a real phases-and-hooks builder (stdenv/setup.sh) that
# crane's setup hooks run in; stdenv has a C compiler and binutils, stdenvNoCC does not.
# Downloads are served from this host's caches (fetchurl.py). What it cannot show is listed
# in NIX.md ("What the substitute cannot prove").
{
  system ? builtins.currentSystem,
  localSystem ? {
    inherit system;
  },
  overlays ? [ ],
  config ? { },
  crossSystem ? null,
  ...
}:
let
  lib = import ./lib;
  host = import ./host.nix;
  hostSystem = localSystem.system or system;
  platform = lib.systems.elaborate hostSystem;

  base = final: import ./pkgs.nix { inherit lib host platform final; };
in
assert lib.assertMsg (crossSystem == null) "offline nixpkgs: cross compilation is not modelled";
lib.fix (lib.extends (lib.composeManyExtensions overlays) base)
