# shellcheck shell=bash
# HOME as a writable directory of the build (nixpkgs' HOME, /homeless-shelter, is not).
HOME="$(mktemp -d)"
export HOME
