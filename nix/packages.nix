# One derivation per shipped crate x CPU variant, the dispatch launcher, and the shared
# pieces (sources, vendored dependencies, per variant x target dependency artifacts) that
# nix/checks.nix and nix/images.nix reuse.
{
  pkgs,
  craneLib,
  workspace,
  system,
  # `self.rev`, or "dirty" for an uncommitted tree: embedded by build.rs (`--version`).
  gitCommit,
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
  # Rust links musl targets self-contained (its own crt objects and libc.a) with the
  # toolchain's rust-lld, as `cargo xtask dist` does (crates/xtask/src/cross.rs), so the
  # link depends on neither nixpkgs' nor the host's binutils. Only musl derivations carry
  # these, so a glibc build (the Python module) never builds the static C toolchain.
  muslCC = pkgs.pkgsStatic.stdenv.cc;
  muslEnv = {
    "CC_${workspace.ccTargetEnv muslTarget}" = "${muslCC}/bin/${muslCC.targetPrefix}cc";
    "AR_${workspace.ccTargetEnv muslTarget}" = "${muslCC.bintools}/bin/${muslCC.targetPrefix}ar";
    # rustc finds rust-lld in the toolchain's own bin directory.
    "CARGO_TARGET_${workspace.cargoTargetEnv muslTarget}_LINKER" = "rust-lld";
  };

  # ---- sources --------------------------------------------------------------------------
  memberSources = dir: craneLib.fileset.commonCargoSources (root + "/${dir}");

  # Everything cargo reads for the whole workspace (deps, checks); not nix/, whose test
  # fixtures contain Cargo.toml files of their own.
  workspaceFileset = lib.fileset.unions (
    [
      (root + "/Cargo.toml")
      (root + "/Cargo.lock")
      (craneLib.fileset.commonCargoSources (root + "/crates"))
      # The MCP registry's server.json schema, which xtask embeds (include_str!).
      (root + "/crates/xtask/schemas")
    ]
    # Tool configuration cargo, rustfmt, clippy, nextest and cargo-deny read from the root.
    ++ map (name: lib.fileset.maybeMissing (root + "/${name}")) [
      ".cargo"
      ".config"
      "rustfmt.toml"
      ".rustfmt.toml"
      "clippy.toml"
      ".clippy.toml"
      "deny.toml"
    ]
  );
  workspaceSrc = lib.fileset.toSource {
    inherit root;
    fileset = workspaceFileset;
  };

  # What the tests read beyond cargo's sources (the nextest check only, so a README edit
  # does not rebuild the dependencies): each crate's README (a server's tool list, bash-god's
  # risk table), the root documents xtask's unit tests compare with the code, tests/ and .ci/.
  testSrc = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions (
      [
        workspaceFileset
        (lib.fileset.fileFilter (file: file.hasExt "md") (root + "/crates"))
      ]
      ++ map (name: lib.fileset.maybeMissing (root + "/${name}")) [
        "README.md"
        # xtask's prerequisite and clippy-build tests read the toolchain file.
        "rust-toolchain.toml"
        "BENCHMARKS.md"
        "NIX.md"
        "docs"
        "tests"
        ".ci"
        # ci's doc step must deny the same rustdoc warnings as the doc check (xtask test).
        "nix/checks.nix"
      ]
    );
  };

  # Vendored once from the real Cargo.lock (a path, so no import-from-derivation even though
  # the per-crate sources below are derivations).
  cargoVendorDir = craneLib.vendorCargoDeps { cargoLock = root + "/Cargo.lock"; };

  # A crate's source: its own files and those of the members it depends on (transitively,
  # build-dependencies included); every other member keeps its Cargo.toml and gets empty
  # placeholders for its .rs files, because cargo loads every workspace member's manifest
  # and targets even for `-p X`. Editing another server therefore does not rebuild this one.
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
            # cargo-hakari's config: the dependency-list tool cuts the workspace-hack named
            # there out of the list (it links nothing), as dist does.
            (lib.fileset.maybeMissing (root + "/.config/hakari.toml"))
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

  # ---- what each target builds ------------------------------------------------------------
  # Servers and the launcher are static (musl); Python modules are glibc shared objects.
  launcherNames = lib.optional (workspace.launcher != null) workspace.launcher;
  cratesFor =
    target:
    builtins.filter (n: workspace.targetFor system n == target) (workspace.shippedNames ++ launcherNames);
  featureArgs =
    crateNames:
    lib.concatMapStrings (
      n: lib.optionalString (crates.${n}.pythonFeature != null) " --features ${n}/${crates.${n}.pythonFeature}"
    ) crateNames;

  # ---- the same bytes as `cargo xtask dist` -------------------------------------------------
  # dist builds with the audit profile, strips with the toolchain's rust-objcopy and maps
  # source paths: the cargo home to /cargo, the workspace to /mcp-foundry (its target dir
  # to /mcp-foundry/target). Nix does the same with its own paths, so an artifact's bytes
  # depend on (crate, variant, target, sources) only (NIX.md, "Two pipelines, one
  # artifact"). cargo keeps RUSTFLAGS out of -C metadata, so the differing left-hand sides
  # of the mappings change no symbol.
  hostTarget = workspace.gnuTargetFor system;
  # crane vendors crates.io under the sha256 of its lock-file source; cargo unpacks them
  # under registry/src/<this> (its stable name of the crates.io index).
  vendoredRegistry = "${cargoVendorDir}/${builtins.hashString "sha256" "registry+https://github.com/rust-lang/crates.io-index"}";
  cargoRegistrySrc = "/cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
  # The build directory is only known when the build runs, and must stay out of
  # CARGO_BUILD_RUSTFLAGS (a different value per derivation would make cargo rebuild the
  # dependency artifacts): rustc gets these mappings from this wrapper instead.
  remapWorkspace = pkgs.writeShellScript "rustc-remap-workspace" ''
    rustc="$1"
    shift
    if [ -n "''${MCP_FOUNDRY_SOURCE_ROOT:-}" ]; then
      exec "$rustc" "$@" \
        "--remap-path-prefix=$MCP_FOUNDRY_SOURCE_ROOT=/mcp-foundry" \
        "--remap-path-prefix=$MCP_FOUNDRY_SOURCE_ROOT/target=/mcp-foundry/target"
    fi
    exec "$rustc" "$@"
  '';
  distBuildArgs = {
    CARGO_PROFILE = workspace.distProfile;
    RUSTC_WRAPPER = remapWorkspace;
    preBuild = ''export MCP_FOUNDRY_SOURCE_ROOT="$PWD"'';
    # Stripped like dist (postInstall), not by the fixup phase; crane's own remapping
    # (which dontStrip would switch on) is replaced by the mappings above.
    dontStrip = true;
    doRemapPathPrefix = false;
  };
  stripLikeDist = ''
    objcopy="$(rustc --print sysroot)/lib/rustlib/${hostTarget}/bin/rust-objcopy"
    for file in $out/bin/* $out/lib/*.so; do
      if [ -f "$file" ]; then
        "$objcopy" --strip-all "$file"
      fi
    done
  '';

  # dist embeds cargo-auditable's dependency list (`.dep-v0`) after stripping; each package
  # runs the same code, the workspace's dependency-list tool, on its own source (cargo tree
  # and metadata, offline against the vendored crates), so both pipelines embed the same
  # bytes. Host code: built once, not per variant.
  dependencyListTool =
    let
      name = workspace.dependencyListTool;
      args = {
        pname = name;
        inherit (crates.${name}) version;
        strictDeps = true;
        inherit cargoVendorDir;
        src = crateSource name;
        CARGO_BUILD_TARGET = hostTarget;
        cargoExtraArgs = "--locked -p ${name}";
        doCheck = false;
      };
    in
    craneLib.buildPackage (args // { cargoArtifacts = craneLib.buildDepsOnly args; });
  # After stripLikeDist (it sets $objcopy); the Python layout copies the embedded module.
  embedDependencyList = crateName: ''
    for file in $out/bin/* $out/lib/*.so; do
      if [ -f "$file" ]; then
        ${dependencyListTool}/bin/${workspace.dependencyListTool} embed --package ${crateName} \
          --target "$CARGO_BUILD_TARGET"${featureArgs [ crateName ]} --objcopy "$objcopy" "$file"
      fi
    done
  '';

  # ---- shared derivation arguments ------------------------------------------------------
  # Identical in a variant x target's dependency build and in every package built on it:
  # any difference (an env var a build script reads, e.g. PYO3_PYTHON) makes cargo rebuild
  # the dependency artifacts instead of reusing them. Nothing here changes per commit, so a
  # binary cache keeps serving the dependency builds until Cargo.lock or a flag changes.
  buildArgs =
    variant: target:
    {
      pname = "mcp-foundry";
      version = workspace.workspaceVersion;
      strictDeps = true;
      inherit cargoVendorDir;
      # Every cargo invocation gets this target, so RUSTFLAGS reach the artifacts only,
      # never build scripts or proc-macros (cargo#4423): a znver4 build cannot SIGILL on
      # the builder. crane's cargoDoc also finds the docs through it.
      CARGO_BUILD_TARGET = target;
      CARGO_BUILD_RUSTFLAGS = lib.concatStringsSep " " (
        lib.filter (f: f != "") [
          (workspace.rustflagsString variant)
          "--remap-path-prefix=${vendoredRegistry}=${cargoRegistrySrc}"
        ]
      );
      PYO3_PYTHON = python.interpreter;
      # Tests run in the nextest check (checks.nix) with what they need on PATH; a package
      # build has neither git, pgrep nor qemu, and must not depend on the builder's /sys.
      doCheck = false;
    }
    // distBuildArgs
    // lib.optionalAttrs (target == muslTarget) muslEnv
    # pyo3 >= 0.26: without this the module links libpython (NEEDED + RPATH into one
    # interpreter), breaking the abi3 promise. Test binaries need libpython, so only the
    # package builds (never checks.nix) set it.
    // lib.optionalAttrs (target == gnuTarget) { PYO3_BUILD_EXTENSION_MODULE = "1"; };

  # Per package only: these change with every commit or variant. Only build-info's
  # build.rs reads them (embedded in --version), and it is a workspace member, rebuilt in
  # every package anyway: no dependency artifact is invalidated by them.
  # Not SOURCE_DATE_EPOCH: the cc crate's build scripts declare
  # `rerun-if-env-changed=SOURCE_DATE_EPOCH`, so a per-commit value made every package
  # recompile each C dependency (psm, the tree-sitter grammars) and all that depends on
  # it (seen in the real build: psm, stacker, pest*, insta, brush-parser for bash-god).
  # The package keeps the stdenv's value, as its dependency build does; no Rust code
  # reads it, and C code only through __DATE__/__TIME__.
  packageEnv = variant: {
    MCP_FOUNDRY_VARIANT = variant;
    MCP_FOUNDRY_GIT_COMMIT = gitCommit;
  };

  # One dependency build per variant x target: different RUSTFLAGS or targets make
  # different artifacts, and a glibc package must not wait for the musl dependencies.
  # It selects exactly the packages later built on it (the workspace-hack crate makes
  # their dependency features the same alone and together).
  depsFor = workspace.genAttrs variantNames (
    variant:
    lib.genAttrs (lib.filter (t: cratesFor t != [ ]) [ muslTarget gnuTarget ]) (
      target:
      craneLib.buildDepsOnly (
        buildArgs variant target
        // {
          pname = "mcp-foundry-${variant}-${target}";
          src = workspaceSrc;
          # The packages only build; the `cargo check` crane adds by default feeds clippy,
          # which has its own dependency build (checks.nix).
          buildPhaseCargoCommand =
            "cargoWithProfile build --locked"
            + lib.concatMapStrings (n: " -p ${n}") (cratesFor target)
            + featureArgs (cratesFor target);
        }
      )
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
        buildArgs variant target
        // packageEnv variant
        // {
          pname = workspace.packageName crateName variant;
          src = crateSource crateName;
          cargoArtifacts = depsFor.${variant}.${target};
          cargoExtraArgs = "--locked -p ${crateName}" + featureArgs [ crateName ];
          postInstall =
            stripLikeDist + embedDependencyList crateName + lib.optionalString isPythonModule (pythonLayout crate);
          # `import mcp_rust_core` imports numpy (embed_text returns arrays): an
          # environment made with python3.withPackages must get it with the module.
          propagatedBuildInputs = lib.optional isPythonModule python.pkgs.numpy;
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
        buildArgs baselineVariant muslTarget
        // packageEnv baselineVariant
        // {
          pname = workspace.launcher;
          src = crateSource workspace.launcher;
          cargoArtifacts = depsFor.${baselineVariant}.${muslTarget};
          cargoExtraArgs = "--locked -p ${workspace.launcher}";
          postInstall = stripLikeDist + embedDependencyList workspace.launcher;
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
    testSrc
    cargoVendorDir
    muslEnv
    depsFor
    cratePackages
    launcher
    dependencyListTool
    ;
  packages =
    cratePackages // lib.optionalAttrs (launcher != null) { ${workspace.launcher} = launcher; };
}
