# `nix flake check`: lints, tests, supply-chain checks, the Python FFI import and the pure
# Nix tests.
#
# Packages and images are not checks: `nix flake check` is what a developer runs before
# pushing, and every crate x variant release build (fat LTO, one codegen unit) would make it
# hours long on a small machine while the tests below need only the dev-profile build. CI
# builds every package and image in their own jobs (.github/workflows/ci.yml); the
# ffi-import check builds the baseline Python module because it imports it.
{
  pkgs,
  craneLib,
  workspace,
  system,
  build, # nix/packages.nix
  packages, # everything in packages.<system>
  advisory-db,
}:
let
  inherit (pkgs) lib;
  baseline = workspace.baselineVariant;
  gnuTarget = workspace.gnuTargetFor system;
  pythonFeatures = lib.concatMapStrings (
    n: " --features ${n}/${workspace.crates.${n}.pythonFeature}"
  ) workspace.pythonModuleNames;

  # Whole workspace, glibc target (the tests must run on the builder), the dev profile
  # (what `cargo test` builds; a release build with fat LTO per test binary buys nothing
  # here). No PYO3_BUILD_EXTENSION_MODULE: test binaries link libpython.
  workspaceArgs = {
    pname = "mcp-foundry";
    version = workspace.workspaceVersion;
    strictDeps = true;
    src = build.workspaceSrc;
    inherit (build) cargoVendorDir;
    CARGO_BUILD_TARGET = gnuTarget;
    CARGO_BUILD_RUSTFLAGS = workspace.rustflagsString baseline;
    CARGO_PROFILE = "";
    PYO3_PYTHON = build.python.interpreter;
    cargoExtraArgs = "--locked --workspace${pythonFeatures}";
  };

  # Dependency artifacts of the checks: `cargo check --all-targets` (clippy) and
  # `cargo test --no-run` (nextest, doc) of the whole workspace.
  checkDeps = craneLib.buildDepsOnly (workspaceArgs // { pname = "mcp-foundry-checks"; });

  checkArgs = workspaceArgs // {
    cargoArtifacts = checkDeps;
  };

  # Arguments for checks that only read sources (no artifacts, no target).
  sourceOnlyArgs = {
    pname = "mcp-foundry";
    version = workspace.workspaceVersion;
    src = build.workspaceSrc;
  };

  # CPython imports the baseline build of every Python module, then runs tests/ffi. The
  # environment gets numpy only through the module's propagated inputs, as a user's
  # `python3.withPackages (ps: [ mcp-foundry.mcp-rust-core-generic ])` would.
  ffiTests = workspace.root + "/tests/ffi";
  ffiImport =
    let
      modules = map (n: {
        module = workspace.crates.${n}.pythonModule;
        package = packages.${workspace.packageName n baseline};
      }) workspace.pythonModuleNames;
      # hypothesis: the property tests of tests/ffi/test_bad_input.py.
      env = build.python.withPackages (
        ps:
        [
          ps.pytest
          ps.hypothesis
        ]
        ++ map (m: m.package) modules
      );
    in
    # runCommandCC: the FFI test reads the module's exports with `nm` (binutils), which
    # only the C stdenv puts on PATH.
    pkgs.runCommandCC "mcp-foundry-ffi-import" { nativeBuildInputs = [ env ]; } ''
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
    checkArgs
    // {
      cargoClippyExtraArgs = "--all-targets -- --deny warnings";
    }
  );

  nextest = craneLib.cargoNextest (
    checkArgs
    // {
      # The tests compare READMEs and docs with the code.
      src = build.testSrc;
      # What the tests run: development's git repositories, bash-god's process tests
      # (pgrep), the launcher's fallback through qemu-user.
      nativeCheckInputs = [
        pkgs.git
        pkgs.procps
        pkgs.qemu-user
      ];
      # xtask's integration tests need the repository's .git and start nested release
      # builds of the workspace; its unit tests still run.
      cargoNextestExtraArgs = "--no-tests=warn --no-fail-fast -E 'not (package(xtask) & kind(test))'";
    }
  );

  # CARGO_BUILD_TARGET (workspaceArgs) is where crane looks for the docs: target/<triple>/doc.
  doc = craneLib.cargoDoc (
    checkArgs
    // {
      cargoDocExtraArgs = "--no-deps";
      RUSTDOCFLAGS = "--deny warnings";
    }
  );

  fmt = craneLib.cargoFmt sourceOnlyArgs;

  # deny.toml at the root: licenses, bans, sources (advisories are the `audit` check).
  deny = craneLib.cargoDeny (sourceOnlyArgs // { inherit (build) cargoVendorDir; });

  audit = craneLib.cargoAudit (sourceOnlyArgs // { inherit advisory-db; });

  ffi-import = ffiImport;
  nix-lib = nixLib;
}
