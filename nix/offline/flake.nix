{
  description = "Offline nixpkgs substitute for mcp-foundry (see default.nix); staged by cargo xtask nix-offline";

  outputs =
    { self }:
    let
      lib = import ./lib;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: import ./. { inherit system; });
    };
}
