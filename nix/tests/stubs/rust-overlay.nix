# Stand-in for rust-overlay (fd2ebb9c): `overlays.default` adds `rust-bin`, whose
# `fromRustupToolchainFile` reads the TOML file like lib/rust-bin.nix does and returns a
# toolchain made by `makeOverridable` over { extensions, targets, targetExtensions,
# enableLibsecret }.
let
  record = import ./record.nix;
  # Versions verified in manifests/stable/default.nix at the pinned revision.
  knownStable = [ "1.95.0" ];

  mkToolchain =
    args:
    let
      unknown = builtins.filter (
        n:
        !(builtins.elem n [
          "extensions"
          "targets"
          "targetExtensions"
          "enableLibsecret"
          "channel"
          "profile"
        ])
      ) (builtins.attrNames args);
    in
    if unknown != [ ] then
      throw "rust-overlay toolchain.override: unknown arguments ${toString unknown}"
    else
      record "rust-overlay.toolchain" "rust-${args.profile}-${args.channel}" args
      // {
        toolchainArgs = args;
        override = newArgs: mkToolchain (args // newArgs);
      };

  fromRustupToolchain =
    {
      path ? null,
      channel ? null,
      profile ? null,
      components ? [ ],
      targets ? [ ],
    }:
    if path != null then
      throw "`path` is not supported"
    else if channel == null then
      throw "`channel` is required"
    else if !(builtins.elem channel knownStable) then
      throw "stand-in rust-overlay: channel ${channel} is not among the verified versions ${toString knownStable}"
    else
      mkToolchain {
        inherit channel targets;
        profile = if profile == null then "default" else profile;
        extensions = components;
      };
in
{
  overlays.default = final: prev: {
    rust-bin = {
      inherit fromRustupToolchain;
      fromRustupToolchainFile =
        path:
        assert builtins.isPath path;
        fromRustupToolchain (builtins.fromTOML (builtins.readFile path)).toolchain;
      stable = builtins.listToAttrs (
        map (version: {
          name = version;
          value = {
            rust-src = record "rust-overlay.component" "rust-src-${version}" { };
            rust-analyzer = record "rust-overlay.component" "rust-analyzer-preview-${version}" { };
          };
        }) knownStable
      );
    };
  };
}
