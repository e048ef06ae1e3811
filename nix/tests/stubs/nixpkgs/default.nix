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
  tool = name: record "package" name { };

  python3 =
    record "python" "python3-3.13" { }
    // {
      interpreter = "/nix/store/00000000000000000000000000000000-python3-3.13/bin/python3.13";
      sitePackages = "lib/python3.13/site-packages";
      pkgs = {
        # python-packages-base.nix: marks a derivation as a module of this interpreter,
        # which is what `withPackages` filters on.
        toPythonModule = drv: drv // { pythonModule = python3; };
        numpy = tool "numpy";
        pytest = tool "pytest";
      };
      withPackages = f: record "python.withPackages" "python3-env" { packages = f python3.pkgs; };
    };

  base = final: {
    inherit lib system python3;
    stdenv.hostPlatform.system = system;

    runCommand = name: env: script: record "runCommand" name { inherit env script; };
    writeText = name: text: record "writeText" name { inherit text; };
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

    pkgsStatic.stdenv.cc =
      record "package" "${arch}-unknown-linux-musl-gcc-wrapper" { }
      // {
        targetPrefix = "${arch}-unknown-linux-musl-";
        bintools = tool "${arch}-unknown-linux-musl-binutils-wrapper";
      };

    skopeo = tool "skopeo";
    umoci = tool "umoci";
    cargo-nextest = tool "cargo-nextest";
    cargo-deny = tool "cargo-deny";
    cargo-audit = tool "cargo-audit";
    maturin = tool "maturin";
    nixfmt = tool "nixfmt";
  };

  pkgs = builtins.foldl' (acc: overlay: acc // overlay pkgs acc) (base pkgs) overlays;
in
pkgs
