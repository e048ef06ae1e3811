# The package set of the offline nixpkgs substitute (see default.nix). Only what the
# flake, crane and rust-overlay use, under nixpkgs' names and argument conventions.
{
  lib,
  host,
  platform,
  final,
}:
let
  inherit (lib) concatStringsSep isAttrs isDerivation isFunction;

  # ---- host programs as packages ----------------------------------------------------------
  # One derivation per package; see host-package.sh. `bins`: name=path of host files that
  # are not a Debian package's (e.g. cargo tools installed with `cargo install`).
  hostPackage =
    {
      name,
      debianPackages ? [ ],
      bins ? { },
      libs ? { },
      scripts ? { },
      passthru ? { },
    }:
    derivation {
      inherit name;
      system = platform.system;
      builder = "/bin/sh";
      args = [ ./host-package.sh ];
      debianPackages = concatStringsSep " " debianPackages;
      hostBins = concatStringsSep " " (lib.mapAttrsToList (n: p: "${n}=${p}") bins);
      hostLibs = concatStringsSep " " (lib.mapAttrsToList (n: p: "${n}=${p}") libs);
      scripts = concatStringsSep " " (lib.mapAttrsToList (n: text: "${n}=${builtins.toFile n text}") scripts);
      # Host state, not inputs: rebuild when the host changes (see host.nix).
      hostStamp = host.stamp;
      preferLocalBuild = true;
    }
    // passthru
    // {
      pname = name;
      meta = { };
    };

  cargoTool =
    name: bin:
    hostPackage {
      inherit name;
      bins.${bin} = host.tools.${bin} or "${host.cargoHome}/bin/${bin}";
    };

  deb = name: debs: hostPackage {
    inherit name;
    debianPackages = debs;
  };

  multiarch = "${platform.parsed.cpu.name}-linux-gnu";
  libDir = "/usr/lib/${multiarch}";

  # ---- C toolchains -------------------------------------------------------------------------
  # The binutils every C stdenv puts on PATH (ld, ar, nm, strip, ...), with the attributes
  # rust-overlay's rustc component reads from stdenv.cc.bintools.
  bintools = hostPackage {
    name = "binutils-wrapper";
    debianPackages = [ "binutils" ];
    passthru = {
      targetPrefix = "";
      dynamicLinker = platform.libc.dynamicLinker or "/lib64/ld-linux-x86-64.so.2";
      shell = "${final.bash}/bin/bash";
      expandResponseParams = "";
      suffixSalt = lib.replaceStrings [ "-" "." ] [ "_" "_" ] platform.config;
      wrapperName = "BINTOOLS_WRAPPER";
      coreutils_bin = "${final.coreutils}";
      bintools = bintools;
    };
  };

  gccForLibs = hostPackage {
    name = "gcc-libs";
    libs = {
      "libgcc_s.so.1" = "${libDir}/libgcc_s.so.1";
      "libstdc++.so.6" = "${libDir}/libstdc++.so.6";
    };
    passthru.lib = gccForLibs;
  };

  # The glibc C compiler: cc/gcc/c++/cpp and, propagated, binutils.
  cc = hostPackage {
    name = "gcc-wrapper";
    bins = {
      cc = "/usr/bin/gcc";
      gcc = "/usr/bin/gcc";
      cpp = "/usr/bin/cpp";
    };
    passthru = {
      inherit bintools;
      targetPrefix = "";
      isGNU = true;
      isClang = false;
      cc = gccForLibs;
      libc = null;
    };
  };
  ccWithBintools = final.runCommandNoCC "gcc-wrapper-with-bintools" { } ''
    mkdir -p $out/nix-support
    echo ${bintools} > $out/nix-support/propagated-build-inputs
    ln -s ${cc}/bin $out/bin
  '' // {
    inherit (cc) bintools targetPrefix isGNU isClang libc;
    cc = gccForLibs;
  };

  # pkgsStatic's C compiler: musl-gcc (musl-tools) under the musl target prefix.
  muslPrefix = "${platform.parsed.cpu.name}-unknown-linux-musl-";
  muslBintools = hostPackage {
    name = "${muslPrefix}binutils-wrapper";
    bins = lib.listToAttrs (
      map (t: lib.nameValuePair "${muslPrefix}${t}" "/usr/bin/${t}") [
        "ar"
        "nm"
        "ranlib"
        "strip"
        "ld"
        "objcopy"
      ]
    );
    passthru.targetPrefix = muslPrefix;
  };
  muslCC = hostPackage {
    name = "${muslPrefix}gcc-wrapper";
    debianPackages = [ "musl-tools" ];
    # Debian's musl-gcc runs `${REALGCC:-<triple>-gcc}` from PATH; a build's PATH holds
    # only its inputs, so the wrapper names the compiler itself, as nixpkgs' cc-wrapper
    # does with store paths.
    scripts = lib.genAttrs [ "${muslPrefix}cc" "${muslPrefix}gcc" ] (_: ''
      #!/bin/sh
      REALGCC=/usr/bin/${multiarch}-gcc exec /usr/bin/musl-gcc "$@"
    '');
    passthru = {
      targetPrefix = muslPrefix;
      bintools = muslBintools;
      isGNU = true;
      isClang = false;
    };
  };

  # ---- stdenv ---------------------------------------------------------------------------------
  stdenvInitialPath = [
    final.coreutils
    final.findutils
    final.diffutils
    final.gnused
    final.gnugrep
    final.gawk
    final.gnutar
    final.gzip
    final.bzip2
    final.xz
    final.bash
    final.gnumake
    final.gnupatch
    final.file
    final.patchelf
  ];

  mkStdenv =
    { name, cc }:
    let
      setup = derivation {
        inherit name;
        system = platform.system;
        builder = "/bin/sh";
        args = [
          "-c"
          ''
            /bin/mkdir -p $out
            { echo "stdenvInitialPath='$initialPath'"; /bin/cat ${./stdenv/setup.sh}; } > $out/setup
          ''
        ];
        initialPath = concatStringsSep " " (map toString (stdenvInitialPath ++ lib.optional (cc != null) cc));
      };
      self = {
        inherit cc;
        hostPlatform = platform;
        buildPlatform = platform;
        targetPlatform = platform;
        isLinux = true;
        isDarwin = false;
        shell = "${final.bash}/bin/bash";
        mkDerivation = mkDerivationWith self setup;
        inherit (platform) system;
        outPath = setup.outPath;
        drvPath = setup.drvPath;
        type = "derivation";
      };
    in
    self;

  # Nix turns lists into space-separated strings, booleans into "1"/"", derivations into
  # their paths; what it cannot take (attribute sets, functions) stays out of the env, as
  # `passthru` and `meta` do in nixpkgs.
  envable = v: !(isFunction v) && (!(isAttrs v) || isDerivation v || v ? outPath);

  mkDerivationWith =
    stdenv: setup: argsOrFn:
    let
      args = if isFunction argsOrFn then lib.fix (self: argsOrFn self) else argsOrFn;
      name = args.name or "${args.pname}-${args.version}";
      drvAttrs = lib.filterAttrs (n: v: envable v) (
        builtins.removeAttrs args [
          "passthru"
          "meta"
          "env"
          "pos"
        ]
      )
      // (args.env or { })
      // {
        inherit name;
        system = platform.system;
        builder = "${final.bash}/bin/bash";
        args = [
          "-e"
          ./stdenv/default-builder.sh
        ];
        stdenv = setup;
      };
      drv = derivation drvAttrs;
    in
    drv
    // (args.passthru or { })
    // {
      inherit stdenv;
      pname = args.pname or name;
      version = args.version or "";
      meta = args.meta or { };
      passthru = args.passthru or { };
      overrideAttrs =
        f: mkDerivationWith stdenv setup (args // (if isFunction f then f args else f));
    };
