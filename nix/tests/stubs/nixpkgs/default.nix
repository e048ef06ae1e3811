# Stand-in for `import nixpkgs { system; overlays; }` (nixos-26.05): only the attributes the
# flake uses, each with the argument names of the real function at the pinned revision
# (closed argument sets where the real one is closed, so an unknown argument fails here).
{
  system,
  overlays ? [ ],
  ...
}:
let
  lib = import ../lib.nix;
  record = import ../record.nix;
  arch = builtins.head (builtins.match "([^-]+)-.*" system);
  # A package and the programs it puts on PATH when it is a (native) build input.
  tool = name: bins: record "package" name { } // { pname = name; inherit bins; };

  # The PATH a builder sees, by program name: stdenvNoCC has the POSIX tools only; stdenv
  # adds the C compiler and binutils (cc-wrapper + bintools-wrapper).
  noCCBins = [ "bash" "sh" "cp" "mv" "mkdir" "cat" "touch" "find" "grep" "sed" "awk" "tar" "xz" "gzip" "make" "patch" ];
  ccBins = noCCBins ++ [ "cc" "gcc" "c++" "g++" "ld" "ar" "as" "nm" "objdump" "ranlib" "readelf" "strip" ];
  binsOf = inputs: builtins.concatMap (p: p.bins or [ ]) inputs;
  pythonModulesOf = inputs: builtins.concatMap (p: p.modules or [ ]) inputs;
  runCommandWith =
    fn: stdenvBins: name: env: script:
    record fn name { inherit env script; }
    // {
      path = stdenvBins ++ binsOf (env.nativeBuildInputs or [ ]);
      pythonEnvModules = pythonModulesOf (env.nativeBuildInputs or [ ]);
    };

  # The Python module closure withPackages builds: each package plus, transitively, the
  # propagatedBuildInputs of modules (python-packages-base.nix, requiredPythonModules).
  propagatedOf = p: p.recorded.args.propagatedBuildInputs or p.propagatedBuildInputs or [ ];
  moduleClosure =
    packages:
    map (item: item.key) (
      builtins.genericClosure {
        startSet = map (p: { key = p.pname or p.name; pkg = p; }) packages;
        operator = item: map (p: { key = p.pname or p.name; pkg = p; }) (propagatedOf item.pkg);
      }
    );

  python3 =
    record "python" "python3-3.13" { }
    // {
      interpreter = "/nix/store/00000000000000000000000000000000-python3-3.13/bin/python3.13";
      sitePackages = "lib/python3.13/site-packages";
      pkgs = {
        # python-packages-base.nix: marks a derivation as a module of this interpreter,
        # which is what `withPackages` filters on.
        toPythonModule = drv: drv // { pythonModule = python3; };
        numpy = tool "numpy" [ ];
        pytest = tool "pytest" [ ];
        hypothesis = tool "hypothesis" [ ];
      };
      withPackages =
        f:
        record "python.withPackages" "python3-env" { packages = f python3.pkgs; }
        // {
          bins = [ "python" "python3" ];
          modules = moduleClosure (f python3.pkgs);
        };
    };

  base = final: {
    inherit lib system python3;
    stdenv.hostPlatform.system = system;

    runCommand = runCommandWith "runCommand" noCCBins;
    runCommandCC = runCommandWith "runCommandCC" ccBins;
    stdenvPath = ccBins;
    writeText = name: text: record "writeText" name { inherit text; };
    writeShellScript = name: text: record "writeShellScript" name { inherit text; };
    symlinkJoin = { name, paths, ... }@args: record "symlinkJoin" name args;

    # pkgs/build-support/trivial-builders: writeShellApplication.
    writeShellApplication =
      {
        name,
        text,
        runtimeInputs ? [ ],
        runtimeEnv ? null,
        meta ? { },
        passthru ? { },
        checkPhase ? null,
        excludeShellChecks ? [ ],
        extraShellCheckFlags ? [ ],
        bashOptions ? [
          "errexit"
          "nounset"
          "pipefail"
        ],
        inheritPath ? true,
        derivationArgs ? { },
      }@args:
      record "writeShellApplication" name args;

    # pkgs/build-support/docker: buildLayeredImage = streamLayeredImage's arguments plus
    # the compressor.
    dockerTools.buildLayeredImage =
      {
        name,
        tag ? null,
        fromImage ? null,
        contents ? [ ],
        config ? { },
        architecture ? null,
        created ? "1970-01-01T00:00:01Z",
        mtime ? "1970-01-01T00:00:01Z",
        uid ? 0,
        gid ? 0,
        uname ? "root",
        gname ? "root",
        maxLayers ? 100,
        extraCommands ? "",
        fakeRootCommands ? "",
        enableFakechroot ? false,
        includeStorePaths ? true,
        includeNixDB ? false,
        passthru ? { },
        meta ? { },
        layeringPipeline ? null,
        debug ? false,
        compressor ? "gz",
      }@args:
      record "dockerTools.buildLayeredImage" "${name}.tar.gz" args;

    pkgsStatic.bash = tool "bash-static" [ "bash" ];
    pkgsStatic.stdenv.cc =
      record "package" "${arch}-unknown-linux-musl-gcc-wrapper" { }
      // {
        targetPrefix = "${arch}-unknown-linux-musl-";
        bintools = tool "${arch}-unknown-linux-musl-binutils-wrapper" [ ];
      };

    skopeo = tool "skopeo" [ "skopeo" ];
    umoci = tool "umoci" [ "umoci" ];
    cargo-nextest = tool "cargo-nextest" [ "cargo-nextest" ];
    cargo-deny = tool "cargo-deny" [ "cargo-deny" ];
    cargo-audit = tool "cargo-audit" [ "cargo-audit" ];
    maturin = tool "maturin" [ "maturin" ];
    nixfmt = tool "nixfmt" [ "nixfmt" ];
    nixfmt-tree = tool "nixfmt-tree" [ "treefmt" ];
    git = tool "git" [ "git" ];
    procps = tool "procps" [ "ps" "pgrep" "pkill" ];
    qemu-user = tool "qemu-user" [ "qemu-x86_64" "qemu-aarch64" ];
  };

  pkgs = builtins.foldl' (acc: overlay: acc // overlay pkgs acc) (base pkgs) overlays;
in
pkgs
