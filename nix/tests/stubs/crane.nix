# Stand-in for crane v0.23.4 (10e6e3cb): `mkLib pkgs` returns a craneLib whose functions
# have the argument names of lib/*.nix at that revision (required arguments stay required)
# and record their arguments instead of building.
#
# Extra rules the real crane does not enforce but this flake relies on:
# - a `src` that is a derivation must come with pname, version, cargoVendorDir and
#   cargoArtifacts, or crane would read Cargo.toml/Cargo.lock from it (import from
#   derivation, which `nix flake check` refuses);
# - every cargo invocation of a build gets `--target` (cargo#4423).
let
  record = import ./record.nix;
  lib = import ./lib.nix;

  isDerivation = v: builtins.isAttrs v && (v.type or null) == "derivation";

  requireNoIfd =
    fn: args:
    if isDerivation (args.src or null) then
      let
        missing = builtins.filter (n: !(args ? ${n})) [
          "pname"
          "version"
          "cargoVendorDir"
          "cargoArtifacts"
        ];
      in
      if missing != [ ] then
        throw "crane.${fn}: src is a derivation but ${toString missing} not given: import from derivation"
      else
        args
    else
      args;

  # fileset/*.nix: the files crane's filters keep, as the stand-in lib models them.
  filesetOf =
    keep: path:
    lib.fileset.fileFilter keep path;
  cargoTomlAndLock = filesetOf (file: builtins.elem file.name [ "Cargo.toml" "Cargo.lock" ]);
  rust = filesetOf (file: file.hasExt "rs");
  toml = filesetOf (file: file.hasExt "toml");
  commonCargoSources =
    path:
    lib.fileset.unions [
      (cargoTomlAndLock path)
      (rust path)
      (toml path)
    ];

  mkCraneLib =
    pkgs: toolchain:
    let
      self = {
        inherit toolchain;

        overrideToolchain =
          toolchainArg:
          # default.nix: a function is called once per spliced package set.
          mkCraneLib pkgs (if builtins.isFunction toolchainArg then toolchainArg pkgs else toolchainArg);

        fileset = {
          inherit cargoTomlAndLock commonCargoSources rust toml;
        };

        vendorCargoDeps =
          args:
          if args ? cargoLock then
            assert builtins.isPath args.cargoLock && builtins.pathExists args.cargoLock;
            record "crane.vendorCargoDeps" "vendor-cargo-deps" args
          else if args ? src then
            record "crane.vendorCargoDeps" "vendor-cargo-deps" args
          else
            throw "unable to find `src` attribute";

        # buildDepsOnly.nix
        buildDepsOnly =
          {
            cargoBuildCommand ? "cargoWithProfile build",
            cargoCheckCommand ? "cargoWithProfile check",
            cargoExtraArgs ? "--locked",
            cargoBuildExtraArgs ? "",
            cargoTestCommand ? "cargoWithProfile test",
            cargoTestExtraArgs ? "--no-run",
            ...
          }@args:
          assert args ? src || args ? dummySrc;
          record "crane.buildDepsOnly" "${args.pname or "crate"}-deps" (
            requireNoIfd "buildDepsOnly" args // { inherit toolchain; }
          );

        # buildPackage.nix
        buildPackage =
          {
            cargoBuildCommand ? "cargoWithProfile build",
            cargoExtraArgs ? "--locked",
            cargoBuildExtraArgs ? "",
            cargoTestCommand ? "cargoWithProfile test",
            cargoTestExtraArgs ? "",
            ...
          }@args:
          record "crane.buildPackage" (args.pname or "crate") (
            requireNoIfd "buildPackage" args // { inherit toolchain; }
          );

        # cargoClippy.nix
        cargoClippy =
          {
            cargoArtifacts,
            cargoClippyExtraArgs ? "--all-targets",
            cargoExtraArgs ? "--locked",
            ...
          }@args:
          record "crane.cargoClippy" "clippy" args;

        # cargoNextest.nix
        cargoNextest =
          {
            cargoArtifacts,
            cargoExtraArgs ? "",
            cargoLlvmCovExtraArgs ? "--lcov --output-path $out/coverage",
            cargoNextestExtraArgs ? "",
            cargoNextestArchiveExtraArgs ? "",
            cargoNextestPartitionsExtraArgs ? "",
            doInstallCargoArtifacts ? true,
            partitions ? 1,
            partitionType ? "count",
            withLlvmCov ? false,
            ...
          }@args:
          record "crane.cargoNextest" "nextest" args
          // {
            # mkCargoDerivation uses stdenv; nativeCheckInputs join PATH only with doCheck,
            # which cargoNextest defaults to true.
            checkPath =
              pkgs.stdenvPath
              ++ builtins.concatMap (p: p.bins or [ ]) (
                (args.nativeBuildInputs or [ ]) ++ (if args.doCheck or true then args.nativeCheckInputs or [ ] else [ ])
              );
          };

        # cargoDoc.nix (mkCargoDerivation requires cargoArtifacts)
        cargoDoc =
          {
            cargoArtifacts,
            cargoDocExtraArgs ? "--no-deps",
            cargoExtraArgs ? "--locked",
            ...
          }@args:
          let
            # cargo writes target/<triple>/doc for an explicit target (flag or
            # CARGO_BUILD_TARGET), target/doc otherwise; cargoDoc.nix installs
            # target/${CARGO_BUILD_TARGET:-}/doc if it exists, else target/doc.
            flagTarget = builtins.match ".*--target[ =]([^ ]+).*" "${cargoExtraArgs} ${cargoDocExtraArgs}";
            envTarget = args.CARGO_BUILD_TARGET or "";
            written =
              if flagTarget != null then
                "target/${builtins.head flagTarget}/doc"
              else if envTarget != "" then
                "target/${envTarget}/doc"
              else
                "target/doc";
            installed =
              if args ? docInstallRoot then
                args.docInstallRoot
              else if envTarget != "" && written == "target/${envTarget}/doc" then
                written
              else
                "target/doc";
          in
          record "crane.cargoDoc" "doc" args
          // {
            docsWrittenTo = written;
            docsInstalledFrom = installed;
          };

        # cargoFmt.nix
        cargoFmt =
          {
            cargoExtraArgs ? "",
            rustFmtExtraArgs ? "",
            ...
          }@args:
          record "crane.cargoFmt" "fmt" args;

        # cargoDeny.nix
        cargoDeny =
          {
            cargoDenyExtraArgs ? "",
            cargoDenyChecks ? "bans licenses sources",
            cargoExtraArgs ? "",
            ...
          }@args:
          record "crane.cargoDeny" "deny" args;

        # cargoAudit.nix
        cargoAudit =
          {
            advisory-db,
            cargoAuditExtraArgs ? "--ignore yanked",
            src,
            ...
          }@args:
          record "crane.cargoAudit" "audit" args;

        # devShell.nix
        devShell =
          {
            checks ? { },
            inputsFrom ? [ ],
            packages ? [ ],
            ...
          }@args:
          record "crane.devShell" "devshell" (args // { inherit toolchain; });
      };
    in
    self;

in
{
  # flake.nix: mkLib = pkgs: import ./default.nix { inherit pkgs; };
  mkLib = pkgs: mkCraneLib pkgs null;
}
