# One derivation per shipped crate x CPU variant, the dispatch launcher, and the shared
# pieces (sources, vendored dependencies, per-variant dependency artifacts) that
# nix/checks.nix and nix/images.nix reuse.
{
  pkgs,
  craneLib,
  workspace,
  system,
  # `self.rev`, or "dirty" for an uncommitted tree: embedded by build.rs (`--version`).
  gitCommit,
  # `self.lastModified`: SOURCE_DATE_EPOCH of every build and the images' `created`.
  sourceDateEpoch,
}:
let
  inherit (pkgs) lib;
  inherit (workspace) crates root;

  python = pkgs.python3;
  gnuTarget = workspace.gnuTargetFor system;
  muslTarget = workspace.muslTargetFor system;
  variantNames = workspace.variantNamesFor system;
  baselineVariant = workspace.baselineVariant;

  # C code (e.g. tree-sitter grammars, built by the `cc` crate) in a static musl binary must
  # be compiled against musl headers: glibc's would leave unresolved glibc-only symbols.
  # Rust links musl targets self-contained (its own crt objects and libc.a), so only the C
  # compiler and archiver are set, not the linker.
  muslCC = pkgs.pkgsStatic.stdenv.cc;
  muslCEnv = {
    "CC_${workspace.ccTargetEnv muslTarget}" = "${muslCC}/bin/${muslCC.targetPrefix}cc";
    "AR_${workspace.ccTargetEnv muslTarget}" = "${muslCC.bintools}/bin/${muslCC.targetPrefix}ar";
  };

  # ---- sources --------------------------------------------------------------------------
  memberSources = dir: craneLib.fileset.commonCargoSources (root + "/${dir}");

  # Everything cargo reads for the whole workspace (deps, checks); not nix/, whose test
  # fixtures contain Cargo.toml files of their own.
  workspaceSrc = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions (
      [
        (root + "/Cargo.toml")
        (root + "/Cargo.lock")
        (craneLib.fileset.commonCargoSources (root + "/crates"))
      ]
      # Tool configuration cargo, rustfmt, clippy and cargo-deny read from the root.
      ++ map (name: lib.fileset.maybeMissing (root + "/${name}")) [
        ".cargo"
        "rustfmt.toml"
        ".rustfmt.toml"
        "clippy.toml"
        ".clippy.toml"
        "deny.toml"
      ]
    );
  };

  # Vendored once from the real Cargo.lock (a path, so no import-from-derivation even though
  # the per-crate sources below are derivations).
  cargoVendorDir = craneLib.vendorCargoDeps { cargoLock = root + "/Cargo.lock"; };

  # A crate's source: its own files and those of the members it depends on (transitively);
  # every other member keeps its Cargo.toml and gets empty placeholders for its .rs files,
  # because cargo loads every workspace member's manifest and targets even for `-p X`.
  # Editing another server therefore does not rebuild this one.
  crateSource =
    crateName:
    let
      builtDirs = map (n: crates.${n}.dir) (workspace.sourceClosure crateName);
      otherDirs = builtins.filter (d: !(builtins.elem d builtDirs)) workspace.memberDirs;
      # Plain strings without store context: only the file names of the other members
      # enter this derivation, not their contents.
      placeholders = builtins.concatMap (
        d:
        map (path: lib.path.removePrefix root path) (
          lib.fileset.toList (craneLib.fileset.rust (root + "/${d}"))
        )
      ) otherDirs;
      real = lib.fileset.toSource {
        inherit root;
        fileset = lib.fileset.unions (
          [
            (root + "/Cargo.toml")
            (root + "/Cargo.lock")
            (lib.fileset.maybeMissing (root + "/.cargo"))
          ]
          ++ map (d: craneLib.fileset.cargoTomlAndLock (root + "/${d}")) otherDirs
          ++ map memberSources builtDirs
          # The Python package's own files (site-packages layout, see pythonLayout) and
          # test data next to the tests, which commonCargoSources would leave out.
          ++ map (d: lib.fileset.maybeMissing (root + "/${d}/python")) builtDirs
          ++ map (d: lib.fileset.maybeMissing (root + "/${d}/tests")) builtDirs
        );
      };
    in
    pkgs.runCommand "${crateName}-source" { realSource = real; } ''
      cp -r --no-preserve=mode "$realSource" $out
      while read -r file; do
        [ -n "$file" ] || continue
        mkdir -p "$out/$(dirname "$file")"
        echo '// placeholder: this member is not built from this source' > "$out/$file"
      done <<'PLACEHOLDERS'
      ${builtins.concatStringsSep "\n" placeholders}
      PLACEHOLDERS
    '';

  # ---- shared derivation arguments ------------------------------------------------------
  pythonFeatureArgs = lib.concatMapStrings (
    n: " --features ${n}/${crates.${n}.pythonFeature}"
  ) workspace.pythonModuleNames;

  # Identical in every derivation of a variant: any difference (PYO3_PYTHON above all)
  # would make cargo rebuild the dependency artifacts instead of reusing them.
  commonArgs =
    variant:
    {
      pname = "mcp-foundry";
      version = workspace.workspaceVersion;
      strictDeps = true;
      inherit cargoVendorDir;
      # Applied to the --target only: cargo keeps RUSTFLAGS away from build scripts and
      # proc-macros when --target is given (cargo#4423), so they never SIGILL on the builder.
      CARGO_BUILD_RUSTFLAGS = workspace.rustflagsString variant;
      PYO3_PYTHON = python.interpreter;
      MCP_FOUNDRY_VARIANT = variant;
      MCP_FOUNDRY_GIT_COMMIT = gitCommit;
      SOURCE_DATE_EPOCH = toString sourceDateEpoch;
      doCheck = workspace.variants.${variant}.runsTests;
    }
    // muslCEnv;

  # The two cargo invocations whose dependency artifacts every later build reuses: static
  # servers (musl) and the glibc target (Python module, tests, clippy, docs).
  muslWorkspaceArgs = "--locked --workspace --target ${muslTarget}";
  gnuWorkspaceArgs = "--locked --workspace --target ${gnuTarget}${pythonFeatureArgs}";

  # One dependency build per variant: different RUSTFLAGS make different artifacts.
  depsFor = workspace.genAttrs variantNames (
    variant:
    let
      args = commonArgs variant;
    in
    craneLib.buildDepsOnly (
      args
      // {
        pname = "mcp-foundry-${variant}";
        src = workspaceSrc;
        buildPhaseCargoCommand = lib.concatMapStrings (cargoArgs: ''
          ${lib.optionalString args.doCheck "cargoWithProfile check ${cargoArgs} --all-targets"}
          cargoWithProfile build ${cargoArgs}
        '') [ muslWorkspaceArgs gnuWorkspaceArgs ];
        checkPhaseCargoCommand = "cargoWithProfile test ${gnuWorkspaceArgs} --no-run";
      }
    )
  );

  # ---- packages -------------------------------------------------------------------------
  # site-packages/<module>/{__init__.py,...} from crates/<crate>/python/<module>/ plus the
  # cdylib as <module>.abi3.so, so `python3.withPackages (ps: [ this ])` can import it.
  pythonLayout = crate: ''
    site="$out/${python.sitePackages}/${crate.pythonModule}"
    mkdir -p "$site"
    cp -r "${crate.dir}/python/${crate.pythonModule}/." "$site/"
    cp "$out/lib/lib${crate.libName}.so" "$site/${crate.pythonModule}.abi3.so"
  '';

  mkCrate =
    crateName: variant:
    let
      crate = crates.${crateName};
      isPythonModule = crate.role == "python-module";
      target = workspace.targetFor system crateName;
      drv = craneLib.buildPackage (
        commonArgs variant
        // {
          pname = workspace.packageName crateName variant;
          src = crateSource crateName;
          cargoArtifacts = depsFor.${variant};
          cargoExtraArgs =
            "--locked -p ${crateName} --target ${target}"
            + lib.optionalString isPythonModule " --features ${crate.pythonFeature}";
          postInstall = lib.optionalString isPythonModule (pythonLayout crate);
          passthru = {
            inherit variant target;
            crate = crateName;
          };
          meta = {
            inherit (crate) description;
          }
          // lib.optionalAttrs (!isPythonModule) { mainProgram = crateName; };
        }
      );
    in
    if isPythonModule then python.pkgs.toPythonModule drv else drv;

  cratePackages = builtins.listToAttrs (
    builtins.concatMap (
      crateName:
      map (variant: {
        name = workspace.packageName crateName variant;
        value = mkCrate crateName variant;
      }) variantNames
    ) workspace.shippedNames
  );

  # The dispatch launcher: baseline CPU only (it must run everywhere), static.
  launcher =
    if workspace.launcher == null then
      null
    else
      craneLib.buildPackage (
        commonArgs baselineVariant
        // {
          pname = workspace.launcher;
          src = crateSource workspace.launcher;
          cargoArtifacts = depsFor.${baselineVariant};
          cargoExtraArgs = "--locked -p ${workspace.launcher} --target ${muslTarget}";
          meta = {
            inherit (crates.${workspace.launcher}) description;
            mainProgram = workspace.launcher;
          };
        }
      );
in
{
  inherit
    python
    workspaceSrc
    cargoVendorDir
    commonArgs
    depsFor
    gnuWorkspaceArgs
    cratePackages
    launcher
    ;
  packages =
    cratePackages
    // lib.optionalAttrs (launcher != null) { ${workspace.launcher} = launcher; };
}
