# shellcheck shell=bash
# The builder of every substitute mkDerivation: nixpkgs' shape (setup, then genericBuild).
# shellcheck disable=SC1091
source "$stdenv/setup"
genericBuild
