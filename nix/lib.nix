# What the flake builds, read from Cargo metadata and nothing else.
#
# Pure: builtins only (no nixpkgs), so `nix/tests/lib.nix` can evaluate it offline and the
# flake, `cargo xtask` and `cargo metadata` can never disagree about crate or variant names.
# Sources of truth:
# - root Cargo.toml `[workspace.metadata.mcp-foundry.variants.<name>]`: target-cpu,
#   rustflags, architectures;
# - every workspace member's `[package.metadata.mcp-foundry]`: role (server |
#   python-module | library | build-tool | launcher), python-module, python-feature,
#   dependency-list-tool (the build tool every package embeds its dependency list with).
{ root }:
let
  inherit (builtins)
    attrNames
    concatLists
    concatStringsSep
    elem
    filter
    fromTOML
    genericClosure
    head
    listToAttrs
    map
    match
    pathExists
    readDir
    readFile
    replaceStrings
    throw
    ;

  readToml = path: fromTOML (readFile path);

  rootManifest = readToml (root + "/Cargo.toml");
  workspace = rootManifest.workspace;

  # Like lib.genAttrs, but builtins only.
  genAttrs = names: f: listToAttrs (map (name: { inherit name; value = f name; }) names);

  # ---- variants -------------------------------------------------------------------------
  variantsTable =
    workspace.metadata.mcp-foundry.variants
      or (throw "Cargo.toml: [workspace.metadata.mcp-foundry.variants] is missing; it defines the CPU variants");

  variants = builtins.mapAttrs (name: v: {
    inherit name;
    description = v.description or "";
    targetCpu = v.target-cpu or (throw "Cargo.toml: variant ${name} has no target-cpu");
    rustflags = v.rustflags or [ ];
    architectures =
      v.architectures or (throw "Cargo.toml: variant ${name} has no architectures list");
    # Tests only run for the portable baseline: a builder may lack e.g. AVX-512, and the
    # code under test is the same source in every variant.
    runsTests = (v.target-cpu or "") == "generic";
  }) variantsTable;

  variantNames = attrNames variants;

  # The portable variant: the launcher and the checks are built for it.
  baselineVariants = filter (v: variants.${v}.targetCpu == "generic") variantNames;
  baselineVariant =
    if baselineVariants == [ ] then
      throw "Cargo.toml: no variant has target-cpu = \"generic\"; one portable variant is required"
    else
      head baselineVariants;

  # ---- workspace members ----------------------------------------------------------------
  # `members` entries are directories or `dir/*` globs (the only glob form Cargo docs use
  # for a flat layout); anything else is refused so a new form is noticed, not ignored.
  excluded = workspace.exclude or [ ];
  expandMember =
    pattern:
    let
      glob = match "(.*)/\\*" pattern;
    in
    if glob != null then
      let
        parent = head glob;
        entries = readDir (root + "/${parent}");
      in
      filter (dir: pathExists (root + "/${dir}/Cargo.toml") && !(elem dir excluded)) (
        map (name: "${parent}/${name}") (filter (name: entries.${name} == "directory") (attrNames entries))
      )
    else if match ".*[*?\\[].*" pattern != null then
      throw "Cargo.toml: workspace member pattern '${pattern}' is not supported by nix/lib.nix; use 'dir' or 'dir/*'"
    else
      [ pattern ];

  memberDirs = concatLists (map expandMember workspace.members);

  workspaceVersion = workspace.package.version or "0.0.0";

  knownRoles = [
    "server"
    "python-module"
    "library"
    "build-tool"
    "launcher"
  ];

  # Workspace dependencies that are members: `foo.workspace = true` resolves through them.
  workspacePathDeps = filter (name: workspace.dependencies.${name}.path or null != null) (
    attrNames (workspace.dependencies or { })
  );

  readMember =
    dir:
    let
      manifest = readToml (root + "/${dir}/Cargo.toml");
      package = manifest.package;
      name = package.name;
      meta = package.metadata.mcp-foundry or { };
      role =
        meta.role
          or (throw "${dir}/Cargo.toml: [package.metadata.mcp-foundry] role is missing; set one of: ${concatStringsSep ", " knownRoles}");
      version = if (package.version or null) == null || builtins.isAttrs package.version then workspaceVersion else package.version;
      # Dependency tables that can name another member (target-specific tables included).
      depTables =
        [
          (manifest.dependencies or { })
          (manifest.dev-dependencies or { })
          (manifest.build-dependencies or { })
        ]
        ++ concatLists (
          map (t: [
            (t.dependencies or { })
            (t.dev-dependencies or { })
            (t.build-dependencies or { })
          ]) (builtins.attrValues (manifest.target or { }))
        );
      # The package a dependency entry refers to, if it is a member (path dependency).
      memberDepOf =
        key: spec:
        let
          package' = if builtins.isAttrs spec then spec.package or key else key;
        in
        if builtins.isAttrs spec && (spec.workspace or false) && elem key workspacePathDeps then
          workspace.dependencies.${key}.package or key
        else if builtins.isAttrs spec && spec ? path then
          package'
        else
          null;
      localDeps = filter (d: d != null) (
        concatLists (map (table: map (key: memberDepOf key table.${key}) (attrNames table)) depTables)
      );
    in
    if !(elem role knownRoles) then
      throw "${dir}/Cargo.toml: role '${role}' is unknown; use one of: ${concatStringsSep ", " knownRoles}"
    else
      {
        inherit name dir role version localDeps;
        description = package.description or "";
        shipped = role == "server" || role == "python-module";
        pythonModule = meta.python-module or null;
        pythonFeature = meta.python-feature or null;
        dependencyListTool = meta.dependency-list-tool or false;
        # Programs a server runs, shipped statically linked in its images (bash-god: bash).
        imagePrograms = meta.image-programs or [ ];
        # The cdylib cargo writes is lib<libName>.so.
        libName = manifest.lib.name or (replaceStrings [ "-" ] [ "_" ] name);
      };

  crateList = map readMember memberDirs;
  crates = listToAttrs (map (c: { name = c.name; value = c; }) crateList);

  namesWithRole = roles: filter (n: elem crates.${n}.role roles) (attrNames crates);

  shippedNames = namesWithRole [
    "server"
    "python-module"
  ];
  serverNames = namesWithRole [ "server" ];
  pythonModuleNames = namesWithRole [ "python-module" ];
  launcherNames = namesWithRole [ "launcher" ];
  dependencyListToolNames = filter (n: crates.${n}.dependencyListTool) (attrNames crates);

  # The crate itself plus every member it depends on, transitively: the sources a
  # derivation of this crate really needs.
  sourceClosure =
    name:
    map (item: item.key) (genericClosure {
      startSet = [ { key = name; } ];
      operator = item: map (d: { key = d; }) (crates.${item.key}.localDeps or [ ]);
    });

  # ---- systems ----------------------------------------------------------------------------
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  archOf = system: head (match "([^-]+)-.*" system);

  variantNamesFor = system: filter (v: elem (archOf system) variants.${v}.architectures) variantNames;

  # Servers ship static (musl); the Python module must be a glibc shared object for CPython.
  gnuTargetFor = system: "${archOf system}-unknown-linux-gnu";
  muslTargetFor = system: "${archOf system}-unknown-linux-musl";
  targetFor =
    system: crateName:
    if crates.${crateName}.role == "python-module" then gnuTargetFor system else muslTargetFor system;
  rustTargetsFor = system: [
    (gnuTargetFor system)
    (muslTargetFor system)
  ];

  # "x86_64-unknown-linux-musl" -> "X86_64_UNKNOWN_LINUX_MUSL" (cargo's env var spelling).
  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" "-" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" "_" ];
  cargoTargetEnv = target: replaceStrings lowerChars upperChars target;
  # The cc crate's spelling: CC_x86_64_unknown_linux_musl.
  ccTargetEnv = target: replaceStrings [ "-" ] [ "_" ] target;

  packageName = crateName: variant: "${crateName}-${variant}";

  packageNamesFor =
    system: concatLists (map (c: map (v: packageName c v) (variantNamesFor system)) shippedNames);

  imageNamesFor =
    system:
    concatLists (map (s: map (v: "${packageName s v}-image") (variantNamesFor system)) serverNames)
    ++ map (s: "${s}-image") serverNames;

  rustflagsString = variant: concatStringsSep " " variants.${variant}.rustflags;

  # The profile `cargo xtask dist` builds with (release code generation, symbols kept; the
  # shipped copies are stripped afterwards): Nix builds the same way so both pipelines
  # make the same bytes.
  distProfile =
    if rootManifest ? profile.audit then
      "audit"
    else
      throw "Cargo.toml: [profile.audit] is missing; cargo xtask dist and Nix build with it";

  # ---- time ------------------------------------------------------------------------------
  # RFC 3339 UTC timestamp of a Unix time (image `created`), from the days-to-civil
  # algorithm (H. Hinnant); integer arithmetic only, valid for dates after 1970.
  isoDateTime =
    epoch:
    let
      div = builtins.div;
      mod = a: b: a - b * (div a b);
      pad = n: if n < 10 then "0${toString n}" else toString n;
      days = div epoch 86400;
      secs = mod epoch 86400;
      z = days + 719468;
      era = div z 146097;
      doe = z - era * 146097;
      yoe = div (doe - div doe 1460 + div doe 36524 - div doe 146096) 365;
      doy = doe - (365 * yoe + div yoe 4 - div yoe 100);
      mp = div (5 * doy + 2) 153;
      day = doy - div (153 * mp + 2) 5 + 1;
      month = if mp < 10 then mp + 3 else mp - 9;
      year = yoe + era * 400 + (if month <= 2 then 1 else 0);
    in
    "${toString year}-${pad month}-${pad day}T${pad (div secs 3600)}:${pad (mod (div secs 60) 60)}:${pad (mod secs 60)}Z";
