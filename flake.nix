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
    # The dev shell's rust-analyzer and rust-src, of the release rust-toolchain.toml pins.
    fenix = {
      url = "github:nix-community/fenix";
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
      fenix,
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
            # fenix through its overlay: its flake's `packages` forces every attribute,
            # rust-analyzer nightly's source (an input we never use) included.
            overlays = [
              rust-overlay.overlays.default
              fenix.overlays.default
            ];
          };
          # The pinned toolchain (rust-toolchain.toml: channel, profile, components), with
          # this system's glibc and musl targets in place of the file's x86_64 ones.
          toolchainFor =
            p:
            (p.rust-bin.fromRustupToolchainFile toolchainFile).override {
              targets = workspace.rustTargetsFor system;
            };
          craneLib = (crane.mkLib pkgs).overrideToolchain toolchainFor;
          # The dev shell's toolchain also has every target rust-toolchain.toml lists:
          # `cargo xtask dist` checks for them (it cross-builds aarch64) and refused to run
          # in the shell without. Builds keep this system's two, so the shell never changes
          # a build hash.
          fileTargets = (builtins.fromTOML (builtins.readFile toolchainFile)).toolchain.targets or [ ];
          shellCraneLib = (crane.mkLib pkgs).overrideToolchain (
            p:
            (toolchainFor p).override {
              targets =
                workspace.rustTargetsFor system
                ++ builtins.filter (t: !(builtins.elem t (workspace.rustTargetsFor system))) fileTargets;
            }
          );

          build = import ./nix/packages.nix {
            inherit
              pkgs
              craneLib
              workspace
              system
              gitCommit
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
          # sha256 of the release's channel manifest (`channel-rust-<channel>.toml`, as
          # published with its `.sha256`): fenix fetches the editor components through it.
          # Update it with rust-toolchain.toml's channel.
          channelManifestHash = "sha256-ggdasshYTorf1oAq4pl7Kb6LNpWSylaL9eq1Ts9fMTo=";
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
            inherit pkgs build;
            craneLib = shellCraneLib;
            editorComponents = pkgs.fenix.fromToolchainName {
              name = channel;
              sha256 = channelManifestHash;
            };
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
