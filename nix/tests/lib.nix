/**
  Unit tests of nix/lib.nix, pure (builtins only):

    nix-instantiate --eval --strict --json nix/tests/lib.nix \
      --argstr expectedJson "$(cargo xtask-produced JSON)"   # optional

  Returns { passed = [ names ]; failed = [ { name; message; } ]; }. `cargo xtask nix-check`
  passes `expectedJson` (crates with roles and variants, from `cargo metadata`) so the Nix
  reading of the Cargo.toml files is compared with Cargo's own; `nix flake check` (check
  `nix-lib`) runs the rest without it.

  What this does not prove: that the names below are what nixpkgs/crane accept as
  derivation names, or anything about building (see nix/tests/wiring.nix and NIX.md).
*/
{
  root ? ../..,
  expectedJson ? "",
}:
let
  inherit (builtins)
    attrNames
    concatLists
    filter
    fromJSON
    length
    listToAttrs
    map
    sort
    toJSON
    tryEval
    ;

  real = import ../lib.nix { inherit root; };
  fixture = import ../lib.nix { root = ./fixtures/workspace; };

  sorted = list: sort (a: b: a < b) list;
  eq = name: actual: expected: {
    inherit name;
    ok = actual == expected;
    message = "expected ${toJSON expected}, got ${toJSON actual}";
  };
  check = name: ok: message: { inherit name ok message; };
  throws =
    name: value:
    check name (!(tryEval (builtins.deepSeq value value)).success) "expected an evaluation error";

  # The crate x variant product, computed here independently of lib.packageNamesFor.
  product =
    lib: system:
    concatLists (
      map (
        crate:
        map (variant: "${crate}-${variant}") (
          filter (
            v: builtins.elem (builtins.head (builtins.split "-" system)) lib.variants.${v}.architectures
          ) (attrNames lib.variants)
        )
      ) lib.shippedNames
    );

  fixtureTests = [
    (eq "fixture: members skip directories without Cargo.toml" (sorted fixture.memberDirs) [
      "crates/alpha"
      "crates/beta"
      "crates/buildhelper"
      "crates/pymod"
      "crates/shared"
      "crates/tool"
    ])
    (eq "fixture: shipped crates are servers and python modules" fixture.shippedNames [
      "alpha"
      "beta"
      "pymod"
    ])
    (eq "fixture: x86_64 packages are crate x variant" (sorted (fixture.packageNamesFor "x86_64-linux")) [
      "alpha-generic"
      "alpha-znver4"
      "beta-generic"
      "beta-znver4"
      "pymod-generic"
      "pymod-znver4"
    ])
    (eq "fixture: znver4 is absent on aarch64" (sorted (fixture.packageNamesFor "aarch64-linux")) [
      "alpha-generic"
      "beta-generic"
      "pymod-generic"
    ])
    (eq "fixture: images per server x variant plus one dispatch image" (sorted (fixture.imageNamesFor "x86_64-linux")) [
      "alpha-generic-image"
      "alpha-image"
      "alpha-znver4-image"
      "beta-generic-image"
      "beta-image"
      "beta-znver4-image"
    ])
    (eq "fixture: servers are static musl" (fixture.targetFor "aarch64-linux" "alpha") "aarch64-unknown-linux-musl")
    (eq "fixture: python modules are glibc" (fixture.targetFor "x86_64-linux" "pymod") "x86_64-unknown-linux-gnu")
    (eq "fixture: python module metadata" {
      inherit (fixture.crates.pymod) pythonModule pythonFeature libName;
    } {
      pythonModule = "pymod_py";
      pythonFeature = "python";
      libName = "pymod_native";
    })
    (eq "fixture: lib name defaults to the crate name with underscores" fixture.crates.alpha.libName "alpha")
    (eq "fixture: workspace version is inherited" fixture.crates.alpha.version "1.2.3")
    (eq "fixture: own version wins" fixture.crates.beta.version "0.9.0")
    (eq "fixture: workspace path dependency and build-dependency are in the source closure" (sorted (fixture.sourceClosure "alpha")) [
      "alpha"
      "buildhelper"
      "shared"
    ])
    (eq "fixture: renamed dev-dependency is followed transitively" (sorted (fixture.sourceClosure "beta")) [
      "beta"
      "pymod"
      "shared"
    ])
    (eq "fixture: rustflags string" (fixture.rustflagsString "znver4") "-C target-cpu=znver4")
    (eq "fixture: baseline variant" fixture.baselineVariant "generic")
    (eq "fixture: tests run on the baseline only" (map (v: fixture.variants.${v}.runsTests) [ "generic" "znver4" ]) [
      true
      false
    ])
    (eq "fixture: no launcher crate" fixture.launcher null)
    (throws "unknown role is refused" (import ../lib.nix { root = ./fixtures/bad-role; }).crates)
    (throws "missing role is refused" (import ../lib.nix { root = ./fixtures/no-role; }).crates)
  ];

  helperTests = [
    (eq "isoDateTime: epoch" (real.isoDateTime 0) "1970-01-01T00:00:00Z")
    (eq "isoDateTime: leap day" (real.isoDateTime 951782400) "2000-02-29T00:00:00Z")
    (eq "isoDateTime: end of a century year" (real.isoDateTime 4107542399) "2100-02-28T23:59:59Z")
    (eq "isoDateTime: nixpkgs pin" (real.isoDateTime 1785734586) "2026-08-03T05:23:06Z")
    (eq "cargo target env name" (real.cargoTargetEnv "x86_64-unknown-linux-musl") "X86_64_UNKNOWN_LINUX_MUSL")
    (eq "cc crate target env name" (real.ccTargetEnv "aarch64-unknown-linux-musl") "aarch64_unknown_linux_musl")
  ];

  realTests =
    [
      (eq "real: x86_64 packages are exactly crate x variant" (sorted (real.packageNamesFor "x86_64-linux")) (
        sorted (product real "x86_64-linux")
      ))
      (eq "real: aarch64 packages are exactly crate x variant" (sorted (real.packageNamesFor "aarch64-linux")) (
        sorted (product real "aarch64-linux")
      ))
      (check "real: x86_64-only variants are absent on aarch64" (
        builtins.all (
          v:
          builtins.elem "aarch64" real.variants.${v}.architectures
          || builtins.all (n: builtins.match ".*-${v}(-image)?" n == null) (
            real.packageNamesFor "aarch64-linux" ++ real.imageNamesFor "aarch64-linux"
          )
        ) real.variantNames
      ) "an x86_64-only variant appears in aarch64-linux names")
      (check "real: package names are unique" (
        length (real.packageNamesFor "x86_64-linux")
        == length (attrNames (listToAttrs (map (n: { name = n; value = null; }) (real.packageNamesFor "x86_64-linux"))))
      ) "two crate x variant pairs produce the same attribute name")
      (check "real: every non-generic variant passes its target-cpu in rustflags" (
        builtins.all (
          v:
          let
            variant = real.variants.${v};
          in
          variant.targetCpu == "generic"
          || builtins.elem "target-cpu=${variant.targetCpu}" variant.rustflags
          || builtins.elem "-Ctarget-cpu=${variant.targetCpu}" variant.rustflags
        ) real.variantNames
      ) "a variant's rustflags do not select its target-cpu")
      (check "real: every python module ships its package directory" (
        builtins.all (
          n:
          let
            c = real.crates.${n};
          in
          c.pythonModule != null
          && c.pythonFeature != null
          && builtins.pathExists (root + "/${c.dir}/python/${c.pythonModule}/__init__.py")
        ) real.pythonModuleNames
      ) "a python-module crate lacks python-module/python-feature or python/<module>/__init__.py")
      (check "real: every server's closure is made of members" (
        builtins.all (s: builtins.all (d: real.crates ? ${d}) (real.sourceClosure s)) real.shippedNames
      ) "a dependency in a source closure is not a workspace member")
    ];

  # Comparison with `cargo metadata` (as reduced by `cargo xtask nix-check`).
  expected = if expectedJson == "" then null else fromJSON expectedJson;
  metadataTests =
    if expected == null then
      [ ]
    else
      [
        (eq "cargo metadata: crates and roles" (builtins.mapAttrs (_: c: c.role) real.crates) expected.crates)
        (eq "cargo metadata: variants" (builtins.mapAttrs (_: v: {
          target-cpu = v.targetCpu;
          inherit (v) rustflags architectures;
        }) real.variants) expected.variants)
      ];

  results = fixtureTests ++ helperTests ++ realTests ++ metadataTests;
in
{
  passed = map (t: t.name) (filter (t: t.ok) results);
  failed = map (t: { inherit (t) name message; }) (filter (t: !t.ok) results);
}
