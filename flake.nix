{
  description = "mcp-foundry: MCP servers in Rust, built per CPU variant, with OCI images";

  # crane v0.23.4 (flake.lock) needs Nix >= 2.31.2 and nixpkgs >= 25.11; see NIX.md.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    advisory-db = {
      url = "github:rustsec/advisory-db";
      flake = false;
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
      rust-overlay,
      advisory-db,
      ...
    }:
    let
      # Crates, roles and CPU variants, all read from the Cargo.toml files.
      workspace = import ./nix/lib.nix { root = ./.; };
      gitCommit = self.rev or "dirty";
      sourceDateEpoch = self.lastModified or 1;
      toolchainFile = ./rust-toolchain.toml;

      perSystem =
        system:
        let
          pkgs = import nixpkgs {
            inherit system;
            overlays = [ rust-overlay.overlays.default ];
          };
          # The pinned toolchain (rust-toolchain.toml: channel, profile, components), with
          # this system's glibc and musl targets in place of the file's x86_64 ones.
          toolchainFor =
            p:
            (p.rust-bin.fromRustupToolchainFile toolchainFile).override {
              targets = workspace.rustTargetsFor system;
            };
          craneLib = (crane.mkLib pkgs).overrideToolchain toolchainFor;

          build = import ./nix/packages.nix {
            inherit
              pkgs
              craneLib
              workspace
              system
              gitCommit
              sourceDateEpoch
              ;
          };
          images = import ./nix/images.nix {
            inherit
              pkgs
              workspace
              system
              gitCommit
              sourceDateEpoch
              ;
            inherit (build) cratePackages launcher;
          };
          packages =
            build.packages
            // images.packages
            // {
              # `nix build`: every shipped crate in the portable variant.
              default = pkgs.symlinkJoin {
                name = "mcp-foundry-${workspace.baselineVariant}";
                paths = map (
                  crate: build.cratePackages.${workspace.packageName crate workspace.baselineVariant}
                ) workspace.shippedNames;
              };
            };
          channel = (builtins.fromTOML (builtins.readFile toolchainFile)).toolchain.channel;
        in
        {
          inherit packages;
          checks = import ./nix/checks.nix {
            inherit
              pkgs
              craneLib
              workspace
              system
              build
              packages
              advisory-db
              ;
          };
          devShells.default = import ./nix/shell.nix {
            inherit pkgs craneLib build;
            toolchainComponents = pkgs.rust-bin.stable.${channel};
          };
          inherit (images) apps;
          # `nix fmt` (Nix >= 2.25) passes no file arguments; nixfmt-tree formats the tree.
          formatter = pkgs.nixfmt-tree;
        };

      bySystem = workspace.genAttrs workspace.systems perSystem;
      collect = output: workspace.genAttrs workspace.systems (system: bySystem.${system}.${output});
    in
    {
      packages = collect "packages";
      checks = collect "checks";
      devShells = collect "devShells";
      apps = collect "apps";
      formatter = collect "formatter";

      # Every package of this flake under `mcp-foundry`, built with the flake's own pins.
      # (`nix flake check` insists on the argument names `final` and `prev`.)
      # deadnix: skip
      overlays.default = final: prev: {
        mcp-foundry = self.packages.${final.stdenv.hostPlatform.system};
      };
    };
}
