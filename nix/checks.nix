# `nix flake check`: lints, tests, supply-chain checks, the Python FFI import, the offline
# Nix tests, and every package and image.
{
  pkgs,
  craneLib,
  workspace,
  build, # nix/packages.nix
  packages, # everything in packages.<system>
  advisory-db,
}:
let
  inherit (pkgs) lib;
  baseline = workspace.baselineVariant;

  # The baseline variant's arguments and dependency artifacts, whole workspace, glibc
  # target (the tests must run on the builder).
  workspaceArgs = build.commonArgs baseline // {
    src = build.workspaceSrc;
    cargoArtifacts = build.depsFor.${baseline};
    cargoExtraArgs = build.gnuWorkspaceArgs;
  };

  # Arguments for checks that only read sources (no artifacts, no target).
  sourceOnlyArgs = {
    pname = "mcp-foundry";
    version = workspace.workspaceVersion;
    src = build.workspaceSrc;
  };

  # CPython imports the baseline build of every Python module, then runs tests/ffi.
  ffiTests = workspace.root + "/tests/ffi";
  ffiImport =
    let
      modules = map (n: {
        crate = n;
        module = workspace.crates.${n}.pythonModule;
        package = packages.${workspace.packageName n baseline};
      }) workspace.pythonModuleNames;
      env = build.python.withPackages (
        ps:
        [
          ps.numpy
          ps.pytest
        ]
        ++ map (m: m.package) modules
      );
    in
    pkgs.runCommand "mcp-foundry-ffi-import" { nativeBuildInputs = [ env ]; } ''
      cd "$TMPDIR"
      ${lib.concatMapStrings (m: ''
        python -c 'import ${m.module}, sys; print(${m.module}.__file__, file=sys.stderr)'
      '') modules}
      ${lib.optionalString (builtins.pathExists ffiTests) ''
        cp -r ${ffiTests} ffi
        python -m pytest -q -p no:cacheprovider ffi
      ''}
      touch $out
    '';

  # nix/tests/lib.nix evaluated during `nix flake check` (pure, builtins only). The
  # comparison with `cargo metadata` needs cargo, so only `cargo xtask nix-check` does it.
  libTests = import ./tests/lib.nix { inherit (workspace) root; };
  nixLib =
    if libTests.failed == [ ] then
      pkgs.runCommand "mcp-foundry-nix-lib-tests" { } ''
        echo ${lib.escapeShellArg (toString (builtins.length libTests.passed))} nix/lib.nix tests passed > $out
      ''
    else
      throw "nix/tests/lib.nix failed: ${builtins.toJSON libTests.failed}";
in
{
  clippy = craneLib.cargoClippy (
    workspaceArgs
    // {
      cargoClippyExtraArgs = "--all-targets -- --deny warnings";
    }
  );

  nextest = craneLib.cargoNextest (
    workspaceArgs
    // {
      cargoNextestExtraArgs = "--no-tests=warn";
    }
  );

  doc = craneLib.cargoDoc (
    workspaceArgs
    // {
      cargoDocExtraArgs = "--no-deps";
      RUSTDOCFLAGS = "--deny warnings";
      doCheck = false;
    }
  );

  fmt = craneLib.cargoFmt sourceOnlyArgs;

  # deny.toml at the root: licenses, bans, sources (advisories are the `audit` check).
  deny = craneLib.cargoDeny (
    sourceOnlyArgs
    // {
      inherit (build) cargoVendorDir;
    }
  );

  audit = craneLib.cargoAudit (
    sourceOnlyArgs
    // {
      inherit advisory-db;
    }
  );

  ffi-import = ffiImport;
  nix-lib = nixLib;
}
// builtins.removeAttrs packages [ "default" ]
