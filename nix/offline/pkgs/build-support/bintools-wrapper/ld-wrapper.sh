#! @shell@
# The substitute's linker wrapper (rust-overlay substitutes @prog@ with the unwrapped
# ld.lld): runs the linker unchanged. nixpkgs' wrapper adds NIX_LDFLAGS, hardening and
# store RPATHs, which the substitute does not model.
exec "@prog@" "$@"
