# Trivial builders, setup hooks and language support of the offline nixpkgs substitute,
# with nixpkgs' names and arguments (pkgs/build-support), written for this substitute.
{
  lib,
  final,
  mkStdenv,
}:
let
  inherit (lib) concatMapStrings escapeShellArg;
  hooks = ./hooks;
in
rec {
  runCommandWith =
    {
      stdenv,
      name,
      runLocal ? false,
      derivationArgs ? { },
    }:
    buildCommand:
    stdenv.mkDerivation (
      {
        inherit name buildCommand;
        passAsFile = [ "buildCommand" ] ++ (derivationArgs.passAsFile or [ ]);
        preferLocalBuild = runLocal;
      }
      // builtins.removeAttrs derivationArgs [ "passAsFile" ]
    );
  runCommand =
    name: env:
    runCommandWith {
      stdenv = final.stdenvNoCC;
      inherit name;
      derivationArgs = env;
    };
  runCommandNoCC = runCommand;
  runCommandLocal =
    name: env:
    runCommandWith {
      stdenv = final.stdenvNoCC;
      runLocal = true;
      inherit name;
      derivationArgs = env;
    };
  runCommandCC =
    name: env:
    runCommandWith {
      stdenv = final.stdenv;
      inherit name;
      derivationArgs = env;
    };

  writeTextFile =
    {
      name,
      text,
      executable ? false,
      destination ? "",
      checkPhase ? "",
      meta ? { },
      passthru ? { },
      derivationArgs ? { },
    }:
    runCommand name (
      {
        inherit text executable checkPhase;
        passAsFile = [ "text" ];
        inherit meta passthru;
      }
      // derivationArgs
    ) ''
      target="$out${destination}"
      mkdir -p "$(dirname "$target")"
      cp "$textPath" "$target"
      [ -z "$executable" ] || chmod +x "$target"
      eval "$checkPhase"
    '';
  writeText = name: text: writeTextFile { inherit name text; };
  writeShellScript =
    name: text:
    writeTextFile {
      inherit name;
      executable = true;
      text = ''
        #!${final.bash}/bin/bash
        ${text}
      '';
      checkPhase = ''bash -n "$target"'';
    };

  # nixpkgs runs shellcheck here; this host has none, so only bash's own syntax check.
  writeShellApplication =
    {
      name,
      text,
      runtimeInputs ? [ ],
      meta ? { },
      passthru ? { },
      ...
    }:
    writeTextFile {
      inherit name passthru;
      executable = true;
      destination = "/bin/${name}";
      meta = meta // {
        mainProgram = name;
      };
      text = ''
        #!${final.bash}/bin/bash
        set -o errexit -o nounset -o pipefail
        ${lib.optionalString (runtimeInputs != [ ]) ''export PATH="${lib.makeBinPath runtimeInputs}:$PATH"''}
        ${text}
      '';
      checkPhase = ''bash -n "$target"'';
    };

  symlinkJoin =
    {
      name,
      paths,
      postBuild ? "",
      ...
    }@args:
    runCommand name
      (
        builtins.removeAttrs args [
          "name"
          "postBuild"
        ]
        // {
          paths = paths;
        }
      )
      ''
        mkdir -p $out
        for i in $paths; do
          cp -rsn --no-preserve=mode "$(realpath "$i")/." "$out/"
        done
        ${postBuild}
      '';

  makeSetupHook =
    {
      name,
      substitutions ? { },
      propagatedBuildInputs ? [ ],
      meta ? { },
      passthru ? { },
      ...
    }:
    script:
    runCommand name { inherit meta passthru; } ''
      mkdir -p $out/nix-support
      substitute ${script} $out/nix-support/setup-hook ${
        concatMapStrings (n: " --subst-var-by ${n} ${escapeShellArg (toString substitutions.${n})}") (
          builtins.attrNames substitutions
        )
      }
      ${lib.optionalString (propagatedBuildInputs != [ ]) ''
        echo ${toString propagatedBuildInputs} > $out/nix-support/propagated-build-inputs
      ''}
    '';

  makeWrapper = makeSetupHook { name = "make-wrapper-hook"; } (hooks + "/make-wrapper.sh");
  # fenix asks for it by name (used on Darwin only).
  makeBinaryWrapper = final.makeWrapper;
  writableTmpDirAsHomeHook = makeSetupHook { name = "writable-tmpdir-as-home-hook"; } (
    hooks + "/writable-tmpdir-as-home.sh"
  );
  autoPatchelfHook = makeSetupHook {
    name = "auto-patchelf-hook";
    substitutions.readelf = "${final.bintools}/bin/readelf";
  } (hooks + "/auto-patchelf.sh");

  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      nativeBuildInputs ? [ ],
      buildInputs ? [ ],
      ...
    }@args:
    final.stdenv.mkDerivation (
      builtins.removeAttrs args [
        "packages"
        "inputsFrom"
      ]
      // {
        inherit name;
        nativeBuildInputs =
          packages ++ nativeBuildInputs ++ lib.concatMap (d: d.nativeBuildInputs or [ ]) inputsFrom;
        buildInputs = buildInputs ++ lib.concatMap (d: d.buildInputs or [ ]) inputsFrom;
        phases = [ "buildPhase" ];
        buildPhase = ''echo "a nix develop environment; not meant to be built" > $out'';
        preferLocalBuild = true;
      }
    );

  # Downloads from this host's caches (fetchurl.py); crates are fixed-output.
  fetchurl =
    {
      url ? builtins.head urls,
      urls ? [ ],
      sha256 ? "",
      hash ? "",
      name ? baseNameOf url,
      ...
    }:
    let
      given = if hash != "" then hash else sha256;
      sha256Hex = builtins.convertHash {
        hash = given;
        hashAlgo = "sha256";
        toHashFormat = "base16";
      };
      crate = builtins.match "cargo-src-(.*)" name;
      isRustDist = builtins.match "https://static[.]rust-lang[.]org/dist/.*" url != null;
      # A release's channel manifest (fenix): the published file, so Nix checks its hash.
      isChannelManifest =
        builtins.match "https://static[.]rust-lang[.]org/dist/(.*/)?channel-rust-[^/]*[.]toml" url
        != null;
      fixedOutput = crate != null || isChannelManifest;
    in
    derivation (
      {
        inherit name url sha256Hex;
        system = final.system;
        builder = "/usr/bin/python3";
        args = [ ./fetchurl.py ];
        crateFile = if crate != null then "${builtins.head crate}.crate" else "";
        isRustDist = if isRustDist then "1" else "";
        hostCargoHome = final.hostConfig.cargoHome;
        hostRustupHome = final.hostConfig.rustupHome;
        hostRustDistCache = final.hostConfig.rustDistCache;
        preferLocalBuild = true;
      }
      // lib.optionalAttrs fixedOutput {
        outputHashMode = "flat";
        outputHashAlgo = "sha256";
        outputHash = sha256Hex;
      }
      // lib.optionalAttrs (!fixedOutput) {
        # Not fixed-output: rebuilt from rustup's files; fetchurl.py checks the hash.
        hostStamp = final.hostConfig.stamp;
      }
    );

  python3 = import ./python.nix { inherit lib final; };
  python3Packages = final.python3.pkgs;

  makeRustPlatform = import ./rust-platform.nix { inherit lib final; };
  rustPlatform = makeRustPlatform {
    inherit (final) rustc cargo;
  };

  dockerTools = import ./docker.nix { inherit lib final; };
}
