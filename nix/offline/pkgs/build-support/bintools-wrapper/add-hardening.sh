# shellcheck shell=bash
# No hardening flags in the substitute (nixpkgs adds -z relro/now, pie, ...).
