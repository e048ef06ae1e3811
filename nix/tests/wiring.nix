/**
  Wiring test: evaluates the real `outputs` function of flake.nix with recording
  stand-ins (nix/tests/stubs) for nixpkgs, crane and rust-overlay, whose function and
  argument names mirror the real ones at the revisions pinned in flake.lock, and checks
  what the flake asked them to build. It runs with any Nix (`cargo xtask nix-check`); the
  real build with Nix >= 2.31, the real crane and a nixpkgs substitute is
  `cargo xtask nix-offline` (nix/offline/).

  - packages.<system> is exactly crate x variant (+ images, launcher, default), with no
    x86_64-only variant on aarch64-linux;
  - every crate x variant package: `-p <crate>`, CARGO_BUILD_TARGET <triple> (musl for
    servers, glibc for Python modules), its variant's RUSTFLAGS (from Cargo.toml, read here
    independently), the dependency artifacts of its own variant and target, no tests (they
    need git, pgrep, qemu: the nextest check has them), the same PYO3_PYTHON as every other
    derivation, the git commit, a source holding its own crate and the members it depends on
    but no other member's code, the musl C compiler and rust-lld (dist's linker) only for
    musl, and for Python modules the site-packages layout, numpy propagated and no libpython
    link (PYO3_BUILD_EXTENSION_MODULE);
  - dependency builds: one per variant x target, nothing that changes per commit (git
    commit, SOURCE_DATE_EPOCH), no musl C compiler in a glibc one; every package (and the
    launcher) has exactly its dependency build's environment but for the per-package
    values, so cargo reruns no dependency's build script (cc's declare
    SOURCE_DATE_EPOCH) and recompiles nothing below the workspace members;
  - checks: nextest has git, pgrep and qemu and skips xtask's integration tests; the docs
    are installed from where cargo writes them; ffi-import runs with the C stdenv (nm);
  - the dev shell has the musl C compiler variables, qemu and every target of
    rust-toolchain.toml (dist's prerequisites); `nix fmt` is nixfmt-tree;
    push-images refuses to run for a system whose images are not published;
  - the CI workflow pins every action by commit and checks the Nix version in every job;
  - the toolchain comes from rust-toolchain.toml through fromRustupToolchainFile and
    overrideToolchain, with this system's glibc and musl targets;
  - the required checks and images exist and are configured (clippy denies warnings, docs
    deny warnings, audit uses the advisory-db input, images run as non-root with a fixed
    `created` and the OCI labels; dispatch images contain the launcher and every variant);
  - flake.lock pins every input of flake.nix (github, 40-hex rev, sha256 narHash), with
    rust-overlay following nixpkgs;
  - the checker itself rejects a package with wrong RUSTFLAGS (self-test).

  What it does NOT prove: that anything builds; that nixpkgs/crane/rust-overlay
  behave as the stand-ins assume beyond their argument names (e.g. that cargo accepts the
  flags, that dockerTools lays out `contents` as expected, that the musl C compiler links);
  that the narHashes match what GitHub serves (nixpkgs' was not re-derived here); anything
  Nix >= 2.31 evaluates differently from the Nix running this test; shell scripts inside
  derivations (they are only inspected as strings).

  Run: nix-instantiate --eval --strict --json nix/tests/wiring.nix --arg root ./.
*/
{
  root ? ../..,
}:
let
  inherit (builtins)
    all
    any
    attrNames
    concatLists
    elem
    filter
    fromJSON
    fromTOML
    length
    map
    match
    readFile
    sort
    toJSON
    ;

  stubs = ./stubs;
  workspace = import ../lib.nix { inherit root; };

  self = {
    rev = "0123456789abcdef0123456789abcdef01234567";
    lastModified = 1785734586;
    outPath = toString root;
  };
  advisory-db = {
    outPath = "/nix/store/00000000000000000000000000000000-advisory-db";
  };
  flake = import (root + "/flake.nix");
  outputs = flake.outputs {
    inherit self advisory-db;
    nixpkgs = {
      outPath = stubs + "/nixpkgs";
    };
    crane = import (stubs + "/crane.nix");
    rust-overlay = import (stubs + "/rust-overlay.nix");
    fenix = import (stubs + "/fenix.nix");
  };

  # Read independently of nix/lib.nix.
  rootToml = fromTOML (readFile (root + "/Cargo.toml"));
  variantTable = rootToml.workspace.metadata.mcp-foundry.variants;
  expectedRustflags = variant: builtins.concatStringsSep " " variantTable.${variant}.rustflags;
  toolchainToml = (fromTOML (readFile (root + "/rust-toolchain.toml"))).toolchain;

  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  sorted = list: sort (a: b: a < b) list;
  words = s: filter (w: builtins.isString w && w != "") (builtins.split "[ \n\t]+" s);
  # `flag value` appears as consecutive words.
  hasFlag =
    flag: value: s:
    let
      ws = words s;
      n = length ws;
    in
    any (i: builtins.elemAt ws i == flag && builtins.elemAt ws (i + 1) == value) (
      builtins.genList (i: i) (if n > 0 then n - 1 else 0)
    );
  contains = needle: s: match ".*${escapeRegex needle}.*" s != null;
  escapeRegex = builtins.replaceStrings [ "." "+" "*" "?" "[" "]" "(" ")" "{" "}" "|" "^" "$" "\\" ] [
    "\\."
    "\\+"
    "\\*"
    "\\?"
    "\\["
    "\\]"
    "\\("
    "\\)"
    "\\{"
    "\\}"
    "\\|"
    "\\^"
    "\\$"
    "\\\\"
  ];

  test = name: problems: {
    inherit name;
    ok = problems == [ ];
    message = toJSON problems;
  };
  unless = ok: message: if ok then [ ] else [ message ];

  # The variant's own flags: CARGO_BUILD_RUSTFLAGS without the path mappings.
  variantFlags =
    flags: builtins.concatStringsSep " " (filter (w: match "--remap-path-prefix=.*" w == null) (words flags));
  hasMuslCC = args: any (n: match "(CC|AR)_.*_musl" n != null) (attrNames args);
  # The linker cargo is told to use for `target` (null: rustc's default).
  linkerOf = args: target: args."CARGO_TARGET_${workspace.cargoTargetEnv target}_LINKER" or null;
  # musl builds link with the toolchain's rust-lld, as `cargo xtask dist` does; glibc ones
  # (the Python module) keep rustc's default.
  linkerProblems =
    what: args: target:
    let
      expected = if match ".*-musl" target != null then "rust-lld" else null;
    in
    unless (linkerOf args target == expected) "${what}: linker for ${target} is ${toJSON (linkerOf args target)}, not ${toJSON expected}";
  pythonInterpreters = system: [
    (import (stubs + "/nixpkgs") { inherit system; }).python3.interpreter
  ];

  # dist embeds the dependency list after stripping, with the workspace's dependency-list
  # tool; a package built by Nix must run the same command, with the module's feature.
  embedsLikeDist =
    crate: args:
    let
      install = args.postInstall or "";
      tool = workspace.dependencyListTool;
      feature = workspace.crates.${crate}.pythonFeature;
    in
    unless (contains "/bin/${tool} embed --package ${crate} " install) "the dependency list is not embedded as dist does (${tool} embed)"
    ++ unless (feature == null || contains "--features ${crate}/${feature} --objcopy" install) "the dependency list is not the one of the ${feature} feature"
    ++ unless (match ".*--strip-all.*/bin/${escapeRegex tool} embed.*" install != null) "the dependency list is embedded before stripping (strip removes it)";

  # ---- one crate x variant package ------------------------------------------------------
  packageProblems =
    system: crate: variant: drv:
    let
      args = drv.recorded.args or { };
      deps = args.cargoArtifacts.recorded or { };
      isPython = workspace.crates.${crate}.role == "python-module";
      target =
        if isPython then "${workspace.archOf system}-unknown-linux-gnu" else "${workspace.archOf system}-unknown-linux-musl";
      extra = args.cargoExtraArgs or "";
      closureDirs = map (n: workspace.crates.${n}.dir) (workspace.sourceClosure crate);
      otherDirs = filter (d: !(elem d closureDirs)) workspace.memberDirs;
    in
    unless ((drv.recorded.fn or null) == "crane.buildPackage") "not built with craneLib.buildPackage"
    ++ unless (hasFlag "-p" crate extra) "cargoExtraArgs lacks -p ${crate}: ${extra}"
    ++ unless ((args.CARGO_BUILD_TARGET or null) == target) "CARGO_BUILD_TARGET is ${toJSON (args.CARGO_BUILD_TARGET or null)}, not ${target}"
    ++ unless ((deps.args.CARGO_BUILD_TARGET or null) == target) "cargoArtifacts are built for ${toJSON (deps.args.CARGO_BUILD_TARGET or null)}, not ${target}"
    ++ unless (hasMuslCC args == (target == "${workspace.archOf system}-unknown-linux-musl")) "the musl C compiler is ${if hasMuslCC args then "set" else "missing"} for ${target}"
    ++ linkerProblems "package" args target
    ++ unless (contains "--locked" extra) "cargoExtraArgs lacks --locked"
    ++ unless (
      !isPython || hasFlag "--features" "${crate}/${workspace.crates.${crate}.pythonFeature}" extra
    ) "python module built without its feature"
    ++ unless (
      variantFlags (args.CARGO_BUILD_RUSTFLAGS or "") == expectedRustflags variant
    ) "CARGO_BUILD_RUSTFLAGS is ${toJSON (args.CARGO_BUILD_RUSTFLAGS or null)}, Cargo.toml says ${toJSON (expectedRustflags variant)}"
    ++ unless ((deps.fn or null) == "crane.buildDepsOnly") "cargoArtifacts is not a buildDepsOnly"
    ++ unless (
      (deps.args.CARGO_BUILD_RUSTFLAGS or null) == (args.CARGO_BUILD_RUSTFLAGS or "")
    ) "cargoArtifacts are built with other RUSTFLAGS (another variant, or cargo rebuilds them)"
    # The same bytes as `cargo xtask dist`: its profile, stripping and path prefixes.
    ++ unless ((args.CARGO_PROFILE or null) == "audit" && (deps.args.CARGO_PROFILE or null) == "audit") "not built with dist's audit profile"
    ++ unless (contains "rust-objcopy" (args.postInstall or "") && contains "--strip-all" (args.postInstall or "")) "not stripped with rust-objcopy --strip-all like dist"
    ++ embedsLikeDist crate args
    ++ unless (contains "=/cargo/registry/src/" (args.CARGO_BUILD_RUSTFLAGS or "")) "vendored sources are not mapped to dist's /cargo prefix"
    ++ unless (contains "=/mcp-foundry" (args.RUSTC_WRAPPER.recorded.args.text or "")) "the workspace is not mapped to dist's /mcp-foundry prefix"
    ++ unless ((args.MCP_FOUNDRY_VARIANT or null) == variant) "MCP_FOUNDRY_VARIANT is not ${variant}"
    ++ unless ((args.MCP_FOUNDRY_GIT_COMMIT or null) == self.rev) "MCP_FOUNDRY_GIT_COMMIT is not self.rev"
    # crane's buildPackage defaults doCheck to true; the builder has no git, pgrep or qemu.
    ++ unless ((args.doCheck or true) == false) "runs cargo test inside the package build (doCheck)"
    ++ unless (elem (args.PYO3_PYTHON or null) (pythonInterpreters system)) "PYO3_PYTHON differs"
    ++ unless ((args.toolchain.recorded.fn or null) == "rust-overlay.toolchain") "built without the rust-overlay toolchain"
    # Source: a derivation copying a fileset source, then placeholders for other members.
    ++ (
      let
        real = args.src.recorded.args.env.realSource or null;
      in
      unless (real ? sourceFiles) "source is not built from a fileset source"
      ++ (
        if !(real ? sourceFiles) then
          [ ]
        else
          concatLists (
            map (
              d: unless (any (f: match "${escapeRegex d}/src/.*\\.rs" f != null) real.sourceFiles) "source lacks ${d}/src"
            ) closureDirs
          )
          ++ concatLists (
            map (
              d:
              unless (all (f: match "${escapeRegex d}/.*\\.rs" f == null) real.sourceFiles) "source contains the code of ${d}"
              ++ unless (elem "${d}/Cargo.toml" real.sourceFiles) "source lacks ${d}/Cargo.toml (cargo loads every member)"
            ) otherDirs
          )
          ++ unless (elem "Cargo.lock" real.sourceFiles) "source lacks Cargo.lock"
          ++ unless (
            !(builtins.pathExists (self + "/.config/hakari.toml")) || elem ".config/hakari.toml" real.sourceFiles
          ) "source lacks .config/hakari.toml: the embedded dependency list would include the workspace-hack's tree"
      )
    )
    ++ (
      if isPython then
        let
          module = workspace.crates.${crate}.pythonModule;
          install = args.postInstall or "";
        in
        unless (drv ? pythonModule) "python module is not a python module (toPythonModule)"
        ++ unless (any (p: (p.pname or null) == "numpy") (args.propagatedBuildInputs or [ ])) "numpy is not propagated: withPackages environments miss it"
        ++ unless ((args.PYO3_BUILD_EXTENSION_MODULE or null) == "1") "pyo3 links libpython (PYO3_BUILD_EXTENSION_MODULE unset)"
        ++ unless (contains "${module}.abi3.so" install) "postInstall does not install ${module}.abi3.so"
        ++ unless (contains "python/${module}/." install) "postInstall does not copy python/${module}"
      else
        [ ]
    );

  # ---- per system -------------------------------------------------------------------------
  systemTests =
    system:
    let
      packages = outputs.packages.${system};
      checks = outputs.checks.${system};
      variants = workspace.variantNamesFor system;
      expectedPackages =
        workspace.packageNamesFor system
        ++ workspace.imageNamesFor system
        ++ (if workspace.launcher != null then [ workspace.launcher ] else [ ])
        ++ [ "default" ];
      crateVariants = concatLists (
        map (c: map (v: { crate = c; variant = v; }) variants) workspace.shippedNames
      );
      # Every dependency build a package or the launcher uses, once each.
      deps = builtins.attrValues (
        builtins.listToAttrs (
          map (
            p:
            let
              d = p.recorded.args.cargoArtifacts;
            in
            {
              name = "${d.recorded.args.CARGO_BUILD_RUSTFLAGS or ""}|${d.recorded.args.CARGO_BUILD_TARGET or ""}";
              value = d;
            }
          ) (filter (p: (p.recorded.fn or null) == "crane.buildPackage") (builtins.attrValues packages))
        )
      );
      # Environment values a package may have that its dependency build has not (or
      # another one): what selects and installs the package, and what only build-info's
      # build.rs (a workspace member, rebuilt in every package anyway) reads.
      perPackageKeys = [
        "pname"
        "src"
        "cargoArtifacts"
        "cargoExtraArgs"
        "buildPhaseCargoCommand"
        "postInstall"
        "propagatedBuildInputs"
        "MCP_FOUNDRY_VARIANT"
        "MCP_FOUNDRY_GIT_COMMIT"
      ];
      isEnvValue = v: builtins.isString v || builtins.isInt v || builtins.isBool v;
      # Variables of the package's environment with another value than in its dependency
      # build: cargo reruns every build script that declared one (the cc crate declares
      # SOURCE_DATE_EPOCH, CC_*, CFLAGS, …) and recompiles all that depends on it.
      envDifferences =
        pkg: deps:
        map (k: "${k} is ${toJSON (pkg.${k} or null)} here, ${toJSON (deps.${k} or null)} in the dependency build") (
          filter (
            k:
            !(elem k perPackageKeys)
            && (isEnvValue (pkg.${k} or null) || isEnvValue (deps.${k} or null))
            && (pkg.${k} or null) != (deps.${k} or null)
          ) (attrNames (pkg // deps))
        );
      image = name: packages.${name}.recorded.args or { };
      rootScriptOf = name: builtins.concatStringsSep "\n" (map (c: c.recorded.args.script or "") ((image name).contents or [ ]));
      imageProblems =
        name: tag:
        let
          a = image name;
          user = a.config.User or "";
          labels = a.config.Labels or { };
        in
        unless ((packages.${name}.recorded.fn or null) == "dockerTools.buildLayeredImage") "${name} is not a dockerTools image"
        ++ unless ((a.tag or null) == tag) "${name} tag is ${toJSON (a.tag or null)}, not ${tag}"
        ++ unless (user != "" && match "(0|root)(:.*)?" user == null) "${name} runs as root"
        ++ unless ((a.created or null) == workspace.isoDateTime self.lastModified) "${name} created is not fixed to the commit time"
        ++ concatLists (
          map (
            key: unless (labels ? "org.opencontainers.image.${key}") "${name} lacks label ${key}"
          ) [ "title" "description" "version" "revision" "source" "licenses" "created" ]
        )
        ++ unless ((labels."org.opencontainers.image.revision" or null) == self.rev) "${name} revision label is not the commit";
      toolchain = packages."${workspace.packageName (builtins.head workspace.shippedNames) workspace.baselineVariant}".recorded.args.toolchain.toolchainArgs or { };
    in
    [
      (test "${system}: packages are crate x variant, images, launcher, default" (
        unless (sorted (attrNames packages) == sorted expectedPackages) "got ${toJSON (sorted (attrNames packages))}, want ${toJSON (sorted expectedPackages)}"
      ))
      (test "${system}: no x86_64-only variant" (
        concatLists (
          map (
            v:
            unless (
              elem (workspace.archOf system) variantTable.${v}.architectures
              || all (n: match ".*-${v}(-.*)?" n == null) (attrNames packages)
            ) "${v} packages exist on ${system}"
          ) (attrNames variantTable)
        )
      ))
      (test "${system}: every crate x variant package is wired" (
        concatLists (
          map (
            cv:
            map (p: "${cv.crate}-${cv.variant}: ${p}") (
              packageProblems system cv.crate cv.variant packages.${workspace.packageName cv.crate cv.variant}
            )
          ) crateVariants
        )
      ))
      (test "${system}: the launcher embeds its dependency list like dist" (
        if workspace.launcher != null then
          map (p: "${workspace.launcher}: ${p}") (embedsLikeDist workspace.launcher packages.${workspace.launcher}.recorded.args)
        else
          [ ]
      ))
      (test "${system}: every package has its dependency build's environment (nothing recompiled)" (
        concatLists (
          map (
            name:
            let
              a = packages.${name}.recorded.args;
            in
            map (p: "${name}: ${p}") (envDifferences a a.cargoArtifacts.recorded.args)
          ) (filter (n: (packages.${n}.recorded.fn or null) == "crane.buildPackage") (attrNames packages))
        )
      ))
      (test "${system}: dependency builds are per variant x target and never change per commit" (
        concatLists (
          map (
            d:
            let
              a = d.recorded.args;
              target = a.CARGO_BUILD_TARGET or "none";
            in
            unless ((d.recorded.fn or null) == "crane.buildDepsOnly") "${d.name}: not a buildDepsOnly"
            ++ unless (!(a ? MCP_FOUNDRY_GIT_COMMIT) && (a.SOURCE_DATE_EPOCH or null) != toString self.lastModified && !(a ? MCP_FOUNDRY_VARIANT)) "${d.name}: per-commit values reach the dependency build (no binary cache hit across commits)"
            ++ unless (hasMuslCC a == (match ".*-musl" target != null)) "${d.name}: musl C compiler set for ${target}"
            ++ linkerProblems d.name a target
            ++ unless ((a.doCheck or true) == false) "${d.name}: builds tests the packages never use"
          ) deps
        )
        ++ unless (length deps == length variants * 2) "expected one dependency build per variant x target (${toString (length variants * 2)}), got ${toString (length deps)}"
      ))
      (test "${system}: toolchain from rust-toolchain.toml with this system's targets" (
        unless ((toolchain.channel or null) == toolchainToml.channel) "channel is not the file's"
        ++ unless ((toolchain.extensions or null) == (toolchainToml.components or [ ])) "components are not the file's"
        ++ unless (
          sorted (toolchain.targets or [ ]) == sorted [
            "${workspace.archOf system}-unknown-linux-gnu"
            "${workspace.archOf system}-unknown-linux-musl"
          ]
        ) "targets are ${toJSON (toolchain.targets or null)}"
        ++ unless (!(elem "rust-analyzer" (toolchain.extensions or [ ])) && !(elem "rust-src" (toolchain.extensions or [ ]))) "rust-analyzer/rust-src in the build toolchain"
      ))
      (test "${system}: required checks exist" (
        map (c: "missing check ${c}") (
          filter (c: !(checks ? ${c})) (
            [
              "clippy"
              "nextest"
              "fmt"
              "doc"
              "deny"
              "audit"
              "ffi-import"
              "nix-lib"
            ]
          )
        )
      ))
      (test "${system}: checks are configured" (
        unless (contains "--deny warnings" (checks.clippy.recorded.args.cargoClippyExtraArgs or "")) "clippy does not deny warnings"
        ++ unless (contains "--all-targets" (checks.clippy.recorded.args.cargoClippyExtraArgs or "")) "clippy skips targets"
        ++ unless (contains "--deny warnings" (checks.doc.recorded.args.RUSTDOCFLAGS or "")) "doc does not deny warnings"
        ++ unless ((checks.audit.recorded.args.advisory-db or null) == advisory-db) "audit does not use the advisory-db input"
        ++ unless ((checks.nextest.recorded.fn or null) == "crane.cargoNextest") "nextest is not cargoNextest"
        ++ unless ((checks.deny.recorded.fn or null) == "crane.cargoDeny") "deny is not cargoDeny"
        ++ unless ((checks.fmt.recorded.fn or null) == "crane.cargoFmt") "fmt is not cargoFmt"
        ++ concatLists (
          map (
            c:
            unless ((checks.${c}.recorded.args.CARGO_BUILD_TARGET or null) == "${workspace.archOf system}-unknown-linux-gnu") "${c} has no CARGO_BUILD_TARGET"
            ++ unless (elem (checks.${c}.recorded.args.PYO3_PYTHON or null) (pythonInterpreters system)) "${c} PYO3_PYTHON differs"
            ++ unless (!(checks.${c}.recorded.args ? PYO3_BUILD_EXTENSION_MODULE)) "${c}: test binaries need libpython"
          ) [ "clippy" "nextest" "doc" ]
        )
        ++ unless ((checks.doc.docsWrittenTo or null) == (checks.doc.docsInstalledFrom or "")) "doc: cargo writes ${toJSON (checks.doc.docsWrittenTo or null)} but crane installs ${toJSON (checks.doc.docsInstalledFrom or null)}"
        ++ concatLists (
          map (
            tool: unless (elem tool (checks.nextest.checkPath or [ ])) "nextest: ${tool} is not on the test PATH"
          ) [ "git" "pgrep" "qemu-x86_64" ]
        )
        ++ unless (contains "not (package(xtask) & kind(test))" (checks.nextest.recorded.args.cargoNextestExtraArgs or "")) "nextest runs xtask's integration tests (they need .git and nested release builds)"
        ++ unless (contains "pytest" (checks.ffi-import.recorded.args.script or "")) "ffi-import does not run tests/ffi"
        ++ unless (elem "nm" (checks.ffi-import.path or [ ])) "ffi-import: nm is not on PATH (runCommand is stdenvNoCC)"
        ++ unless (elem "numpy" (checks.ffi-import.pythonEnvModules or [ ])) "ffi-import: numpy does not reach the environment through the module"
        ++ unless (elem "hypothesis" (checks.ffi-import.pythonEnvModules or [ ])) "ffi-import: tests/ffi needs hypothesis"
        ++ unless (elem "crates/bash-god/README.md" (checks.nextest.recorded.args.src.sourceFiles or [ ])) "nextest: the tests read the crates' READMEs, which its source lacks"
        ++ unless (!(checks ? ${workspace.packageName (builtins.head workspace.shippedNames) workspace.baselineVariant})) "packages are checks (see nix/checks.nix for why not)"
      ))
      (test "${system}: images" (
        concatLists (
          map (
            s:
            concatLists (map (v: imageProblems "${workspace.packageName s v}-image" v) variants)
            ++ concatLists (
              map (
                name:
                concatLists (
                  map (
                    program:
                    unless (contains "/usr/bin/${program}" (rootScriptOf name)) "${name} lacks ${program}, which ${s} runs"
                  ) workspace.crates.${s}.imagePrograms
                )
              ) (map (v: "${workspace.packageName s v}-image") variants ++ (if workspace.launcher != null then [ "${s}-image" ] else [ ]))
            )
            ++ (
              if workspace.launcher != null then
                let
                  rootScript = rootScriptOf "${s}-image";
                in
                imageProblems "${s}-image" "latest"
                ++ unless (contains "/bin/${workspace.launcher}" rootScript) "${s}-image lacks the launcher"
                ++ concatLists (map (v: unless (contains "/opt/mcp/${v}" rootScript) "${s}-image lacks ${v}") variants)
              else
                [ ]
            )
          ) workspace.serverNames
        )
      ))
      (test "${system}: dev shell, apps, formatter" (
        let
          shell = outputs.devShells.${system}.default.recorded.args or { };
          shellPackages = map (p: p.name or "") (shell.packages or [ ]);
          # The app only holds the script's store path; build the script again for its text.
          pushText =
            (import ../images.nix {
              pkgs = import (stubs + "/nixpkgs") { inherit system; };
              inherit workspace system;
              cratePackages = packages;
              launcher = if workspace.launcher != null then packages.${workspace.launcher} else null;
              gitCommit = self.rev;
              sourceDateEpoch = self.lastModified;
            }).pushImages.recorded.args.text or "";
        in
        unless ((outputs.devShells.${system}.default.recorded.fn or null) == "crane.devShell") "devShells.default is not craneLib.devShell"
        ++ unless (elem "rust-analyzer-preview-${toolchainToml.channel}" shellPackages) "dev shell lacks the toolchain release's rust-analyzer"
        ++ unless (any (p: (p.recorded.fn or null) == "fenix.component") (shell.packages or [ ])) "dev shell's rust-analyzer is not fenix's"
        ++ unless (hasPrefix "/nix/store/00000000000000000000000000000000-rust-src-${toolchainToml.channel}/" (shell.RUST_SRC_PATH or "")) "RUST_SRC_PATH is not the toolchain release's rust-src"
        ++ unless (elem "qemu-user" shellPackages) "dev shell lacks qemu-user (qemu-x86_64)"
        # `cargo xtask dist` refuses to run without every target of rust-toolchain.toml.
        ++ unless (
          all (t: elem t (shell.toolchain.toolchainArgs.targets or [ ])) (
            (toolchainToml.targets or [ ]) ++ workspace.rustTargetsFor system
          )
        ) "dev shell's toolchain lacks targets of rust-toolchain.toml or of ${system}: ${toJSON (shell.toolchain.toolchainArgs.targets or null)}"
        ++ unless (hasMuslCC shell) "dev shell lacks CC_/AR_ for musl: cargo xtask dist compiles C with the glibc compiler"
        ++ linkerProblems "dev shell" shell "${workspace.archOf system}-unknown-linux-musl"
        ++ unless ((outputs.apps.${system}.push-images.type or null) == "app") "apps.push-images missing"
        ++ unless (
          (system == "x86_64-linux") == !(contains "only x86_64-linux images are published" pushText)
        ) "push-images on ${system} would push under the x86_64 tags"
        ++ unless ((outputs.formatter.${system}.name or null) == "nixfmt-tree") "formatter is not nixfmt-tree (plain nixfmt reads stdin under `nix fmt`)"
      ))
    ];

  # ---- flake.lock -------------------------------------------------------------------------
  lock = fromJSON (readFile (root + "/flake.lock"));
  lockProblems =
    let
      rootInputs = lock.nodes.${lock.root}.inputs;
      node = name: lock.nodes.${rootInputs.${name}};
      nodeProblems =
        name: n:
        unless ((n.locked.type or null) == "github") "${name}: not a github pin"
        ++ unless (match "[0-9a-f]{40}" (n.locked.rev or "") != null) "${name}: rev is not 40 hex digits"
        ++ unless (match "sha256-[A-Za-z0-9+/]{43}=" (n.locked.narHash or "") != null) "${name}: narHash is not an SRI sha256"
        ++ unless (builtins.isInt (n.locked.lastModified or null)) "${name}: lastModified missing";
    in
    unless (lock.version == 7) "lock version ${toString lock.version}"
    ++ unless (sorted (attrNames rootInputs) == sorted (attrNames flake.inputs)) "lock inputs differ from flake.nix inputs"
    ++ concatLists (map (name: nodeProblems name (node name)) (attrNames rootInputs))
    ++ concatLists (
      map (
        name: unless ((node name).inputs.nixpkgs or null == [ "nixpkgs" ]) "${name} does not follow nixpkgs"
      ) [ "rust-overlay" "fenix" ]
    )
    ++ concatLists (
      map (
        name:
        let
          n = lock.nodes.${name};
        in
        nodeProblems name n
      ) (filter (n: n != lock.root) (attrNames lock.nodes))
    )
    ++ unless ((node "advisory-db").flake or true == false) "advisory-db must be flake = false";

  # ---- self-test: the checker must reject a wrongly wired package --------------------------
  selfTest =
    let
      system = "x86_64-linux";
      crate = builtins.head workspace.shippedNames;
      variant = workspace.baselineVariant;
      good = outputs.packages.${system}.${workspace.packageName crate variant};
      bad = good // {
        recorded = good.recorded // {
          args = good.recorded.args // {
            CARGO_BUILD_RUSTFLAGS = "-C target-cpu=native";
          };
        };
      };
    in
    unless (packageProblems system crate variant bad != [ ]) "a package with target-cpu=native passed";

  # ---- CI workflow ------------------------------------------------------------------------
  workflow = readFile (root + "/.github/workflows/ci.yml");
  workflowLines = filter builtins.isString (builtins.split "\n" workflow);
  usesLines = filter (l: match " *(- )?uses: .*" l != null) workflowLines;
  countMatching = re: length (filter (l: match re l != null) workflowLines);
  workflowProblems =
    map (l: "action not pinned by commit: ${l}") (
      filter (l: match " *(- )?uses: [^@]+@[0-9a-f]{40}( .*)?" l == null) usesLines
    )
    ++ unless (
      countMatching ".*uses: cachix/install-nix-action@.*" == countMatching " *run: eval \"[$]NIX_VERSION_CHECK\""
    ) "a job installs Nix without checking its version";

  results =
    concatLists (map systemTests workspace.systems)
    ++ [
      (test "CI workflow pins actions and checks the Nix version in every job" workflowProblems)
      (test "flake.lock pins every input" lockProblems)
      (test "self-test: wrong RUSTFLAGS are caught" selfTest)
    ];
in
{
  passed = map (t: t.name) (filter (t: t.ok) results);
  failed = map (t: { inherit (t) name message; }) (filter (t: !t.ok) results);
}