in
import ./builders.nix { inherit lib final mkStdenv; }
// {
  inherit lib;
  inherit (platform) system;
  hostConfig = host;
  pkgs = final;
  # rust-overlay substitutes nixpkgs' bintools-wrapper scripts from here (pkgs/).
  path = ./.;

  stdenv = mkStdenv {
    name = "stdenv";
    cc = ccWithBintools;
  };
  stdenvNoCC = mkStdenv {
    name = "stdenv-nocc";
    cc = null;
  };
  pkgsStatic = {
    stdenv = mkStdenv {
      name = "stdenv-static";
      cc = muslCC;
    };
    # What the images ship for bash-god's `execute_command` (Debian's bash-static).
    bash = hostPackage {
      name = "bash-static";
      bins.bash = "/bin/bash-static";
    };
  };
  inherit bintools gccForLibs;
  binutils = bintools;

  # Cross and splicing: this substitute models native builds only, where every package
  # set is this one (what nixpkgs' splicing reduces to without cross compilation).
  pkgsBuildBuild = final;
  pkgsBuildHost = final;
  pkgsBuildTarget = final;
  pkgsHostHost = final;
  pkgsHostTarget = final;
  pkgsTargetTarget = final;
  buildPackages = final;
  __splicedPackages = final;
  splicePackages = { pkgsHostTarget, ... }: pkgsHostTarget;
  newScope = extra: lib.callPackageWith (final // extra);
  callPackage = lib.callPackageWith final;
  makeScopeWithSplicing' = lib.makeScopeWithSplicing' {
    inherit (final) splicePackages newScope;
  };

  # ---- host tools ---------------------------------------------------------------------------
  coreutils = deb "coreutils" [ "coreutils" ];
  findutils = deb "findutils" [ "findutils" ];
  diffutils = deb "diffutils" [ "diffutils" ];
  gnused = deb "gnused" [ "sed" ];
  gnugrep = deb "gnugrep" [ "grep" ];
  gawk = deb "gawk" [ "gawk" ];
  gnutar = deb "gnutar" [ "tar" ];
  gzip = deb "gzip" [ "gzip" ];
  bzip2 = deb "bzip2" [ "bzip2" ];
  xz = deb "xz" [ "xz-utils" ];
  # nixpkgs' bash has bin/sh too; programs and tests start `sh` from PATH.
  bash = hostPackage {
    name = "bash";
    debianPackages = [ "bash" ];
    bins.sh = "/bin/bash";
  };
  # What `nix develop` starts an interactive shell with.
  bashInteractive = final.bash;
  gnumake = deb "gnumake" [ "make" ];
  gnupatch = deb "gnupatch" [ "patch" ];
  file = deb "file" [ "file" ];
  patchelf = deb "patchelf" [ "patchelf" ];
  zstd = deb "zstd" [ "zstd" ];
  rsync = deb "rsync" [ "rsync" ];
  jq = deb "jq" [ "jq" ];
  git = deb "git" [ "git" ];
  procps = deb "procps" [ "procps" ];
  qemu-user = deb "qemu-user" [ "qemu-user" ];
  skopeo = deb "skopeo" [ "skopeo" ];
  umoci = deb "umoci" [ "umoci" ];
  curl = deb "curl" [ ];
  cargo-audit = deb "cargo-audit" [ "cargo-audit" ];
  # Tools outside Debian: installed on the host with `cargo install` (host.nix says where).
  cargo-nextest = cargoTool "cargo-nextest" "cargo-nextest";
  cargo-deny = cargoTool "cargo-deny" "cargo-deny";
  cargo-llvm-cov = cargoTool "cargo-llvm-cov" "cargo-llvm-cov";
  cargo-tarpaulin = cargoTool "cargo-tarpaulin" "cargo-tarpaulin";
  maturin = cargoTool "maturin" "maturin";
  taplo = cargoTool "taplo" "taplo";
  nixfmt-tree = cargoTool "nixfmt-tree" "treefmt";
  zlib = hostPackage {
    name = "zlib";
    libs."libz.so.1" = "${libDir}/libz.so.1";
  };
  lndir = hostPackage {
    name = "lndir";
    scripts.lndir = ''
      #!/bin/sh
      # lndir [-silent] FROM TO: a tree of symlinks to FROM's files inside TO.
      [ "$1" = -silent ] && shift
      exec /bin/cp -rsn --no-preserve=mode "$(/usr/bin/realpath "$1")/." "$2/"
    '';
  };

  # The host's rustup toolchain of rust-toolchain.toml, as nixpkgs' own rustc/cargo (used
  # by rustPlatform, i.e. crane's crane-utils). The flake's toolchain comes through
  # rust-overlay and fetchurl.py instead.
  rustc = hostPackage {
    name = "rustc-host";
    bins = {
      rustc = "${host.rustToolchain}/bin/rustc";
      rustdoc = "${host.rustToolchain}/bin/rustdoc";
    };
  };
  cargo = hostPackage {
    name = "cargo-host";
    bins.cargo = "${host.rustToolchain}/bin/cargo";
  };
}