in
{
  inherit
    root
    variants
    variantNames
    baselineVariant
    crates
    memberDirs
    shippedNames
    serverNames
    pythonModuleNames
    launcherNames
    sourceClosure
    systems
    archOf
    variantNamesFor
    gnuTargetFor
    muslTargetFor
    targetFor
    rustTargetsFor
    cargoTargetEnv
    ccTargetEnv
    packageName
    packageNamesFor
    imageNamesFor
    rustflagsString
    distProfile
    isoDateTime
    genAttrs
    workspaceVersion
    ;
  repository = workspace.package.repository or "";
  license = workspace.package.license or "";
  # The build tool that embeds an artifact's dependency list, as `cargo xtask dist` does.
  dependencyListTool =
    if builtins.length dependencyListToolNames != 1 then
      throw "exactly one crate must set dependency-list-tool = true in [package.metadata.mcp-foundry]; found: [ ${concatStringsSep ", " dependencyListToolNames} ]"
    else
      head dependencyListToolNames;
  # The one launcher crate of the dispatch images, or null while it does not exist.
  launcher =
    if launcherNames == [ ] then
      null
    else if builtins.length launcherNames == 1 then
      head launcherNames
    else
      throw "more than one crate has role = \"launcher\": ${concatStringsSep ", " launcherNames}";
}
