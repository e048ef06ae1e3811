# shellcheck shell=bash
# Sourced by ld-wrapper.sh (rust-overlay wraps rustc's bundled ld.lld with it). The
# substitute's wrapper adds no flags, so there is nothing to share.
