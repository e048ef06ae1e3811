# Stand-in for fenix (64f11a7a): `overlays.default` adds `fenix`, whose
# `fromToolchainName { name, sha256 }` (default.nix) returns a toolchain of that release whose components are named
# `<component>-<channel>`, `-preview` removed (lib/mk-toolchain.nix). It refuses what
# fenix would: a name that is no toolchain name, and (for a release channel) a missing
# manifest hash, which would make fenix fetch the manifest impurely.
let
  record = import ./record.nix;
  fromToolchainName =
    {
      name,
      sha256 ? "",
    }:
    if builtins.match "(stable|beta|nightly|[0-9]+[.][0-9]+([.][0-9]+)?)" name == null then
      throw "fenix stub: `${name}` is not a toolchain name"
    else if builtins.match "sha256-[A-Za-z0-9+/]{43}=" sha256 == null then
      throw "fenix stub: fromToolchainName ${name} needs the channel manifest's sha256"
    else
      {
        manifest = {
          inherit name sha256;
        };
        rust-src = record "fenix.component" "rust-src-${name}" { inherit sha256; };
        rust-analyzer = record "fenix.component" "rust-analyzer-preview-${name}" { inherit sha256; };
      };
in
{
  overlays.default = final: prev: {
    fenix = {
      inherit fromToolchainName;
    };
  };
}
