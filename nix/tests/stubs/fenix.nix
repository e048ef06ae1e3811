# Stand-in for fenix (64f11a7a): `packages.<system>.rust-analyzer` (default.nix).
let
  record = import ./record.nix;
in
{
  packages = builtins.listToAttrs (
    map (system: {
      name = system;
      value.rust-analyzer = record "fenix" "rust-analyzer-nightly" { };
    }) [
      "x86_64-linux"
      "aarch64-linux"
    ]
  );
}
