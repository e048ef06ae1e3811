# shellcheck shell=bash
# No NIX_LDFLAGS in the substitute: the host linker's defaults apply.
